"""Ranking refusals and the request checks every ranker shares.

`RankingError` is a `ToolError`, so `rank_products` hands its message to the model as an observation.
"""

from assistant.tools.base import ToolError

MAX_ITEMS = 1000


class RankingError(ToolError):
    """Input the ranker cannot score; the message says what to pass instead."""


def check_items(item_ids) -> list[str]:
    """The candidate list as strings: not empty, at most `MAX_ITEMS`."""
    if not isinstance(item_ids, list | tuple) or not item_ids:
        raise RankingError("item_ids is empty: pass the candidate item ids to rank")
    if len(item_ids) > MAX_ITEMS:
        raise RankingError(f"too many items ({len(item_ids)}): rank at most {MAX_ITEMS} at a time")
    return [str(i) for i in item_ids]


def check_request(user_id: str, item_ids: list[str]) -> list[str]:
    """A personal ranking needs a user and each candidate once."""
    if not isinstance(user_id, str) or not user_id.strip():
        raise RankingError("user_id is empty: pass the customer's user id")
    ids = check_items(item_ids)
    seen, twice = set(), []
    for i in ids:
        if i in seen and i not in twice:
            twice.append(i)
        seen.add(i)
    if twice:
        raise RankingError(f"item id(s) listed more than once: {', '.join(twice[:5])}; pass each item once")
    return ids
