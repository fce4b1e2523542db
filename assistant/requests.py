"""What a shopper types, made safe and read: message limits, cleaning, and price bounds in plain words.

Shared by the agent's front ends (web app, terminal chat) and the recommender, so it lives here and
imports nothing heavy.
"""

import re
from dataclasses import dataclass

from retrieval.catalog import named_product_type  # noqa: F401 — the agent and the recommender read it here

MAX_MESSAGE_CHARS = 4000

_BELOW = re.compile(  # "nothing over $400" is an upper bound, read before "over" can take it as a lower one
    r"\b(?:(?:nothing|not|no|never)\s+(?:over|above|more than)|under|below|less than|cheaper than|up to|at most"
    r"|max(?:imum)?)\s*\$?\s*(\d+(?:\.\d+)?)",
    re.I,
)
_AMOUNT = r"\$\s*(\d+(?:\.\d+)?)(?:\s*(?:dollars|bucks|usd)\b)?|(\d+(?:\.\d+)?)\s*(?:dollars|bucks|usd)\b"
_MAYBE_AMOUNT = r"\$?\s*(\d+(?:\.\d+)?)(?:\s*(?:dollars|bucks|usd)\b)?"  # after "budget", "$" is optional
_BETWEEN = re.compile(
    rf"\bbetween\s*{_MAYBE_AMOUNT}\s*(?:and|to|-)\s*{_MAYBE_AMOUNT}|(?:{_AMOUNT})\s*(?:to|-)\s*(?:{_AMOUNT})", re.I
)
_ROUGHLY = r"(?:around|about|roughly|approximately|~)\s*"
# a budget is a ceiling: "budget around $100", "my budget is 80", "$100 budget", "I can spend $120"
_BUDGET = re.compile(
    rf"\b(?:(?:my|our|a|the)\s+)?budget\s*(?:is|of|:)?\s*(?:{_ROUGHLY})?{_MAYBE_AMOUNT}|(?:{_AMOUNT})\s*budget\b"
    rf"|\b(?:(?:i|we)\s+)?(?:can|could|want to|will)?\s*spend\s*(?:{_ROUGHLY})?(?:{_AMOUNT})"
    rf"|(?:{_AMOUNT})\s*or\s*(?:less|under|below|cheaper)\b",
    re.I,
)
_AROUND = re.compile(rf"\b{_ROUGHLY}(?:{_AMOUNT})", re.I)  # "something around $50": within a fifth either side
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening))(?: there)?\s*[!,.]*\s+", re.I)
_ABOVE = re.compile(r"\b(?:over|above|more than|at least|min(?:imum)?)\s*\$?\s*(\d+(?:\.\d+)?)", re.I)


# words that carry no need: kept out of the need a reason quotes back ("a gift for someone who likes hiking")
_FILLER = frozenset(
    """a an the for someone somebody anyone who that which whom likes like loves love enjoys enjoy into is are am
    be was i me my we our us you your he she they his her their them it its this these those to of and or in on
    at with all over from please would could can should will want wants need needs looking look find get buy
    something some anything thing things good nice great really very just also so what any""".split()
)
_HEADS = frozenset("gift gifts present presents".split())  # said first, read last: "gift … hiking" → "hiking gift"
# words that ask for recommendations without saying for what ("what should household 1234 buy next?")
_OPEN = frozenset(
    """recommend recommends recommended recommendation recommendations suggest suggestions suggestion idea ideas
    next else might may surprise household customer shop purchase order again more new usual""".split()
)

# words that refine the request before rather than state a need ("something under $150 maybe?")
_HEDGES = frozenset(
    """maybe perhaps instead then ok okay well hmm how about around else other others one ones option options
    show more less cheaper under over below above than budget price dollars bucks""".split()
)


@dataclass(frozen=True)
class ParsedRequest:
    query: str
    max_price: float | None
    min_price: float | None

    @property
    def need(self) -> str:
        """The request's content words, as a reason quotes it ("hiking gift"); the query if none are left."""
        words = [w for w in re.findall(r"[a-z0-9][a-z0-9'-]*", self.query.lower()) if w not in _FILLER]
        words = [w for w in words if w not in _HEADS] + [w for w in words if w in _HEADS]
        return " ".join(words) or self.query

    @property
    def open_ended(self) -> bool:
        """No need is stated: the request asks what the customer would like ("surprise me", "what should
        household 1234 buy next?"), which only their purchases can answer."""
        return _only(self.query, _FILLER | _OPEN | _HEADS)

    @property
    def refines(self) -> bool:
        """Bounds and hedges only, no need of its own ("something under $150 maybe?"): it refines the
        request before it."""
        return _only(self.query, _FILLER | _HEDGES)

    def refines_with(self, words: frozenset[str]) -> bool:
        """As `refines`, with `words` (the option values of the product searched before) allowed too: "which
        ones are black?" after backpacks asks for black backpacks."""
        return _only(self.query, _FILLER | _HEDGES | words)


def _only(text: str, allowed: frozenset[str]) -> bool:
    """Every word of `text` is one of `allowed` (digits and punctuation are no words)."""
    return all(w in allowed for w in re.findall(r"[a-z][a-z'-]*", text.lower()))


def _amounts(match: re.Match) -> list[float]:
    return [float(g) for g in match.groups() if g is not None]


def parse_request(message: str) -> ParsedRequest:
    message = _GREETING.sub("", message) or message  # searched and quoted back: "hi!" is neither
    low = high = None
    rest = message
    for pattern in (_BETWEEN, _BUDGET, _AROUND):  # ranges and budgets first: "between $50 and $100"
        found = pattern.search(rest)
        if found is None:
            continue
        amounts = _amounts(found)
        if pattern is _BETWEEN:
            low, high = min(amounts), max(amounts)
        elif pattern is _BUDGET:
            high = amounts[0]
        elif high is None:
            low, high = round(amounts[0] * 0.8, 2), round(amounts[0] * 1.2, 2)
        rest = rest[: found.start()] + " " + rest[found.end() :]
    below = _BELOW.search(rest)
    rest = _BELOW.sub(" ", rest)  # an upper bound's words ("nothing over") are no lower bound
    above = _ABOVE.search(rest)
    query = _ABOVE.sub(" ", rest)
    return ParsedRequest(
        # the request cut at its price leaves punctuation behind ("a gift for a hiker, under $100") or
        # spaced off ("any snacks under $10?" → "any snacks ?"), and a search shows the query back
        query=re.sub(r"\s+([?!.,;:])", r"\1", " ".join(query.split())).strip(" ,;:.-") or message,
        max_price=float(below.group(1)) if below else high,
        min_price=float(above.group(1)) if above else low,
    )


def clean_message(text: str) -> tuple[str | None, str | None]:
    """(message, None) ready for the agent, or (None, reply) explaining why it was not sent."""
    if not isinstance(text, str):
        return None, "Please type a message."
    # control characters carry no meaning in a chat and confuse tokenizers; keep newlines and tabs
    text = "".join(c for c in text if c in "\n\t" or (ord(c) >= 32 and ord(c) != 127))
    text = text.strip()
    if not text:
        return None, "Please type a message."
    if len(text) > MAX_MESSAGE_CHARS:
        return None, f"Your message is {len(text):,} characters long; please keep it under {MAX_MESSAGE_CHARS:,}."
    return text, None
