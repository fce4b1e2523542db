"""The embedded SQLite store that the customer-service tools read and write.

Each product, user and order is one row holding its JSON document exactly as the spec describes it
(key order, int vs float, added order fields), beside the few columns lookups need. Keeping documents
whole is what makes exported state hash-identical to τ-bench's (tests/test_store.py).

Every write goes through `Store.transaction()`: one SQLite transaction, committed whole or not at all,
so a process killed mid-write leaves the previous state (WAL journal, synchronous=FULL).
"""

import json
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.config import owner_only_file
from assistant.store.packs import StorePack
from assistant.store.state_hash import StateHasher

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    product_id TEXT PRIMARY KEY, pos INTEGER NOT NULL, name TEXT NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, pos INTEGER NOT NULL,
    email_lower TEXT NOT NULL, first_lower TEXT NOT NULL, last_lower TEXT NOT NULL, zip TEXT NOT NULL,
    doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY, pos INTEGER NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(user_id), status TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS users_email ON users(email_lower);
CREATE INDEX IF NOT EXISTS users_name_zip ON users(first_lower, last_lower, zip);
CREATE INDEX IF NOT EXISTS orders_user ON orders(user_id);
"""


# One cache for every Store in the process: the evaluator opens a fresh store per trial.
SHARED_HASHER = StateHasher()


def _user_row(user_id: str, pos: int, user: dict[str, Any]) -> tuple:
    name, address = user.get("name", {}), user.get("address", {})
    return (
        user_id,
        pos,
        str(user.get("email", "")).lower(),
        str(name.get("first_name", "")).lower(),
        str(name.get("last_name", "")).lower(),
        str(address.get("zip", "")),
        json.dumps(user),
    )


class StoreWriter:
    """Writes inside one open transaction; obtained only from `Store.transaction()`."""

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def put_order(self, order: dict[str, Any]) -> None:
        self._conn.execute(
            "INSERT INTO orders (order_id, pos, user_id, status, doc) "
            "VALUES (?, (SELECT COALESCE(MAX(pos), -1) + 1 FROM orders), ?, ?, ?) "
            "ON CONFLICT(order_id) DO UPDATE SET user_id=excluded.user_id, status=excluded.status, "
            "doc=excluded.doc",
            (order["order_id"], order["user_id"], order["status"], json.dumps(order)),
        )

    def put_user(self, user_id: str, user: dict[str, Any]) -> None:
        row = _user_row(user_id, 0, user)
        self._conn.execute(
            "INSERT INTO users (user_id, pos, email_lower, first_lower, last_lower, zip, doc) "
            "VALUES (?, (SELECT COALESCE(MAX(pos), -1) + 1 FROM users), ?, ?, ?, ?, ?) "
            "ON CONFLICT(user_id) DO UPDATE SET email_lower=excluded.email_lower, "
            "first_lower=excluded.first_lower, last_lower=excluded.last_lower, zip=excluded.zip, "
            "doc=excluded.doc",
            (row[0], *row[2:]),
        )

    def replace_all(self, docs: dict[str, dict[str, Any]]) -> None:
        """Swap the whole content for `docs` (products, users, orders), keeping file order."""
        for table in ("orders", "users", "products"):
            self._conn.execute(f"DELETE FROM {table}")
        self._conn.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?)",
            [(pid, i, p["name"], json.dumps(p)) for i, (pid, p) in enumerate(docs["products"].items())],
        )
        self._conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
            [_user_row(uid, i, u) for i, (uid, u) in enumerate(docs["users"].items())],
        )
        self._conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            [(oid, i, o["user_id"], o["status"], json.dumps(o)) for i, (oid, o) in enumerate(docs["orders"].items())],
        )


class Store:
    """One store's state in a SQLite file. Thread-safe: calls are serialised by a lock."""

    def __init__(self, path: Path, pack: StorePack):
        self.path = Path(path)
        self.pack = pack
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._hasher = SHARED_HASHER
        owner_only_file(self.path)  # customers' names, addresses and payment methods
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        if self._meta("pack") is None:
            self.reset()

    @classmethod
    def open(cls, name: str | None = None, path: Path | None = None) -> "Store":
        """Open a shipped store by name, creating its database from the pack on first use."""
        from assistant.config import DEFAULT_STORE, store_db_path
        from assistant.store.packs import get_pack

        name = name or DEFAULT_STORE
        return cls(path or store_db_path(name), get_pack(name))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[StoreWriter]:
        """All writes inside the block commit together; an exception rolls every one of them back.

        Inside another transaction (or a `dry_run`) it becomes a savepoint of the outer one.
        """
        with self._lock:
            nested = self._conn.in_transaction
            self._conn.execute("SAVEPOINT inner" if nested else "BEGIN IMMEDIATE")
            try:
                yield StoreWriter(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK TO inner" if nested else "ROLLBACK")
                if nested:
                    self._conn.execute("RELEASE inner")
                raise
            self._conn.execute("RELEASE inner" if nested else "COMMIT")

    @contextmanager
    def dry_run(self) -> Iterator[None]:
        """Run writes for real inside the block, then roll all of them back: previews a write's effect."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                self._conn.execute("ROLLBACK")

    def reset(self) -> None:
        """Restore the pack's shipped state, atomically."""
        docs = self.pack.read_documents()
        with self.transaction() as tx:
            tx.replace_all(docs)
            self._conn.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("pack", self.pack.name), ("reset_at", datetime.now(UTC).isoformat(timespec="seconds"))],
            )

    # -- reads ----------------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    def _query_one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def _query_all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    _KEYS = {"products": "product_id", "users": "user_id", "orders": "order_id"}

    def _doc(self, table: str, key: str) -> dict[str, Any] | None:
        row = self._query_one(f"SELECT doc FROM {table} WHERE {self._KEYS[table]} = ?", (key,))
        return json.loads(row[0]) if row else None

    def _docs(self, table: str) -> dict[str, dict[str, Any]]:
        rows = self._query_all(f"SELECT {self._KEYS[table]}, doc FROM {table} ORDER BY pos")
        return {key: json.loads(doc) for key, doc in rows}

    def product(self, product_id: str) -> dict[str, Any] | None:
        return self._doc("products", product_id)

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self._doc("users", user_id)

    def order(self, order_id: str) -> dict[str, Any] | None:
        return self._doc("orders", order_id)

    def products(self) -> dict[str, dict[str, Any]]:
        return self._docs("products")

    def users(self) -> dict[str, dict[str, Any]]:
        return self._docs("users")

    def orders(self) -> dict[str, dict[str, Any]]:
        return self._docs("orders")

    def find_user_id_by_email(self, email: str) -> str | None:
        """First user, in file order, whose email equals `email` ignoring case."""
        row = self._query_one("SELECT user_id FROM users WHERE email_lower = ? ORDER BY pos LIMIT 1", (email.lower(),))
        return row[0] if row else None

    def find_user_id_by_name_zip(self, first_name: str, last_name: str, zip_code: str) -> str | None:
        """First user whose names match ignoring case and whose default-address zip matches exactly."""
        row = self._query_one(
            "SELECT user_id FROM users WHERE first_lower = ? AND last_lower = ? AND zip = ? ORDER BY pos LIMIT 1",
            (first_name.lower(), last_name.lower(), zip_code),
        )
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        return {table: self._query_one(f"SELECT COUNT(*) FROM {table}")[0] for table in self._KEYS}

    # -- export ---------------------------------------------------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state, even if another process writes meanwhile."""
        with self._lock:
            own = not self._conn.in_transaction
            if own:
                self._conn.execute("BEGIN")
            try:
                yield
            finally:
                if own:
                    self._conn.execute("COMMIT")

    def export_state(self) -> dict[str, dict[str, Any]]:
        """The state as the three τ-bench documents, read in one consistent snapshot."""
        with self._snapshot():
            return {"orders": self.orders(), "products": self.products(), "users": self.users()}

    def state_hash(self) -> str:
        """τ-bench's hash of the whole state; equals `state_hash(self.export_state())`, cached per record."""
        with self._snapshot():
            rows = {table: self._query_all(f"SELECT {key}, doc FROM {table}") for table, key in self._KEYS.items()}
        return self._hasher.hash_rows(rows)

    def export_to_dir(self, out_dir: Path) -> list[Path]:
        """The store's JSON files in `out_dir`, all or none: never over existing files, never half written."""
        out_dir = Path(out_dir)
        docs = self.export_state()
        paths = [out_dir / f"{name}.json" for name in docs]
        if existing := [p.name for p in paths if p.exists()]:
            raise FileExistsError(f"{out_dir} already holds {', '.join(existing)}; export into a new folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
        try:
            for name, doc in docs.items():
                (tmp / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            for path in paths:
                (tmp / path.name).rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return paths


class FreshStores:
    """Fresh copies of a pack's shipped state for trials: the pack is loaded into SQLite once, and each
    `open()` copies that file over the previous trial's (far faster than reloading the JSON)."""

    def __init__(self, pack: StorePack, workdir: Path):
        self.pack, self.workdir = pack, Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pristine = self.workdir / "pristine.sqlite3"
        if not self.pristine.exists():
            Store(self.pristine, pack).close()

    def open(self) -> "Store":
        path = self.workdir / "trial.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        shutil.copy(self.pristine, path)
        return Store(path, self.pack)
