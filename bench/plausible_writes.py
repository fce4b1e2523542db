"""How the write bar for an unsure reader (`assistant.intents.WRITE_PLAUSIBLE`) splits the held-out write
examples: among messages that ask for a change (some head ≥ WRITE_ASKED) with no head sure (≥ WRITE_SURE),
how many would lose their own write at each bar, and how many of the other writes would stay offered.

The split is `shopassist train intents`' own (the write head fitted on the first 80 % of its shuffled
examples, scored on the rest).

    python bench/plausible_writes.py   # bench/results/plausible_writes.json
"""

import json
from pathlib import Path

import numpy as np

from assistant.intents import FAMILIES, WRITE_ASKED, WRITE_PLAUSIBLE, WRITE_SURE
from finetune.intents import WRITES, _fit_writes, examples, write_examples
from retrieval.embeddings import PackagedMiniLM

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BARS = (0.02, 0.05, WRITE_PLAUSIBLE, 0.15, 0.2)


def main() -> None:
    bitext, tasks = SHARED / "bitext" / "customer_support_requests.csv", SHARED / "tau-retail" / "tasks_train.json"
    suite = Path(__file__).parent / "conversations.json"
    texts, labels = examples(bitext, tasks, suite)
    w_texts, w_labels, _ = write_examples(bitext, tasks, suite, list(zip(texts, labels, strict=True)))
    x = np.asarray(PackagedMiniLM().encode(w_texts), dtype=np.float32)
    y = np.array([[w in ws for w in WRITES] + [bool(ws & set(m)) for m in FAMILIES.values()] for ws in w_labels])
    cut = int(0.8 * len(w_texts))
    p, held = _fit_writes(x[:cut], y[:cut]).probabilities(x[cut:]), w_labels[cut:]
    family = {m: len(WRITES) + j for j, members in enumerate(FAMILIES.values()) for m in members}

    def may(i: int, write: str, bar: float) -> bool:
        return max(p[i, WRITES.index(write)], p[i, family[write]] if write in family else 0.0) >= bar

    unsure = [i for i, ws in enumerate(held) if ws and p[i].max() >= WRITE_ASKED and not (p[i] >= WRITE_SURE).any()]
    rows = {}
    for bar in BARS:
        others = [(i, w) for i in unsure for w in WRITES if w not in held[i]]
        rows[str(bar)] = {
            "own_write_left_out": sum(not all(bool(may(i, w, bar)) for w in held[i]) for i in unsure),
            "other_writes_offered": sum(bool(may(i, w, bar)) for i, w in others),
            "other_writes": len(others),
        }
    result = {"held_out_messages": len(held), "asked_not_sure_with_a_write": len(unsure), "bars": rows}
    out = Path(__file__).parent / "results" / "plausible_writes.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
