"""What a customer's message asks for, read by a small classifier: a person, a product, an order, other.

A 135M agent model decides well which argument to write but badly whether a message is a product
question or a request for a person at all (stage 4 answered "any bluetooth speakers in stock?" with
"that is not something I can help with" and searched for "to" when asked for a real person). The
system carries that decision, as Rasa CALM and Thinker do: a logistic regression over the packaged
MiniLM sentence embedding (the one product search uses), trained by `shopassist train intents` on
Bitext's customer-support requests and our own shopping and order wordings (finetune/intents.py),
shipped in `models/intent-minilm/`. The agent acts on it only when it is sure (`IntentReader.read`):

- `human` → the hand-over, at once (an explicit request for a person is always honoured);
- `shopping` → the turn starts with a catalog tool (search or the product types); the model still
  chooses which one and writes its arguments;
- `order`, `other` or unsure → the model decides among the legal actions, as before.

A second head reads which order writes a message asks for (several may: "change the address and swap
the mouse"), one logistic regression per write and per family of writes (FAMILIES), trained on τ-retail
training tasks (never the evaluated ones), our write wordings and Bitext's cancel / address requests.
The agent uses it where the model most often fails (τ dev: 9 of 17 failures were a write never
proposed): once a wanted write is legal and the order it is about is known, that step must call one of
the wanted writes; the model still chooses among them and writes every argument, and the customer
still confirms.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.config import MODELS_DIR
from retrieval.errors import ShopassistError

INTENTS = ("human", "shopping", "order", "other")
SHIPPED = MODELS_DIR / "intent-minilm"
WEIGHTS = "intents.npz"
# act only above these probabilities (held-out precision in models/intent-minilm/metrics.json)
SURE = {"human": 0.8, "shopping": 0.8}
WRITE_SURE = 0.8  # the same bar for each write head (held-out precision per write in metrics.json)
# below this for every write head a message asks for no change at all: status questions read 0.00-0.11
# ("is my order #W8770097 shipped?"), vague complaints 0.31-0.36, every τ task instruction with a write >= 0.5
WRITE_ASKED = 0.25
# a write may be meant when its head (or its family's) reads at least this, while none is sure: "ship my
# pending order to 45 Oak Street ..." read address 0.50, cancel 0.44, item change 0.03, and the model,
# free to choose any write, proposed an item change nobody asked for. `python bench/plausible_writes.py`:
# of the 5 held-out messages asked for but unsure, none loses its own write at 0.1 (nor at 0.2), and 18 of
# their 25 other writes are no longer offered (a small sample: the suite and τ dev tasks are the check)
WRITE_PLAUSIBLE = 0.1
# writes that the same words ask for of an order in either status: "I want a full refund" is a cancel of a
# pending order and a return of a delivered one. One more yes/no per family; when it is sure and no member
# is, the family itself is wanted, and the order's status picks the member (assistant.guidance.settle_families)
FAMILIES = {
    "refund": ("cancel_pending_order", "return_delivered_order_items"),
    "change_items": ("modify_pending_order_items", "exchange_delivered_order_items"),
}


class IntentModelError(ShopassistError, ValueError):
    """The intent model's files are missing or malformed."""


@dataclass(frozen=True)
class Intent:
    label: str
    probability: float
    sure: bool  # above the threshold the agent acts on


@dataclass(frozen=True)
class WriteHead:
    """One logistic regression per order write (rows of `coef`), each its own yes/no."""

    coef: np.ndarray
    intercept: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.coef.ndim != 2 or self.coef.shape[0] != len(self.labels) or self.intercept.shape != (len(self.labels),):
            raise IntentModelError(f"write weights of shape {self.coef.shape} for {len(self.labels)} writes")

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(vectors @ self.coef.T.astype(np.float32) + self.intercept.astype(np.float32))))


