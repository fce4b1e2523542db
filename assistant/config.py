"""Where shopassist keeps shipped data and its local state.

Shipped files (`data/`: store packs, `models/`: the agent adapter and CTR ranker) sit beside the packages
in a source checkout; an installed wheel puts them under `<prefix>/share/shopassist/` (pyproject.toml's
data-files), and these paths find them in either place.
"""

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_CHECKOUT = (PROJECT_ROOT / "data" / "stores").is_dir()
SHIPPED_ROOT = PROJECT_ROOT if _CHECKOUT else Path(sys.prefix) / "share" / "shopassist"
DATA_DIR = SHIPPED_ROOT / "data"
STORES_DIR = DATA_DIR / "stores"
MODELS_DIR = SHIPPED_ROOT / "models"
DEFAULT_STORE = "tau-retail"


def state_dir() -> Path:
    """Local, writable state (SQLite stores, Chroma index): `$SHOPASSIST_STATE_DIR`, else `.shopassist` in the
    checkout (or, installed, in the current folder)."""
    default = PROJECT_ROOT / ".shopassist" if _CHECKOUT else Path.cwd() / ".shopassist"
    return Path(os.environ.get("SHOPASSIST_STATE_DIR", default)).resolve()


def owner_only_file(path: Path) -> None:
    """Create `path` if missing and make it readable by its owner only (customers' data: databases, logs;
    SQLite gives its -wal/-shm files the same mode)."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)


def imported_packs_dir() -> Path:
    """Store packs built from public data (`shopassist store import`): local, never committed."""
    return state_dir() / "packs"


def store_db_path(store: str) -> Path:
    return state_dir() / "stores" / f"{store}.sqlite3"


def log_dir() -> Path:
    """The app's append-only dialogue and interaction logs."""
    return state_dir() / "logs"


def chroma_dir() -> Path:
    return state_dir() / "chroma"


def model_cache_dir() -> Path:
    """Converted base-model checkpoints: `$SHOPASSIST_MODEL_CACHE` or `<state dir>/models` (hundreds of MB)."""
    return Path(os.environ.get("SHOPASSIST_MODEL_CACHE", state_dir() / "models")).resolve()
