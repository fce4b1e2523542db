import json

import pytest
from conftest import run_python

from retrieval.chroma_index import FINGERPRINT_KEY, chroma_client, collection_name, index_catalog, open_collection


@pytest.fixture
def small_collection(tmp_path, embedder):
    return open_collection(chroma_client(tmp_path / "chroma"), "small", embedder)


class InterruptedUpserts:
    """The real collection, except that the upsert after `allowed` batches dies like a killed run."""

    def __init__(self, collection, allowed: int):
        self._collection, self._allowed = collection, allowed

    def upsert(self, **kwargs):
        if self._allowed == 0:
            raise KeyboardInterrupt
        self._allowed -= 1
        self._collection.upsert(**kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


def test_reindexing_is_idempotent(small_collection, tau_items):
    items = tau_items[:40]
    first = index_catalog(small_collection, items, batch_size=16, progress=False)
    assert (first.upserted, first.skipped, small_collection.count()) == (40, False, 40)
    second = index_catalog(small_collection, items, batch_size=16, progress=False)
    assert second.skipped and small_collection.count() == 40
    forced = index_catalog(small_collection, items, batch_size=16, force=True, progress=False)
    assert forced.upserted == 40 and small_collection.count() == 40


def test_interrupted_run_is_finished_by_a_rerun_without_duplicates(small_collection, tau_items):
    items = tau_items[:40]
    with pytest.raises(KeyboardInterrupt):
        index_catalog(InterruptedUpserts(small_collection, allowed=1), items, batch_size=16, progress=False)
    assert small_collection.count() == 16
    assert not (small_collection.metadata or {}).get(FINGERPRINT_KEY)  # not marked complete
    report = index_catalog(small_collection, items, batch_size=16, progress=False)
    assert not report.skipped
    assert small_collection.count() == 40
    assert sorted(small_collection.get(include=[])["ids"]) == sorted(i.item_id for i in items)


def test_items_dropped_from_the_catalog_leave_the_index(small_collection, tau_items):
    index_catalog(small_collection, tau_items[:30], progress=False)
    report = index_catalog(small_collection, tau_items[:20], progress=False)
    assert report.removed == 10 and small_collection.count() == 20


def test_collection_names_are_valid_for_chroma():
    assert collection_name("tau-retail") == "catalog-tau-retail"
    assert collection_name("My Shop!") == "catalog-my-shop"
    assert len(collection_name("x" * 200)) <= 63


REOPEN = """
import json, sys
import chromadb
from chromadb.config import Settings
import retrieval.embeddings  # registers 'packaged-minilm'; no embedding function is passed below
client = chromadb.PersistentClient(path=sys.argv[1] if len(sys.argv) > 1 else {path!r},
                                   settings=Settings(anonymized_telemetry=False))
col = client.get_collection("catalog-small")
res = col.query(query_texts=["waterproof hiking boots"], n_results=3)
print(json.dumps({{"ef": col.configuration_json["embedding_function"]["name"], "ids": res["ids"][0]}}))
"""


def test_a_new_process_reopens_the_collection_with_the_registered_embedding(tmp_path, small_collection, tau_items):
    index_catalog(small_collection, tau_items, progress=False)
    proc = run_python(REOPEN.format(path=str(tmp_path / "chroma")))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ef"] == "packaged-minilm"
    names = {i.item_id: i.title for i in tau_items}
    assert [names[i] for i in result["ids"]] == ["Hiking Boots"] * 3


def test_get_all_reads_in_pages(small_collection, tau_items):
    from retrieval.chroma_index import get_all

    index_catalog(small_collection, tau_items[:40], progress=False)
    got = get_all(small_collection, include=["metadatas"], page=7)
    assert sorted(got["ids"]) == sorted(i.item_id for i in tau_items[:40])
    assert [m["item_id"] for m in got["metadatas"]] == got["ids"]
