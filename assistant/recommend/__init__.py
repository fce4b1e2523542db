"""Zero-shot recommendation: candidates from search, history and the CTR model, ranked by prompting an LLM.

`recommender.Recommender` is the product API (`shopassist recommend`); `protocol` implements the
LLMRank evaluation (`shopassist eval zeroshot`) with its RecBole-style files.
"""
