"""Shared fixtures: the shipped tau-retail pack, a fresh store per test, one indexed catalog per session."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.offline import enforce_offline

enforce_offline()

from assistant.store import Store, get_pack  # noqa: E402

TESTS = Path(__file__).parent
DATA = TESTS / "data"
# the shared tau-retail tasks (not part of the product): ../shared beside the checkout, as in CI
TAU_TASKS = Path(os.environ.get("SHOPASSIST_SHARED_DIR", TESTS.parent.parent / "shared")) / "data" / "tau-retail"
# docs/tau-retail-spec.md §3.2: hash of the freshly loaded shipped state
MODEL_CACHE = TESTS.parent / ".shopassist" / "models"
INITIAL_HASH = "5a4b2cb59f4d12dea7e4adff24a7f8fada510ead49372ea4a729a82bbb5f49b5"


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory, monkeypatch):
    """Nothing a test does touches the developer's ./.shopassist or a configured Chroma server."""
    monkeypatch.setenv("SHOPASSIST_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("SHOPASSIST_CHROMA_URL", raising=False)
    for name in ("SHOPASSIST_LLM_URL", "SHOPASSIST_MODEL", "SHOPASSIST_ADAPTER", "SHOPASSIST_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    # the converted base model is shared with the developer's cache: converting it takes ~25 s
    monkeypatch.setenv("SHOPASSIST_MODEL_CACHE", os.environ.get("SHOPASSIST_MODEL_CACHE", str(MODEL_CACHE)))


@pytest.fixture(scope="session")
def pack():
    return get_pack("tau-retail")


@pytest.fixture(scope="session")
def tau_items(pack):
    return pack.catalog_items()  # what `shopassist index` indexes: with the pack's type descriptions


@pytest.fixture
def store(tmp_path, pack):
    with Store(tmp_path / "store.sqlite3", pack) as s:
        yield s


@pytest.fixture(scope="session")
def embedder():
    from retrieval.embeddings import PackagedMiniLM

    return PackagedMiniLM()


@pytest.fixture(scope="session")
def tau_state(tmp_path_factory) -> Path:
    """A state dir whose Chroma holds the indexed tau-retail catalog (for CLI subprocesses)."""
    return tmp_path_factory.mktemp("tau-state")


@pytest.fixture(scope="session")
def tau_collection(tau_state, tau_items, embedder):
    from retrieval.chroma_index import chroma_client, index_catalog, open_collection

    collection = open_collection(chroma_client(tau_state / "chroma"), "tau-retail", embedder)
    index_catalog(collection, tau_items, progress=False, embedder=embedder)
    return collection


@pytest.fixture(scope="session")
def search(tau_collection, embedder):
    from retrieval.search import ProductSearch

    return ProductSearch(tau_collection, embedder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter from the project root (so a reopen really is a new process)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=TESTS.parent,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def smollm2_checkpoint():
    """The packaged SmolLM2 converted to a local checkpoint (once per machine, ~25 s)."""
    from assistant.llm.checkpoints import resolve_checkpoint

    return resolve_checkpoint("smollm2", Path(os.environ.get("SHOPASSIST_MODEL_CACHE", MODEL_CACHE)))


@pytest.fixture(scope="session")
def garbage_checkpoint(smollm2_checkpoint, tmp_path_factory):
    """A 2-layer random Llama with SmolLM2's tokenizer and sharpened logits: it babbles arbitrary tokens."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(200.0)  # peaked, arbitrary next-token choices
    out = tmp_path_factory.mktemp("garbage")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_checkpoint).save_pretrained(out)
    return out
