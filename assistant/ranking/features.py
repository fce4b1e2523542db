"""Features for the CTR model, computed only from what was known before each impression.

Three kinds, all encoded to integers / floats by a `FeatureEncoder` fitted on the training split and
saved with the model:
- categorical fields of the user (id, demographics), the item (id, department, category, ... , price
  bucket) and the context (store, display, mailer); index 0 means unknown or missing;
- the user's behaviour before the impression: the last `history_length` distinct items bought (for
  DIN-style attention) and dense counts (this item bought before, weeks since, this category, baskets);
- the item before the impression: its purchases (all time and in the last `recent_window` time units)
  and how often it was shown and taken in earlier impressions (a response rate the model can form).

`UserState` is the single implementation of the behaviour features: training replays each user's
purchases in time order and asks it at every impression time; serving fills it with the user's
whole history. One code path, so what the model saw in training is what it sees when serving.
"""

import json
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

UNKNOWN = 0
DENSE = (
    "user_item_count",
    "since_user_item",
    "user_category_count",
    "user_purchase_times",
    "user_distinct_items",
    "item_popularity",
    "item_popularity_recent",
    "item_impressions",
    "item_positives",
)
PRICE_BUCKETS = 10


@dataclass
class FeatureSpec:
    user_fields: list[str] = field(default_factory=list)  # categorical columns of the users table
    item_fields: list[str] = field(default_factory=list)  # categorical columns of the items table
    context_fields: list[str] = field(default_factory=list)  # categorical columns of the log
    category_field: str | None = None  # item column counted per user (user_category_count)
    history_length: int = 30
    history_fields: list[str] = field(default_factory=list)  # item fields embedded with each history item
    recent_window: float = 4.0  # time units (weeks in Complete Journey) for item_popularity_recent
    since_cap: float = 52.0  # "never bought" reads as this many time units ago
    min_count: int = 2  # ids seen fewer times in training map to unknown (so unknown gets trained)
    dense_buckets: int = 0  # also embed each dense feature's quantile bucket (0 = off)


class UserState:
    """One user's purchases up to a moment: counts, recency and the ordered recent items."""

    def __init__(self) -> None:
        self.item_count: Counter[str] = Counter()
        self.item_last: dict[str, float] = {}
        self.category_count: Counter[str] = Counter()
        self.times: set[float] = set()
        self.recent: OrderedDict[str, None] = OrderedDict()

    def add(self, item_id: str, time: float, category: str | None) -> None:
        self.item_count[item_id] += 1
        self.item_last[item_id] = time
        if category is not None:
            self.category_count[category] += 1
        self.times.add(time)
        self.recent[item_id] = None
        self.recent.move_to_end(item_id)

    def history(self, length: int) -> list[str]:
        """The last `length` distinct items bought, most recent first."""
        return list(islice(reversed(self.recent), length))

    def dense(self, item_id: str, category: str | None, now: float, cap: float) -> list[float]:
        last = self.item_last.get(item_id)
        return [
            float(self.item_count[item_id]),
            min(cap, now - last) if last is not None else cap,
            float(self.category_count[category]) if category is not None else 0.0,
            float(len(self.times)),
            float(len(self.item_count)),
        ]


def _vocab(values: pd.Series, min_count: int) -> dict[str, int]:
    counts = values.astype(str).value_counts()
    kept = sorted(counts[counts >= min_count].index)
    return {v: i + 1 for i, v in enumerate(kept)}


