"""CTR training: the Complete Journey impression builder and the fitting script (`python -m finetune.ctr.train`).

The model, its features, the log schema and the model folder's save/load live with serving in
`assistant.ranking`; this package only builds data and fits.
"""
