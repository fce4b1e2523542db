"""The store policy, enforced in code between the model and the tools (one `PolicySession` per conversation).

A 135M-parameter model cannot be trusted to follow a written policy, so the rules that protect
customers are checked here, whatever the model asks for:

- no customer data and no write before the customer is authenticated (email, or name + zip);
- one customer per conversation: other customers' profiles and orders are refused;
- every write is first previewed (run and rolled back): if it would fail, the model gets the error at
  once; otherwise the model gets a summary to show the customer, and the write runs only when the
  customer's next message is an explicit yes (or the UI's Confirm button). Anything else drops it.

Refusals are observations starting with "Error: " that tell the model what to do instead.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.tools import ToolContext, ToolInputError, ToolRegistry

AUTH_TOOLS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
OPEN_TOOLS = frozenset(
    {
        "calculate",
        "think",
        "transfer_to_human_agents",
        "list_all_product_types",
        "get_product_details",
        "search_products",
    }
)
NEEDS_AUTH = (
    "Error: the customer is not authenticated yet. Ask for their email address "
    "(or first name, last name and zip code) and look them up first."
)

_YES = re.compile(
    r"^\s*(yes|yeah|yep|yup|y|sure|ok|okay|confirm|confirmed|i confirm|correct|go ahead|please do|do it|"
    r"please go ahead|that's right|that is right|affirmative)\b"
    r"[\s,.!]*(please|thanks|thank you|go ahead|do it)?[\s.!]*$",
    re.IGNORECASE,
)


def is_explicit_yes(message: str) -> bool:
    """True only for a plain confirmation: 'yes', 'Yes, please.', 'confirm'; not 'yes but...' or 'no'."""
    return bool(_YES.match(message))


# invalid: unknown tool or arguments that do not fit the schema (the model's mistake, counted by the evaluator)
Outcome = Literal["ok", "error", "invalid", "refused", "awaiting confirmation", "confirmed", "declined"]


@dataclass
class ToolCallRecord:
    """One line of the tool trace the agent console shows."""

    name: str
    arguments: dict[str, Any]
    output: str
    outcome: Outcome


@dataclass
class PendingWrite:
    name: str
    arguments: dict[str, Any]
    summary: str


@dataclass
class PolicySession:
    registry: ToolRegistry
    ctx: ToolContext
    user_id: str | None = None
    pending: PendingWrite | None = None
    trace: list[ToolCallRecord] = field(default_factory=list)

    # -- the model's side -------------------------------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool call for the model under the policy; returns the observation."""
        if name not in self.registry:
            return self._record(name, arguments, self.registry.invoke(self.ctx, name, arguments), "invalid")
        tool = self.registry.get(name)
        try:
            tool.validate(arguments)
        except ToolInputError as exc:
            return self._record(name, arguments, f"Error: {exc}", "invalid")
        refusal = self._refusal(name, arguments)
        if refusal:
            return self._record(name, arguments, refusal, "refused")
        if tool.writes:
            return self._propose(name, arguments)
        output = tool.invoke(self.ctx, arguments)
        if name in AUTH_TOOLS and not output.startswith("Error"):
            if self.user_id not in (None, output):
                return self._record(
                    name,
                    arguments,
                    "Error: this conversation is already authenticated for another customer; "
                    "only one customer can be helped per conversation.",
                    "refused",
                )
            self.user_id = output
        return self._record(name, arguments, output, "error" if output.startswith("Error") else "ok")

    def _refusal(self, name: str, arguments: dict[str, Any]) -> str | None:
        if name in OPEN_TOOLS or name in AUTH_TOOLS:
            return None
        if self.user_id is None:
            return NEEDS_AUTH
        user_id = arguments.get("user_id")
        if user_id is not None and user_id != self.user_id:
            return "Error: that user id is not the authenticated customer's; only their own account can be used."
        order_id = arguments.get("order_id")
        if isinstance(order_id, str):
            order = self.ctx.store.order(order_id)
            if order is not None and order["user_id"] != self.user_id:
                return f"Error: order {order_id} does not belong to the authenticated customer."
        return None

    def _propose(self, name: str, arguments: dict[str, Any]) -> str:
        tool = self.registry.get(name)
        with self.ctx.store.dry_run():
            preview = tool.invoke(self.ctx, arguments)
        if preview.startswith("Error"):
            return self._record(name, arguments, preview, "error")
        self.pending = PendingWrite(name, dict(arguments), describe_write(name, arguments, self.ctx))
        message = (
            "Confirmation needed: nothing has changed yet. Tell the customer exactly what will happen and ask "
            f"them to reply yes: {self.pending.summary}"
        )
        return self._record(name, arguments, message, "awaiting confirmation")

    # -- the customer's side ----------------------------------------------------------------------

    def on_customer_message(self, message: str) -> str | None:
        """Call with every customer message. Settles a pending write: returns its observation, else None."""
        if self.pending is None:
            return None
        return self.confirm() if is_explicit_yes(message) else self.decline()

    def confirm(self) -> str:
        """The customer said yes (in words or with the UI's Confirm button): run the pending write."""
        if self.pending is None:
            return "Error: there is no change waiting for confirmation."
        pending, self.pending = self.pending, None
        output = self.registry.get(pending.name).invoke(self.ctx, pending.arguments)
        outcome: Outcome = "error" if output.startswith("Error") else "confirmed"
        return self._record(pending.name, pending.arguments, output, outcome)

    def decline(self) -> str:
        if self.pending is None:
            return "Error: there is no change waiting for confirmation."
        pending, self.pending = self.pending, None
        return self._record(
            pending.name,
            pending.arguments,
            "The customer did not confirm, so nothing was changed. Ask what they would like instead.",
            "declined",
        )

    def _record(self, name: str, arguments: dict[str, Any], output: str, outcome: Outcome) -> str:
        self.trace.append(ToolCallRecord(name, dict(arguments) if isinstance(arguments, dict) else {}, output, outcome))
        return output


