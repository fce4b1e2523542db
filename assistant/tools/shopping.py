"""Shopping tools: product search over the Chroma index, and ranking candidate items for a customer."""

import json

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


@tool()
def rank_products(ctx: ToolContext, user_id: str, item_ids: list[str]) -> str:
    """Order candidate items by how likely this customer is to buy each one, best first.

    Args:
        user_id: The customer's user id, such as 'sara_doe_496'.
        item_ids: Candidate item ids, such as ['1008292230', '9354168549'], usually from search_products.
    """
    from assistant.ranking import PopularityRanker, check_items

    check_items(item_ids)
    ranker = ctx.ranker or PopularityRanker.from_store(ctx.store)
    return json.dumps(ranker.rank(user_id, item_ids))
