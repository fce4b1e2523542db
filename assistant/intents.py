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


class IntentModelError(ShopassistError, ValueError):
    """The intent model's files are missing or malformed."""


@dataclass(frozen=True)
class Intent:
    label: str
    probability: float
    sure: bool  # above the threshold the agent acts on


class IntentReader:
    """Softmax regression over sentence embeddings; `embedder` is a `PackagedMiniLM` (shared with search)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, labels: tuple[str, ...], embedder=None):
        if coef.shape != (len(labels), coef.shape[1]) or intercept.shape != (len(labels),):
            raise IntentModelError(f"intent weights of shape {coef.shape} / {intercept.shape} for {len(labels)} labels")
        self.coef, self.intercept, self.labels = coef.astype(np.float32), intercept.astype(np.float32), labels
        self._embedder = embedder

    @property
    def embedder(self):
        if self._embedder is None:
            from retrieval.embeddings import PackagedMiniLM

            self._embedder = PackagedMiniLM()
        return self._embedder

    def probabilities(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)
        logits = vectors @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def read(self, text: str) -> Intent:
        p = self.probabilities([text])[0]
        best = int(np.argmax(p))
        label = self.labels[best]
        return Intent(label, float(p[best]), float(p[best]) >= SURE.get(label, 2.0))

    def save(self, folder: Path, metrics: dict | None = None) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / WEIGHTS, coef=self.coef, intercept=self.intercept, labels=np.array(self.labels))
        if metrics is not None:
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path = SHIPPED, embedder=None) -> "IntentReader":
        path = Path(folder) / WEIGHTS
        try:
            data = np.load(path, allow_pickle=False)
            return cls(data["coef"], data["intercept"], tuple(str(x) for x in data["labels"]), embedder)
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