class IntentReader:
    """Softmax regression over sentence embeddings; `embedder` is a `PackagedMiniLM` (shared with search)."""

    def __init__(
        self,
        coef: np.ndarray,
        intercept: np.ndarray,
        labels: tuple[str, ...],
        embedder=None,
        writes: "WriteHead | None" = None,
    ):
        if coef.shape != (len(labels), coef.shape[1]) or intercept.shape != (len(labels),):
            raise IntentModelError(f"intent weights of shape {coef.shape} / {intercept.shape} for {len(labels)} labels")
        self.coef, self.intercept, self.labels = coef.astype(np.float32), intercept.astype(np.float32), labels
        self.writes = writes
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}  # a conversation's messages are read at every step

    @property
    def embedder(self):
        if self._embedder is None:
            from retrieval.embeddings import PackagedMiniLM

            self._embedder = PackagedMiniLM()
        return self._embedder

    def vectors(self, texts: list[str]) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if new:
            if len(self._vectors) > 512:
                self._vectors.clear()
            self._vectors.update(zip(new, np.asarray(self.embedder.encode(new), dtype=np.float32), strict=True))
        return np.stack([self._vectors[t] for t in texts])

    def probabilities(self, texts: list[str]) -> np.ndarray:
        vectors = self.vectors(list(texts))
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def read(self, text: str) -> Intent:
        p = self.probabilities([text])[0]
        best = int(np.argmax(p))
        label = self.labels[best]
        return Intent(label, float(p[best]), float(p[best]) >= SURE.get(label, 2.0))

    def wanted_writes(self, text: str) -> dict[str, float]:
        """The order writes the message asks for with probability ≥ WRITE_SURE: writes by their tool name,
        a family (FAMILIES) where only the family is sure; none without a write head."""
        if self.writes is None or not text.strip():
            return {}
        p = self._write_probabilities(text)
        wanted = {w: q for w, q in p.items() if q >= WRITE_SURE and w not in FAMILIES}
        for family, members in FAMILIES.items():
            if p.get(family, 0.0) >= WRITE_SURE and not any(m in wanted for m in members):
                wanted[family] = p[family]
        return wanted

    def plausible_writes(self, text: str) -> set[str] | None:
        """The writes (tool names, families expanded to their members) the message may ask for, p ≥
        WRITE_PLAUSIBLE; None without a write head (any may be)."""
        if self.writes is None:
            return None
        if not text.strip():
            return set()
        p = self._write_probabilities(text)
        out = {w for w, q in p.items() if q >= WRITE_PLAUSIBLE and w not in FAMILIES}
        for family, members in FAMILIES.items():
            if p.get(family, 0.0) >= WRITE_PLAUSIBLE:
                out.update(members)
        return out

    def asks_for_write(self, text: str) -> bool:
        """Whether the message may ask for any change to an order or account (True without a write head)."""
        if self.writes is None or not text.strip():
            return self.writes is None
        return max(self._write_probabilities(text).values()) >= WRITE_ASKED

    def _write_probabilities(self, text: str) -> dict[str, float]:
        probabilities = self.writes.probabilities(self.vectors([text]))[0]
        return dict(zip(self.writes.labels, map(float, probabilities), strict=True))

    def save(self, folder: Path, metrics: dict | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        heads = {}
        if self.writes is not None:
            heads = {"write_coef": self.writes.coef, "write_intercept": self.writes.intercept}
            heads["write_labels"] = np.array(self.writes.labels)
        np.savez(folder / WEIGHTS, coef=self.coef, intercept=self.intercept, labels=np.array(self.labels), **heads)
        if metrics is not None:
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path = SHIPPED, embedder=None) -> "IntentReader":
        path = Path(folder) / WEIGHTS
        try:
            data = np.load(path, allow_pickle=False)
            writes = None
            if "write_coef" in data:
                labels = tuple(str(x) for x in data["write_labels"])
                writes = WriteHead(data["write_coef"], data["write_intercept"], labels)
            return cls(data["coef"], data["intercept"], tuple(str(x) for x in data["labels"]), embedder, writes)
        except (OSError, KeyError, ValueError) as exc:
            message = f"{path}: cannot read the intent model ({exc}); run `shopassist train intents`"
            raise IntentModelError(message) from None


_shipped: IntentReader | None = None


def shipped_reader(embedder=None) -> IntentReader | None:
    """The shipped intent model, loaded once per process; None where it is not installed."""
    global _shipped
    if _shipped is None and (SHIPPED / WEIGHTS).is_file():
        _shipped = IntentReader.load(SHIPPED, embedder)
    return _shipped
