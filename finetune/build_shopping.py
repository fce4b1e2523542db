"""Shopping and no-tool dialogues, so the fine-tuned agent searches for shoppers and does not answer
everything with a tool call.

- Product requests over the store's catalog: a product type, sometimes an option and a price bound,
  worded several ways → a `search_products` call with exactly those constraints → the real search
  result → a reply naming the returned items with their real options and prices (or saying none match).
- Requests the store's tools cannot serve, in bitext wording (account deletion, passwords, invoices,
  ...) → a reply that says so and offers a human; requests for a person → `transfer_to_human_agents`.
- Greetings and thanks → a short reply, no tool.
"""

import json
import random
from pathlib import Path

from assistant.dialogues import Dialogue
from assistant.messages import ChatMessage, ToolCall
from assistant.runtime import system_prompt
from finetune.build_tau import bitext_requests
from retrieval.catalog import CatalogItem

ASKS = [
    "do you have {thing}?",
    "I'm looking for {thing}",
    "find me {thing}",
    "show me {thing} please",
    "any {thing} in stock?",
    "I need {thing}",
]
CANNOT = {  # bitext intents our tools cannot serve
    "delete_account",
    "recover_password",
    "create_account",
    "registration_problems",
    "check_invoice",
    "get_invoice",
    "newsletter_subscription",
    "switch_account",
}
CANNOT_REPLY = (
    "I'm sorry, I can't do that here: I can help with products, orders, returns, exchanges and your address. "
    "Would you like me to pass you to a human colleague?"
)
GREETINGS = [
    ("hi", "Hello! I can help you find products or with your orders. What are you looking for?"),
    ("hello there", "Hello! How can I help you today?"),
    ("thanks, that's all", "You're welcome. Have a nice day!"),
    ("thank you!", "You're welcome! Anything else I can help with?"),
    ("ok bye", "Goodbye, and thanks for shopping with us."),
]


def _request(item: CatalogItem, rng: random.Random) -> tuple[str, dict]:
    """A shopper's wording and the exact search arguments it implies."""
    thing = item.title.lower()
    arguments: dict = {"query": thing}
    if item.options and rng.random() < 0.5:
        key, value = rng.choice(sorted(item.options.items()))
        thing = f"{thing} with {key} {value}"
        arguments["options"] = {key: value}
    if rng.random() < 0.6:
        bound = int(item.price // 50 + 1) * 50
        thing = f"{thing} under ${bound}"
        arguments["max_price"] = bound
    return rng.choice(ASKS).format(thing=thing), arguments


def _reply(hits: list[dict]) -> str:
    if not hits:
        return "I found nothing in stock that matches. Would a different option or price range work?"
    parts = []
    for h in hits[:3]:
        options = ", ".join(f"{v}" for v in h["options"].values())
        parts.append(f"{h['name']} ({options}) for ${h['price']:.2f}")
    return "Here is what I found: " + "; ".join(parts) + ". Would you like more details on one of them?"


def build_shopping_dialogues(
    search, items: list[CatalogItem], store_name: str, n: int = 200, bitext_path: Path | None = None, seed: int = 0
) -> list[Dialogue]:
    from assistant.tools import ToolContext, ToolRegistry

    rng = random.Random(seed)
    registry = ToolRegistry()
    ctx = ToolContext(store=None, search=search)
    system = ChatMessage("system", system_prompt(store_name))
    out: list[Dialogue] = []
    for i in range(n):
        item = rng.choice(items)
        text, arguments = _request(item, rng)
        arguments["k"] = 3
        observation = registry.invoke(ctx, "search_products", arguments)
        if observation.startswith("Error"):
            continue
        hits = json.loads(observation)
        messages = [
            system,
            ChatMessage("user", text),
            ChatMessage("assistant", tool_call=ToolCall("search_products", arguments)),
            ChatMessage("tool", observation, name="search_products"),
            ChatMessage("assistant", _reply(hits)),
        ]
        out.append(Dialogue(f"shopping-{i}", messages, "shopping", store_name))
    requests = bitext_requests(bitext_path) if bitext_path else {}
    cannot = [t for intent in sorted(CANNOT & set(requests)) for t in requests[intent]]
    for i, text in enumerate(rng.sample(cannot, min(len(cannot), n // 4))):
        out.append(
            Dialogue(
                f"cannot-{i}", [system, ChatMessage("user", text), ChatMessage("assistant", CANNOT_REPLY)], "bitext"
            )
        )
    for i, text in enumerate(rng.sample(requests.get("contact_human_agent", []), min(n // 8, 30))):
        call = ToolCall("transfer_to_human_agents", {"summary": "The customer asks to talk to a human agent."})
        messages = [system, ChatMessage("user", text), ChatMessage("assistant", tool_call=call)]
        out.append(Dialogue(f"human-{i}", messages, "bitext"))
    for i, (text, reply) in enumerate(GREETINGS):
        out.append(
            Dialogue(f"greeting-{i}", [system, ChatMessage("user", text), ChatMessage("assistant", reply)], "shopping")
        )
    return out
