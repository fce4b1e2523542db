"""A customer's purchases, as every ranker and the recommender count them: one rule, written once."""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

# user_id -> that user's purchases as (item_id, time); time in the model's units, None = most recent
History = Callable[[str], Iterable[tuple[str, float | None]]]


def is_purchase(order: dict[str, Any] | None) -> bool:
    """A cancelled order was never bought: it counts for no history, popularity or co-purchase."""
    return order is not None and order.get("status") != "cancelled"


def purchased_orders(orders: Iterable[dict[str, Any] | None]) -> Iterator[dict[str, Any]]:
    return (o for o in orders if is_purchase(o))


def store_history(store) -> History:
    """A store's orders (not cancelled) as purchase history, timed by their `week` when they have one."""

    def events(user_id: str) -> list[tuple[str, float | None]]:
        user = store.user(user_id)
        if user is None:
            return []
        out = []
        for order in purchased_orders(store.order(o) for o in user.get("orders", [])):
            week = order.get("week")
            for item in order.get("items", []):
                out.append((str(item["item_id"]), float(week) if week is not None else None))
        return out

    return events
