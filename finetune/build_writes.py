"""Guided training dialogues for the six order writes in customers' own words.

τ task instructions read like specifications ("For #W…, exchange Coffee Maker {...} to {...}"), and the
stage-3 window cut most of their writes, so the shipped model learned to answer an order lookup with the
order (a status reply) however the customer worded a cancel or a return. These dialogues teach the step
that was missing — details fetched, then the write the customer asked for — over store customers who are
in no evaluation task (dev tasks, the held-out sample) and in no conversation of the suite:

sign-in (email or name + zip, in the same message or after the agent asks) → `get_order_details` → the
write with grounded arguments (the reason the customer gave, the item they named, the variant with the
option they asked for, their own payment method) → the policy layer's confirmation → "yes" or "no" →
the grounded outcome. Replies are `assistant.replies` renderings, exactly as the guided agent speaks.
"""

import json
import random
import re
import tempfile
from pathlib import Path
from typing import Any

from assistant.dialogues import Dialogue
from assistant.evaluation import held_out_sample, load_tasks
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PolicySession
from assistant.replies import ACTS, grounded_reply
from assistant.runtime import system_prompt
from assistant.store import FreshStores, Store, get_pack
from assistant.tools import ToolContext, ToolRegistry

ASK_ACCOUNT = next(a.text for a in ACTS if a.act == "ask_account")
CANCEL = [
    ("I want to cancel order {order}, I accidentally ordered it.", "ordered by mistake"),
    ("please cancel {order}, it was a mistake", "ordered by mistake"),
    ("I ordered {order} by mistake, can you cancel it?", "ordered by mistake"),
    ("cancel my order {order} please, I placed it by mistake", "ordered by mistake"),
    ("I don't need order {order} anymore, please cancel it", "no longer needed"),
    ("can you cancel {order}? I changed my mind and no longer need it", "no longer needed"),
    ("I'd like to cancel my order {order}, I no longer need the stuff", "no longer needed"),
    ("Please cancel {order}. Don't need it any more.", "no longer needed"),
    # the situation, not the action: what customers write when they only want their money back
    ("I won't be home when {order} arrives, so I don't want to receive it. I want a full refund.", "no longer needed"),
    ("I found the same thing cheaper somewhere else, I want a full refund for {order}", "no longer needed"),
    ("I placed {order} by accident, please make sure it never ships", "ordered by mistake"),
    ("order {order} was a mistake, I just want my money back before it ships", "ordered by mistake"),
]
RETURN = [
    "I want to return the {item} from order {order}.",
    "The {item} in order {order} arrived broken, I want my money back.",
    "can I send back the {item} from {order}? it doesn't fit",
    "I'd like a refund for the {item} in order {order}, I don't like it",
    "order {order}: the {item} is damaged, please return it",
    "The {item} I got in order {order} doesn't work properly, I want a full refund.",
    "the {item} from {order} is faulty, I've tried everything, I want my money back",
    "I'm not happy with the {item} from order {order} and want to send it back",
]
RETURN_TO = " Please refund it to my {method}."
EXCHANGE = [
    "I'd like to exchange the {item} in order {order} for the {value} one.",
    "can I swap the {item} from {order} for {value}?",
    "The {item} from order {order} is wrong, I want it in {value} instead.",
    "please exchange my {item} (order {order}) for one in {value}",
]
MODIFY_ITEMS = [
    "In my pending order {order} I want the {item} in {value} instead.",
    "can you change the {item} in order {order} to {value}?",
    "for order {order}, please switch the {item} to the {value} version",
]
MODIFY_PAYMENT = [
    "For my order {order} I want to pay with my {method} instead.",
    "can I change the payment of order {order} to my {method}?",
    "please charge order {order} to my {method}",
    "I'd rather pay for {order} with my {method}",
    "switch the payment on my pending order {order} to the {method}",
    "can order {order} be paid by {method} instead of what I used?",
]
MODIFY_ADDRESS = [
    "Please ship my order {order} to {address} instead.",
    "I moved. Can you send order {order} to {address}?",
    "change the delivery address of {order} to {address}",
    "I gave the wrong address for {order}, it should go to {address}",
    "could you deliver my pending order {order} to {address} instead?",
    "please update the shipping address on order {order}: {address}",
    "I'm not at my old place anymore, my order {order} should go to {address}",
    "wrong address on my pending order {order}! send it to {address}",
]
EMAIL = ["my email is {email}. ", "Hi, I'm {email}. ", "hello, {email} here. "]
NAME = ["I'm {first} {last}, zip {zip}. ", "My name is {first} {last} and my zip is {zip}. "]
IDENTITY = ["my email is {email}", "{first} {last}, zip {zip}", "it's {email}"]
STREETS = ["Maple Avenue", "Cedar Lane", "Pine Street", "Elm Road", "Birch Court", "Willow Way", "Lake Drive"]
CITIES = [("Denver", "CO", "80202"), ("Portland", "OR", "97201"), ("Boston", "MA", "02108"), ("Tampa", "FL", "33602")]
# as customers write them (assistant.guidance.SOURCE_WORDS is what the decoder matches, lower-cased)
SOURCE_WORDS = {"gift_card": "gift card", "paypal": "PayPal", "credit_card": "credit card"}


