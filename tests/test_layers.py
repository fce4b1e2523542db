"""The one-way rule: retrieval ← assistant ← finetune ← ui. A package may import only those to its left.

Every import in every module counts, at the top or inside a function: a lazy import is still a
dependency. `python tests/test_layers.py` prints the edges that break the rule.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("retrieval", "assistant", "finetune", "ui")  # bottom to top


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module.split(".")[0]))
    return out


def back_edges(root: Path) -> list[str]:
    """Each import from a package into one at its own level's right, as `file:line package -> package`."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    bad = []
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imports(path):
                if target in rank and rank[target] > rank[package]:
                    bad.append(f"{path.relative_to(root)}:{line} {package} -> {target}")
    return bad


def test_dependencies_run_one_way():
    assert back_edges(ROOT) == []


def test_a_back_edge_is_caught(tmp_path):
    for package in LAYERS:
        (tmp_path / package).mkdir()
    (tmp_path / "retrieval" / "search.py").write_text("import json\nfrom retrieval import catalog\n")
    (tmp_path / "assistant" / "tool.py").write_text("def f():\n    from ui.app import build_app\n")
    (tmp_path / "finetune" / "sft.py").write_text("from assistant.llm import base\nimport ui\n")
    assert back_edges(tmp_path) == ["assistant/tool.py:2 assistant -> ui", "finetune/sft.py:2 finetune -> ui"]


if __name__ == "__main__":
    edges = back_edges(ROOT)
    print("\n".join(edges) or "no back-edges")
    sys.exit(1 if edges else 0)
