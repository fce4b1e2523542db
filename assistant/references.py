"""Which listed product a shopper's follow-up points at: "what about the first one?", "item 8538875209".

After a search listing, the shipped model answered "what about the first one?" and "tell me more about
item 8538875209" with "that is not something I can help with": it reads the listing's words, not the
results behind them (earlier searches are left out of its prompt), so it cannot tell which product the
shopper means. Pointing is resolved here instead, from the listing's own results: an ordinal with a noun
for a listed thing ("the second one", "the last option", "number 2") or a price ("which one is cheapest?")
counts within the latest search,
an item id counts within any search of the conversation, and "it" / "this one" right after an item's
details is that item. The agent then looks the product up and answers about that item
(assistant.agent, assistant.replies.item_details).
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from assistant.messages import ChatMessage

_ORDINALS = {
    "first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2,
    "fourth": 3, "4th": 3, "fifth": 4, "5th": 4, "last": -1,
}  # fmt: skip
_NOUN = r"(?:one|item|option|result|choice|product)s?"
# "the first one", "the 2nd option", "the last one you listed"; "first name" is not pointing at a product
_ORDINAL = re.compile(rf"\b({'|'.join(_ORDINALS)})\s+{_NOUN}\b", re.IGNORECASE)
# "number 2", "option #3", "item no. 1", "#2" (a 1-digit position, never an order's #W... or an item id)
_POSITION = re.compile(r"(?:\b(?:number|no\.?|option|item|choice)\s*#?|(?<![\w#])#)([1-9])\b", re.IGNORECASE)
_ITEM_ID = re.compile(r"\b(\d{10})\b")
# "is it waterproof?", "does this one come with a case?", "how much is that one?": the item just shown
_IT = re.compile(
    r"\b(?:is|does|did|has|can|will|would|could|was)\s+(?:it|this|that)\b|\b(?:this|that)\s+(?:one|item)\b",
    re.IGNORECASE,
)
POINTABLE = ("search_products", "get_product_details")  # results whose items a shopper may point at
# "which one is cheapest?", "the least expensive of these?", "which is the most expensive one?": a listed item
# picked by price (not "any cheaper ones?", a new search; "what's your cheapest tent?" names no listed one)
_CHEAPEST = re.compile(r"\b(?:cheapest|least expensive|lowest[- ]priced|most affordable)\b", re.IGNORECASE)
_PRICIEST = re.compile(r"\b(?:priciest|most expensive|highest[- ]priced)\b", re.IGNORECASE)
_AMONG = re.compile(r"\b(?:which|of (?:these|those|them)|one|listed|shown|you (?:showed|found))\b", re.IGNORECASE)


def _listed(message: ChatMessage) -> list[dict[str, Any]]:
    """The items a catalog result shows: a search's hits, or a product's variants (with its product id)."""
    if message.role != "tool" or message.name not in POINTABLE:
        return []
    try:
        data = json.loads(message.content)
    except json.JSONDecodeError:
        return []
    if message.name == "get_product_details":
        variants = data.get("variants", {}) if isinstance(data, dict) else {}
        rows = [{**v, "product_id": data.get("product_id")} for v in variants.values() if isinstance(v, dict)]
    else:
        rows = data if isinstance(data, list) else []
    return [r for r in rows if isinstance(r, dict) and "item_id" in r and r.get("product_id")]


def _latest(messages: list[ChatMessage]) -> tuple[int, str, list[ChatMessage]]:
    """The latest customer message's index (-1: none) and text, and the tool results before it."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    text = messages[last_user].content if last_user >= 0 else ""
    return last_user, text, [m for m in messages[: max(last_user, 0)] if m.role == "tool"]


def pointed_item(messages: list[ChatMessage]) -> dict[str, Any] | None:
    """The listed item (`item_id`, `product_id`, ...) the latest customer message points at, while the
    catalog is what the conversation is on (no order looked up since the last search); None otherwise."""
    last_user, text, tools = _latest(messages)
    if last_user < 0 or not tools or tools[-1].name not in POINTABLE:
        return None  # an order looked up since the listing: "the first one" is about that order now
    latest = next((_listed(m) for m in reversed(tools) if m.name == "search_products"), [])
    listed = {h["item_id"]: h for m in tools for h in _listed(m)}
    for item_id in _ITEM_ID.findall(text):
        if item_id in listed:
            return listed[item_id]
    found = _ORDINAL.search(text)
    if found:
        index = _ORDINALS[found.group(1).lower()]
        return latest[index] if index < len(latest) else None
    found = _POSITION.search(text)
    if found and int(found.group(1)) <= len(latest):
        return latest[int(found.group(1)) - 1]
    if picked := priced_pick(messages):
        return picked[1]
    if tools[-1].name == "get_product_details" and _IT.search(text):
        return _still_shown(messages[:last_user], tools[-1], text)
    return None