@dataclass
class FeatureEncoder:
    """Fitted vocabularies, price buckets and dense scaling; round-trips through JSON (`to_dict`)."""

    spec: FeatureSpec
    vocabs: dict[str, dict[str, int]]
    price_edges: list[float]
    dense_mean: list[float]
    dense_std: list[float]
    dense_edges: list[list[float]] = field(default_factory=list)  # per dense feature, on log1p values

    # -- fitting ------------------------------------------------------------------------------------

    @classmethod
    def fit(cls, spec: FeatureSpec, train: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> "FeatureEncoder":
        m = spec.min_count
        vocabs = {"user_id": _vocab(train["user_id"], m), "item_id": _vocab(train["item_id"], m)}
        seen_items = items[items["item_id"].isin(set(train["item_id"]))]
        for f in spec.item_fields:
            vocabs[f"item.{f}"] = _vocab(seen_items[f], 1)
        seen_users = users[users["user_id"].isin(set(train["user_id"]))]
        for f in spec.user_fields:
            vocabs[f"user.{f}"] = _vocab(seen_users[f], 1)
        for f in spec.context_fields:
            vocabs[f"context.{f}"] = _vocab(train[f], m)
        prices = seen_items["price"].dropna().to_numpy() if "price" in items else np.array([])
        edges = np.unique(np.quantile(prices, np.linspace(0, 1, PRICE_BUCKETS + 1)[1:-1])) if len(prices) else []
        return cls(spec, vocabs, [float(e) for e in edges], [0.0] * len(DENSE), [1.0] * len(DENSE))

    def fit_dense(self, dense: np.ndarray) -> None:
        x = np.log1p(dense)
        self.dense_mean = x.mean(axis=0).round(6).tolist()
        self.dense_std = np.maximum(x.std(axis=0), 1e-6).round(6).tolist()
        n = self.spec.dense_buckets
        if n:
            qs = np.linspace(0, 1, n + 1)[1:-1]
            self.dense_edges = [np.unique(np.quantile(x[:, j], qs)).round(6).tolist() for j in range(x.shape[1])]

    def dense_bucket_codes(self, dense: np.ndarray) -> np.ndarray:
        x = np.log1p(dense)
        cols = [np.searchsorted(edges, x[:, j], side="right") + 1 for j, edges in enumerate(self.dense_edges)]
        return np.stack(cols, axis=1).astype(np.int64) if cols else np.zeros((len(dense), 0), np.int64)

    # -- encoding -----------------------------------------------------------------------------------

    def code(self, vocab: str, value: Any) -> int:
        return self.vocabs[vocab].get(str(value), UNKNOWN)

    def codes(self, vocab: str, values: pd.Series) -> np.ndarray:
        v = self.vocabs[vocab]
        return values.astype(str).map(lambda s: v.get(s, UNKNOWN)).to_numpy(np.int64)

    def price_bucket(self, price: float | None) -> int:
        if price is None or not np.isfinite(price):
            return UNKNOWN
        return int(np.searchsorted(self.price_edges, price, side="right")) + 1

    def scale(self, dense: np.ndarray) -> np.ndarray:
        return ((np.log1p(dense) - np.asarray(self.dense_mean)) / np.asarray(self.dense_std)).astype(np.float32)

    def cardinalities(self) -> dict[str, int]:
        """Embedding-table sizes per field, in the model's field order."""
        sizes = {"user_id": len(self.vocabs["user_id"]) + 1, "item_id": len(self.vocabs["item_id"]) + 1}
        sizes.update({f"user.{f}": len(self.vocabs[f"user.{f}"]) + 1 for f in self.spec.user_fields})
        sizes.update({f"item.{f}": len(self.vocabs[f"item.{f}"]) + 1 for f in self.spec.item_fields})
        sizes["item.price_bucket"] = len(self.price_edges) + 2
        if self.dense_edges:
            sizes.update({f"dense.{name}": len(e) + 2 for name, e in zip(DENSE, self.dense_edges, strict=True)})
        sizes.update({f"context.{f}": len(self.vocabs[f"context.{f}"]) + 1 for f in self.spec.context_fields})
        return sizes

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "spec": asdict(self.spec)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureEncoder":
        return cls(**{**data, "spec": FeatureSpec(**data["spec"])})

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class ItemTable:
    """Item attributes encoded once: row per known item, columns = item fields + price bucket."""

    def __init__(self, ids: list[str], attrs: np.ndarray, categories: list[str] | None, stats=None):
        self.ids = ids
        self.row = {iid: i for i, iid in enumerate(ids)}
        self.attrs = attrs
        self.category = categories
        self.stats = stats  # `item_stats` at the end of the data, for serving; None in training

    @classmethod
    def from_frame(cls, encoder: FeatureEncoder, items: pd.DataFrame) -> "ItemTable":
        spec = encoder.spec
        cols = [encoder.codes(f"item.{f}", items[f]) for f in spec.item_fields]
        prices = items["price"].to_numpy(np.float64) if "price" in items else np.full(len(items), np.nan)
        cols.append(np.array([encoder.price_bucket(p) for p in prices], dtype=np.int64))
        categories = items[spec.category_field].astype(str).tolist() if spec.category_field else None
        return cls(items["item_id"].astype(str).tolist(), np.stack(cols, axis=1), categories)

    def category_of(self, item_id: str) -> str | None:
        if self.category is None or item_id not in self.row:
            return None
        return self.category[self.row[item_id]]


def _counts_before(records: pd.DataFrame, item_ids: pd.Series, times: pd.Series) -> np.ndarray:
    """For each (item, time): how many of `records` (item_id, time) have that item and a time strictly before."""
    ev = records[["item_id", "time"]].sort_values("time", kind="stable")
    ev = ev.assign(cum=ev.groupby("item_id").cumcount() + 1)
    q = pd.DataFrame({"item_id": item_ids.astype(str).to_numpy(), "time": times.to_numpy(np.float64)})
    q["order"] = np.arange(len(q))
    hit = pd.merge_asof(q.sort_values("time", kind="stable"), ev, on="time", by="item_id", allow_exact_matches=False)
    return hit.sort_values("order")["cum"].fillna(0).to_numpy(np.float64)


def item_popularity(events: pd.DataFrame, item_ids: pd.Series, times: pd.Series, window: float) -> np.ndarray:
    """Purchases of each row's item strictly before its time t: all of them, and those in [t - window, t)."""
    total = _counts_before(events, item_ids, times)
    before_window = _counts_before(events, item_ids, times - window)  # strict: t - window stays in the window
    return np.stack([total, total - before_window], axis=1)


def item_stats(
    events: pd.DataFrame, log: pd.DataFrame, item_ids: pd.Series, times: pd.Series, window: float
) -> np.ndarray:
    """Per row, strictly before its time: the item's purchases (all, recent) and impressions (all, positive)."""
    shown = _counts_before(log, item_ids, times)
    taken = _counts_before(log[log["label"] == 1], item_ids, times)
    return np.concatenate([item_popularity(events, item_ids, times, window), np.stack([shown, taken], axis=1)], axis=1)


def end_of_data_stats(events: pd.DataFrame, log: pd.DataFrame, items: pd.DataFrame, window: float):
    """The serving time (one unit after the last purchase) and every item's statistics at that time."""
    end = float(events["time"].max()) + 1 if len(events) else 0.0
    ids = items["item_id"].astype(str)
    return end, item_stats(events, log, ids, pd.Series(np.full(len(ids), end)), window)


def behaviour_features(
    log: pd.DataFrame, events: pd.DataFrame, spec: FeatureSpec, items: ItemTable
) -> tuple[np.ndarray, list[list[str]]]:
    """Per row: the dense user-behaviour values and the recent-items history, from events before its time."""
    dense = np.zeros((len(log), 5), dtype=np.float64)
    histories: list[list[str]] = [[]] * len(log)
    ev_by_user = {u: g for u, g in events.sort_values("time", kind="stable").groupby("user_id", sort=False)}
    order = np.lexsort((log["time"].to_numpy(), log["user_id"].astype(str).to_numpy()))
    users, times, item_ids = log["user_id"].to_numpy(), log["time"].to_numpy(), log["item_id"].to_numpy()
    i = 0
    while i < len(order):
        user = users[order[i]]
        state, ev = UserState(), ev_by_user.get(user)
        ev_items = ev["item_id"].tolist() if ev is not None else []
        ev_times = ev["time"].tolist() if ev is not None else []
        p = 0
        while i < len(order) and users[order[i]] == user:
            now = times[order[i]]
            while p < len(ev_times) and ev_times[p] < now:
                state.add(ev_items[p], ev_times[p], items.category_of(ev_items[p]))
                p += 1
            history = state.history(spec.history_length)
            while i < len(order) and users[order[i]] == user and times[order[i]] == now:
                r = order[i]
                item = item_ids[r]
                dense[r] = state.dense(item, items.category_of(item), now, spec.since_cap)
                histories[r] = history
                i += 1
    return dense, histories


class UserTable:
    """User attributes encoded once; unknown users get all-unknown attributes."""

    def __init__(self, ids: list[str], attrs: np.ndarray):
        self.row = {u: i for i, u in enumerate(ids)}
        self.attrs = attrs
        self.width = attrs.shape[1]

    @classmethod
    def from_frame(cls, encoder: FeatureEncoder, users: pd.DataFrame) -> "UserTable":
        cols = [encoder.codes(f"user.{f}", users[f]) for f in encoder.spec.user_fields]
        attrs = np.stack(cols, axis=1) if cols else np.zeros((len(users), 0), np.int64)
        return cls(users["user_id"].astype(str).tolist(), attrs)

    def lookup(self, user_ids: np.ndarray) -> np.ndarray:
        rows = np.array([self.row.get(str(u), -1) for u in user_ids], dtype=np.int64)
        out = np.zeros((len(rows), self.width), np.int64)
        known = rows >= 0
        out[known] = self.attrs[rows[known]]
        return out


@dataclass
class Batch:
    """Model inputs as arrays: categorical codes [N, F], dense [N, D], history item codes [N, L] (0 = none)
    and the history items' attribute codes [N, L, H] for the spec's `history_fields`."""

    sparse: np.ndarray
    dense: np.ndarray
    history: np.ndarray
    history_attrs: np.ndarray

    def __len__(self) -> int:
        return len(self.sparse)

    def take(self, idx: np.ndarray) -> "Batch":
        return Batch(self.sparse[idx], self.dense[idx], self.history[idx], self.history_attrs[idx])

    def tensors(self) -> tuple:
        import torch

        return tuple(torch.from_numpy(a) for a in (self.sparse, self.dense, self.history, self.history_attrs))


def assemble(
    encoder: FeatureEncoder,
    items: ItemTable,
    users: UserTable,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    context: pd.DataFrame | None,
    behaviour: np.ndarray,
    stats: np.ndarray,
    histories: list[list[str]],
) -> Batch:
    """Encode rows into a `Batch` (same order of fields as `FeatureEncoder.cardinalities`)."""
    n, spec = len(item_ids), encoder.spec
    item_rows = np.array([items.row.get(str(i), -1) for i in item_ids], dtype=np.int64)
    item_attrs = np.zeros((n, items.attrs.shape[1]), np.int64)
    item_attrs[item_rows >= 0] = items.attrs[item_rows[item_rows >= 0]]
    user_vocab, item_vocab = encoder.vocabs["user_id"], encoder.vocabs["item_id"]
    cols = [
        np.array([user_vocab.get(str(u), UNKNOWN) for u in user_ids], dtype=np.int64)[:, None],
        np.array([item_vocab.get(str(i), UNKNOWN) for i in item_ids], dtype=np.int64)[:, None],
        users.lookup(user_ids),
        item_attrs,
        encoder.dense_bucket_codes(np.concatenate([behaviour, stats], axis=1)),
    ]
    for f in spec.context_fields:
        if context is not None and f in context:
            cols.append(encoder.codes(f"context.{f}", context[f].fillna("")).reshape(-1, 1))
        else:
            cols.append(np.zeros((n, 1), np.int64))
    history = np.zeros((n, spec.history_length), np.int64)
    fields = [spec.item_fields.index(f) for f in spec.history_fields]
    history_attrs = np.zeros((n, spec.history_length, len(fields)), np.int32)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for r, h in enumerate(histories):
        key = id(h)  # rows of one user and time share one history list
        if key not in cache:
            rows = [items.row.get(i, -1) for i in h]
            attrs = np.array([items.attrs[x, fields] if x >= 0 else [0] * len(fields) for x in rows], np.int32)
            cache[key] = (np.array([item_vocab.get(i, UNKNOWN) for i in h], dtype=np.int64), attrs)
        codes, attrs = cache[key]
        history[r, : len(codes)] = codes
        if len(h) and fields:
            history_attrs[r, : len(h)] = attrs
    dense = encoder.scale(np.concatenate([behaviour, stats], axis=1))
    return Batch(np.concatenate(cols, axis=1), dense, history, history_attrs)
