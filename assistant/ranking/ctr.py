"""Serving the CTR model: `CTRRanker.predict(user_id, item_ids, context=None)` and the store wiring.

A trained model folder (`shopassist train ctr`, e.g. `models/ctr-complete-journey/`) is loaded with
its encoders and item/user tables. The user's purchase history comes from a `History` source — for a
store, its delivered orders — and goes through the same `UserState` the training features came from.
Unknown users and items are scored from content and popularity (their id embeddings are the trained
"unknown" ones) and every result says which path it took.
"""

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from assistant.config import MODELS_DIR
from assistant.ranking.checks import RankingError, check_request
from assistant.ranking.features import UNKNOWN, FeatureEncoder, ItemTable, UserState, UserTable, assemble
from assistant.ranking.folder import load_ranker_files
from assistant.ranking.history import History, store_history


@dataclass(frozen=True)
class ScoredItem:
    item_id: str
    score: float  # predicted probability that the user buys the item
    path: str  # "personal", "cold-user", "cold-item" or "cold-user+item": content + popularity


@dataclass(frozen=True)
class Prediction:
    user_id: str
    method: str
    items: list[ScoredItem]  # in the order asked

    def ranked(self) -> list[ScoredItem]:
        return sorted(self.items, key=lambda s: s.score, reverse=True)


class CTRRanker:
    def __init__(
        self,
        folder: Path,
        model,
        encoder: FeatureEncoder,
        items: ItemTable,
        users: UserTable,
        serve_time: float,
        history: History | None = None,
    ):
        self.folder = Path(folder)
        self.model = model
        self.encoder = encoder
        self.items = items
        self.users = users
        self.serve_time = serve_time
        self.history = history
        self.method = f"ctr-dcnv2 ({self.folder.name})"
        self._states: OrderedDict[str, tuple[UserState, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, history: History | None = None) -> "CTRRanker":
        f = load_ranker_files(folder)
        return cls(folder, f.model, f.encoder, f.items, f.users, f.serve_time, history)

    def _user_state(self, user_id: str) -> tuple[UserState, list[str]]:
        # purchases without a time (orders placed through the assistant) count as the latest week
        latest = self.serve_time - 1
        raw = self.history(user_id) if self.history else []
        events = sorted(((i, latest if t is None else t) for i, t in raw), key=lambda e: e[1])
        key = f"{user_id}\x00{len(events)}"  # a new purchase changes the count and the state
        with self._lock:
            if key in self._states:
                self._states.move_to_end(key)
                return self._states[key]
        state = UserState()
        for item, t in events:
            if t < self.serve_time:
                state.add(item, t, self.items.category_of(item))
        value = (state, state.history(self.encoder.spec.history_length))
        with self._lock:
            self._states[key] = value
            while len(self._states) > 4096:
                self._states.popitem(last=False)
        return value

    def predict(self, user_id: str, item_ids: list[str], context: dict[str, Any] | None = None) -> Prediction:
        """Scores in the order given; unknown item ids are refused by name."""
        import torch

        ids = check_request(user_id, item_ids)
        unknown = [i for i in ids if i not in self.items.row]
        if unknown:
            raise RankingError(f"unknown item id(s): {', '.join(unknown[:5])}; item ids come from search_products")
        spec = self.encoder.spec
        state, history = self._user_state(user_id)
        now = self.serve_time
        behaviour = np.array([state.dense(i, self.items.category_of(i), now, spec.since_cap) for i in ids])
        stats = self.items.stats[[self.items.row[i] for i in ids]]
        ctx = None
        if context:
            bad = sorted(set(context) - set(spec.context_fields))
            if bad:
                raise RankingError(
                    f"unknown context field(s) {', '.join(bad)}; known: {', '.join(spec.context_fields)}"
                )
            ctx = pd.DataFrame({f: [str(context.get(f, ""))] * len(ids) for f in spec.context_fields})
        batch = assemble(
            self.encoder,
            self.items,
            self.users,
            np.array([user_id] * len(ids)),
            np.array(ids),
            ctx,
            behaviour,
            stats,
            [history] * len(ids),
        )
        with torch.inference_mode():
            logits = self.model(*batch.tensors())
        probs = torch.sigmoid(logits).numpy()
        cold_user = batch.sparse[0, 0] == UNKNOWN
        out = []
        for i, item_code, p in zip(ids, batch.sparse[:, 1], probs, strict=True):
            cold = [n for n, c in (("user", cold_user), ("item", item_code == UNKNOWN)) if c]
            # 6 significant digits: rare items' probabilities are tiny but must not round to 0
            out.append(ScoredItem(i, float(f"{p:.6g}"), "cold-" + "+".join(cold) if cold else "personal"))
        return Prediction(user_id, self.method, out)

    def rank(self, user_id: str, item_ids: list[str]) -> list[dict[str, Any]]:
        """The `rank_products` tool's result: best first, each with its score, method and path."""
        pred = self.predict(user_id, item_ids)
        return [{**asdict(s), "method": pred.method} for s in pred.ranked()]


def model_dir_for_store(store_name: str) -> Path:
    return MODELS_DIR / f"ctr-{store_name}"


def ranker_for_store(store_name: str, store) -> CTRRanker | None:
    """The store's trained ranker if one is shipped (`models/ctr-<store>/`), else None (popularity fallback)."""
    folder = model_dir_for_store(store_name)
    if not (folder / "model.pt").is_file():
        return None
    return CTRRanker.load(folder, store_history(store))