def priced_pick(messages: list[ChatMessage]) -> tuple[str, dict[str, Any]] | None:
    """(`cheapest` or `most expensive`, that item) where the latest customer message asks which item of the
    listing just shown is; None otherwise."""
    _, text, tools = _latest(messages)
    if not tools or tools[-1].name != "search_products" or not _AMONG.search(text):
        return None
    pick = "cheapest" if _CHEAPEST.search(text) else "most expensive" if _PRICIEST.search(text) else None
    latest = _listed(tools[-1])
    if pick is None or not latest:
        return None
    return pick, (min if pick == "cheapest" else max)(latest, key=lambda h: float(h.get("price", 0)))


# "which one would you recommend?", "which is better?", "what should I get?": a choice among the listing
_RECOMMEND = re.compile(
    r"\b(?:recommend\w*|suggest\w*|best|better|should i (?:get|buy|choose|pick|take|go for)"
    r"|would you (?:get|buy|choose|pick|take|go for))\b",
    re.IGNORECASE,
)
# a question about what was just listed: "which is the lightest?", "are these good for hiking?"
_ABOUT_LISTED = re.compile(r"^\W*(?:(?:and|so|ok|okay|then)\W+)?which\b|\b(?:these|those|they|them)\b", re.I)


@dataclass(frozen=True)
class ListingQuestion:
    """A question about the listing just shown that the listing itself answers (`listing_question`)."""

    kind: str  # "recommend": which to choose; "not_listed": something no option says; "lacks": an option value
    items: list[dict[str, Any]]  # the listing's items
    lacks: dict[str, list[str]] = field(default_factory=dict)  # "lacks": option → the values in stock
    asked: list[str] = field(default_factory=list)  # "lacks": the values asked for


def listing_question(messages: list[ChatMessage], products: list[dict]) -> ListingQuestion | None:
    """What the latest customer message asks about the listing just shown, where the listing answers it:
    which of its items to choose ("which one would you recommend?"); something no option of their product in
    the catalog (`products`) says ("which is the lightest?", "are they waterproof?" of backpacks); an option
    value their product does not come in ("do you have them in blue?", where other products do). The
    listing was shown again as if answered. None for a message naming a product type or a price, or an
    option value of the listed product (a new search: "which tents do you have?", "any under $50?", "which
    ones are black?")."""
    from assistant.guidance import option_values
    from assistant.replies import not_in_listing
    from assistant.requests import named_product_type, parse_request

    _, text, tools = _latest(messages)
    if not tools or tools[-1].name != "search_products" or not _ABOUT_LISTED.search(text):
        return None
    latest = _listed(tools[-1])
    bounds, names = parse_request(text), {p["name"] for p in products}
    if len(latest) < 2 or named_product_type(text, names) or bounds.max_price or bounds.min_price:
        return None
    if _RECOMMEND.search(text):
        return ListingQuestion("recommend", latest)
    shown = {h.get("name") for h in latest}
    theirs = [{"name": p["name"], **v} for p in products if p["name"] in shown for v in p["variants"].values()]
    if not not_in_listing(text, latest + theirs):
        return None
    said = f" {' '.join(re.findall(r'[a-z0-9]+', text.lower().replace('colour', 'color')))} "
    own, every = option_values(p for p in products if p["name"] in shown), option_values(products)
    lacks: dict[str, list[str]] = {}
    asked: list[str] = []
    for key in dict.fromkeys(k for r in theirs for k in r.get("options", {})):
        other = {value for value, keys in every.items() if key in keys and key not in own.get(value, {})}
        missing = sorted(value for value in other if f" {value} " in said)
        if missing:
            stocked = {str(r["options"][key]) for r in theirs if r.get("available") and key in r["options"]}
            lacks[key], asked = sorted(stocked), asked + missing
    return ListingQuestion("lacks" if lacks else "not_listed", latest, lacks, asked)


def item_in_view(messages: list[ChatMessage]) -> dict[str, Any] | None:
    """The item whose details were shown last (with its price), when the latest customer message follows
    them with nothing looked up since: what "a cheaper one" is cheaper than."""
    last_user, _, tools = _latest(messages)
    if last_user < 0 or not tools or tools[-1].name != "get_product_details":
        return None
    return _shown_variant(messages[:last_user], tools[-1])


def _shown_variant(before: list[ChatMessage], details: ChatMessage) -> dict[str, Any] | None:
    """The item the shopper pointed at last (in `before`), as `details` shows it: None if it shows no such item."""
    item = pointed_item(before)
    return next((v for v in _listed(details) if item is not None and v["item_id"] == item["item_id"]), None)


