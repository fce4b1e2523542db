"""The 16 τ-retail customer-service tools, with the names, checks, error strings and state changes of
the τ-bench retail domain (see docs/tau-retail-spec.md in the shared material; tests/test_tools.py).

Reads return records as `json.dumps` text; refusals raise `ToolError`, whose message becomes the
observation "Error: <message>". Every write runs its checks and its changes inside one store
transaction, so a refused or crashed call changes nothing.
"""

import ast
import json
import operator
from typing import Literal

from assistant.tools.base import Tool, ToolContext, ToolError, tool

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
CancelReason = Literal["no longer needed", "ordered by mistake"]


def _order(ctx: ToolContext, order_id: str) -> dict:
    order = ctx.store.order(order_id)
    if order is None:
        raise ToolError("order not found")
    return order


def _order_in_status(ctx: ToolContext, order_id: str, status: str, refusal: str) -> dict:
    """The order, if its status is exactly `status` (the only check write tools make on status)."""
    order = _order(ctx, order_id)
    if order["status"] != status:
        raise ToolError(refusal)
    return order


def _address(address1: str, address2: str, city: str, state: str, country: str, zip: str) -> dict[str, str]:
    """An address as tools write it (this key order, unlike the shipped files')."""
    return {"address1": address1, "address2": address2, "city": city, "state": state, "country": country, "zip": zip}


def _payment_method(user: dict, payment_method_id: str) -> dict:
    if payment_method_id not in user["payment_methods"]:
        raise ToolError("payment method not found")
    return user["payment_methods"][payment_method_id]


def _check_item_counts(order: dict, item_ids: list[str], message: str | None = None) -> None:
    """Each id must occur in the order at least as often as it is listed."""
    in_order = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > in_order.count(item_id):
            raise ToolError(message or f"{item_id} not found")


def _price_difference(ctx: ToolContext, order: dict, item_ids: list[str], new_item_ids: list[str]) -> int | float:
    """Σ(new − old) from the integer 0, left to right; each new item must be an available variant."""
    if len(item_ids) != len(new_item_ids):
        raise ToolError("the number of items to be exchanged should match")
    difference: int | float = 0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = next(it for it in order["items"] if it["item_id"] == item_id)
        variant = ctx.store.product(item["product_id"])["variants"].get(new_item_id)
        if variant is None or not variant["available"]:
            raise ToolError(f"new item {new_item_id} not found or available")
        difference += variant["price"] - item["price"]
    return difference


# -- lookups ---------------------------------------------------------------------------------------


@tool()
def find_user_id_by_email(ctx: ToolContext, email: str) -> str:
    """Find a customer's user id from their email address. This is how a customer is authenticated.

    Args:
        email: The customer's email, such as 'something@example.com'.
    """
    user_id = ctx.store.find_user_id_by_email(email)
    if user_id is None:
        raise ToolError("user not found")
    return user_id


@tool()
def find_user_id_by_name_zip(ctx: ToolContext, first_name: str, last_name: str, zip: str) -> str:
    """Find a customer's user id from their name and zip code, when they cannot give their email.

    Args:
        first_name: The customer's first name, such as 'John'.
        last_name: The customer's last name, such as 'Doe'.
        zip: The zip code of the customer's default address, such as '12345'.
    """
    user_id = ctx.store.find_user_id_by_name_zip(first_name, last_name, zip)
    if user_id is None:
        raise ToolError("user not found")
    return user_id


@tool()
def get_user_details(ctx: ToolContext, user_id: str) -> str:
    """Get a customer's profile: name, address, email, payment methods (with gift card balances), orders.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
    """
    user = ctx.store.user(user_id)
    if user is None:
        raise ToolError("user not found")
    return json.dumps(user)


@tool()
def get_order_details(ctx: ToolContext, order_id: str) -> str:
    """Get an order's status, items, shipping address, fulfillments and payment history.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
    """
    return json.dumps(_order(ctx, order_id))


@tool()
def get_product_details(ctx: ToolContext, product_id: str) -> str:
    """Get a product type and all its variant items (options, availability, price).

    Args:
        product_id: The product id, such as '6086499569'. Product ids are not item ids.
    """
    product = ctx.store.product(product_id)
    if product is None:
        raise ToolError("product not found")
    return json.dumps(product)


@tool()
def list_all_product_types(ctx: ToolContext) -> str:
    """List the store's product types (there are about 50) as a map from name to product id."""
    return json.dumps(dict(sorted((p["name"], pid) for pid, p in ctx.store.products().items())))


# -- writes ----------------------------------------------------------------------------------------


