"""Lexical matching with BM25 (rank-bm25) over the item documents.

Dense MiniLM embeddings blur exact tokens such as sizes ("10"), capacities ("1.5L") or brand words;
BM25 keeps them. Search fuses the two rankings (retrieval/search.py); docs/BENCHMARKS.md has the
measured effect.
"""

import re
from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word and number tokens, with a plural `s` dropped ("boots" matches "boot")."""
    tokens = _TOKEN.findall(text.lower())
    return [t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens]


class LexicalIndex:
    def __init__(self, documents: Sequence[str]):
        corpus = [tokenize(d) or ["_"] for d in documents]
        self._bm25 = BM25Okapi(corpus)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document, in document order (0 where no query token occurs)."""
        return np.asarray(self._bm25.get_scores(tokenize(query)), dtype=np.float64)
