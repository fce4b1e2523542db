"""Training only: dialogue builders, LoRA SFT, fine-tune evaluation, CTR fitting, their configs.

Imports `assistant` and `retrieval`, never `ui`; artefacts are written with the serving side's own
formats (`assistant.dialogues`, `assistant.ranking.folder`).
"""