@tool(writes=True)
def cancel_pending_order(ctx: ToolContext, order_id: str, reason: CancelReason) -> str:
    """Cancel a pending order and refund its payments; gift cards are refunded at once, other methods in
    5-7 business days. Explain the cancellation and get the customer's explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        reason: Why the customer cancels: 'no longer needed' or 'ordered by mistake'.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "pending", "non-pending order cannot be cancelled")
        if reason not in CANCEL_REASONS:
            raise ToolError("invalid reason")
        user = ctx.store.user(order["user_id"])
        refunds = []
        for payment in order["payment_history"]:  # every entry, refunds included (spec quirk)
            method_id = payment["payment_method_id"]
            refunds.append({"transaction_type": "refund", "amount": payment["amount"], "payment_method_id": method_id})
            if "gift_card" in method_id:
                method = user["payment_methods"][method_id]
                method["balance"] = round(method["balance"] + payment["amount"], 2)
        order["status"] = "cancelled"
        order["cancel_reason"] = reason
        order["payment_history"].extend(refunds)
        tx.put_order(order)
        tx.put_user(order["user_id"], user)
    return json.dumps(order)


@tool(writes=True)
def exchange_delivered_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> str:
    """Request an exchange of delivered items for other available options of the same products. Can be
    used once per order, so collect every item first. Explain it and get an explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        item_ids: Item ids to exchange, such as ['1008292230']; an id may repeat.
        new_item_ids: The replacement item ids, paired by position with item_ids and of the same product.
        payment_method_id: Pays or receives the price difference, such as 'gift_card_0000000'.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "delivered", "non-delivered order cannot be exchanged")
        _check_item_counts(order, item_ids)
        difference = round(_price_difference(ctx, order, item_ids, new_item_ids), 2)
        method = _payment_method(ctx.store.user(order["user_id"]), payment_method_id)
        if method["source"] == "gift_card" and method["balance"] < difference:
            raise ToolError("insufficient gift card balance to pay for the price difference")
        order["status"] = "exchange requested"
        order["exchange_items"] = sorted(item_ids)
        order["exchange_new_items"] = sorted(new_item_ids)
        order["exchange_payment_method_id"] = payment_method_id
        order["exchange_price_difference"] = difference
        tx.put_order(order)
    return json.dumps(order)


@tool(writes=True)
def modify_pending_order_address(
    ctx: ToolContext, order_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> str:
    """Change the shipping address of a pending order. Explain the change and get an explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        address1: First address line, such as '123 Main St'.
        address2: Second address line, such as 'Apt 1', or ''.
        city: City, such as 'San Francisco'.
        state: State, such as 'CA'.
        country: Country, such as 'USA'.
        zip: Zip code, such as '12345'.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "pending", "non-pending order cannot be modified")
        order["address"] = _address(address1, address2, city, state, country, zip)
        tx.put_order(order)
    return json.dumps(order)


@tool(writes=True)
def modify_pending_order_items(
    ctx: ToolContext, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> str:
    """Swap items of a pending order for other available options of the same products and settle the price
    difference. Can be used once per order, so collect every item first. Get an explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        item_ids: Item ids to modify, such as ['1008292230']; an id may repeat.
        new_item_ids: The new item ids, paired by position with item_ids and of the same product.
        payment_method_id: Pays or receives the price difference, such as 'credit_card_0000000'.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "pending", "non-pending order cannot be modified")
        _check_item_counts(order, item_ids)
        difference = _price_difference(ctx, order, item_ids, new_item_ids)  # not rounded (spec quirk)
        user = ctx.store.user(order["user_id"])
        method = _payment_method(user, payment_method_id)
        if method["source"] == "gift_card" and method["balance"] < difference:
            raise ToolError("insufficient gift card balance to pay for the new item")
        order["payment_history"].append(
            {
                "transaction_type": "payment" if difference > 0 else "refund",
                "amount": abs(difference),
                "payment_method_id": payment_method_id,
            }
        )
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] - difference, 2)
        for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
            # searches the items as already changed in this call (spec quirk: aliasing)
            item = next(it for it in order["items"] if it["item_id"] == item_id)
            variant = ctx.store.product(item["product_id"])["variants"][new_item_id]
            item["item_id"], item["price"], item["options"] = new_item_id, variant["price"], variant["options"]
        order["status"] = "pending (item modified)"
        tx.put_order(order)
        tx.put_user(order["user_id"], user)
    return json.dumps(order)


