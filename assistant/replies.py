"""Grounded replies: every fact a guided agent tells the customer comes from a tool result of this turn.

When the model chooses to reply after a tool ran this turn, the reply is rendered from that result
(products found, an order's status and items, the policy layer's confirmation summary, what a write
did, why something was refused). With no fresh result the model picks one of a few conversation acts
(greeting, asking for the account, asking what they look for, hand-over, ...) by its own probabilities;
none states a fact. So a reply can neither invent a price or an order status, nor say results were
found when there were none, nor end mid-sentence or in tool-call markup.
"""

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.messages import ToolCall
from assistant.policy import NEEDS_AUTH, PolicySession, ToolCallRecord, address_text
from retrieval.catalog import LOW_PRICES_FIRST

if TYPE_CHECKING:
    from assistant.references import ListingQuestion

HANDOVER = "transfer_to_human_agents"


@dataclass(frozen=True)
class ReplyOption:
    text: str
    act: str
    action: ToolCall | None = None  # chosen → the agent runs it (the hand-over) and ends the turn


ACTS = (
    ReplyOption(
        "Hello! I can help you find products, or with an order you placed: its status, cancelling, returning, "
        "exchanging or changing it. What can I do for you?",
        "greet",
    ),
    ReplyOption(
        "I can help with that. First I need to find your account: what is your email address? If you can't give "
        "it, your first name, last name and zip code will do.",
        "ask_account",
    ),
    ReplyOption(
        "What are you looking for? Tell me the kind of product, your budget and any colour, size or other option "
        "you need, and I will search our catalog.",
        "ask_product",
    ),
    ReplyOption(
        "Which order is it about, and what would you like to do with it? You can give me the order number, such "
        "as #W0000000.",
        "ask_order",
    ),
    ReplyOption(
        "Of course. I'm passing you to a human colleague now; they will continue this conversation here.",
        "handover",
        ToolCall(HANDOVER, {"summary": "The customer asked for a human agent."}),
    ),
    ReplyOption(
        "Sorry, that is not something I can help with here. I can search our catalog and help with orders, or pass "
        "you to a human colleague.",
        "cannot",
    ),
    ReplyOption("You're welcome! Is there anything else I can help you with?", "thanks"),
)


_HELLO = r"(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day))(?: there)?"
_HOW = r"how are you(?: doing)?(?: today)?"
_THANKS = (
    r"(?:(?:ok|okay|great|perfect|awesome|cool|nice)[ ,]+)?(?:many )?(?:thanks|thank you|thx|cheers)"
    r"(?: (?:so|very) much| a lot)?(?: for (?:your|the|all the) help)?"
)
_BYE = r"(?:(?:that'?s|that is) (?:all|it)(?: for now)?|bye|goodbye|have a (?:good|nice) day)"
COURTESIES = (
    ("greet", re.compile(rf"^(?:{_HELLO}(?:[ ,]+{_HOW})?|{_HOW})$")),
    ("goodbye", re.compile(rf"^(?:{_THANKS}[ ,]+)?{_BYE}(?:[ ,]+{_THANKS})?$")),
    ("thanks", re.compile(rf"^{_THANKS}$")),
)
# a goodbye is answered with one, not asked "anything else?" (not one of the model's acts)
GOODBYE = ReplyOption("You're welcome! Thank you for shopping with us, and have a nice day.", "goodbye")

ORDERS_LISTED = "Your orders:"  # how replies that list the customer's orders begin that list


def _said(text: str) -> str:
    """A short message as its patterns read it: lower case, punctuation and spacing collapsed."""
    return re.sub(r"[\s!.?]+", " ", text.lower().replace("\u2019", "'")).strip(" ,")


def courtesy(text: str) -> ReplyOption | None:
    """The act answering a message that is only a greeting or only thanks / goodbye ("hello", "thanks,
    that's all"). Among the acts the shipped model answered "hello" and "thanks!" with "that is not
    something I can help with"; a message with anything more in it is the model's to answer."""
    said = _said(text)
    act = next((act for act, pattern in COURTESIES if pattern.match(said)), None)
    return next(o for o in (*ACTS, GOODBYE) if o.act == act) if act else None


ASK_ADDRESS = ReplyOption(
    "What is the new address? Please give the street and number, any apartment or suite, the city, state, zip "
    "code and country.",
    "ask_address",
)  # asked by the agent itself when an address change has no address yet (not one of the model's acts)


