"""Where shopassist keeps shipped data and its local state."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
STORES_DIR = DATA_DIR / "stores"
DEFAULT_STORE = "tau-retail"


def state_dir() -> Path:
    """Local, writable state (SQLite stores, Chroma index): `$SHOPASSIST_STATE_DIR` or `./.shopassist`."""
    return Path(os.environ.get("SHOPASSIST_STATE_DIR", PROJECT_ROOT / ".shopassist")).resolve()


def imported_packs_dir() -> Path:
    """Store packs built from public data (`shopassist store import`): local, never committed."""
    return state_dir() / "packs"


def store_db_path(store: str) -> Path:
    return state_dir() / "stores" / f"{store}.sqlite3"


def chroma_dir() -> Path:
    return state_dir() / "chroma"


def model_cache_dir() -> Path:
    """Converted base-model checkpoints: `$SHOPASSIST_MODEL_CACHE` or `<state dir>/models` (hundreds of MB)."""
    return Path(os.environ.get("SHOPASSIST_MODEL_CACHE", state_dir() / "models")).resolve()
