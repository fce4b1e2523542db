"""Whole-state hash of a store, as τ-bench computes it (docs/tau-retail-spec.md §3.2).

Objects become tuples of (key, value) pairs sorted by key, arrays become tuples, and the Python `str()`
of the result is hashed. That keeps int vs float (`17` vs `17.0`) and bool vs int apart, so a state that
differs only in a number's type hashes differently — exactly what task replay needs.
"""

import hashlib
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
