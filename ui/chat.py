"""`shopassist chat`: a terminal chat with the agent, optionally showing its tool trace.

`AgentChat` runs the real agent (model, policy layer, tools) and streams its replies; `SearchChat`
(`--search-only`) needs no model: it reads a price bound from the message ("under $300"), searches the
catalog and lists the best matches with their real attributes.
"""

import json
import sys
import threading
from collections.abc import Callable

from assistant.requests import MAX_MESSAGE_CHARS, parse_request
from retrieval.search import ProductSearch, SearchHit, SearchInputError


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

    def close(self) -> None:
        """Nothing runs between replies."""


class AgentChat:
    """One terminal conversation with the agent; `reply` streams through `out` and returns the full text."""

    def __init__(
        self, model, ctx, store_name: str, settings=None, trace: bool = False, out: Callable[[str], None] | None = None
    ):
        from assistant.runtime import new_agent

        self.agent = new_agent(model, ctx, store_name, settings)
        self.trace = trace
        self.out = out or (lambda text: print(text, end="", flush=True))
        self._replying = threading.Event()
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None

    def reply(self, message: str) -> str:
        if len(message) > MAX_MESSAGE_CHARS:
            return f"Your message is {len(message)} characters long; please keep it under {MAX_MESSAGE_CHARS}."
        shown = len(self.agent.session.trace)
        streamed: list[str] = []

        def stream(text: str) -> None:
            streamed.append(text)
            self.out(text)

        self._replying.set()
        try:
            turn = self.agent.respond(message, on_text=stream)
        finally:
            self._replying.clear()
        # the model reads this reply while the customer does: their next message is all it reads then
        self._reader = threading.Thread(target=self.agent.read_ahead, args=(self._idle,), daemon=True)
        self._reader.start()
        lines = []
        if self.trace:
            for record in self.agent.session.trace[shown:]:
                output = record.output if len(record.output) <= 300 else record.output[:300] + " ..."
                lines.append(f"  [{record.outcome}] {record.name}({json.dumps(record.arguments)}) -> {output}")
        if streamed:
            self.out("\n")
            text = "\n".join(lines)  # the reply itself is already on screen
        else:
            text = "\n".join([*lines, turn.reply])
        return text

    def _idle(self) -> bool:
        return not (self._replying.is_set() or self._closing.is_set())

    def close(self) -> None:
        """Stop reading ahead and wait for it: a daemon thread still inside torch when the interpreter exits
        is killed there, which aborts the process (exit 134) after the last reply."""
        self._closing.set()
        if self._reader is not None:
            self._reader.join()


def run_repl(chat: "SearchChat | AgentChat", store: str) -> None:
    print(f"shopassist chat — store {store!r}. Ctrl-D or 'quit' to leave.", file=sys.stderr)
    try:
        _repl(chat)
    finally:
        chat.close()


def _repl(chat: "SearchChat | AgentChat") -> None:
    while True:
        try:
            message = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if message.strip().lower() in {"quit", "exit"}:
            return
        if message.strip():
            text = chat.reply(message)
            if text:
                print(text)
