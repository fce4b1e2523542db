"""Shopping tools: product search over the Chroma index, and ranking candidate items for a customer."""

import json
from collections import Counter
from typing import Any

from assistant.tools.base import ToolContext, ToolError, tool


@tool()
def search_products(
    ctx: ToolContext,
    query: str,
    max_price: float | None = None,
    min_price: float | None = None,
    category: str | None = None,
    options: dict[str, str] | None = None,
    available_only: bool = True,
    k: int = 5,
) -> str:
    """Search the catalog for items matching a shopper's request; returns items with ids, options and prices.

    Args:
        query: What the shopper wants, in a few words, such as 'waterproof hiking boots'.
        max_price: Highest price in dollars, such as 150.
        min_price: Lowest price in dollars.
        category: A product type, such as 'Hiking Boots'.
        options: Wanted options, such as {"color": "blue", "size": "M"}.
        available_only: Only items in stock (default true).
        k: How many items to return, 1 to 50.
    """
    from retrieval.search import SearchInputError

    if ctx.search is None:
        raise ToolError("product search is not available in this session")
    try:
        hits = ctx.search.search(query, max_price, min_price, category, options, available_only, k)
    except SearchInputError as exc:
        raise ToolError(str(exc)) from None
    return json.dumps([{k: v for k, v in h.to_dict().items() if k != "score"} for h in hits])


class PopularityRanker:
    """Ranks items by how often they were ordered (then their product), for stores without a CTR model.

    Every result says `"method": "popularity-fallback"`, so nobody mistakes it for a personal ranking.
    """

    method = "popularity-fallback"

    def __init__(self, orders: dict[str, dict[str, Any]], products: dict[str, dict[str, Any]]):
        self.item_product = {iid: pid for pid, p in products.items() for iid in p["variants"]}
        self.item_counts: Counter[str] = Counter()
        self.product_counts: Counter[str] = Counter()
        for order in orders.values():
            if order["status"] == "cancelled":
                continue
            for item in order["items"]:
                self.item_counts[item["item_id"]] += 1
                self.product_counts[item["product_id"]] += 1

    @classmethod
    def from_store(cls, store) -> "PopularityRanker":
        return cls(store.orders(), store.products())

    def rank(self, user_id: str, item_ids: list[str]) -> list[dict[str, Any]]:
        unknown = [i for i in item_ids if i not in self.item_product]
        if unknown:
            raise ToolError(f"unknown item id(s): {', '.join(unknown[:5])}; item ids come from search_products")
        total = max(1, sum(self.item_counts.values()))

        def score(item_id: str) -> float:
            # item orders first; product orders break ties between rarely ordered variants
            return (self.item_counts[item_id] + 0.01 * self.product_counts[self.item_product[item_id]]) / total

        ranked = sorted(dict.fromkeys(item_ids), key=score, reverse=True)
        return [{"item_id": i, "score": round(score(i), 6), "method": self.method} for i in ranked]


@tool()
def rank_products(ctx: ToolContext, user_id: str, item_ids: list[str]) -> str:
    """Order candidate items by how likely this customer is to buy each one, best first.

    Args:
        user_id: The customer's user id, such as 'sara_doe_496'.
        item_ids: Candidate item ids, such as ['1008292230', '9354168549'], usually from search_products.
    """
    if not item_ids:
        raise ToolError("item_ids is empty: pass the candidate item ids to rank")
    if len(item_ids) > 1000:
        raise ToolError("too many items: rank at most 1000 at a time")
    ranker = ctx.ranker or PopularityRanker.from_store(ctx.store)
    return json.dumps(ranker.rank(user_id, item_ids))
