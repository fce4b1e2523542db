"""Lexical matching with BM25 (bm25s: sparse-matrix scoring, ~0.1 ms per query at 100k items).

Dense MiniLM embeddings blur exact tokens such as sizes ("10"), capacities ("1.5L") or model words;
BM25 keeps them. Search fuses the two rankings (retrieval/search.py); docs/BENCHMARKS.md has the
measured effect.
"""

import re
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word and number tokens, with a plural `s` dropped ("boots" matches "boot")."""
    tokens = _TOKEN.findall(text.lower())
    return [t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t for t in tokens]


class LexicalIndex:
    def __init__(self, documents: Sequence[str]):
        import bm25s

        self._size = len(documents)
        self._bm25 = bm25s.BM25()
        self._bm25.index([tokenize(d) or ["_"] for d in documents], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document, in document order (0 where no query token occurs)."""
        tokens = tokenize(query)
        if not tokens:
            return np.zeros(self._size, dtype=np.float64)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float64)
