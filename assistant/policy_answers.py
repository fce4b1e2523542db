"""Answers to questions about the store's rules ("what is your return policy?"), from the rules the agent
itself follows (`prompts/retail_policy.v1.md`, the tool spec). The model answered such questions with
"that is not something I can help with": nothing in its tools looks them up.

Only a question about the rules is answered: a message naming an order, or asking for a change, is a
request and goes to the agent as before."""

import re

from assistant.guidance import ORDER_ID

_RULES = re.compile(
    r"polic(?:y|ies)\b|\bguarantee\b|\b(?:in|under) (?:what|which) (?:cases?|situations?|circumstances?)\b"
    r"|\bhow (?:do|does) (?:a |the )?(?:returns?|refunds?|exchanges?|cancell?ations?) work\b|\bhow long\b"
    r"|\brules? (?:for|on|about|of)\b",
    re.IGNORECASE,
)
# topic by its words, in the order the answers are given ("how long" is asked of refunds only)
_TOPICS = (
    ("refund_time", re.compile(r"\bhow long\b.*\b(?:refunds?|reimburs\w*|money\s+back)\b", re.IGNORECASE)),
    ("cancellations", re.compile(r"\bcancel", re.IGNORECASE)),
    ("returns", re.compile(r"\breturn|\brefund|\bmoney\s+back\b|\breimburs", re.IGNORECASE)),
    ("exchanges", re.compile(r"\bexchang", re.IGNORECASE)),
    ("changes", re.compile(r"\b(?:chang|modif)", re.IGNORECASE)),
)
_ANSWERS = {
    "refund_time": (
        "A cancelled order's total goes back to the original payment method: to a gift card at once, to other "
        "methods within 5-7 business days."
    ),
    "returns": (
        "Items from a delivered order can be returned. The refund goes to the original payment method or to a "
        "gift card you already have, and you will get an email explaining how to send the items back."
    ),
    "exchanges": (
        "Items from a delivered order can be exchanged for another available option of the same product (another "
        "size or color, say), not for a different product. An order can be exchanged only once, so list every "
        "item together; a price difference is paid or refunded with a payment method you choose."
    ),
    "cancellations": (
        "An order can be cancelled while it is pending (not yet processed), because it is no longer needed or was "
        "ordered by mistake. Its total goes back to the original payment method: a gift card at once, other "
        "methods within 5-7 business days. A delivered order cannot be cancelled, but its items can be returned."
    ),
    "changes": (
        "While an order is pending, its shipping address, its payment method or its items' options can be changed. "
        "Items can be changed only once per order, so list them all together."
    ),
}
CONFIRMS = "I summarise every change before I make it, and make it only after you say yes."


def policy_topics(text: str) -> list[str]:
    """The rules a message asks about ("refund_time", "cancellations", "returns", "exchanges", "changes"); empty for
    anything else, and for a message naming an order (a request about it, answered with its status)."""
    if ORDER_ID.search(text) or not _RULES.search(text):
        return []
    topics = [topic for topic, words in _TOPICS if words.search(text)]
    return topics if "how long" not in text.lower() or "refund_time" in topics else []


OTHER_RULES = (
    "I can tell you how returns, exchanges, cancellations and changes to orders work here; for other store "
    "policies I can pass you to a human colleague. What would you like to know?"
)
_ANY_POLICY = re.compile(r"polic(?:y|ies)\b", re.IGNORECASE)


# store services no tool or rule here says anything about: "how long does shipping take?" was answered with a
# request for the account, "do you price match?" with a search that listed sneakers
_NO_RECORD = re.compile(
    r"\b(?:shipping|delivery)\s+(?:times?|costs?|fees?|options?|rates?|charges?|methods?|periods?)\b"
    r"|\bhow (?:long|fast|much) (?:does|do|will|is|would) (?:the )?(?:shipping|delivery)\b"
    r"|\b(?:free|international|express|overnight|next[- ]day) (?:shipping|delivery)\b|\bdo you (?:ship|deliver)\b"
    r"|\bprice[- ]?match|\b(?:coupon|promo(?:tion)?\s+code|discount\s+code|voucher)s?\b|\bwarrant(?:y|ies)\b"
    r"|\b(?:store|opening|business) hours\b|\bwhere are you located\b|\bphysical (?:store|shop)s?\b",
    re.IGNORECASE,
)
NO_RECORD = (
    "I don't have information about that here. I can search our catalog, help with orders you placed (their "
    "status and tracking, cancelling, returns, exchanges and changes), or pass you to a human colleague."
)
# "can I pay with paypal?", "what payment methods do you accept?"
_PAYING = re.compile(
    r"\b(?:can|could|may) (?:i|we) pay\b|\bwhat (?:payment|ways to pay)|\bpayment (?:methods|options) do you\b"
    r"|\b(?:your|the|accepted|available|allowed)\s+payment\s+(?:methods?|options?|modalit\w*)"
    r"|\bdo you (?:accept|take) (?:paypal|credit|debit|gift|cards?|visa|mastercard|amex|apple pay)",
    re.IGNORECASE,
)
# a request, not a question about the store: "I want to exchange my shoes and pay with paypal"
_REQUEST = re.compile(r"\b(?:return|exchang|cancel|chang|modif|refund|order|#W)\w*", re.IGNORECASE)
PAYING = (
    "Orders are paid with a payment method saved on your account: a credit card, PayPal or a gift card. While "
    "an order is pending, I can change it to another of your saved methods (a gift card must cover the amount "
    "it pays). New orders are placed in our store, not in this chat."
)


def policy_answer(text: str, signed_in: bool) -> str | None:
    """The answer to a question about the store's rules, or None when the message is not one. A policy the
    agent knows nothing of ("your shipping policy?") is said to be one, not guessed at: the model took it
    for a change and asked for the account. So is a service nothing here records (`_NO_RECORD`)."""
    topics = policy_topics(text)
    if not topics and not _REQUEST.search(text):
        if _NO_RECORD.search(text):
            return NO_RECORD
        if _PAYING.search(text):
            return PAYING
    if not topics:
        return OTHER_RULES if _ANY_POLICY.search(text) and not ORDER_ID.search(text) else None
    start = (
        "Which order is it about?"
        if signed_in
        else "To start one, tell me your email address (or your name and zip code) and the order."
    )
    return " ".join([*(_ANSWERS[t] for t in topics), CONFIRMS, start])
