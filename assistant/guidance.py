"""What the model may do next, decided by code: the legal tools at this step, with identifiers grounded.

A 135M model makes fewer and easier decisions when the system carries the rest (SOP-agent's "only the
valid tools at each step"; Thinker's business logic as state). `legal_tools` reads the policy session
and the conversation and returns the tool schemas the decoder may choose from now:

- before sign-in: the sign-in tools (only with something to copy: an email the customer typed, or a
  five-digit zip), catalog tools and the hand-over; while a write awaits the customer's yes: none (a
  reply); a tool that failed or was refused this turn, or a read already made this turn: not again;
- identifiers take only grounded values, as schema enums: `user_id` is the signed-in customer,
  `order_id` one of their orders in the status the tool needs, `item_ids` items of the order chosen in
  the same call, `new_item_ids` available variants of those items' products (one per item),
  `payment_method_id` the customer's own methods, product ids those the conversation has seen; where
  the customer's words pick among them they are narrowed to those: the order's items whose product they
  named (all of them), the variants with the option values they wrote, the method they named;
- strings the customer supplies (email, names, zip, address, a search query, option values) are copied
  from the customer's own messages (`x-copy`: the decoder may only continue a substring of them).

`write_step` carries a write the customer asked for (assistant.intents' write head): it looks up the
orders the write may be about, then offers only that write on them; `settle_families` first turns "I
want a full refund" into the cancellation of a pending order or the return of a delivered one, since
the order's status, not the wording, decides which tool does what they want.

The schemas stay valid JSON schemas plus two keys the local decoder reads: `x-copy` (copy sources) and
`x-refine` (a function that narrows the remaining properties once earlier arguments are chosen); they
never reach a remote endpoint.
"""

import copy
import json
import re
from collections.abc import Callable, Collection
from typing import Any

from assistant.intents import FAMILIES
from assistant.masking import EMAIL
from assistant.messages import ChatMessage
from assistant.policy import AUTH_TOOLS, OPEN_TOOLS, PolicySession, ToolCallRecord
from retrieval.catalog import LOW_PRICES_FIRST, named_product_type

# tools a guided model never needs: free-form scratch space a small model loops on
LEFT_OUT = frozenset({"think", "calculate"})
CATALOG_RESULTS = frozenset({"search_products", "rank_products", "list_all_product_types"})
STATUS_FOR = {
    "cancel_pending_order": "pending",
    "modify_pending_order_address": "pending",
    "modify_pending_order_items": "pending",
    "modify_pending_order_payment": "pending",
    "return_delivered_order_items": "delivered",
    "exchange_delivered_order_items": "delivered",
}
# writes of chosen items, where a product named must be one the order holds (not "cancel it, I found a
# cheaper laptop": a whole order's change may name other products)
ITEM_WRITES = ("modify_pending_order_items", "return_delivered_order_items", "exchange_delivered_order_items")
# the family of each write the same words may ask for (see settle_families)
FAMILY_OF = {m: f for f, members in FAMILIES.items() for m in members}
ONCE_PER_TURN = frozenset(
    {"search_products", "list_all_product_types", "get_user_details", "rank_products", "transfer_to_human_agents"}
)
ORDER_ID = re.compile(r"#W\d{7}\b")
ALL_ORDERS = re.compile(r"\b(?:my|all|the|our)\s+(?:\w+\s+)?orders\b", re.IGNORECASE)  # "my recent orders"
ONE_ORDER = re.compile(
    r"\b(?:my|our)\s+(?:\w+\s+)?(?:order|package|parcel|delivery|shipment)\b(?!s)|\btrack(?:ing)?\b", re.IGNORECASE
)
_UNITS = re.compile(r"\b(\d+)[ -]?(?:feet|foot)\b")  # "5-feet" is the catalog's "5 ft"
# how customers name a payment method's kind (the store's `source`)
SOURCE_WORDS = {"gift_card": "gift card", "paypal": "paypal", "credit_card": "credit card"}
FAILED = ("error", "refused", "invalid")


_SIGN_IN_WORDS = frozenset(
    "hi hello hey there good morning afternoon evening thanks thank you please ok okay sure yes here it's its it "
    "is i'm im i am this my and the name first last email e-mail mail address zip code".split()
)


def only_signs_in(text: str, user: dict[str, Any] | None) -> bool:
    """Whether a message gives nothing but sign-in details (an email, their name, a zip) and courtesies:
    "my email is ...", "Hi, I'm Yusuf Rossi, zip 19122". After finding the account, the model went on to
    describe one of the customer's orders, picked by itself, to someone who had asked for nothing yet."""
    names = {str(n).lower() for n in (user or {}).get("name", {}).values()}
    words = re.findall(r"[a-z'-]+", EMAIL.sub(" ", text.lower()))
    return not ORDER_ID.search(text) and all(w in _SIGN_IN_WORDS or w in names for w in words)


def customer_texts(messages: list[ChatMessage], last: int = 6) -> list[str]:
    """The customer's recent messages: what identifiers and search words may be copied from."""
    return [m.content for m in messages if m.role == "user" and m.content.strip()][-last:]


