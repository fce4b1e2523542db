"""`Recommender.recommend(request, user_id=None, k=10)`: the product's zero-shot recommendations.

1. Candidates, merged and de-duplicated, each remembering where it came from: product search on the
   request (dense + lexical), the customer's own purchases (bought before, often bought together with
   what they bought) and the store's best sellers; the CTR model (where the store has one) scores the
   pool for the customer; the best `max_candidates` go on, within any price bound in the request.
2. Ranking. `method="ranker"`: the fine-tuned ranking LoRA (`models/ranker-smollm2`, `finetune.tallrec`)
   reads the customer's purchases as it was trained to, and its P(Yes) is added, as z-scores, to the
   items' sales (and, when the request states a need, to the candidate order). `method="auto"` (the
   default) takes it where it measured best: an open-ended request ("what should I buy next?") from a
   customer with purchases, which is the LLMRank protocol's question (ranker + popularity beat both
   baselines there); a request that states a need keeps the candidate order, which kept need requests
   on the right product types where the ranker did not (docs/BENCHMARKS.md, bench/need_bench.py).
   `pointwise` / `listwise`: the chat model prompted zero-shot about the request and the purchases (at
   chance in that evaluation); `none` keeps the candidate order.
3. Optional MMR diversity over the items' embeddings (`diversity` = weight of novelty, 0 = off).
4. A one-line reason per item built only from facts the item has (its category, price, options) and
   the evidence that brought it in (the search, a past purchase, a co-purchase, its sales).
"""

import json
import re
import sys
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assistant.config import MODELS_DIR
from assistant.ranking.history import purchased_orders, store_history
from assistant.requests import named_product_type, parse_request
from retrieval.errors import ShopassistError

_HOUSEHOLD = re.compile(r"\bhousehold[\s_#]*(\d+)\b", re.IGNORECASE)
MAX_REQUEST = 1000
METHODS = ("auto", "ranker", "pointwise", "listwise", "none")
RANKER_DIR = MODELS_DIR / "ranker-smollm2"
SOURCES = {  # evidence kind → how the method line names it
    "search": "product search",
    "bought_before": "the customer's purchases",
    "co_purchase": "items bought with theirs",
    "popular": "best sellers",
    "ctr": "the purchase model",
}


class RecommendError(ShopassistError, ValueError):
    """A request that cannot be answered; the message says why and what to do."""


@dataclass
class Candidate:
    item_id: str
    name: str
    category: str
    price: float
    options: dict[str, str]
    evidence: dict[str, Any] = field(default_factory=dict)  # source -> what supports it
    prescore: float = 0.0


@dataclass
class Recommendation:
    item_id: str
    name: str
    price: float
    options: dict[str, str]
    score: float
    reason: str
    facts: dict[str, str]  # every value the reason states, by name
    sources: list[str]


def reason_for(c: Candidate) -> tuple[str, dict[str, str]]:
    """A reason that states only the item's own attributes and the evidence that selected it."""
    facts = {"category": c.category, "price": f"${c.price:.2f}"}
    facts.update({k: v for k, v in c.options.items() if k in ("brand", "size", "color", "material")})
    why = []
    ev = c.evidence
    if "search" in ev:
        facts["matched"] = ev["search"]
        why.append(f"matches “{ev['search']}”")
    if "bought_before" in ev:
        facts["times bought"] = str(ev["bought_before"])
        why.append(f"you bought it {ev['bought_before']} time{'s' if ev['bought_before'] != 1 else ''} before")
    if "co_purchase" in ev:
        facts["bought with"] = ev["co_purchase"]
        why.append(f"often bought with {ev['co_purchase']}, which you buy")
    if "popular" in ev:
        facts["orders"] = str(ev["popular"])
        why.append(f"a best seller ({ev['popular']} orders)")
    if "ranker" in ev:
        facts["ranker P(Yes)"] = f"{ev['ranker']:.2f}"
        why.append(f"fine-tuned ranker P(Yes) {ev['ranker']:.2f} from your purchases")
    if "ctr" in ev:
        # a score from a model trained with sampled negatives: a ranking signal, not a real purchase probability
        facts["model score"] = f"{ev['ctr']:.2f}"
        why.append(f"purchase-model score {ev['ctr']:.2f}")
    labels = {"category": "", "brand": "", "size": "size ", "color": "", "material": ""}
    details = ", ".join(labels[k] + v for k, v in facts.items() if k in labels)
    return f"{details}, {facts['price']}: {'; '.join(why) or 'in the catalog'}", facts


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, diversity: float) -> list[int]:
    """Maximal marginal relevance: pick by (1-λ)·relevance − λ·max similarity to the picked (λ = diversity)."""
    rel = (relevance - relevance.min()) / ((relevance.max() - relevance.min()) or 1.0)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    sim = unit @ unit.T
    picked: list[int] = []
    rest = list(range(len(rel)))
    while rest and len(picked) < k:

        def gain(i: int) -> float:
            redundancy = max((sim[i, j] for j in picked), default=0.0)
            return (1 - diversity) * rel[i] - diversity * redundancy

        best = max(rest, key=gain)
        picked.append(best)
        rest.remove(best)
    return picked