@tool(writes=True)
def modify_pending_order_payment(ctx: ToolContext, order_id: str, payment_method_id: str) -> str:
    """Pay a pending order with a different payment method of the same customer. Get an explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        payment_method_id: The new payment method, such as 'gift_card_0000000' or 'credit_card_0000000'.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "pending", "non-pending order cannot be modified")
        user = ctx.store.user(order["user_id"])
        method = _payment_method(user, payment_method_id)
        history = order["payment_history"]
        if len(history) != 1 or history[0]["transaction_type"] != "payment":
            raise ToolError("there should be exactly one payment for a pending order")
        old_id, amount = history[0]["payment_method_id"], history[0]["amount"]
        if old_id == payment_method_id:
            raise ToolError("the new payment method should be different from the current one")
        if method["source"] == "gift_card" and method["balance"] < amount:
            raise ToolError("insufficient gift card balance to pay for the order")
        history.append({"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id})
        history.append({"transaction_type": "refund", "amount": amount, "payment_method_id": old_id})
        if method["source"] == "gift_card":
            method["balance"] = round(method["balance"] - amount, 2)
        if "gift_card" in old_id:
            old = user["payment_methods"][old_id]
            old["balance"] = round(old["balance"] + amount, 2)
        tx.put_order(order)
        tx.put_user(order["user_id"], user)
    return json.dumps(order)


@tool(writes=True)
def modify_user_address(
    ctx: ToolContext, user_id: str, address1: str, address2: str, city: str, state: str, country: str, zip: str
) -> str:
    """Change a customer's default address (not the address of existing orders). Get an explicit yes first.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
        address1: First address line, such as '123 Main St'.
        address2: Second address line, such as 'Apt 1', or ''.
        city: City, such as 'San Francisco'.
        state: State, such as 'CA'.
        country: Country, such as 'USA'.
        zip: Zip code, such as '12345'.
    """
    with ctx.store.transaction() as tx:
        user = ctx.store.user(user_id)
        if user is None:
            raise ToolError("user not found")
        user["address"] = _address(address1, address2, city, state, country, zip)
        tx.put_user(user_id, user)
    return json.dumps(user)


@tool(writes=True)
def return_delivered_order_items(ctx: ToolContext, order_id: str, item_ids: list[str], payment_method_id: str) -> str:
    """Request a return of delivered items; the refund goes to the original payment method or a gift card
    of the customer. Explain it and get an explicit yes first.

    Args:
        order_id: The order id, such as '#W0000000'. Include the leading '#'.
        item_ids: Item ids to return, such as ['1008292230']; an id may repeat.
        payment_method_id: Receives the refund: the original payment method or a gift card.
    """
    with ctx.store.transaction() as tx:
        order = _order_in_status(ctx, order_id, "delivered", "non-delivered order cannot be returned")
        _payment_method(ctx.store.user(order["user_id"]), payment_method_id)
        if (
            "gift_card" not in payment_method_id
            and payment_method_id != order["payment_history"][0]["payment_method_id"]
        ):
            raise ToolError("payment method should be either the original payment method or a gift card")
        _check_item_counts(order, item_ids, "some item not found")
        order["status"] = "return requested"
        order["return_items"] = sorted(item_ids)
        order["return_payment_method_id"] = payment_method_id
        tx.put_order(order)
    return json.dumps(order)


# -- utilities -------------------------------------------------------------------------------------

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
MAX_EXPONENT = 1000  # '9**9**9' would otherwise compute for hours
MAX_EXPRESSION_CHARS = 500  # bounds the recursion depth of _evaluate


def _evaluate(node: ast.AST) -> int | float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"exponent too large (limit {MAX_EXPONENT})")
        return _OPERATORS[type(node.op)](left, right)
    raise ToolError("invalid syntax")


@tool()
def calculate(ctx: ToolContext, expression: str) -> str:
    """Calculate an arithmetic expression; the result is rounded to 2 decimals.

    Args:
        expression: Digits, + - * /, parentheses, dots and spaces, such as '(2 + 2) * 10.5'.
    """
    if not all(ch in "0123456789+-*/(). " for ch in expression):
        raise ToolError("invalid characters in expression")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"expression too long (limit {MAX_EXPRESSION_CHARS} characters)")
    try:
        tree = compile(expression, "<string>", "eval", ast.PyCF_ONLY_AST)
        return str(round(float(_evaluate(tree)), 2))
    except (SyntaxError, ArithmeticError) as exc:  # the messages match Python's eval()
        raise ToolError(str(exc)) from None


@tool()
def think(ctx: ToolContext, thought: str) -> str:
    """Write down a thought to plan the next step. It changes nothing and returns nothing.

    Args:
        thought: The thought.
    """
    return ""


@tool(terminal=True)
def transfer_to_human_agents(ctx: ToolContext, summary: str) -> str:
    """Hand the conversation to a human agent, with a summary of the customer's issue. Only when the
    customer asks for a human or the request cannot be handled with the available tools.

    Args:
        summary: What the customer needs and what has been done so far.
    """
    return "Transfer successful"


RETAIL_TOOLS: tuple[Tool, ...] = (
    calculate,
    cancel_pending_order,
    exchange_delivered_order_items,
    find_user_id_by_email,
    find_user_id_by_name_zip,
    get_order_details,
    get_product_details,
    get_user_details,
    list_all_product_types,
    modify_pending_order_address,
    modify_pending_order_items,
    modify_pending_order_payment,
    modify_user_address,
    return_delivered_order_items,
    think,
    transfer_to_human_agents,
)