def _options(options: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items())


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _natural(text: str) -> tuple:
    """Sizes 7, 8, 10 in that order; words after numbers, alphabetically."""
    number = _NUMBER.fullmatch(text)
    return (number is None, float(text) if number else 0.0, text)


LISTING_OFFER = "Would you like one of these?"  # a "yes" to either is a wish to buy (`references.wants_to_buy`)
ITEM_OFFER = "Would you like this one, or should I look for something else?"
_ORDER_ELSEWHERE = (
    "I can't place new orders in this chat{what}: please order in our store with the item number. I can keep "
    "helping you find products, or with orders you have already placed."
)


def buy_elsewhere(item: dict) -> str:
    """The reply to a wish to buy a shown item: this chat has no tool that places an order (τ-retail's tools
    change orders already placed), so it says so and where, with the item's number and price."""
    if not item.get("item_id"):
        return _ORDER_ELSEWHERE.format(what="")
    stock = "in stock" if item.get("available", True) else "out of stock at the moment"
    what = f" ({item.get('name', 'item')} item {item['item_id']}, {_money(float(item['price']))}, {stock})"
    return _ORDER_ELSEWHERE.format(what=what)


def compare_items(items: list[dict]) -> str:
    """Listed items side by side: each with its options and price, then what differs, what they share and
    which is cheapest, from the listing's own results."""
    # the listing's bullets, not numbers: "the second one" still means the listing's second
    text = "Side by side:\n" + "\n".join(_listing_line(i) for i in items) + "\n"
    if len({i["name"] for i in items}) > 1:
        text += "They are different products."
    else:
        keys = list(dict.fromkeys(k for i in items for k in i.get("options", {})))
        values = {k: [str(i.get("options", {}).get(k, "-")) for i in items] for k in keys}
        differ = [f"{k} ({' / '.join(v)})" for k, v in values.items() if len(set(v)) > 1]
        same = [f"{k} {v[0]}" for k, v in values.items() if len(set(v)) == 1]
        text += f"They differ in {_series(differ)}." if differ else "They have the same options."
        if same:
            text += f" {'All' if len(items) > 2 else 'Both'} have {_series(same)}."
    prices = sorted(items, key=lambda i: i["price"])
    if prices[0]["price"] < prices[1]["price"]:
        saving = prices[1]["price"] - prices[0]["price"]
        text += f" The cheapest is item {prices[0]['item_id']}, by {_money(saving)}."
    return f"{text} {LISTING_OFFER}"


def _listing_line(hit: dict) -> str:
    return f"- {hit['name']} ({_options(hit.get('options', {}))}) — {_money(hit['price'])}, item {hit['item_id']}"