def intra_list_diversity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance of a list (0 = all the same)."""
    if len(vectors) < 2:
        return 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    sim = unit @ unit.T
    n = len(vectors)
    return float((1 - sim[np.triu_indices(n, 1)]).mean())


class FineTunedRanker:
    """The shipped ranking LoRA over its base model (transformers, adapter merged), loaded on first use
    and shared by every request: the chat model may run on llama.cpp, which gives no logits to rank with."""

    def __init__(self, path=RANKER_DIR, threads: int | None = None):
        self.path = path
        self.threads = threads
        self.name = f"fine-tuned ranker ({path.name})"
        self._ranker = None
        self._lock = threading.Lock()
        self.failed: str | None = None  # why it could not load; then requests fall back to candidate order

    @property
    def available(self) -> bool:
        return self.failed is None and (self.path / "adapter_config.json").is_file()

    def get(self):
        with self._lock:
            if self._ranker is None and self.available:
                try:
                    from assistant.llm import load_chat_model
                    from assistant.recommend.llm_rank import LLMRanker

                    about = self.path / "shopassist.json"
                    base = json.loads(about.read_text())["base_model"] if about.is_file() else "smollm2"
                    chat = load_chat_model(base, self.path, self.threads, backend="transformers")
                    self._ranker = LLMRanker(chat)
                except Exception as exc:  # a broken install must not take recommendations down
                    self.failed = f"{type(exc).__name__}: {exc}"
                    print(f"shopassist: the fine-tuned ranker did not load ({self.failed})", file=sys.stderr)
            return self._ranker


class Recommender:
    def __init__(self, store, search, ranker=None, llm=None, max_candidates: int = 20, fine_tuned=None):
        self.store = store
        self.search = search
        self.ranker = ranker
        self.llm = llm  # an `LLMRanker`, or None for method "none"
        self.fine_tuned = fine_tuned  # a `FineTunedRanker`, or None: no method "ranker"
        self.last_method = "none"  # what the last request was ranked by ("auto" resolved)
        self.last_with_request = False  # whether the ranker's list also kept the request's candidate order
        self.max_candidates = max_candidates
        self._items: dict[str, Candidate] | None = None
        self._baskets_of_item: dict[str, list[tuple[str, ...]]] | None = None
        self._sales: Counter[str] | None = None
        self.last_pool = 0  # candidates the last request ranked
        self.last_sources: list[str] = []  # where they came from

    # -- store views, built once ----------------------------------------------------------------------

    def _catalog(self) -> dict[str, Candidate]:
        if self._items is None:
            from retrieval.catalog import items_from_products

            self._items = {
                it.item_id: Candidate(it.item_id, it.title, it.category, it.price, dict(it.options))
                for it in items_from_products(self.store.products())
                if it.available
            }
        return self._items

    def _order_index(self) -> None:
        """Every (not cancelled) order's items, read once: sales counts and co-purchases come from it."""
        if self._baskets_of_item is None:
            index, sales = defaultdict(list), Counter()
            for order in purchased_orders(self.store.orders().values()):
                basket = tuple(it["item_id"] for it in order["items"])
                for item_id in basket:
                    index[item_id].append(basket)
                    sales[item_id] += 1
            self._baskets_of_item, self._sales = dict(index), sales

    def user_history(self, user_id: str) -> list[str]:
        """The customer's purchased item ids, oldest first (the orders the CTR ranker reads too)."""
        if self.store.user(user_id) is None:
            raise RecommendError(f"unknown customer {user_id!r}; give a user id from this store")
        return [item_id for item_id, _week in store_history(self.store)(user_id)]

    # -- candidates -----------------------------------------------------------------------------------

    def candidates(self, request: str, user_id: str | None) -> tuple[list[Candidate], list[str]]:
        catalog = self._catalog()
        self._order_index()
        parsed = parse_request(request)
        pool: dict[str, Candidate] = {}
        # a request that names a product type ("a backpack under $100") gets only that type, from every source
        kind = named_product_type(parsed.query, {c.name for c in catalog.values()})
        kind = next((c.category for c in catalog.values() if c.name == kind), None) if kind else None

        def add(item_id: str, source: str, evidence: Any, prescore: float) -> None:
            if item_id not in catalog or (kind is not None and catalog[item_id].category != kind):
                return
            c = pool.get(item_id)
            if c is None:
                base = catalog[item_id]
                c = pool[item_id] = Candidate(base.item_id, base.name, base.category, base.price, dict(base.options))
            c.evidence.setdefault(source, evidence)
            c.prescore = max(c.prescore, prescore)

        # an open-ended request ("surprise me") gives search nothing to look for: its words would only
        # bring in noise that a reason then claims "matches"; purchases and best sellers answer it
        if self.search is not None and not parsed.open_ended:
            from retrieval.search import SearchInputError

            try:
                hits = self.search.search(
                    parsed.query, max_price=parsed.max_price, min_price=parsed.min_price, category=kind, k=15
                )
            except SearchInputError as exc:
                raise RecommendError(str(exc)) from None
            for r, h in enumerate(hits):
                add(h.item_id, "search", parsed.need, 1.0 - r / 30)
        history = self.user_history(user_id) if user_id else []
        if history:
            counts = Counter(history)
            for iid, n in counts.most_common(5):
                add(iid, "bought_before", n, 0.6)
            co = Counter()
            for seed in list(dict.fromkeys(reversed(history)))[:5]:
                for basket in self._baskets_of_item.get(seed, [])[:200]:
                    for item_id in basket:
                        if item_id != seed and item_id not in counts:
                            co[(item_id, seed)] += 1
            for (iid, seed), _n in co.most_common(8):
                add(iid, "co_purchase", catalog[seed].name if seed in catalog else seed, 0.5)
        if parsed.open_ended:  # best sellers within the bound fill the list the search would have
            sellers = [(i, n) for i, n in self._sales.most_common() if i in catalog]
            sellers = [(i, n) for i, n in sellers if _in_price(catalog[i].price, parsed.max_price, parsed.min_price)]
            sellers = sellers[: self.max_candidates]
        else:
            sellers = self._sales.most_common(5)
        for iid, n in sellers:
            add(iid, "popular", n, 0.3)
        cands = [c for c in pool.values() if _in_price(c.price, parsed.max_price, parsed.min_price)]
        if self.ranker is not None and user_id and cands:
            from assistant.tools.base import ToolError

            try:
                pred = self.ranker.predict(user_id, [c.item_id for c in cands])
                for c, s in zip(cands, pred.items, strict=True):
                    c.evidence["ctr"] = s.score
                    c.prescore += s.score
            except ToolError:
                pass  # items the model has no features for: keep the other evidence
        cands.sort(key=lambda c: c.prescore, reverse=True)
        cands = cands[: self.max_candidates]
        self.last_sources = [s for s in SOURCES if any(s in c.evidence for c in cands)]
        return cands, history

    def why_empty(self, request: str) -> str:
        """Why a request found nothing: the price bound removed every item of the type it names (naming
        the nearest), or the store has no product type by that name."""
        parsed = parse_request(" ".join((request or "").split()))
        bound = f"under ${parsed.max_price:,.2f}" if parsed.max_price is not None else ""
        if parsed.min_price is not None:
            bound = (bound + " and " if bound else "") + f"over ${parsed.min_price:,.2f}"
        catalog = self._catalog().values()
        kind = named_product_type(parsed.query, {c.name for c in catalog})
        of_kind = [c for c in catalog if c.name == kind]
        what = f"nothing {bound} matches" if bound else "nothing matches"
        if not of_kind:
            return f"{what} “{parsed.query}”, and no product type of this store is named in it"
        if not bound:  # the type exists but nothing reached the list (no index, no sales of it)
            return f"{what} “{parsed.query}”"
        near = min(of_kind, key=lambda c: c.price if parsed.max_price is not None else -c.price)
        return f"no {kind} is {bound}; the nearest is {near.name} at ${near.price:,.2f} (item {near.item_id})"

    def describe(self, shown: int, method: str | None = None) -> str:
        """One line saying where the last list came from and how it was ordered (shown under the cards)."""
        method = self.last_method if method in (None, "auto") else method
        if method == "ranker":
            how = f"{self.fine_tuned.name}: P(Yes) from the customer's purchases + best sellers"
            how += " + candidate order" if self.last_with_request else ""
        elif method == "none" or self.llm is None:
            how = "candidate order (no LLM)"
            if self.fine_tuned is not None and self.fine_tuned.available:
                how += "; the fine-tuned ranker ranks open-ended requests from a customer with purchases"
        else:
            kind = "P(Yes) per item" if method == "pointwise" else "lettered lists"
            how = f"zero-shot LLM ranking, {kind}, {self.llm.name}"
        sources = ", ".join(SOURCES[s] for s in self.last_sources if s != "ctr") or "none"
        if "ctr" in self.last_sources and self.ranker is not None:
            sources += f", scored by {self.ranker.method}"
        return f"{shown} of {self.last_pool} candidates ({sources}) · method: {how}"

    # -- ranking --------------------------------------------------------------------------------------

    def recommend(
        self, request: str, user_id: str | None = None, k: int = 10, method: str = "auto", diversity: float = 0.0
    ) -> list[Recommendation]:
        request = " ".join((request or "").split())
        if not request:
            raise RecommendError("the request is empty: say what you are looking for")
        if len(request) > MAX_REQUEST:
            raise RecommendError(f"the request is {len(request)} characters; keep it under {MAX_REQUEST}")
        if not 1 <= k <= 50:
            raise RecommendError("k must be between 1 and 50")
        if not 0.0 <= diversity <= 1.0:
            raise RecommendError("diversity must be between 0 and 1")
        if method not in METHODS:
            raise RecommendError(f"unknown method {method!r}: {', '.join(METHODS)}")
        if user_id is None and (m := _HOUSEHOLD.search(request)) and self.store.user(f"household_{m.group(1)}"):
            user_id = f"household_{m.group(1)}"
        cands, history = self.candidates(request, user_id)
        open_ended = parse_request(request).open_ended
        method = self._resolve(method, history, open_ended)
        self.last_pool, self.last_method, self.last_with_request = len(cands), method, not open_ended
        if not cands:
            return []
        catalog = self._catalog()
        if method == "ranker":
            scores = self._ranker_scores(cands, history, with_request=not open_ended)
        elif method == "none" or self.llm is None:
            scores = np.array([c.prescore for c in cands])
        else:
            seen = [catalog[i].name for i in dict.fromkeys(reversed(history)) if i in catalog][:10]
            context = f"Request: {request}"
            if seen:
                context += "\nThis customer recently bought: " + "; ".join(reversed(seen))
            texts = [_item_text(c) for c in cands]
            if method == "pointwise":
                scores = np.array(self.llm.pointwise(context, texts))
            else:
                scores = np.array(self.llm.listwise(context, texts))
        order = list(np.argsort(-scores, kind="stable"))
        if diversity > 0 and self.search is not None:
            vectors = self.search.embed_items([c.item_id for c in cands])
            order = mmr(scores, vectors, k, diversity)
        out = []
        for i in order[:k]:
            c = cands[i]
            reason, facts = reason_for(c)
            out.append(
                Recommendation(
                    c.item_id, c.name, c.price, c.options, round(float(scores[i]), 4), reason, facts, sorted(c.evidence)
                )
            )
        return out

    def _resolve(self, method: str, history: list[str], open_ended: bool) -> str:
        usable = self.fine_tuned is not None and self.fine_tuned.available
        if method == "auto":
            return "ranker" if usable and history and open_ended else "none"
        if method == "ranker" and not usable:
            raise RecommendError("the fine-tuned ranker is not installed here (models/ranker-smollm2); use none")
        if method == "ranker" and not history:
            raise RecommendError("the fine-tuned ranker ranks by a customer's purchases: give a customer with orders")
        return method

    def _ranker_scores(self, cands: list[Candidate], history: list[str], with_request: bool) -> np.ndarray:
        """z(ranker P(Yes)) + z(sales), the protocol's best hybrid; + z(candidate order) for a stated need."""
        from assistant.recommend.convert import store_title
        from assistant.recommend.llm_rank import context_text, zscore

        ranker = self.fine_tuned.get()
        if ranker is None:  # it failed to load just now: the candidate order, said so by the method line
            self.last_method = "none"
            return np.array([c.prescore for c in cands])
        catalog = self._catalog()
        bought = [i for i in dict.fromkeys(history) if i in catalog]  # first purchases, oldest first
        titles = {i: store_title(catalog[i].name, catalog[i].options) for i in bought}
        p = ranker.pointwise(context_text(titles, tuple(bought)), [store_title(c.name, c.options) for c in cands])
        for c, yes in zip(cands, p, strict=True):
            c.evidence["ranker"] = yes
        scores = zscore(p) + zscore([self._sales[c.item_id] for c in cands])
        return scores + zscore([c.prescore for c in cands]) if with_request else scores


def llm_ranker_for(chat_model):
    """An `LLMRanker` over a local transformers chat model (shares its weights and lock); None otherwise."""
    if not (hasattr(chat_model, "tokenizer") and hasattr(chat_model, "model") and hasattr(chat_model, "_lock")):
        return None
    from assistant.recommend.llm_rank import LLMRanker

    return LLMRanker(chat_model)


def _item_text(c: Candidate) -> str:
    opts = ", ".join(f"{k} {v}" for k, v in c.options.items())
    return f"{c.name} ({c.category}{', ' + opts if opts else ''}), ${c.price:.2f}"


def _in_price(price: float, most: float | None, least: float | None) -> bool:
    return (most is None or price <= most) and (least is None or price >= least)