def _still_shown(before: list[ChatMessage], details: ChatMessage, text: str) -> dict[str, Any] | None:
    """The item the shopper pointed at last, shown by `details`, when a question about "it" follows (the
    model searched the catalog for "is it waterproof?" and listed hiking boots after a backpack). A value
    of the product's options that item does not have ("does it come in blue?") asks for another of its
    variants, which a search with that option answers: None then."""
    item = _shown_variant(before, details)
    return None if item is None or asks_other_variant(text, item, _listed(details)) else item


def asks_other_variant(text: str, item: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """Whether `text` names a value of the products' options (among `rows`) that `item` does not have:
    "does it come in blue?", "I'll order it in size 10"."""
    words = f" {' '.join(re.findall(r'[a-z0-9.]+', text.lower()))} "
    for row in rows:
        for key, value in row.get("options", {}).items():
            said = f" {' '.join(re.findall(r'[a-z0-9.]+', str(value).lower()))} "
            if said.strip() not in ("yes", "no", "") and said in words and item.get("options", {}).get(key) != value:
                return True
    return False


# "I want to buy the second one", "I'll take it", "can I order this one?", "add it to my cart"
_BUY = re.compile(
    r"\b(?:buy|purchase|order)\s+(?:it|this|that|them|these|those|one|the|item|#?[1-9]\b)"
    r"|\bi(?:'ll| will)\s+take\s+(?:it|this|that|them|these|those|one|the|#?[1-9]\b)"  # not "take a look"
    r"|\badd\s+(?:it|this|that|them)\s+to\s+(?:my\s+)?(?:cart|basket)\b|\bcheckout\b",  # not "check out X"
    re.IGNORECASE,
)


def wants_to_buy(messages: list[ChatMessage]) -> dict[str, Any] | None:
    """The item the latest customer message asks to buy, when it points at one shown ("I want to buy the
    second one", or "I'll take it" after an item's details; `{}` for "them" after a listing); None when it
    asks for no shown item ("I want to buy a gift for my dad" is a request to search)."""
    from assistant.policy import is_explicit_yes
    from assistant.replies import ITEM_OFFER, LISTING_OFFER

    last_user, text, tools = _latest(messages)
    before = next((m.content for m in reversed(messages[:last_user]) if m.role == "assistant"), "")
    offered = before.endswith((LISTING_OFFER, ITEM_OFFER)) and is_explicit_yes(text)  # "yes" to "Would you ...?"
    if not (offered or _BUY.search(text)) or "my order" in text.lower():
        return None
    if not tools or tools[-1].name not in POINTABLE:
        return None
    item = pointed_item(messages)
    if item is None and tools[-1].name == "get_product_details":
        item = pointed_item(messages[:last_user]) or {}
    if item and asks_other_variant(text, item, _listed(tools[-1])):
        return None  # "I'll take it in blue": which item that is, a search with the option says
    if item is not None:
        return item
    return {} if offered or re.search(r"\b(?:it|this|that|them|these|those|one)\b", text, re.I) else None


_COMPARE = re.compile(r"\b(?:compare|comparison|differen(?:ce|t)|differ|vs\.?|versus|better|which (?:one|is))\b", re.I)
_FIRST_N = re.compile(r"\b(?:first|top)\s+(two|three|four|five|[2-5])\b", re.IGNORECASE)
_COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5}
_ANY_ORDINAL = re.compile(rf"\b({'|'.join(_ORDINALS)})\b", re.IGNORECASE)


def compared_items(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """The listed items the latest customer message asks to compare ("compare the first two", "what's the
    difference between the first and the third?", "item 9635758562 vs 4107812777"), in the order named;
    [] unless it names two or more of the latest listing's items (the model refused "compare the first
    two": it reads the listing's words, not its results)."""
    _, text, tools = _latest(messages)
    if not _COMPARE.search(text) or not tools or tools[-1].name != "search_products":
        return []
    latest = _listed(tools[-1])
    listed = {h["item_id"]: h for h in latest}
    if first := _FIRST_N.search(text):
        n = _COUNTS.get(first.group(1).lower()) or int(first.group(1))
        return latest[:n] if n <= len(latest) else []
    picked = [listed[i] for i in _ITEM_ID.findall(text) if i in listed]
    picked += [latest[_ORDINALS[o.lower()]] for o in _ANY_ORDINAL.findall(text) if _ORDINALS[o.lower()] < len(latest)]
    picked += [latest[int(n) - 1] for n in re.findall(r"#([1-9])\b", text) if int(n) <= len(latest)]
    unique = list({h["item_id"]: h for h in picked}.values())
    return unique if len(unique) >= 2 else []
