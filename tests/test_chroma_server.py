"""The same index and search code against a real Chroma server started with `chroma run`."""

import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, wait_for

from retrieval.chroma_index import chroma_client, index_catalog, open_collection
from retrieval.search import ProductSearch

pytestmark = pytest.mark.slow


@pytest.fixture
def chroma_server(tmp_path):
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    log = (tmp_path / "chroma.log").open("w")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "chroma.log").read_text()
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status == 200
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, what="chroma run")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_index_and_search_through_a_chroma_server(chroma_server, monkeypatch, tau_items, embedder, tmp_path):
    monkeypatch.setenv("SHOPASSIST_CHROMA_URL", chroma_server)
    client = chroma_client(tmp_path / "unused")
    assert type(client).__name__ != "PersistentClient" and not (tmp_path / "unused").exists()
    collection = open_collection(client, "tau-retail", embedder)
    report = index_catalog(collection, tau_items, progress=False)
    assert report.upserted == 591 and collection.count() == 591
    assert index_catalog(collection, tau_items, progress=False).skipped

    client = chroma_client(tmp_path / "unused")
    search = ProductSearch(open_collection(client, "tau-retail", embedder, create=False), embedder)
    hits = search.search("waterproof hiking boots", max_price=250, options={"waterproof": "yes"}, k=5)
    assert hits and all(h.category == "Hiking Boots" and h.price <= 250 for h in hits)