def thread_texts(messages: list[ChatMessage], start: int, last: int = 6) -> list[str]:
    """The customer's messages of the request that began at messages[start]: from it on, with the ones
    before it back to the last catalog result (what was said before a search was shopping, not the
    order the request is about: "a t-shirt under $60", then "return the jigsaw puzzle")."""
    begin = start
    while begin > 0 and not (messages[begin - 1].role == "tool" and messages[begin - 1].name in CATALOG_RESULTS):
        begin -= 1
    return customer_texts(messages[begin:], last)


_EDGE = "\"'.,!?;:()[]{}<>*"
# per field: the most words a copied value spans, what it must look like (format, never intent), and how
# many candidates are kept (newest message first; each is scored, so short lists are fast). Address parts
# come late in a long sentence, so they keep every run.
STREET = r"^\d+[A-Za-z]? [A-Za-z0-9]*[A-Za-z]{2,}"
ADDRESS_WRITES = frozenset({"modify_pending_order_address", "modify_user_address"})
_ZIP_SAID = re.compile(r"\bzip(?:\s*code)?\W{0,3}(\d{5})\b", re.IGNORECASE)  # "zip 32100. Please ..." is no street
FIELDS: dict[str, tuple[int, str | None, int]] = {
    "email": (1, r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", 48),
    "first_name": (1, r"^[A-Za-z][A-Za-z'-]*$", 48),
    "last_name": (1, r"^[A-Za-z][A-Za-z'-]*$", 48),
    "zip": (1, r"^\d{5}$", 48),
    "query": (4, None, 48),
    # a street address: its number, then a street name ("12 Oak Street", "1 5th Avenue"), not "19122 I"
    "address1": (6, STREET, 400),
    "address2": (3, r"^(?!\d+$)", 400),  # "Suite 3", not the zip
    "city": (3, None, 400),
    "state": (2, None, 400),
    "country": (2, r"^(?!(?!US$|UK$)[A-Z]{2}$)[A-Za-z][A-Za-z. ]*$", 400),  # "USA", not the state's "TX"
}


def spans(texts: list[str], max_words: int, pattern: str | None = None, limit: int = 48) -> list[str]:
    """Runs of up to `max_words` consecutive words of the customer's messages (newest first), outer
    punctuation stripped: the values a copied argument may take."""
    out: list[str] = []
    for text in reversed(texts):
        words = [w.strip(_EDGE) for w in text.split()]
        for i in range(len(words)):
            for n in range(1, max_words + 1):
                run = words[i : i + n]
                if len(run) < n or not all(run):
                    break
                value = " ".join(run)
                if '"' in value or "\\" in value or (pattern and not re.match(pattern, value)):
                    continue
                out.append(value)
    return list(dict.fromkeys(out))[:limit]


def _seen_product_ids(messages: list[ChatMessage]) -> list[str]:
    ids: list[str] = []
    for m in messages:
        if m.role != "tool" or m.name not in ("search_products", "get_order_details"):
            continue
        try:
            data = json.loads(m.content)
        except json.JSONDecodeError:
            continue
        rows = data if isinstance(data, list) else data.get("items", []) if isinstance(data, dict) else []
        ids += [str(r["product_id"]) for r in rows if isinstance(r, dict) and "product_id" in r]
    return list(dict.fromkeys(ids))


def _fetched_orders(messages: list[ChatMessage]) -> set[str]:
    """Orders whose details a tool returned in this conversation: the ones it is about."""
    out = set()
    for m in messages:
        if m.role == "tool" and m.name == "get_order_details" and m.content.startswith("{"):
            try:
                out.add(json.loads(m.content)["order_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return out


def _seen_item_ids(messages: list[ChatMessage]) -> list[str]:
    ids: list[str] = []
    for m in messages:
        if m.role == "tool" and m.name == "search_products":
            try:
                ids += [str(r["item_id"]) for r in json.loads(m.content) if isinstance(r, dict)]
            except (json.JSONDecodeError, TypeError, KeyError):
                continue
    return list(dict.fromkeys(ids))


def _enum(schema: dict[str, Any], values: list[str]) -> None:
    schema.clear()
    schema.update({"type": "string", "enum": list(dict.fromkeys(values))})


_GENERIC_HEADS = frozenset({"set", "kit"})  # "Luggage Set": "set" is too common a word to name it


def named_products(said: str, names: Collection[str]) -> tuple[set[str], bool]:
    """The product names among `names` the customer's words name, and whether by the whole name ("running
    shoes"); where none is named whole, by a two-word name's last word ("the shoes I bought", "my chair").
    Matched whole only, "I want to exchange the shoes I bought" let the model exchange an office chair."""
    whole = {n for n in names if named_product_type(said, {n})}
    if whole:
        return whole, True
    text = f" {' '.join(re.findall(r'[a-z0-9-]+', said.lower()))} "
    heads = {n: n.lower().split()[-1] for n in names if len(n.split()) > 1}
    forms = {n: {h, f"{h}s", f"{h}es", h.removesuffix("s")} for n, h in heads.items() if h not in _GENERIC_HEADS}
    return {n for n, fs in forms.items() if any(f" {f} " in text for f in fs if f)}, False


def _items_refiner(store, orders: dict[str, dict], new_items: bool, texts: list[str]) -> Callable:
    """Once `order_id` is chosen, `item_ids` are that order's items (exactly the ones whose product the
    customer named, where they named any); once they are, `new_item_ids` are available variants of the
    same products, other than the item itself, one per item (those with the most option values the
    customer wrote, where they wrote any)."""
    said = " ".join(texts)

    def refine(chosen: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
        props = dict(props)
        order = orders.get(chosen.get("order_id", ""))
        if order is None:
            return props
        if "item_ids" in props and "item_ids" not in chosen:
            ids = [it["item_id"] for it in order["items"]]
            names, whole = named_products(said, {it["name"] for it in order["items"]})
            named = [it["item_id"] for it in order["items"] if it["name"] in names]
            props["item_ids"] = {
                "type": "array",
                "items": {"type": "string", "enum": named or ids},
                # every item named whole ("the running shoes and the office chair"); one of those a word may mean
                "minItems": (len(set(named)) if whole else 1) or 1,
                "uniqueItems": True,
            }
        if new_items and "item_ids" in chosen and "new_item_ids" not in chosen:
            by_item = {it["item_id"]: it for it in order["items"]}
            per_item = []  # one enum per position: a variant of that item's own product
            for item_id in chosen["item_ids"]:
                item = by_item.get(item_id, {})
                product = store.product(item.get("product_id", "")) or {"variants": {}}
                variants = {v: d for v, d in product["variants"].items() if d.get("available") and v != item_id}
                ids = _most_said(variants, item.get("options", {}), said) or list(variants)
                per_item.append({"type": "string", "enum": ids or [item_id]})
            props["new_item_ids"] = {"type": "array", "prefixItems": per_item, "items": False}
        return props

    return refine


def _named_methods(methods: dict[str, dict], texts: list[str]) -> list[str]:
    """The customer's payment methods they named: by kind ("gift card", "PayPal") or a card's last four."""
    said = " ".join(texts).lower()
    return [
        m
        for m, d in methods.items()
        if SOURCE_WORDS.get(d.get("source", ""), "\0") in said
        or (d.get("last_four") and re.search(rf"\b{re.escape(str(d['last_four']))}\b", said))
    ]


def _most_said(variants: dict[str, dict], current: dict[str, str], said: str) -> list[str]:
    """The variants with the most option values the customer wrote that differ from the item's own."""
    words = re.findall(r"[a-z0-9.-]+", _UNITS.sub(r"\1 ft", said.lower()))
    text = f" {' '.join(words)} "
    scores = {}
    for v, d in variants.items():
        changed = [str(x).lower() for k, x in d.get("options", {}).items() if current.get(k) != x]
        scores[v] = sum(f" {x} " in text for x in changed if x not in ("yes", "no"))
    best = max(scores.values(), default=0)
    return [v for v, n in scores.items() if n == best] if best else []


def ground(
    tool: dict[str, Any], session: PolicySession, messages: list[ChatMessage], texts: list[str] | None = None
) -> dict[str, Any] | None:
    """The tool's schema with every identifier and copied string grounded (copied from `texts`, by default
    the customer's recent messages); None if nothing grounds it."""
    fn = copy.deepcopy(tool["function"])
    name, props = fn["name"], fn["parameters"].get("properties", {})
    texts = customer_texts(messages) if texts is None else texts
    parsed = None
    if name in ADDRESS_WRITES:  # every address field from the address itself: not the zip they signed in with
        texts = address_block(texts)
        parsed = parse_address(texts)
    store, user_id = session.ctx.store, session.user_id
    user = store.user(user_id) if user_id else None
    orders = customer_orders(session)
    catalog: list[dict] = []

    def products() -> list[dict]:  # the catalog, read once per grounding and only if a key needs it
        if not catalog:
            catalog.extend(store.products().values())
        return catalog

    for key, schema in list(props.items()):
        if key == "user_id":
            if user_id is None:
                return None
            _enum(schema, [user_id])
        elif key == "order_id":
            status = STATUS_FOR.get(name)
            if status is None:  # a read: their orders, or a number the customer typed (the policy refuses others')
                values = list(orders) + [m for t in texts for m in ORDER_ID.findall(t)]
            else:  # a write: an order of theirs in the right status that this conversation has looked up
                seen = _fetched_orders(messages)
                values = [o for o, d in orders.items() if d["status"] == status and o in seen]
            if not values:
                return None
            _enum(schema, values)
        elif key == "payment_method_id":
            if user is None:
                return None
            methods = user.get("payment_methods", {})
            _enum(schema, _named_methods(methods, texts) or list(methods))
        elif key == "product_id":
            values = _seen_product_ids(messages)
            if not values:
                return None
            _enum(schema, values)
        elif key == "item_ids" and name == "rank_products":
            values = _seen_item_ids(messages)
            if not values:
                return None
            props[key] = {"type": "array", "items": {"type": "string", "enum": values}, "minItems": 1}
        elif key == "category" and name == "search_products":
            said = " ".join(texts).lower()  # a product type the customer named (hiking boots → Hiking Boots)
            types = sorted({p["name"] for p in products() if p["name"].lower() in said})
            if not types:
                del props[key]
                continue
            props[key] = {"type": "string", "enum": types, "description": schema.get("description", "")}
        elif key == "options" and name == "search_products":
            # an option is grounded twice: the customer wrote the value, and the catalog has it for that key
            known = option_values(products())
            said = [w for w in spans(texts, 2) if w.lower() in known]
            keys = sorted({k for w in said for k in known[w.lower()]})
            if not keys:
                del props[key]
                continue
            props[key] = {
                "type": "object",
                "propertyNames": {"enum": keys},
                "additionalProperties": {"type": "string", "x-copy": said},
            }
        elif key in ("item_ids", "new_item_ids"):
            continue  # narrowed by x-refine once the order is chosen
        elif schema.get("type") == "string" and "enum" not in schema and name != "transfer_to_human_agents":
            # email, names, zip, address lines, the search query: the customer's own words
            values = spans(texts, *FIELDS.get(key, (3, None, 48)))
            if parsed is not None and key in parsed:  # the field the address itself puts there
                values = [parsed[key]]
            elif key == "address1":
                zips = _stated_zips(texts)
                values = [v for v in values if v.split()[0] not in zips]
            if key == "email":  # an address the store did not find is not tried again; the next one may be
                values = [v for v in values if v.lower() not in _unknown_emails(session)]
            if not values:
                if key in fn["parameters"].get("required", []):
                    return None
                del props[key]
                continue
            schema["x-copy"] = values
    if "item_ids" in props and name in STATUS_FOR:
        fn["parameters"]["x-refine"] = _items_refiner(store, orders, "new_item_ids" in props, texts)
    return {"type": "function", "function": fn}


def _unknown_emails(session: PolicySession) -> set[str]:
    return {
        str(r.arguments.get("email", "")).lower()
        for r in session.trace
        if r.name == "find_user_id_by_email" and r.outcome in FAILED
    }


def legal_tools(
    session: PolicySession,
    messages: list[ChatMessage],
    this_turn: list[ToolCallRecord],
    texts: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The tools the model may call at this step, grounded; empty when only a reply is legal."""
    if session.pending is not None:
        return []
    # a failed sign-in by email stays legal: its address is no longer offered, another one typed may be
    failed = {r.name for r in this_turn if r.outcome in FAILED and r.name != "find_user_id_by_email"}
    declined = any(r.outcome == "declined" for r in this_turn)
    called = {r.name for r in this_turn}
    fetched = {r.arguments.get("order_id") for r in this_turn if r.name == "get_order_details"}
    out = []
    for tool in session.registry.schemas():
        name = tool["function"]["name"]
        if name in LEFT_OUT or name in failed or (name in ONCE_PER_TURN and name in called):
            continue
        if name in AUTH_TOOLS and session.user_id is not None:
            continue
        if session.registry.get(name).writes and (declined or session.user_id is None):
            continue
        if session.user_id is None and name not in AUTH_TOOLS and name not in _OPEN:
            continue
        grounded = ground(tool, session, messages, texts)
        if grounded is None:
            continue
        if name == "get_order_details":
            enum = grounded["function"]["parameters"]["properties"]["order_id"]["enum"]
            enum[:] = [o for o in enum if o not in fetched]
            if not enum:
                continue
        out.append(grounded)
    return out


_OPEN = OPEN_TOOLS - LEFT_OUT  # the policy layer's open tools, less the scratch tools


def asks_all_orders(text: str) -> bool:
    """Whether a message asks about all of the customer's orders ("the status of my orders"), naming none."""
    return not ORDER_ID.search(text) and ALL_ORDERS.search(text) is not None


def asks_unnamed_order(text: str) -> bool:
    """Whether a message asks about one order without saying which ("where is my order?", "track my package")."""
    return not ORDER_ID.search(text) and ONE_ORDER.search(text) is not None


def customer_orders(session: PolicySession, statuses: Collection[str] | None = None) -> dict[str, dict]:
    """The signed-in customer's orders by id (those in `statuses`, where given); none before sign-in."""
    store = session.ctx.store
    user = store.user(session.user_id) if session.user_id else None
    orders = ((o, store.order(o)) for o in (user or {}).get("orders", []))
    return {o: d for o, d in orders if d is not None and (statuses is None or d["status"] in statuses)}


def orders_holding_named(text: str, session: PolicySession) -> list[str]:
    """The signed-in customer's orders holding a product the message names ("the tea kettle one")."""
    orders = customer_orders(session)
    named, _ = named_products(text, {it["name"] for o in orders.values() for it in o["items"]})
    return [o for o, order in orders.items() if any(it["name"] in named for it in order["items"])]


def names_own_product(text: str, session: PolicySession) -> bool:
    """Whether a message names, as theirs, a product the signed-in customer's orders hold: "where's my office
    chair?", "the tea kettle I ordered". After a return, "also, where's my office chair?" searched the catalog
    for office chairs (a product question starts there) instead of looking up the order holding one."""
    held = {it["name"] for o in customer_orders(session).values() for it in o["items"]}
    for name in held:
        n = re.escape(name.lower())
        mine = rf"\b(?:my|our)\s+(?:[\w-]+\s+){{0,2}}{n}(?:s|es)?\b"
        got = rf"\b{n}(?:s|es)?\s+(?:that\s+)?(?:i|we)\s+(?:ordered|bought|purchased|got|received)\b"
        if re.search(f"{mine}|{got}", text.lower()):
            return True
    return False


def read_only(legal: list[dict[str, Any]], session: PolicySession, text: str) -> list[dict[str, Any]]:
    """`legal` for a message that asks for no change: no writes, and order look-ups narrowed to the orders
    the message names, where it names any (asked whether #W8770097 had shipped, the model read every
    other order of the account and described the last one); one about all their orders ("what is the
    status of my orders?") reads the account, whose reply lists every order with its status (the model
    read one order and described it)."""
    account = [t for t in legal if t["function"]["name"] == "get_user_details"]
    if account and asks_all_orders(text):
        return account
    # one asked about without saying which, of several, reads the account: its reply lists them all and asks
    # (the model picked one)
    if account and not orders_named(text, session) and asks_unnamed_order(text) and len(customer_orders(session)) > 1:
        return account
    return narrow_lookups([t for t in legal if not session.registry.get(t["function"]["name"]).writes], session, text)


def orders_named(text: str, session: PolicySession) -> set[str]:
    """The orders a message names: those it types, else the customer's orders holding a product it names
    ("is the tea kettle shipped?")."""
    return set(ORDER_ID.findall(text)) or set(orders_holding_named(text, session))


def narrow_lookups(legal: list[dict[str, Any]], session: PolicySession, text: str) -> list[dict[str, Any]]:
    """`legal` with order look-ups narrowed to the orders the message names (`orders_named`), where it names
    any: "where's my office chair?" read an order holding a garden hose and earbuds."""
    named = orders_named(text, session)
    out = []
    for tool in legal:
        if tool["function"]["name"] == "get_order_details" and named:
            enum = tool["function"]["parameters"]["properties"]["order_id"]["enum"]
            enum[:] = [o for o in enum if o in named]
            if not enum:
                continue
        out.append(tool)
    return out


def write_step(
    legal: list[dict[str, Any]],
    session: PolicySession,
    messages: list[ChatMessage],
    wanted: set[str],
    texts: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The step that carries a write the customer asked for: the wanted writes whose order is known, each
    narrowed to it; else a look-up of an order it may be about; empty when neither is legal.

    The orders a write may be about are the customer's orders in its status: those the customer typed,
    else those holding a product they named, else all. Known once every one of them has been looked up
    (the model then picks among them by their items, and writes every other argument). An order they
    typed whose status rules every wanted write out is looked up too: its reply says why (`wrong_status`);
    after finding the account, the model answered "cancel my order #W2378156" (delivered) with "How can I
    help?"."""
    if not wanted or session.user_id is None:
        return []
    texts = customer_texts(messages) if texts is None else texts
    seen = _fetched_orders(messages)
    writes, unseen = [], []
    for tool in legal:
        name = tool["function"]["name"]
        if name not in wanted or name not in STATUS_FOR:
            continue
        about = _orders_about(session, texts, STATUS_FOR[name])
        if about and set(about) <= seen:
            narrowed = copy.deepcopy(tool)
            narrowed["function"]["parameters"]["properties"]["order_id"]["enum"] = about
            writes.append(narrowed)
    if writes:
        return writes
    for status in {STATUS_FOR[w] for w in wanted if w in STATUS_FOR}:
        unseen += [o for o in _orders_about(session, texts, status) if o not in seen]
    if not unseen:  # an order they typed whose status rules the change out: looked up, so the reply says why
        unseen = [o for o in _typed_orders(session, texts) if o not in seen]
    look = next((t for t in legal if t["function"]["name"] == "get_order_details"), None)
    if look is None or not unseen:
        return []
    narrowed = copy.deepcopy(look)
    enum = narrowed["function"]["parameters"]["properties"]["order_id"]["enum"]
    enum[:] = [o for o in enum if o in unseen]
    return [narrowed] if enum else []


# "Yusuf Rossi, 19122"
_NAME_THEN_ZIP = re.compile(r"\b[A-Z][a-z'-]+\s+[A-Z][a-z'-]+\W{1,3}(?:zip(?:\s*code)?\W{0,3})?\d{5}\b")


def sign_in_typed(text: str) -> set[str]:
    """The sign-in tools a message's own details are for: an email typed, or a zip said as one ("zip 19122")
    or after a name ("I'm Yusuf Rossi, 19122")."""
    tools = {"find_user_id_by_email"} if EMAIL.search(text) else set()
    if _ZIP_SAID.search(text) or _NAME_THEN_ZIP.search(text):
        tools.add("find_user_id_by_name_zip")
    return tools


def _stated_zips(texts: list[str]) -> set[str]:
    return {z for t in texts for z in _ZIP_SAID.findall(t)}


def address_block(texts: list[str]) -> list[str]:
    """The newest message's address: its text from the street address on ("12 Oak Street, Austin TX
    78701, USA"), where the address fields are copied from. Given the whole thread, the model wrote the
    zip the customer had signed in with (19122) into the new address. No street address: `texts` as is."""
    zips = _stated_zips(texts)
    for text in reversed(texts):
        words = [w.strip(_EDGE) for w in text.split()]
        for i in range(len(words) - 1):
            if words[i] not in zips and re.match(STREET, f"{words[i]} {words[i + 1]}"):
                return [" ".join(text.split()[i:])]
    return texts


_US_ADDRESS = re.compile(
    r"(?<![\w#])(?P<address1>\d+[A-Za-z]? [A-Za-z0-9 .'-]*[A-Za-z][A-Za-z0-9.'-]*),\s*"
    r"(?:(?P<address2>(?i:apt|apartment|suite|ste|unit|floor|fl|room|#)\.?\s*[A-Za-z0-9-]+),\s*)?"
    r"(?P<city>[A-Za-z][A-Za-z .'-]*?),?\s+(?P<state>[A-Z]{2}),?\s+(?P<zip>\d{5})\b"
    r"(?:,?\s*(?P<country>(?i:USA|United States|US))\b)?"
)


def parse_address(texts: list[str]) -> dict[str, str] | None:
    """The newest message's US address written the usual way ("45 Oak Street, [Suite 3,] Austin, TX 73301[,
    USA]"), field by field; None for any other form (the fields are then copied from its words as before).
    Free to copy any run of words, the model wrote address2 "Austin" and city "73301" for the first."""
    for text in reversed(texts):
        match = _US_ADDRESS.search(text)
        if match is not None:
            fields = {k: v.strip() for k, v in match.groupdict(default="").items()}
            return fields | {"country": fields["country"] or "USA"}  # a state and zip: the store's country
    return None


def address_missing(wanted: set[str] | dict[str, int], texts: list[str]) -> bool:
    """Whether a wanted address change has no street address in the customer's words to write: its
    proposal would copy other words into the address ("ship order #W6247578 to 19122 I, to, to")."""
    return bool(ADDRESS_WRITES & set(wanted)) and address_block(texts) is texts


def _typed_orders(session: PolicySession, texts: list[str]) -> list[str]:
    """The customer's own orders they typed, in any status."""
    theirs = set((session.ctx.store.user(session.user_id) or {}).get("orders", []))
    return [o for o in dict.fromkeys(o for t in texts for o in ORDER_ID.findall(t)) if o in theirs]


def products_not_held(session: PolicySession, texts: list[str], statuses: Collection[str]) -> list[str]:
    """Catalog products a change names whole when it types no order and names nothing the customer's orders
    in `statuses` hold: "can I return the laptop I bought?" from a customer who bought none got a return of
    their earbuds proposed (every delivered order was the model's to choose from)."""
    if session.user_id is None or not statuses or any(ORDER_ID.search(t) for t in texts):
        return []
    said = " ".join(texts)
    if named_products(said, {i["name"] for d in customer_orders(session, statuses).values() for i in d["items"]})[0]:
        return []
    return sorted(n for n in _catalog_names(session) if named_product_type(said, {n}))


_ENDS_IN = re.compile(r"\b(?:ends?|ending|finish(?:es|ing)?)\s+(?:in|with)\s+(?:#\s*)?(\d{1,7})\b", re.IGNORECASE)


def _ending_in(texts: list[str], orders: Collection[str]) -> list[str]:
    """Those of `orders` whose number ends in digits the customer said it ends in ("ends in 66")."""
    endings = {e for t in texts for e in _ENDS_IN.findall(t)}
    return [o for o in orders if any(o.endswith(e) for e in endings)]


def unnamed_orders(session: PolicySession, texts: list[str], wanted: Collection[str]) -> dict[str, list[str]]:
    """The customer's orders a change may be about, with their items' names, when the change names none of
    their orders and no product any of them holds, and more than one could be meant (an item, for an item
    change; an order, for a change of a whole order): "I want to return something", then an email, got a
    return of the model's pick among two orders' items proposed, and "the sunglasses" then declined it; "I
    want to cancel an order" got one of two pending orders. Empty otherwise (the model picks among what the
    words narrowed)."""
    statuses = {STATUS_FOR[w] for w in wanted if w in STATUS_FOR}
    if session.user_id is None or not statuses or any(ORDER_ID.search(t) for t in texts):
        return {}
    theirs = customer_orders(session)
    if _ending_in(texts, theirs):
        return {}
    held = {i["name"] for d in theirs.values() for i in d["items"]}
    if named_products(" ".join(texts), held)[0]:  # in any order: which change it is may still be open
        return {}
    orders = {o: [i["name"] for i in d["items"]] for o, d in theirs.items() if d["status"] in statuses}
    items = any(w in ITEM_WRITES for w in wanted)
    return orders if (sum(map(len, orders.values())) if items else len(orders)) > 1 else {}


def _catalog_names(session: PolicySession) -> set[str]:
    """The catalog's product types ("Office Chair", "E-Reader")."""
    return {p["name"] for p in session.ctx.store.products().values()}


# "show me e-readers", "do you sell yoga mats?", "I need a new laptop": asking to see a kind of product
_BROWSE = re.compile(
    r"\b(?:show\s+me|do\s+you\s+(?:have|sell|carry|stock)|looking\s+for|got\s+any|i(?:'m|\s+am)\s+after"
    r"|i(?:\s+need|\s+want|\s+would\s+like|'d\s+like)\s+(?:a|an|some|new)\b)",
    re.IGNORECASE,
)
# what makes it about an order instead: "my laptop arrived broken, I need a new one", "I want a refund"
_ABOUT_ORDERS = re.compile(
    r"#W\d|\b(?:my|our)\s+(?:\w+\s+)?(?:order|orders|purchase|package|delivery)\b|\b(?:return|exchange|refund"
    r"|cancel|replace|swap|modify|deliver\w*|arriv\w*|ordered|bought|purchased|received|broken|damaged)\b",
    re.IGNORECASE,
)


def asks_for_products(text: str, session: PolicySession) -> bool:
    """Whether a message asks to see a kind of product the catalog has and says nothing of an order. The
    intent reader was unsure of "show me e-readers" (its shopping chance 0.39), and the model answered it
    by asking for the customer's account."""
    if not _BROWSE.search(text) or _ABOUT_ORDERS.search(text):
        return False
    return named_product_type(text, _catalog_names(session)) is not None


def _orders_about(session: PolicySession, texts: list[str], status: str) -> list[str]:
    return _orders_meant(session, texts, status)[0]


def _orders_meant(session: PolicySession, texts: list[str], status: str) -> tuple[list[str], bool]:
    """The customer's orders in `status` a request may be about, and whether their words picked them (an
    order number they typed, or a product they named) rather than all orders in the status."""
    orders = customer_orders(session, (status,))
    typed = [o for t in texts for o in ORDER_ID.findall(t)]
    if typed:  # the orders they typed, if in the status (not another order: never theirs, or not in it)
        picked = [o for o in dict.fromkeys(typed) if o in orders]
        return picked, bool(picked)
    ending = _ending_in(texts, orders)
    if ending:  # "the order number ends in 66"
        return ending, True
    names, _ = named_products(" ".join(texts), {i["name"] for d in orders.values() for i in d["items"]})
    named = [o for o, d in orders.items() if names & {i["name"] for i in d["items"]}]
    return (named, True) if named else (list(orders), False)


def settle_families(wanted: dict[str, int], session: PolicySession, texts: list[str]) -> dict[str, int]:
    """The wanted writes with each family (assistant.intents.FAMILIES: "I want a full refund") replaced by
    the member for the order the customer means: the status of an order they typed or whose product they
    named, else the one status they have orders in; left out when that is still open (the model decides)."""
    settled = {w: at for w, at in wanted.items() if w not in FAMILIES}
    for family in (f for f in FAMILIES if f in wanted and session.user_id is not None):
        members = [m for m in FAMILIES[family] if m not in settled]
        meant = {m: _orders_meant(session, texts, STATUS_FOR[m]) for m in members}
        picked = [m for m in members if meant[m][1]] or [m for m in members if meant[m][0]]
        if len(picked) == 1:
            settled[picked[0]] = wanted[family]
    return settled


def option_values(products) -> dict[str, dict[str, str]]:
    """Every option value the products' variants have, lower-cased → {option key: catalog spelling}."""
    values: dict[str, dict[str, str]] = {}
    for p in products:
        for v in p["variants"].values():
            for k, val in v["options"].items():
                values.setdefault(str(val).lower(), {})[k] = str(val)
    return values


def yes_no_options(values: dict[str, dict[str, str]]) -> dict[str, tuple[str, str]]:
    """From `option_values`' result: option key → the catalog's spellings of (yes, no), for options whose
    only values are yes and no."""
    by_key: dict[str, dict[str, str]] = {}
    for value, keys in values.items():
        for key, spelled in keys.items():
            by_key.setdefault(key, {})[value] = spelled
    return {k: (s["yes"], s["no"]) for k, s in by_key.items() if set(s) == {"yes", "no"}}


def _said_feature(key: str, message: str) -> bool | None:
    """Whether the message asks for the feature `key` names (True), asks it away ("not waterproof",
    "non-waterproof", False) or does not name it (None); "water resistant" names "water resistance"."""
    stems = [re.escape(w[: max(4, len(w) - 3)]) + r"\w*" for w in key.lower().split()]
    found = re.search(r"\b(?:(not|non|no|without)[\s-]+)?" + r"[\s-]+".join(stems) + r"\b", message.lower())
    if found is None:
        return None
    return found.group(1) is None


_CHEAPER = re.compile(r"\b(?:cheaper|less expensive|lower price[sd]?|more affordable)\b", re.IGNORECASE)


def shown_prices(output: str) -> list[float]:
    """The prices a search result listed (none for an error or anything else)."""
    try:
        hits = json.loads(output)
    except ValueError:
        return []
    if not isinstance(hits, list):
        return []
    return [float(h["price"]) for h in hits if isinstance(h, dict) and isinstance(h.get("price"), int | float)]


def stated_filters(
    arguments: dict[str, Any],
    message: str,
    store,
    earlier: dict[str, Any] | None = None,
    shown_low: float | None = None,
) -> dict[str, Any]:
    """`_stated_filters`, and low prices first (`retrieval.catalog.LOW_PRICES_FIRST`) where the message asks for
    them or the earlier search of the same type did: for "what is the cheapest backpack you have?" the model
    searched "backpack" and the cheapest came last of five."""
    out = _stated_filters(arguments, message, store, earlier, shown_low)
    query = str(out.get("query", ""))
    if LOW_PRICES_FIRST.search(query):
        return out
    said = LOW_PRICES_FIRST.search(message)
    if said is None and earlier and earlier.get("category") and earlier.get("category") == out.get("category"):
        said = LOW_PRICES_FIRST.search(str(earlier.get("query", "")))
    return {**out, "query": f"{said.group(0).lower()} {query}".strip()} if said else out


def _stated_filters(
    arguments: dict[str, Any],
    message: str,
    store,
    earlier: dict[str, Any] | None = None,
    shown_low: float | None = None,
) -> dict[str, Any]:
    """A search's filters with what the customer's current message states: a price bound ("under $60"),
    the product type the query names (its category) and option values the catalog has for that type
    ("any in blue?" after t-shirts → color blue). These are the customer's constraints, read from their
    words; the model chose to search and what for. A value that fits two keys of the type is left out
    (ambiguous); the model's own filters stay. `earlier`: the conversation's previous search; a follow-up
    on the same type keeps its bounds and options unless this message restates them ("t-shirt under $60",
    then "any in blue?" → blue t-shirts under $60). A message naming another type than the model's query
    searches for that type with this message's words only. "Any cheaper ones?" with no bound of its own
    is under `shown_low`, the lowest price the previous search listed (it listed the same five again), or the
    price of the item whose details the shopper was shown since."""
    from assistant.requests import named_product_type, parse_request

    bounds = parse_request(message)
    if bounds.max_price is None and shown_low is not None and _CHEAPER.search(message):
        below = round(shown_low - 0.01, 2)
        if below > 0 and float(arguments.get("max_price") or below + 1) > below:
            arguments = {**arguments, "max_price": below}

    def with_bounds(out: dict[str, Any]) -> dict[str, Any]:  # the message's price bounds, unless already set
        for key, value, other in (
            ("max_price", bounds.max_price, "min_price"),
            ("min_price", bounds.min_price, "max_price"),
        ):
            if value is not None and out.get(other) is not None and float(out[other]) == float(value):
                del out[other]  # the model read the stated bound the wrong way round ("nothing over $400")
            if value is not None and key not in out:
                out[key] = int(value) if float(value).is_integer() else value
        return out

    out = with_bounds(dict(arguments))
    if store is None:
        return out
    products = list(store.products().values())
    names = {p["name"] for p in products}
    kind = named_product_type(str(out.get("query", "")), names)
    plain = re.fullmatch(r"[\w\s$.,!?'&/-]{1,200}", bounds.query) is not None  # words only, never markup
    named = named_product_type(message, names)
    if named is not None and kind is not None and named != kind and plain:
        # the customer now asks for another type ("waterproof hiking boots" after t-shirts): the model
        # copied the earlier search; this message's words and bounds replace it, nothing of it carries over
        out = with_bounds({"query": bounds.query})
        kind, earlier = named, None
    elif named is not None and kind is None and plain:
        # the model copied words that name no product ("any" of "any waterproof action cameras under
        # $400?"): the message names the type, its words are the query
        out["query"] = bounds.query
        kind = named
    if kind is None and named is None and earlier and earlier.get("query") and _refines(bounds, earlier, products):
        # only bounds and hedges ("something under $150 maybe?" after "a gift for my dad who loves camping"):
        # the same request, refined; the model's copy of these words searched water bottles and perfume
        out["query"] = earlier["query"]
        if earlier.get("category"):
            out.setdefault("category", earlier["category"])
        kind = named_product_type(out["query"], names)
    elif kind is None and plain and named is None:
        # a need, not a product ("a gift for my dad who loves coffee"): search the whole request, whose
        # words the type descriptions answer, not the few the model copied ("gift")
        out["query"] = bounds.query
    if kind is None:
        return out
    if "category" not in out:  # the query names a product type: only that type, so a bound can say "none"
        out["category"] = next(p.get("category", p["name"]) for p in products if p["name"] == kind)
    values = option_values(p for p in products if p["name"] == kind)
    options = dict(out.get("options") or {})
    for said in spans([message], 3):
        keys = values.get(said.lower(), {})
        if len(keys) == 1:
            ((key, value),) = keys.items()
            options.setdefault(key, value)
    for key, (yes, no) in yes_no_options(values).items():
        # a yes/no option is said by its name ("waterproof hiking boots"), never by its value
        if (said := _said_feature(key, message)) is not None:
            options.setdefault(key, yes if said else no)
    if earlier and earlier.get("category") == out.get("category"):
        for key in ("max_price", "min_price"):
            if key not in out and earlier.get(key) is not None:
                out[key] = earlier[key]
        options = {**(earlier.get("options") or {}), **options}
    if options:
        out["options"] = options
    return out


def refines_search(message: str, earlier: dict[str, Any], products: list[dict]) -> bool:
    """Whether `message` only refines the search with arguments `earlier` (`_refines`)."""
    from assistant.requests import parse_request

    return _refines(parse_request(message), earlier, products)


def _refines(bounds, earlier: dict[str, Any], products: list[dict]) -> bool:
    """Whether a message only refines the earlier search: bounds and hedges ("something under $150 maybe?"),
    or option values of the type it searched ("which ones are black?" after backpacks; the model searched
    those words, and found sunglasses)."""
    if bounds.refines:
        return True
    category = str(earlier.get("category") or "").lower()
    typed = [p for p in products if category and str(p.get("category", p["name"])).lower() == category]
    words = frozenset(w for value in option_values(typed) for w in re.findall(r"[a-z][a-z'-]*", value))
    return bool(words) and bounds.refines_with(words)


def grounded_numbers(arguments: dict[str, Any], texts: list[str], keys=("max_price", "min_price")) -> dict[str, Any]:
    """Drop price bounds the customer never stated (the model may only repeat a number they wrote), and a
    lower bound equal to the upper one (one stated number is one bound)."""
    stated = {float(n) for t in texts for n in re.findall(r"\d+(?:\.\d+)?", t.replace(",", ""))}
    out = {k: v for k, v in arguments.items() if k not in keys or (isinstance(v, int | float) and float(v) in stated)}
    if "min_price" in out and out.get("max_price") == out["min_price"]:
        del out["min_price"]
    return out