def evaluation_users(train_tasks: Path) -> set[str]:
    """Users of the evaluation tasks beside the training file (tasks_dev.json) and of its held-out sample."""
    out: set[str] = set()
    for path in Path(train_tasks).parent.glob("tasks_*.json"):
        tasks = load_tasks(path)
        if path.resolve() == Path(train_tasks).resolve():
            tasks = [tasks[i] for i in held_out_sample(len(tasks))]
        out |= {t.user_id for t in tasks}
    return out


def suite_users(users: dict[str, dict[str, Any]], suite: Path | None) -> set[str]:
    """Store customers whose email or full name the conversation suite mentions."""
    if suite is None or not Path(suite).is_file():
        return set()
    text = json.dumps(json.loads(Path(suite).read_text(encoding="utf-8"))).lower()
    full = {u: f"{d['name']['first_name']} {d['name']['last_name']}".lower() for u, d in users.items()}
    return {u for u, d in users.items() if d["email"].lower() in text or full[u] in text}


def _method_words(method: dict[str, Any]) -> str:
    words = SOURCE_WORDS.get(method.get("source", ""), "card")
    if method.get("source") == "credit_card" and method.get("last_four"):
        return f"{method.get('brand', 'card')} ending in {method['last_four']}"
    return words


def _other_variant(store: Store, item: dict[str, Any], rng: random.Random) -> tuple[str, str] | None:
    """(new item id, the one option value the customer names): an available variant of the same product
    that differs from the item in exactly that option."""
    product = store.product(item["product_id"]) or {"variants": {}}
    choices = []
    for vid, v in product["variants"].items():
        if vid == item["item_id"] or not v.get("available"):
            continue
        diff = [k for k, val in v["options"].items() if item["options"].get(k) != val]
        if len(diff) == 1:
            key, value = diff[0], str(v["options"][diff[0]])
            said = value if key == "color" else rng.choice([f"{key} {value}", f"{value} {key}"])
            choices.append((vid, said))
    return rng.choice(sorted(choices)) if choices else None


Plan = tuple[str, ToolCall]  # (customer wording, the write)


def _plan(kind: str, store: Store, user: dict, order: dict, rng: random.Random) -> Plan | None:
    oid, methods = order["order_id"], user.get("payment_methods", {})
    paid = order["payment_history"][0]["payment_method_id"] if order.get("payment_history") else None
    items = order["items"]
    item = rng.choice(items)
    name = item["name"].lower()
    if kind == "cancel":
        text, reason = rng.choice(CANCEL)
        return text.format(order=oid), ToolCall("cancel_pending_order", {"order_id": oid, "reason": reason})
    if kind == "return":
        if paid is None or sum(i["name"] == item["name"] for i in items) > 1:
            return None
        text = rng.choice(RETURN).format(item=name, order=oid)
        method = paid
        gift = [m for m, d in methods.items() if d.get("source") == "gift_card"]
        if gift and rng.random() < 0.3:
            method = gift[0]
        if method != paid or rng.random() < 0.3:
            text += RETURN_TO.format(method=_method_words(methods[method]))
        args = {"order_id": oid, "item_ids": [item["item_id"]], "payment_method_id": method}
        return text, ToolCall("return_delivered_order_items", args)
    if kind in ("exchange", "modify_items"):
        if paid is None or sum(i["name"] == item["name"] for i in items) > 1:
            return None
        other = _other_variant(store, item, rng)
        if other is None:
            return None
        new_id, value = other
        templates = EXCHANGE if kind == "exchange" else MODIFY_ITEMS
        text = rng.choice(templates).format(item=name, order=oid, value=value)
        tool = "exchange_delivered_order_items" if kind == "exchange" else "modify_pending_order_items"
        args = {"order_id": oid, "item_ids": [item["item_id"]], "new_item_ids": [new_id], "payment_method_id": paid}
        return text, ToolCall(tool, args)
    if kind == "modify_payment":
        others = [m for m in methods if m != paid]
        if not others:
            return None
        method = rng.choice(sorted(others))
        text = rng.choice(MODIFY_PAYMENT).format(order=oid, method=_method_words(methods[method]))
        return text, ToolCall("modify_pending_order_payment", {"order_id": oid, "payment_method_id": method})
    if kind == "modify_address":
        city, state, zip_code = rng.choice(CITIES)
        street = f"{rng.randint(10, 999)} {rng.choice(STREETS)}"
        suite = f"Apt {rng.randint(1, 40)}" if rng.random() < 0.5 else ""
        if not suite:
            return None  # the schema needs an address2 copied from the customer's words
        address = ", ".join((street, suite, city, f"{state} {zip_code}", "USA"))
        args = {
            "order_id": oid,
            "address1": street,
            "address2": suite,
            "city": city,
            "state": state,
            "country": "USA",
            "zip": zip_code,
        }
        text = rng.choice(MODIFY_ADDRESS).format(order=oid, address=address)
        return text, ToolCall("modify_pending_order_address", args)
    return None


KINDS = {
    "cancel": "pending",
    "return": "delivered",
    "exchange": "delivered",
    "modify_items": "pending",
    "modify_payment": "pending",
    "modify_address": "pending",
}
WEIGHTS = {"cancel": 3, "return": 3, "exchange": 2, "modify_items": 2, "modify_payment": 2, "modify_address": 1}


def guided_writes(
    store_name: str,
    n: int,
    excluded_users: set[str],
    seed: int = 0,
    max_items: int = 3,
) -> list[Dialogue]:
    rng = random.Random(seed)
    pack, registry = get_pack(store_name), ToolRegistry()
    out: list[Dialogue] = []
    with tempfile.TemporaryDirectory(prefix="shopassist-writes-") as tmp:
        stores = FreshStores(pack, Path(tmp))
        with stores.open() as store:
            users = sorted((u, d) for u, d in store.users().items() if u not in excluded_users)
            orders = store.orders()
        kinds = [k for k, w in WEIGHTS.items() for _ in range(w)]
        attempts = 0
        while users and len(out) < n and attempts < n * 20:
            attempts += 1
            kind = rng.choice(kinds)
            user_id, user = rng.choice(users)
            mine = [orders[o] for o in user["orders"] if o in orders]
            mine = [o for o in mine if o["status"] == KINDS[kind] and len(o["items"]) <= max_items]
            if not mine:
                continue
            with stores.open() as store:
                order = rng.choice(mine)
                plan = _plan(kind, store, user, order, rng)
                if plan is None:
                    continue
                dialogue = _play(store, registry, store_name, user_id, user, plan, rng, f"guided-write-{len(out)}")
                if dialogue is not None:
                    out.append(dialogue)
    return out


def _play(store, registry, store_name, user_id, user, plan: Plan, rng, dialogue_id) -> Dialogue | None:
    text, write = plan
    session = PolicySession(registry, ToolContext(store))
    messages = [ChatMessage("system", system_prompt(store_name))]
    name = user["name"]
    slots = {
        "email": user["email"],
        "first": name["first_name"],
        "last": name["last_name"],
        "zip": user["address"]["zip"],
    }
    by_email = rng.random() < 0.5
    auth = (
        ToolCall("find_user_id_by_email", {"email": user["email"]})
        if by_email
        else ToolCall(
            "find_user_id_by_name_zip",
            {"first_name": name["first_name"], "last_name": name["last_name"], "zip": slots["zip"]},
        )
    )
    calls: list[ToolCall] = [auth, ToolCall("get_order_details", {"order_id": write.arguments["order_id"]}), write]
    style = rng.random()
    if style < 0.7:  # identity and request in one message
        who = rng.choice(EMAIL if by_email else NAME).format(**slots)
        turns = [(who + text, calls)]
    elif style < 0.85:  # request first, the agent asks for the account
        identity = rng.choice([i for i in IDENTITY if ("email" in i) == by_email]).format(**slots)
        turns = [(text, []), (identity, calls)]
    else:  # sign in first, then the request
        who = rng.choice(EMAIL if by_email else NAME).format(**slots).strip()
        turns = [(who, [auth]), (text, calls[1:])]
    for said, steps in turns:
        messages.append(ChatMessage("user", said))
        if not steps:
            messages.append(ChatMessage("assistant", ASK_ACCOUNT))
            continue
        start = len(session.trace)
        for call in steps:
            observation = session.call(call.name, call.arguments)
            messages += [ChatMessage("assistant", tool_call=call), ChatMessage("tool", observation, name=call.name)]
        if session.trace[start:] and session.trace[-1].outcome in ("error", "refused", "invalid"):
            return None
        messages.append(ChatMessage("assistant", grounded_reply(session.trace[-1], session)))
    if session.pending is None:
        return None
    answer = rng.choice(
        ["yes", "yes please", "yes, go ahead", "ok do it"]
        if rng.random() < 0.75
        else ["no", "no, leave it", "actually no, keep it as it is"]
    )
    messages.append(ChatMessage("user", answer))
    settled = session.on_customer_message(answer)
    if settled is None:
        return None
    messages.append(ChatMessage("tool", settled, name=session.trace[-1].name))
    messages.append(ChatMessage("assistant", grounded_reply(session.trace[-1], session)))
    return Dialogue(dialogue_id, messages, "writes", store_name, customer=user_id, meta={"write": write.name})


def write_requests(
    store_name: str, per_kind: int, train_tasks: Path, suite: Path | None, seed: int = 0
) -> list[tuple[str, str]]:
    """(request, the write it asks for): `per_kind` wordings of each write over the same customers as
    `write_dialogues`, without the dialogue around them (balanced examples for the write reader)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="shopassist-writes-") as tmp:
        with FreshStores(get_pack(store_name), Path(tmp)).open() as store:
            excluded = evaluation_users(train_tasks) | suite_users(store.users(), suite)
            users = sorted((u, d) for u, d in store.users().items() if u not in excluded)
            orders = store.orders()
            for kind, status in KINDS.items():
                found = attempts = 0
                while found < per_kind and attempts < per_kind * 50:
                    attempts += 1
                    _, user = rng.choice(users)
                    mine = [orders[o] for o in user["orders"] if o in orders and orders[o]["status"] == status]
                    plan = _plan(kind, store, user, rng.choice(mine), rng) if mine else None
                    if plan is not None:
                        text, oid = plan[0], plan[1].arguments["order_id"]
                        if rng.random() < 0.4:  # customers often say "my order" and give the number when asked
                            text = re.sub(rf"(?:my |pending )*(?:order )?{re.escape(oid)}", "my order", text)
                        out.append((text, plan[1].name))
                        found += 1
    return out


def write_dialogues(store_name: str, n: int, train_tasks: Path, suite: Path | None, seed: int = 0) -> list[Dialogue]:
    """`n` write dialogues over customers in no evaluation task and not named in `suite`."""
    with (
        tempfile.TemporaryDirectory(prefix="shopassist-writes-") as tmp,
        FreshStores(get_pack(store_name), Path(tmp)).open() as store,
    ):
        excluded = evaluation_users(train_tasks) | suite_users(store.users(), suite)
    return guided_writes(store_name, n, excluded, seed)