def _items(order: dict, item_ids: list[str]) -> str:
    names = {it["item_id"]: f"{it['name']} ({', '.join(it['options'].values())})" for it in order["items"]}
    return "; ".join(names.get(i, i) for i in item_ids) or "no items"


def _variants(ctx: ToolContext, order: dict, new_item_ids: list[str]) -> str:
    out = []
    for item_id in new_item_ids:
        for item in order["items"]:
            variant = ctx.store.product(item["product_id"])["variants"].get(item_id)
            if variant:
                out.append(f"{item['name']} ({', '.join(variant['options'].values())}) at ${variant['price']}")
                break
    return "; ".join(out)


def address_text(a: dict[str, Any]) -> str:
    parts = [a["address1"], a["address2"], a["city"], a["state"], a["zip"], a["country"]]
    return ", ".join(p for p in parts if p)


def describe_write(name: str, args: dict[str, Any], ctx: ToolContext) -> str:
    """A plain-language description of a write, built from the store's real records."""
    order = ctx.store.order(args["order_id"]) if "order_id" in args else None
    if name == "cancel_pending_order":
        total = sum(p["amount"] for p in order["payment_history"] if p["transaction_type"] == "payment")
        return (
            f"cancel order {args['order_id']} ({_items(order, [i['item_id'] for i in order['items']])}), "
            f"reason '{args['reason']}'; ${total:.2f} is refunded to the original payment method."
        )
    if name == "modify_pending_order_address":
        return f"ship order {args['order_id']} to {address_text(args)}."
    if name == "modify_pending_order_payment":
        return f"pay order {args['order_id']} with {args['payment_method_id']} instead of the current method."
    if name == "modify_pending_order_items":
        return (
            f"in order {args['order_id']}, replace {_items(order, args['item_ids'])} with "
            f"{_variants(ctx, order, args['new_item_ids'])}; the price difference goes through "
            f"{args['payment_method_id']}. Items of an order can be changed only once, so every item must be listed."
        )
    if name == "return_delivered_order_items":
        return (
            f"return {_items(order, args['item_ids'])} from order {args['order_id']}; "
            f"the refund goes to {args['payment_method_id']}."
        )
    if name == "exchange_delivered_order_items":
        return (
            f"exchange {_items(order, args['item_ids'])} from order {args['order_id']} for "
            f"{_variants(ctx, order, args['new_item_ids'])}; the price difference goes through "
            f"{args['payment_method_id']}. An order can be exchanged only once, so every item must be listed."
        )
    if name == "modify_user_address":
        return f"change the default address of the account to {address_text(args)}."
    return f"run {name} with {json.dumps(args)}."
