"""A built wheel carries everything read at run time: prompts and examples, store packs, shipped models."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def runtime_files() -> list[str]:
    """Files the product reads at run time, as paths inside the source tree."""
    files = [p for p in (ROOT / "assistant" / "prompts").iterdir() if p.suffix in (".md", ".json")]
    for folder in ("data/stores/tau-retail", "models/agent-smollm2", "models/ctr-complete-journey"):
        files += [p for p in (ROOT / folder).iterdir() if p.is_file()]
    return sorted(str(p.relative_to(ROOT)) for p in files)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.mark.slow
def test_the_wheel_ships_every_runtime_file(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("shopassist-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    inside = {n.split(".data/data/share/shopassist/", 1)[-1] for n in names}
    missing = [f for f in runtime_files() if f not in inside]
    assert missing == [], f"not in the wheel: {missing}"
    assert "ui/cli/__init__.py" in names and "assistant/ranking/folder.py" in names
