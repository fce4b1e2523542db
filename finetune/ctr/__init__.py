"""Click-through-rate ranking: impression logs, past-only features, the DCN-v2 model, training and baselines.

The model ranks candidate items for a customer by the probability that they buy each one; serving
lives in `assistant.ranker`, training in `finetune.ctr.train` (`shopassist train ctr --config FILE`).
"""
