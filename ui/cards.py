"""Product cards: what the shopper sees instead of the raw JSON of a search or ranking.

Cards are built only from tool results (`search_products`, `rank_products`) of the current turn, so
every name, option and price on a card is the catalog's own; the reason says why the card is there
(the search it matched, or the ranking method). Rendering escapes every field.
"""

import html
import json
from dataclasses import dataclass

from assistant.policy import ToolCallRecord


@dataclass(frozen=True)
class ProductCard:
    item_id: str
    name: str
    options: dict[str, str]
    price: float
    available: bool
    reason: str
    position: int  # 1-based place in the list the shopper saw
    query: str = ""

    def option_text(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.options.items())


def _search_reason(arguments: dict) -> str:
    parts = [f"matches “{arguments.get('query', '')}”"]
    if arguments.get("max_price") is not None:
        parts.append(f"under ${float(arguments['max_price']):,.2f}")
    if arguments.get("min_price") is not None:
        parts.append(f"over ${float(arguments['min_price']):,.2f}")
    for key, value in (arguments.get("options") or {}).items():
        parts.append(f"{key} {value}")
    return ", ".join(parts)


def cards_from_trace(records: list[ToolCallRecord]) -> list[ProductCard]:
    """Cards for the latest successful search of these calls, re-ordered by a later ranking if any."""
    cards: list[ProductCard] = []
    for record in records:
        if record.outcome != "ok":
            continue
        try:
            data = json.loads(record.output)
        except json.JSONDecodeError:
            continue
        if record.name == "search_products" and isinstance(data, list):
            query = str(record.arguments.get("query", ""))
            reason = _search_reason(record.arguments)
            cards = [
                ProductCard(
                    str(hit["item_id"]),
                    str(hit["name"]),
                    {str(k): str(v) for k, v in hit.get("options", {}).items()},
                    float(hit["price"]),
                    bool(hit.get("available", True)),
                    reason,
                    i,
                    query,
                )
                for i, hit in enumerate(data, 1)
                if isinstance(hit, dict) and {"item_id", "name", "price"} <= hit.keys()
            ]
        elif record.name == "rank_products" and isinstance(data, list) and cards:
            order = {str(r.get("item_id")): (i, r.get("method", "ranking")) for i, r in enumerate(data, 1)}
            ranked = sorted((c for c in cards if c.item_id in order), key=lambda c: order[c.item_id][0])
            cards = [
                ProductCard(
                    c.item_id,
                    c.name,
                    c.options,
                    c.price,
                    c.available,
                    f"{c.reason}; ranked #{order[c.item_id][0]} for you ({order[c.item_id][1]})",
                    i,
                    c.query,
                )
                for i, c in enumerate(ranked, 1)
            ]
    return cards


def render_cards(cards: list[ProductCard]) -> str:
    """HTML for the cards; every value is escaped (catalog text and queries are not trusted markup)."""
    if not cards:
        return ""
    out = ['<div class="sa-cards">']
    for card in cards:
        stock = "In stock" if card.available else "Out of stock"
        out.append(
            f'<div class="sa-card" data-item-id="{html.escape(card.item_id)}">'
            f'<div class="sa-card-name">{html.escape(card.name)}</div>'
            f'<div class="sa-card-options">{html.escape(card.option_text())}</div>'
            f'<div class="sa-card-price">${card.price:,.2f} · {stock}</div>'
            f'<div class="sa-card-reason">{html.escape(card.reason)}</div>'
            f'<div class="sa-card-id">item {html.escape(card.item_id)}</div>'
            "</div>"
        )
    out.append("</div>")
    return "".join(out)


CARD_CSS = """
.sa-cards {display: flex; flex-wrap: wrap; gap: 10px;}
.sa-card {border: 1px solid #ccc; border-radius: 8px; padding: 10px; width: 220px;}
.sa-card-name {font-weight: 600;}
.sa-card-options, .sa-card-reason, .sa-card-id {font-size: 0.85em; color: #555;}
.sa-card-price {margin: 4px 0;}
"""