def _series(values: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _constraints(arguments: dict) -> str:
    """The search's filters in words, as the customer stated them: ' (under $60.00, color blue)'."""
    parts = []
    if arguments.get("max_price") is not None:
        parts.append(f"under {_money(float(arguments['max_price']))}")
    if arguments.get("min_price") is not None:
        parts.append(f"from {_money(float(arguments['min_price']))}")
    said = {"yes": "{k}", "no": "not {k}"}  # a yes/no option reads as the feature ("waterproof")
    parts += [said.get(str(v).lower(), "{k} {v}").format(k=k, v=v) for k, v in (arguments.get("options") or {}).items()]
    if LOW_PRICES_FIRST.search(str(arguments.get("query", ""))):
        parts.append("lowest price first")
    return f" ({', '.join(parts)})" if parts else ""


def _nearest(arguments: dict, store) -> str:
    """Why a search of one product type found nothing: the store has none in stock, or the bound or options
    removed them — with the cheapest one in stock."""
    category = arguments.get("category")
    if not category or store is None:
        return ""
    stocked = [
        (v["price"], p["name"], v["options"])
        for p in store.products().values()
        if str(p.get("category", p["name"])).lower() == str(category).lower()
        for v in p["variants"].values()
        if v.get("available")
    ]
    if not stocked:
        return f" We have no {category} in stock at the moment."
    price, name, options = min(stocked, key=lambda s: s[0])
    return f" The lowest-priced {name} in stock is {_money(price)} ({_options(options)})."


NEAREST_COUNT = 3  # items listed in place of a search that found nothing


def nearest_search(arguments: dict) -> dict | None:
    """The search listing the lowest-priced items of the type in stock, for a search of one type whose bounds
    or options found nothing (None for any other). Listed, not only named, so the shopper can point at them:
    after "nothing under $50; the lowest-priced Yoga Mat in stock is $92.53", "which one is cheapest?" and
    "is it non-slip?" each ran the same search again."""
    category = arguments.get("category")
    if not category or not any(arguments.get(k) for k in ("max_price", "min_price", "options")):
        return None
    return {"query": f"cheapest {category}", "category": category, "k": NEAREST_COUNT}


def nothing_found(empty: ToolCallRecord, nearest: ToolCallRecord) -> str:
    """The reply to a search that found nothing (`empty`), followed by its `nearest_search`."""
    category = empty.arguments["category"]
    said = f'I found nothing in stock matching "{category}"{_constraints(empty.arguments)}.'
    hits = json.loads(nearest.output)
    if not hits:
        return f"{said} We have no {category} in stock at the moment. Can I look for something else?"
    lines = "\n".join(_listing_line(h) for h in hits)
    return (
        f"{said} The lowest-priced {category} in stock:\n{lines}\n"
        "Would you like one of these, or should I try other words, another option or a wider budget?"
    )


def _search(record: ToolCallRecord, session: PolicySession | None = None) -> str:
    hits = json.loads(record.output)
    # a search of one type is named by it, not by the words searched ("do you have waterproof boots?")
    query = record.arguments.get("category") or record.arguments.get("query", "")
    wanted = _constraints(record.arguments)
    if not hits:
        nearest = _nearest(record.arguments, session.ctx.store if session is not None else None)
        return (
            f'I found nothing in stock matching "{query}"{wanted}.{nearest} Would you like me to try other words, '
            "another option or a wider budget?"
        )
    lines = "\n".join(_listing_line(h) for h in hits)
    return f'Here is what I found for "{query}"{wanted}:\n{lines}\n{LISTING_OFFER}'


# each status-bound write (assistant.guidance.STATUS_FOR) as done to an order, and what an order in each
# status allows instead
_DONE_AS = {
    "cancel_pending_order": "cancelled",
    "modify_pending_order_address": "changed",
    "modify_pending_order_items": "changed",
    "modify_pending_order_payment": "changed",
    "return_delivered_order_items": "returned",
    "exchange_delivered_order_items": "exchanged",
}
_NEEDS = {w: "delivered" if w.endswith("_delivered_order_items") else "pending" for w in _DONE_AS}
_INSTEAD = {
    "delivered": "I can help you return or exchange items from it instead.",
    "pending": "I can cancel it, or change its items, address or payment, instead.",
    "processed": "It is being prepared for shipping; once it is delivered, its items can be returned or exchanged.",
}


def wrong_status(order: dict, asked: Collection[str]) -> str | None:
    """Why what the customer asked for cannot be done to this order, when its status allows none of it
    (said after the order's status): "This order cannot be cancelled any more: only pending orders can be." The model
    looked a delivered order up for "cancel my order #W..." and listed its items, saying nothing of why."""
    bound = [w for w in asked if w in _DONE_AS]
    status = order.get("status")
    if not bound or any(_NEEDS[w] == status for w in bound):
        return None
    verbs = " or ".join(dict.fromkeys(_DONE_AS[w] for w in bound))
    needs = " or ".join(dict.fromkeys(_NEEDS[w] for w in bound))
    if status == "cancelled":
        return f"A cancelled order cannot be {verbs}."
    still = "yet" if status == "pending" else "any more"
    why = f"This order cannot be {verbs} {still}: only {needs} orders can be."
    return f"{why} {_INSTEAD[status]}" if status in _INSTEAD else why


def _order(record: ToolCallRecord, asked: Collection[str] = ()) -> str:
    o = json.loads(record.output)
    items = "; ".join(f"{i['name']} ({_options(i['options'])}, {_money(i['price'])})" for i in o.get("items", []))
    paid = sum(p["amount"] for p in o.get("payment_history", []) if p["transaction_type"] == "payment")
    text = f"Order {o['order_id']} is {o['status']}: {items}. Total paid {_money(paid)}."
    tracking = [t for f in o.get("fulfillments", []) for t in f.get("tracking_id", [])]
    if tracking:
        text += f" Tracking number: {', '.join(tracking)}."
    why = wrong_status(o, asked)
    if why:  # its details, then why the request cannot be done and what can
        return f"{text} {why} What would you like to do?"
    return text + " What would you like to do with it?"


def _user(record: ToolCallRecord, session: PolicySession) -> str:
    u = json.loads(record.output)
    orders = []
    for order_id in u.get("orders", []):
        order = session.ctx.store.order(order_id) or {}
        names = ", ".join(i["name"] for i in order.get("items", []))
        orders.append(f"{order_id} ({order.get('status', 'unknown')}: {names})")
    return f"{ORDERS_LISTED} {'; '.join(orders) or 'none'}. Which one is it about?"


def not_held(names: list[str], statuses: Collection[str], session: PolicySession) -> str:
    """The reply to a change naming products none of the customer's orders it could apply to holds."""
    kind = " or ".join(sorted(statuses))
    user = session.ctx.store.user(session.user_id or "") or {}
    orders = []
    for order_id in user.get("orders", []):
        order = session.ctx.store.order(order_id) or {}
        if order.get("status") in statuses:
            orders.append(f"{order_id} ({', '.join(i['name'] for i in order.get('items', []))})")
    what = " or ".join(names)
    if not orders:
        return f"I couldn't find a {what} in your orders: you have no {kind} orders. Is it another order?"
    listed = "; ".join(orders)
    return f"I couldn't find a {what} in your {kind} orders. Your {kind} orders: {listed}. Which item do you mean?"


def which_orders(orders: dict[str, list[str]], wanted: Collection[str]) -> str:
    """Asking which order or item a change is about (`guidance.unnamed_orders`), with the orders it can be."""
    ask = next((_WHICH[w] for w in wanted if w in _WHICH), "Which order is it about?")
    listed = "; ".join(f"{o} ({', '.join(names)})" for o, names in orders.items())
    return f"{ask} The orders it can be: {listed}."


_WHICH = {
    "modify_pending_order_items": "Which item would you like to change?",
    "return_delivered_order_items": "Which item would you like to return?",
    "exchange_delivered_order_items": "Which item would you like to exchange?",
    "cancel_pending_order": "Which order would you like to cancel?",
    "modify_pending_order_address": "Which order should go to the new address?",
    "modify_pending_order_payment": "Which order's payment would you like to change?",
}


def _signed_in(record: ToolCallRecord, session: PolicySession) -> str:
    user = session.ctx.store.user(record.output.strip()) or {}
    first = user.get("name", {}).get("first_name", "")
    orders = []
    for order_id in user.get("orders", []):
        order = session.ctx.store.order(order_id) or {}
        orders.append(f"{order_id} ({order.get('status', 'unknown')})")
    listed = f" {ORDERS_LISTED} {', '.join(orders)}." if orders else ""
    return f"Thank you{', ' + first if first else ''}, I found your account.{listed} How can I help?"


ANYTHING_ELSE = "Is there anything else I can help you with?"


def _outcome(record: ToolCallRecord) -> str | None:
    """What a confirmed write did, from its result: "order #W1 is now cancelled"."""
    try:
        order = json.loads(record.output)
    except json.JSONDecodeError:
        return None
    if not isinstance(order, dict):
        return None
    if record.name == "modify_user_address":
        return "your default address is updated"
    oid, status = order.get("order_id"), order.get("status")
    # what changed, not only the status: "order #W9300146 is now pending" after an address change read as if
    # nothing had happened
    if record.name == "modify_pending_order_address" and isinstance(order.get("address"), dict):
        return f"order {oid} will now be shipped to {address_text(order['address'])}"
    if record.name == "modify_pending_order_payment":
        return f"order {oid} is now paid with {record.arguments.get('payment_method_id')}"
    if record.name == "modify_pending_order_items":
        new = set(record.arguments.get("new_item_ids", []))
        held = [i for i in order.get("items", []) if i.get("item_id") in new]
        items = [f"{i.get('name')} ({_options(i.get('options', {}))})" for i in held]
        return f"order {oid} now has {_series(items)}" if items else f"order {oid} is changed"
    if status in ("return requested", "exchange requested"):
        return f"the {status.split()[0]} of order {oid} is requested"
    return f"order {oid} is now {status}"


def _done(record: ToolCallRecord) -> str:
    outcome = _outcome(record)
    return f"Done: {outcome}. {ANYTHING_ELSE}" if outcome else "Done."


def already_done(records: list[ToolCallRecord], lead: str = "That is done already") -> str:
    """The reply to a request said again word for word after its changes were made, or to "did it go
    through?" after they were (`asks_if_done`): what they did."""
    outcomes = list(dict.fromkeys(o for o in map(_outcome, records) if o))
    return f"{lead}: {'; '.join(outcomes) or 'your change is made'}. {ANYTHING_ELSE}"


_ASKS_DONE = re.compile(
    r"^(?:so |and |ok |okay )?(?:"
    r"(?:did|has|have|is|was) (?:it|that|this|everything|my (?:order|change|cancellation|return|exchange)|"
    r"the (?:order|change|cancellation|return|exchange|refund)) (?:all )?"
    r"(?:go through|gone through|went through|work|worked|been (?:done|processed|made)|done|processed|happen|"
    r"happened|complete|completed|cancell?ed|canceled|returned|exchanged|changed|updated)"
    r"|is (?:it|that|everything) (?:all )?(?:done|sorted)"
    r"|did you (?:do|cancel|change|update|process) (?:it|that|this)"
    r")(?: now| yet| then)?$"
)


def asks_if_done(text: str) -> bool:
    """Whether a message only asks whether the change went through ("did it go through?", "is it done?").
    After a confirmed cancellation the model answered "did it go through?" with "that is not something
    I can help with"."""
    return _ASKS_DONE.match(_said(text)) is not None


def _error(record: ToolCallRecord) -> str:
    text = record.output.removeprefix("Error:").strip()
    if record.output == NEEDS_AUTH:
        return ACTS[1].text
    if record.name in ("find_user_id_by_email", "find_user_id_by_name_zip"):
        return (
            "I couldn't find an account with those details. Could you check your email address, or give me your "
            "first name, last name and zip code?"
        )
    text = (text[0].lower() + text[1:]).rstrip(".") if text else "it failed"
    return f"I couldn't do that: {text}."


def _product(record: ToolCallRecord) -> str:
    p = json.loads(record.output)
    variants = [v for v in p.get("variants", {}).values() if v.get("available")]
    shown = "; ".join(f"{_options(v['options'])} — {_money(v['price'])}" for v in variants[:6])
    return f"{p['name']}: {len(variants)} options in stock. {shown}."


def _asked_options(question: str, keys: list[str]) -> list[str]:
    """The option names a question says ("what colors", "is it waterproof?", "which sizes")."""
    words = " " + " ".join(re.findall(r"[a-z0-9/]+", question.lower().replace("colour", "color"))) + " "
    return [k for k in keys if any(f" {k.lower()}{end} " in words for end in ("", "s", "es"))]


# what a question about a shown item says besides what it asks ("what about the first one?", "how much is it?")
_POINTING = frozenset(
    """the this that these those one ones item items option options product products first second third fourth
    fifth last number what whats which how tell more about show details detail info information please can could
    would you your are does did its about for with and then okay thanks again listed shown price cost costs much
    priced was were will any get have has there here they them see come comes available stock sell sells offer
    look looks kind kinds type types version model made like know want need give explain describe all both
    most least""".split()
)
_QUESTION = re.compile(r"\?|^\s*(?:how|what|does|do|is|are|can|will|which|has|have)\b", re.IGNORECASE)


def _not_listed(question: str, product: dict) -> bool:
    """Whether a question about an item asks something its listing does not give ("how long does the battery
    last?", "is it good for running?" of a smart watch): words beyond pointing at it, its name and options."""
    rows = [{"name": product.get("name", ""), **v} for v in product.get("variants", {}).values()]
    return not_in_listing(question, rows)


def not_in_listing(question: str, rows: list[dict]) -> bool:
    """Whether a question about listed items (each with its `name` and `options`) asks something the listing
    does not give: words beyond pointing at them, their names and their options' names and values."""
    if not _QUESTION.search(question):
        return False
    options = (f"{k} {v}" for r in rows for k, v in r.get("options", {}).items())
    known = set(re.findall(r"[a-z]+", " ".join([*(str(r.get("name", "")) for r in rows), *options]).lower()))
    words = re.findall(r"[a-z]+", question.lower().replace("colour", "color"))
    return any(len(w) > 2 and w not in _POINTING and w not in known and w.rstrip("s") not in known for w in words)


def about_listing(question: "ListingQuestion") -> str:
    """The reply to a question about the listing just shown (`references.listing_question`): which to choose
    is the shopper's call, so what sets the items apart; a value they do not come in is said with the values
    they do; something the catalog does not give is said to be missing. All three repeated the listing."""
    items = question.items
    if question.kind == "recommend":
        return (
            "Which one suits you best depends on what you need: tell me your budget or the options that matter to "
            f"you and I will narrow it down. {compare_items(items)}"
        )
    name = items[0].get("name", "item") if len({i.get("name") for i in items}) == 1 else "these items"
    if question.kind == "lacks":
        values = "; ".join(f"{key} {_series(v)}" for key, v in question.lacks.items() if v)
        stocked = f" In stock it comes in {values}." if values else ""
        return f"Our {name} does not come in {' or '.join(question.asked)}.{stocked} Would you like one of these?"
    keys = list(dict.fromkeys(k for i in items for k in i.get("options", {})))
    lines = "\n".join(_listing_line(i) for i in items)
    listed = f"its {_series(keys)}, and its price" if keys else "its price"
    return f"Our catalog does not say that about these items. For each it lists {listed}:\n{lines}\n{LISTING_OFFER}"


def item_details(record: ToolCallRecord, item_id: str, question: str = "", lead: str = "") -> str:
    """The reply about one listed item the shopper pointed at, from its product's details: the item first,
    then the product's other options in stock. A `question` naming options ("is it waterproof?", "what
    colors does it come in?") is answered with those: the item's value and the values in stock. `lead`
    comes first ("The cheapest of those listed: ")."""
    product = json.loads(record.output)
    variants = product.get("variants", {})
    item = variants.get(item_id)
    if item is None:  # not a variant of the product looked up: its details as they are
        return _product(record)
    stock = "in stock" if item.get("available") else "out of stock at the moment"
    keys = list(dict.fromkeys(k for v in variants.values() for k in v.get("options", {})))
    asked = _asked_options(question, keys)
    if not asked and not lead and _not_listed(question, product):  # said, not a list that ignores the question
        lead = "Our catalog does not say that about this item. What it lists: "
    shown = {k: item["options"][k] for k in asked if k in item["options"]} if asked else item["options"]
    text = f"{lead}{product['name']}, item {item_id}: {_options(shown)} — {_money(item['price'])}, {stock}."
    if asked:
        in_stock = [v["options"] for v in variants.values() if v.get("available")]
        for key in asked:
            values = sorted({str(o[key]) for o in in_stock if key in o}, key=_natural)
            if set(values) == {"no", "yes"}:
                text += f" In stock it comes both {key} and not {key}."
            elif values:  # what the shopper can choose now
                text += f" In stock it comes in {key} {_series(values)}."
        return f"{text} {ITEM_OFFER}"
    others = [v for k, v in variants.items() if k != item_id and v.get("available")]
    if others:
        shown = "; ".join(f"{_options(v['options'])} — {_money(v['price'])}, item {v['item_id']}" for v in others[:4])
        more = f" (and {len(others) - 4} more)" if len(others) > 4 else ""
        text += f" Other {product['name']} options in stock{more}: {shown}."
    return f"{text} {ITEM_OFFER}"


def grounded_reply(record: ToolCallRecord, session: PolicySession, asked: Collection[str] = ()) -> str:
    """The reply to a tool result of this turn, from that result only (and, for an order, the writes the
    customer `asked` for that its status rules out)."""
    if record.outcome == "awaiting confirmation":
        summary = session.pending.summary if session.pending else record.output.rsplit("reply yes: ", 1)[-1]
        return f"Here is what I will do: {summary[0].upper() + summary[1:]} Shall I go ahead? Please reply yes."
    if record.outcome == "declined":
        return "Alright, I haven't changed anything. What would you like to do instead?"
    if record.outcome == "confirmed":
        return _done(record)
    if record.outcome != "ok":
        return _error(record)
    if record.name == "search_products":
        return _search(record, session)
    if record.name == "get_order_details":
        return _order(record, asked)
    if record.name == "get_user_details":
        return _user(record, session)
    if record.name in ("find_user_id_by_email", "find_user_id_by_name_zip"):
        return _signed_in(record, session)
    if record.name == "get_product_details":
        return _product(record)
    if record.name == "list_all_product_types":
        return "We sell: " + ", ".join(sorted(json.loads(record.output))) + "."
    if record.name == "rank_products":
        ranked = json.loads(record.output)
        return "These suit you best, in order: " + ", ".join(f"item {r['item_id']}" for r in ranked[:5]) + "."
    return "Done."


def reply_options(
    session: PolicySession, this_turn: list[ToolCallRecord], asked: Collection[str] = ()
) -> list[ReplyOption]:
    """What the agent may say now: the grounded reply to this turn's last result, else the conversation acts
    (asking for the account only while nobody is signed in, asking for the order only after)."""
    if this_turn:
        return [ReplyOption(grounded_reply(this_turn[-1], session, asked), "grounded")]
    signed_in = session.user_id is not None
    return [
        a for a in ACTS if not (a.act == "ask_account" and signed_in) and not (a.act == "ask_order" and not signed_in)
    ]
