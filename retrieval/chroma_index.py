"""The Chroma collection that holds one document per catalog item, and idempotent ingestion into it.

Embedded `PersistentClient` under the state dir by default; set `SHOPASSIST_CHROMA_URL`
(e.g. http://127.0.0.1:8000, a server from `chroma run`) to use a Chroma server instead.
"""

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from retrieval.catalog import CatalogItem
from retrieval.embeddings import PackagedMiniLM
from retrieval.errors import ShopassistError
from retrieval.offline import enforce_offline

FINGERPRINT_KEY = "catalog_sha256"


class IndexMissingError(ShopassistError, RuntimeError):
    """The catalog has not been indexed yet."""


def chroma_client(persist_dir: Path):
    """A Chroma client: HTTP when `SHOPASSIST_CHROMA_URL` is set, else embedded at `persist_dir`
    (the caller's state folder: this layer knows no project paths)."""
    enforce_offline()
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    url = os.environ.get("SHOPASSIST_CHROMA_URL")
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        if not parsed.hostname:
            raise ValueError(f"SHOPASSIST_CHROMA_URL={url!r} is not a URL like http://127.0.0.1:8000")
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    Path(persist_dir).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(persist_dir), settings=settings)


def collection_name(catalog: str) -> str:
    """Chroma collection for a catalog name: 3–63 characters of [a-z0-9._-]."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", catalog.lower()).strip("-._")
    return f"catalog-{slug}"[:63].rstrip("-._")


def open_collection(client, catalog: str, embedder: PackagedMiniLM | None = None, create: bool = True):
    """The catalog's collection, always with our embedding function (Chroma's default one downloads)."""
    embedder = embedder or PackagedMiniLM()
    name = collection_name(catalog)
    if create:
        return client.get_or_create_collection(
            name, embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}}
        )
    try:
        return client.get_collection(name, embedding_function=embedder)
    except Exception as exc:  # chromadb raises NotFoundError (embedded) or a ValueError (HTTP)
        if "does not exist" in str(exc) or "not found" in str(exc).lower():
            raise IndexMissingError(f"catalog {catalog!r} is not indexed yet: run `shopassist index` first") from None
        raise


def get_all(collection, include: list[str], page: int = 5000) -> dict[str, list]:
    """Every record of a collection, read in pages (one big `get` overflows SQLite's variable limit)."""
    out: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    for offset in range(0, collection.count(), page):
        got = collection.get(include=include, limit=page, offset=offset)
        for key in out:
            out[key].extend(got[key])
    return out


def catalog_fingerprint(items: Sequence[CatalogItem]) -> str:
    digest = hashlib.sha256()
    for item in items:
        digest.update(json.dumps([item.item_id, item.document(), item.metadata()], sort_keys=True).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class IndexReport:
    items: int
    upserted: int
    removed: int
    skipped: bool
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.upserted / self.seconds if self.seconds > 0 else 0.0


def index_catalog(
    collection,
    items: Sequence[CatalogItem],
    batch_size: int = 256,
    force: bool = False,
    progress: bool = True,
    embedder: PackagedMiniLM | None = None,
) -> IndexReport:
    """Upsert every item (ids = item ids, so re-runs never duplicate) and drop items no longer listed.

    Batches are embedded with `embedder` when given, else by the collection's embedding function.
    (Overlapping embedding and upserts in two threads measured no faster on 2 cores: both are
    CPU-bound.) The catalog fingerprint is written last: an interrupted run leaves no fingerprint, so the
    next run redoes the upserts and finishes the job.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    fingerprint = catalog_fingerprint(items)
    metadata = collection.metadata or {}
    if not force and metadata.get(FINGERPRINT_KEY) == fingerprint and collection.count() == len(items):
        return IndexReport(len(items), 0, 0, True, time.perf_counter() - start)
    if metadata.get(FINGERPRINT_KEY):
        collection.modify(metadata={**metadata, FINGERPRINT_KEY: ""})

    bar = tqdm(total=len(items), desc=f"indexing {collection.name}", unit="item", disable=not progress)
    for i in range(0, len(items), batch_size):
        batch = items[i : i + batch_size]
        documents = [it.document() for it in batch]
        collection.upsert(
            ids=[it.item_id for it in batch],
            documents=documents,
            metadatas=[it.metadata() for it in batch],
            embeddings=embedder.encode(documents) if embedder is not None else None,
        )
        bar.update(len(batch))
    bar.close()

    wanted = {it.item_id for it in items}
    stale = [i for i in get_all(collection, include=[])["ids"] if i not in wanted]
    for i in range(0, len(stale), 5000):
        collection.delete(ids=stale[i : i + 5000])
    collection.modify(metadata={FINGERPRINT_KEY: fingerprint, "items": len(items)})
    return IndexReport(len(items), len(items), len(stale), False, time.perf_counter() - start)
