"""The labelled fallback for stores without a trained CTR model (tau-retail has no interaction logs)."""

from collections import Counter
from typing import Any

from assistant.ranking.checks import RankingError
from assistant.ranking.history import purchased_orders


class PopularityRanker:
    """Ranks items by how often they were ordered (then their product), for stores without a CTR model.

    Every result says `"method": "popularity-fallback"`, so nobody mistakes it for a personal ranking.
    """

    method = "popularity-fallback"

    def __init__(self, orders: dict[str, dict[str, Any]], products: dict[str, dict[str, Any]]):
        self.item_product = {iid: pid for pid, p in products.items() for iid in p["variants"]}
        self.item_counts: Counter[str] = Counter()
        self.product_counts: Counter[str] = Counter()
        for order in purchased_orders(orders.values()):
            for item in order["items"]:
                self.item_counts[item["item_id"]] += 1
                self.product_counts[item["product_id"]] += 1

    @classmethod
    def from_store(cls, store) -> "PopularityRanker":
        return cls(store.orders(), store.products())

    def rank(self, user_id: str, item_ids: list[str]) -> list[dict[str, Any]]:
        unknown = [i for i in item_ids if i not in self.item_product]
        if unknown:
            raise RankingError(f"unknown item id(s): {', '.join(unknown[:5])}; item ids come from search_products")
        total = max(1, sum(self.item_counts.values()))

        def score(item_id: str) -> float:
            # item orders first; product orders break ties between rarely ordered variants
            return (self.item_counts[item_id] + 0.01 * self.product_counts[self.item_product[item_id]]) / total

        ranked = sorted(dict.fromkeys(item_ids), key=score, reverse=True)
        return [{"item_id": i, "score": round(score(i), 6), "method": self.method} for i in ranked]
