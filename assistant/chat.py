"""`shopassist chat`: a terminal chat that answers from product search.

A stand-in until the agent (a fine-tuned model calling tools) lands: it reads a price bound from the
message ("under $300"), searches the catalog and lists the best matches with their real attributes.
"""

import re
from dataclasses import dataclass

from retrieval.search import ProductSearch, SearchHit, SearchInputError

_BELOW = re.compile(
    r"\b(?:under|below|less than|cheaper than|up to|at most|max(?:imum)?)\s*\$?\s*(\d+(?:\.\d+)?)", re.I
)
_ABOVE = re.compile(r"\b(?:over|above|more than|at least|min(?:imum)?)\s*\$?\s*(\d+(?:\.\d+)?)", re.I)


@dataclass(frozen=True)
class ParsedRequest:
    query: str
    max_price: float | None
    min_price: float | None


def parse_request(message: str) -> ParsedRequest:
    below, above = _BELOW.search(message), _ABOVE.search(message)
    query = _ABOVE.sub(" ", _BELOW.sub(" ", message))
    return ParsedRequest(
        query=" ".join(query.split()) or message,
        max_price=float(below.group(1)) if below else None,
        min_price=float(above.group(1)) if above else None,
    )


def format_hit(hit: SearchHit) -> str:
    options = ", ".join(f"{k} {v}" for k, v in hit.options.items())
    stock = "in stock" if hit.available else "out of stock"
    return f"- {hit.name} ({options}) — ${hit.price:.2f}, {stock} [item {hit.item_id}]"


class SearchChat:
    def __init__(self, search: ProductSearch, k: int = 5):
        self.search = search
        self.k = k

    def reply(self, message: str) -> str:
        request = parse_request(message)
        try:
            hits = self.search.search(request.query, max_price=request.max_price, min_price=request.min_price, k=self.k)
        except SearchInputError as exc:
            return f"Sorry, I can't search for that: {exc}"
        if not hits:
            return "I found nothing in stock that matches. Try a wider price range or other words."
        return "Here is what I found:\n" + "\n".join(format_hit(h) for h in hits)


def run_repl(chat: SearchChat, store: str) -> None:
    print(f"shopassist chat — store {store!r}. Ask for a product; Ctrl-D or 'quit' to leave.")
    while True:
        try:
            message = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if message.strip().lower() in {"quit", "exit"}:
            return
        if message.strip():
            print(chat.reply(message))
