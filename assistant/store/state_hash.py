"""Whole-state hash of a store, as τ-bench computes it (docs/tau-retail-spec.md §3.2).

Objects become tuples of (key, value) pairs sorted by key, arrays become tuples, and the Python `str()`
of the result is hashed. That keeps int vs float (`17` vs `17.0`) and bool vs int apart, so a state that
differs only in a number's type hashes differently — exactly what task replay needs.
"""

import hashlib
import json
from typing import Any


def to_hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((key, to_hashable(v)) for key, v in value.items()))
    if isinstance(value, list):
        return tuple(to_hashable(v) for v in value)
    return value


def state_hash(state: dict[str, Any]) -> str:
    """SHA-256 hex digest of a state `{"orders": ..., "products": ..., "users": ...}`."""
    return hashlib.sha256(str(to_hashable(state)).encode("utf-8")).hexdigest()


def _tuple_text(parts: list[str]) -> str:
    """`str()` of a tuple whose elements' reprs are `parts`."""
    return f"({parts[0]},)" if len(parts) == 1 else "(" + ", ".join(parts) + ")"


class StateHasher:
    """`state_hash` computed from stored JSON rows, reusing the text of records that did not change.

    `str()` of the canonical tuple is the concatenation of its elements' reprs, so each record's part
    can be cached under its JSON text; hashing a store after a few writes then costs one pass over the
    rows instead of rebuilding 1,500 canonical records (the evaluator hashes twice per trial).
    """

    def __init__(self, max_cached: int = 50_000):
        self._parts: dict[tuple[str, str], str] = {}
        self._max_cached = max_cached

    def hash_rows(self, tables: dict[str, list[tuple[str, str]]]) -> str:
        """`tables`: document name → (key, JSON text) rows; equals `state_hash` of the parsed documents."""
        if len(self._parts) > self._max_cached:
            self._parts.clear()
        sections = []
        for table in sorted(tables):
            parts = []
            for key, doc in sorted(tables[table]):
                part = self._parts.get((key, doc))
                if part is None:
                    part = repr((key, to_hashable(json.loads(doc))))
                    self._parts[(key, doc)] = part
                parts.append(part)
            sections.append(f"({table!r}, {_tuple_text(parts)})")
        return hashlib.sha256(_tuple_text(sections).encode("utf-8")).hexdigest()
