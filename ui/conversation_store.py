"""Live conversations on disk (`conversations.sqlite3` in the state dir), so a restart — even `kill -9` —
loses nothing: transcript, status, signed-in customer, tool trace, pending write and the hand-over queue.

One row per conversation, replaced in one transaction per change (WAL, synchronous=FULL): a crash
leaves either the previous or the new state of a conversation, never half of one. The dialogue log
(`dialogues.jsonl`) stays the training record; this table is what the server loads at start.
"""

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import owner_only_file
from retrieval.errors import ShopassistError

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    updated REAL NOT NULL
);
"""


class ConversationStoreError(ShopassistError, RuntimeError):
    """The saved conversations cannot be read (a damaged or foreign file)."""


@dataclass
class SavedConversation:
    """Everything needed to rebuild a conversation and its policy session after a restart."""

    id: str
    token: str  # the shopper's secret handle (kept in their browser); the id is what staff see
    status: str
    messages: list[dict[str, Any]]
    user_id: str | None
    pending: dict[str, Any] | None  # {"name", "arguments", "summary"} of the write awaiting a yes
    trace: list[dict[str, Any]]
    done: bool
    turn_start: int
    feedback: dict[str, str] = field(default_factory=dict)
    human_edits: list[dict[str, Any]] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)
    revision: int = 0
    created: float = 0.0
    updated: float = 0.0
    queued: float | None = None  # when it joined the queue for a human


class ConversationStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        owner_only_file(self.path)  # transcripts hold personal data, like the logs and the store
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConversationStoreError(f"{self.path} is not a conversation database: {exc}") from None

    def save(self, saved: SavedConversation) -> None:
        state = json.dumps(saved.__dict__, ensure_ascii=False)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT INTO conversations (id, token, state, updated) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                    (saved.id, saved.token, state, saved.updated),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def load(self) -> list[SavedConversation]:
        with self._lock:
            rows = self._conn.execute("SELECT id, state FROM conversations ORDER BY updated").fetchall()
        out = []
        for conversation_id, state in rows:
            try:
                out.append(SavedConversation(**json.loads(state)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ConversationStoreError(f"{self.path}: conversation {conversation_id} is damaged: {exc}") from None
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
