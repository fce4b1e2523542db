import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import DATA, TESTS

from retrieval.offline import OFFLINE_ENV, enforce_offline

PROBE = [sys.executable, str(TESTS / "offline_probe.py"), str(DATA / "catalog_small.jsonl")]


def test_enforce_offline_sets_every_switch(monkeypatch):
    for key in OFFLINE_ENV:
        monkeypatch.setenv(key, "0")
    enforce_offline()
    assert {k: os.environ[k] for k in OFFLINE_ENV} == OFFLINE_ENV
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def _report(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_index_and_search_with_non_loopback_sockets_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}  # the code must set them itself
    proc = subprocess.run(
        [*PROBE, str(tmp_path / "chroma")], cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300
    )
    report = _report(proc)
    assert report["attempts"] == [] and report["indexed"] == 5
    assert report["hits"][0] == "sku-003"  # the waterproof hiking boot


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -rn` (user + network namespaces)")
def test_index_and_search_in_a_network_namespace_without_network(tmp_path):
    """The kernel, not a Python patch, cuts the network: catches C or Rust code that opens sockets."""
    proc = subprocess.run(
        ["unshare", "-rn", *PROBE, str(tmp_path / "chroma")],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = _report(proc)
    assert report["indexed"] == 5 and report["hits"][0] == "sku-003"
