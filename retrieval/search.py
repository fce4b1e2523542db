"""Product search: dense retrieval in Chroma, BM25 lexical matching, and their fusion.

`ProductSearch.search` validates every argument first, so bad input from a shopper or a model gets a
`SearchInputError` whose message says what to change; it never reaches Chroma.
"""

import contextlib
import difflib
import math
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from retrieval.catalog import LOW_PRICES_FIRST, CatalogItem, named_product_type, option_field
from retrieval.chroma_index import FINGERPRINT_KEY, IndexMissingError, get_all
from retrieval.embeddings import PackagedMiniLM
from retrieval.errors import ShopassistError
from retrieval.lexical import LexicalIndex

Mode = Literal["fused", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("fused", "dense", "lexical")
MAX_QUERY_CHARS = 1000
MAX_K = 50
RRF_K = 60  # reciprocal-rank-fusion constant (Cormack et al. 2009)
OVERFETCH = 2  # fetch twice the neighbours a filter is expected to leave
MAX_OVERFETCH = 4000  # neighbours fetched at most before restricting the query (~20 ms at 100k items)
MAX_ID_FILTER = 5000  # beyond this, let Chroma evaluate the `where` clause


class SearchInputError(ShopassistError, ValueError):
    """A search argument is invalid; the message tells the caller how to fix it."""


@dataclass(frozen=True)
class SearchHit:
    item_id: str
    product_id: str
    name: str
    category: str
    options: dict[str, str]
    price: float
    available: bool
    score: float
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score"] = round(self.score, 4)
        if not self.description:
            del data["description"]
        return data


@dataclass(frozen=True)
class SearchFilters:
    """Validated filters; `mask()` (numpy, over the catalog snapshot) and `where()` (Chroma) are the same test."""

    min_price: float | None = None
    max_price: float | None = None
    category: str | None = None  # lower-cased
    options: dict[str, str] = field(default_factory=dict)  # metadata field → lower-cased value
    available_only: bool = True

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.min_price is not None:
            clauses.append({"price": {"$gte": self.min_price}})
        if self.max_price is not None:
            clauses.append({"price": {"$lte": self.max_price}})
        if self.category is not None:
            clauses.append({"category": {"$eq": self.category}})
        clauses += [{key: {"$eq": value}} for key, value in self.options.items()]
        if self.available_only:
            clauses.append({"available": {"$eq": True}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def mask(self, snapshot: "CatalogSnapshot") -> np.ndarray:
        keep = np.ones(len(snapshot.ids), dtype=bool)
        if self.min_price is not None:
            keep &= snapshot.price >= self.min_price
        if self.max_price is not None:
            keep &= snapshot.price <= self.max_price
        if self.category is not None:
            keep &= snapshot.category == self.category
        for key, value in self.options.items():
            keep &= snapshot.option_values[key] == value
        if self.available_only:
            keep &= snapshot.available
        return keep


class CatalogSnapshot:
    """What lexical search and validation need from the collection, read once: ids, texts, facets."""

    def __init__(self, ids: list[str], documents: list[str], metadatas: list[dict[str, Any]]):
        self.ids = ids
        self.items = [CatalogItem.from_metadata(m) for m in metadatas]
        self.price = np.array([m["price"] for m in metadatas], dtype=np.float64)
        self.available = np.array([bool(m["available"]) for m in metadatas])
        self.category = np.array([m["category"] for m in metadatas], dtype=object)
        self.category_labels = sorted({m["category_label"] for m in metadatas})
        self.option_labels: dict[str, str] = {}  # metadata field → option name as written
        for item in self.items:
            for key in item.options:
                self.option_labels.setdefault(option_field(key), key)
        self.option_values = {
            key: np.array([m.get(key) for m in metadatas], dtype=object) for key in self.option_labels
        }
        self.lexical = LexicalIndex(documents)
        self.position = {item_id: i for i, item_id in enumerate(ids)}
        # product type → its name and what it is for, where the catalog describes its types
        self.type_documents = {it.title: f"{it.title}. {it.about}" for it in self.items if it.about}
        self.type_vectors: tuple[list[str], np.ndarray] | None = None  # embedded on first use
        self.type_names = {it.title for it in self.items}

    @classmethod
    def from_collection(cls, collection) -> "CatalogSnapshot":
        got = get_all(collection, include=["documents", "metadatas"])
        return cls(got["ids"], got["documents"], got["metadatas"])

    def option_keys_for(self, category: str | None) -> list[str]:
        rows = np.flatnonzero(self.category == category) if category else range(len(self.items))
        return sorted({option_field(k) for i in rows for k in self.items[i].options})

    def values_for(self, key: str, category: str | None) -> list[str]:
        values = self.option_values[key]
        if category:
            values = values[self.category == category]
        return sorted({v for v in values if v is not None})


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if close:
        return f" Did you mean {', '.join(repr(c) for c in close)}?"
    shown = ", ".join(choices[:25]) + (", ..." if len(choices) > 25 else "")
    return f" Choose one of: {shown}."


def clean_query(query: Any) -> str:
    if not isinstance(query, str):
        raise SearchInputError(f"query must be text, got {type(query).__name__}.")
    # control characters (other than whitespace) carry no meaning in a product search
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in query)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        raise SearchInputError("query is empty: describe the product, e.g. 'waterproof hiking boots'.")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchInputError(
            f"query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}. "
            "Describe the product in a sentence or two."
        )
    return text


def _price(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise SearchInputError(f"{name} must be a number, got {value!r}.")
    try:
        number = float(str(value).strip().lstrip("$")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise SearchInputError(f"{name} must be a number such as 50 or 49.99, got {value!r}.") from None
    if not math.isfinite(number) or number < 0:
        raise SearchInputError(f"{name} must be a number of at least 0, got {value!r}.")
    return number


class ProductSearch:
    """Search over one indexed catalog. Reads the collection lazily; `refresh()` after re-indexing."""

    def __init__(self, collection, embedder: PackagedMiniLM | None = None, mode: Mode = "fused", by_type: bool = True):
        """`by_type`: fused search also ranks by product-type descriptions, where the catalog has them."""
        self.collection = collection
        self.embedder = embedder or PackagedMiniLM()
        self.mode = mode
        self.by_type = by_type
        self._snapshot: CatalogSnapshot | None = None

    @property
    def snapshot(self) -> CatalogSnapshot:
        if self._snapshot is None:
            if self.collection.count() == 0 or not (self.collection.metadata or {}).get(FINGERPRINT_KEY):
                raise IndexMissingError(
                    f"the search index {self.collection.name!r} is empty or incomplete: run `shopassist index` first"
                )
            self._snapshot = CatalogSnapshot.from_collection(self.collection)
        return self._snapshot

    def refresh(self) -> None:
        self._snapshot = None

    def warm(self) -> None:
        """One search at start: the embedding model, the vector index and the catalog snapshot load now
        (seconds on 2 cores), not in the first shopper's turn. A missing index is reported by that search."""
        with contextlib.suppress(IndexMissingError):
            self.search("warm-up", k=1)

    def embed_items(self, item_ids: list[str]) -> np.ndarray:
        """The indexed embeddings of these items, in order (for diversity re-ranking)."""
        got = self.collection.get(ids=list(item_ids), include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"], strict=True))
        missing = [i for i in item_ids if i not in by_id]
        if missing:
            raise SearchInputError(f"item(s) not in the search index: {', '.join(missing[:5])}")
        return np.asarray([by_id[i] for i in item_ids], dtype=np.float32)

    def validate(
        self,
        max_price: Any = None,
        min_price: Any = None,
        category: Any = None,
        options: Any = None,
        available_only: Any = True,
    ) -> SearchFilters:
        snap = self.snapshot
        low, high = _price("min_price", min_price), _price("max_price", max_price)
        if low is not None and high is not None and low > high:
            raise SearchInputError(f"min_price ({low:g}) is above max_price ({high:g}); swap or drop one.")
        if not isinstance(available_only, bool):
            raise SearchInputError(f"available_only must be true or false, got {available_only!r}.")

        cat = None
        if category is not None and str(category).strip():
            cat = str(category).strip().lower()
            known = [c.lower() for c in snap.category_labels]
            if cat not in known:
                raise SearchInputError(f"unknown category {category!r}." + _suggest(cat, known))

        wanted: dict[str, str] = {}
        if options:
            if not isinstance(options, dict):
                raise SearchInputError('options must be an object such as {"color": "blue", "size": "M"}.')
            keys = snap.option_keys_for(cat)
            labels = sorted(snap.option_labels[k] for k in keys)
            for raw_key, raw_value in options.items():
                key = option_field(str(raw_key))
                if key not in keys:
                    scope = f" for category {category!r}" if cat else ""
                    raise SearchInputError(
                        f"unknown option {raw_key!r}{scope}." + _suggest(str(raw_key).lower(), labels)
                    )
                value = str(raw_value).strip().lower()
                values = snap.values_for(key, cat)
                if value not in values:
                    raise SearchInputError(
                        f"no item has {snap.option_labels[key]} = {raw_value!r}." + _suggest(value, values)
                    )
                wanted[key] = value
        return SearchFilters(low, high, cat, wanted, available_only)

    def search(
        self,
        query: str,
        max_price: float | None = None,
        min_price: float | None = None,
        category: str | None = None,
        options: dict[str, str] | None = None,
        available_only: bool = True,
        k: int = 10,
        mode: Mode | None = None,
    ) -> list[SearchHit]:
        """Items matching `query` under the filters, best first (at most `k`, 1–50); where the query asks for
        low prices (`LOW_PRICES_FIRST`), the lowest-priced first: of every match of the `category` or of the
        product type the query names, else of the `4 * k` best matches (a need's cheapest relevant items, not
        the catalog's cheapest)."""
        text = clean_query(query)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise SearchInputError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
        mode = mode or self.mode
        if mode not in MODES:
            raise SearchInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
        filters = self.validate(max_price, min_price, category, options, available_only)

        depth = max(50, 5 * k)
        ranked: list[list[str]] = []
        vector = self.embedder.encode([text])[0] if mode in ("dense", "fused") else None
        if vector is not None:
            ranked.append(self._dense(vector, filters, depth, need=k))
        # a query naming no product type describes a need ("a gift for a hiker"): the types whose descriptions
        # it is nearest rank it, in place of BM25 over words such as "gift" (bench/need_bench.py)
        snap = self.snapshot
        need = (
            mode == "fused" and self.by_type and snap.type_documents and not named_product_type(text, snap.type_names)
        )
        if mode == "lexical" or (mode == "fused" and not need):
            ranked.append(self._lexical(text, filters, depth))
        if need:
            ranked.append(self._by_type(vector, filters, depth, ranked[0]))
        scores = _fuse(ranked) if len(ranked) > 1 else {i: 1.0 / (r + 1) for r, i in enumerate(ranked[0])}
        best = sorted(scores, key=scores.get, reverse=True)
        if LOW_PRICES_FIRST.search(text):
            named = None if filters.category or need else named_product_type(text, snap.type_names)
            if filters.category or named:  # every match of the type ("cheapest backpack"), ranked or not
                keep = np.flatnonzero(filters.mask(snap))
                pool = [snap.ids[i] for i in keep if filters.category or snap.items[i].title == named]
            else:
                pool = best[: 4 * k]
            best = sorted(pool, key=lambda i: (snap.price[snap.position[i]], -scores.get(i, 0.0)))
        return [self._hit(item_id, scores.get(item_id, 0.0)) for item_id in best[:k]]

    def _dense(self, vector, filters: SearchFilters, depth: int, need: int) -> list[str]:
        """Up to `depth` nearest items that pass the filters (at least `need` of them if that many pass).

        Chroma's `where` filters cost 50-400 ms at 20k-100k items (docs/BENCHMARKS.md), so filters are
        applied here instead: unfiltered neighbours are over-fetched (growing the fetch while too few
        pass), and only if that fails is the query restricted to the passing ids, or to the `where`.
        """
        snap = self.snapshot
        mask = filters.mask(snap)
        allowed = int(mask.sum())
        if allowed == 0:
            return []
        vector = [float(x) for x in vector]
        total = len(snap.ids)
        fetch = min(total, MAX_OVERFETCH, math.ceil(OVERFETCH * depth * total / allowed))
        while True:
            found = self.collection.query(query_embeddings=[vector], n_results=fetch, include=[])["ids"][0]
            kept = [i for i in found if mask[snap.position[i]]]
            if len(kept) >= min(need, allowed) or fetch == total:
                return kept[:depth]
            if fetch >= MAX_OVERFETCH:
                break
            fetch = min(total, MAX_OVERFETCH, fetch * 4)
        if allowed <= MAX_ID_FILTER:
            restrict: dict[str, Any] = {"ids": [snap.ids[i] for i in np.flatnonzero(mask)]}
        else:
            restrict = {"where": filters.where()}
        return self.collection.query(query_embeddings=[vector], n_results=min(depth, allowed), include=[], **restrict)[
            "ids"
        ][0]

    def type_scores(self, query) -> dict[str, float]:
        """Cosine similarity of the query (text, or its embedding) to each product type's description."""
        snap = self.snapshot
        if snap.type_vectors is None:
            names = list(snap.type_documents)
            vectors = np.asarray(self.embedder.encode([snap.type_documents[n] for n in names]), dtype=np.float32)
            snap.type_vectors = (names, vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9))
        names, vectors = snap.type_vectors
        query = np.asarray(self.embedder.encode([query])[0] if isinstance(query, str) else query, dtype=np.float32)
        sims = vectors @ (query / max(float(np.linalg.norm(query)), 1e-9))
        return dict(zip(names, sims.tolist(), strict=True))

    def _by_type(self, vector, filters: SearchFilters, depth: int, dense: list[str]) -> list[str]:
        """Items of the product types whose descriptions are nearest the query, nearest type first and,
        within a type, in dense order: a need ("a gift for a hiker") reaches the types it describes even
        when no item's own name or options say so."""
        snap = self.snapshot
        scores = self.type_scores(vector)
        by_type: dict[str, list[int]] = {}
        for i in np.flatnonzero(filters.mask(snap)):
            by_type.setdefault(snap.items[i].title, []).append(int(i))
        seen = {item_id: r for r, item_id in enumerate(dense)}
        out: list[str] = []
        for name in sorted(by_type, key=lambda n: -scores.get(n, 0.0)):
            ids = [snap.ids[i] for i in by_type[name]]
            out += sorted(ids, key=lambda item_id: seen.get(item_id, len(seen)))
            if len(out) >= depth:
                break
        return out[:depth]

    def _lexical(self, text: str, filters: SearchFilters, depth: int) -> list[str]:
        snap = self.snapshot
        scores = snap.lexical.scores(text)
        scores[~filters.mask(snap)] = 0.0
        top = np.argsort(-scores, kind="stable")[:depth]
        return [snap.ids[i] for i in top if scores[i] > 0]

    def _hit(self, item_id: str, score: float) -> SearchHit:
        item = self.snapshot.items[self.snapshot.position[item_id]]
        return SearchHit(
            item_id=item.item_id,
            product_id=item.product_id,
            name=item.title,
            category=item.category,
            options=item.options,
            price=item.price,
            available=item.available,
            score=score,
            description=item.description,
        )


def _fuse(rankings: list[list[str]]) -> dict[str, float]:
    """Reciprocal rank fusion: robust to the different scales of cosine and BM25 scores."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item_id in enumerate(ranking):
            scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores
