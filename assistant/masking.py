"""Personal data out of logged dialogues: what `shopassist logs export` and `shopassist data dialogues --logs` write."""

import json
import re
from pathlib import Path
from typing import Any

from assistant.dialogues import Dialogue, append_dialogues, dialogue_from_dict, latest_revisions, load_dialogues

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PERSONAL_KEYS = (
    "first_name",
    "last_name",
    "address1",
    "address2",
    "city",
    "zip",
    "email",
    "user_id",
    "payment_method_id",
    "phone",
    "last_four",
)
# What customers type about themselves, whether or not a tool ever returned it (applied in this order)
TYPED = (
    (re.compile(r"\b(?:credit_card|debit_card|paypal|gift_card|bank_account|apple_pay)_\d+\b", re.I), "[payment]"),
    (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), "[card]"),  # a card number, with or without separators
    (
        re.compile(
            r"\b((?:card|visa|mastercard|amex)\s+)?(ending|ends|last (?:four|4)(?: digits)?)"
            r"(\s+(?:in|with|is|are))?\s*:?\s*\d{4}\b",
            re.I,
        ),
        "[card ending]",
    ),
    # a phone number has separators or brackets (bare 10-digit runs are this store's item ids)
    (re.compile(r"(?<![\w#])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"), "[phone]"),
    (
        re.compile(
            r"\b\d{1,6}\s+(?:[A-Za-z]+\s+){1,3}(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|court|ct|way|"
            r"boulevard|blvd|place|pl|terrace|parkway|circle)\b\.?",
            re.I,
        ),
        "[address]",
    ),
    (re.compile(r"\b(zip(?:\s*code)?\s*(?:is\s*)?:?\s*)\d{5}(?:-\d{4})?\b", re.I), r"\1[zip]"),
)
# "I'm Fatima Anderson", "my name is mei ahmed": the words after are a name (up to three)
NAME_AFTER = re.compile(
    r"\b(?:i am|i'm|im|my name is|name's|this is|it's|call me)\s+([A-Za-z][a-z'-]+(?:\s+[A-Z][A-Za-z'-]+){1,2})",
    re.I,
)
NOT_NAMES = {"looking", "trying", "here", "not", "just", "still", "so", "very", "interested", "going", "a", "the"}


def _personal_values(value: Any, found: set[str]) -> None:
    """Collect the values of personal fields anywhere inside a parsed tool result."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in PERSONAL_KEYS and isinstance(inner, str | int) and str(inner).strip():
                found.add(str(inner))
            else:
                _personal_values(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _personal_values(inner, found)


def customer_record_values(user: dict[str, Any] | None) -> set[str]:
    """Every personal value of a store customer's record: names, address, email, payment method ids."""
    found: set[str] = set()
    if user:
        _personal_values(user, found)
        found |= set(user.get("payment_methods", {}))
    return found


def mask_dialogue(dialogue: Dialogue, customer_values: set[str] | None = None) -> Dialogue:
    """The dialogue with emails, phone and card numbers, payment method ids, street addresses, zips, names
    the customer typed, and every name/address/user id seen in its tool results, replaced.
    `customer_values`: the signed-in customer's record values (their names as the store holds them)."""
    found: set[str] = set(filter(None, [dialogue.customer]))
    for m in dialogue.messages:
        if m.role == "tool":
            try:
                _personal_values(json.loads(m.content), found)
            except json.JSONDecodeError:
                if m.name and m.name.startswith("find_user_id"):
                    found.add(m.content.strip())  # these tools answer with the bare user id
        if m.tool_call is not None:
            _personal_values(m.tool_call.arguments, found)
    for m in dialogue.messages:
        if m.role == "user":
            for match in NAME_AFTER.finditer(m.content):
                words = match.group(1).split()
                if words[0].lower() not in NOT_NAMES:
                    found.update(w for w in words if w.lower() not in NOT_NAMES)
    found |= set(customer_values or ())
    # longest first, so "olivia_ito_3591" goes before "Olivia"; values shorter than 3 chars are not names
    values = sorted((v for v in found if len(v) >= 3), key=len, reverse=True)
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(v)}(?!\w)" for v in values), re.I) if values else None

    def scrub(text: str) -> str:
        text = EMAIL.sub("[email]", text)
        for typed, replacement in TYPED:
            text = typed.sub(replacement, text)
        return pattern.sub("[personal]", text) if pattern else text

    def walk(value: Any) -> Any:  # string values only: keys and structure stay as they are
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    data = walk(dialogue.to_dict())
    data["customer"] = "[personal]" if dialogue.customer else None
    return dialogue_from_dict(data)


def export_dialogues(source: Path, out: Path, mask: bool = True, customer=None) -> int:
    """Write the latest revision of every logged conversation to `out` (masked by default).
    `customer(store_name, user_id)`: that customer's record, so their details are masked even where the
    conversation never fetched them."""
    dialogues = latest_revisions(load_dialogues(source))
    if mask:
        lookup = customer or (lambda store, user_id: None)
        dialogues = [
            mask_dialogue(d, customer_record_values(lookup(d.store, d.customer) if d.customer else None))
            for d in dialogues
        ]
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new file (exports never overwrite)")
    return append_dialogues(out, dialogues)
