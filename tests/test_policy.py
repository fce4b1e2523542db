import json

import pytest
from conftest import INITIAL_HASH

from assistant.policy import NEEDS_AUTH, PolicySession, is_explicit_yes
from assistant.tools import ToolContext, ToolRegistry

ETHAN = "ethan_lopez_6291"  # owns #W6779827 (pending) and #W6426438
OTHER_ORDER = "#W2378156"  # yusuf_rossi_9620's


@pytest.fixture
def session(store):
    return PolicySession(ToolRegistry(), ToolContext(store))


def sign_in(session, store):
    email = store.user(ETHAN)["email"]
    assert session.call("find_user_id_by_email", {"email": email.upper()}) == ETHAN
    assert session.user_id == ETHAN


def test_no_customer_data_before_authentication(session, store):
    for name, args in [
        ("get_order_details", {"order_id": "#W6779827"}),
        ("get_user_details", {"user_id": ETHAN}),
        ("cancel_pending_order", {"order_id": "#W6779827", "reason": "no longer needed"}),
        ("rank_products", {"user_id": ETHAN, "item_ids": ["1008292230"]}),
    ]:
        assert session.call(name, args) == NEEDS_AUTH
    assert [r.outcome for r in session.trace] == ["refused"] * 4
    assert session.call("list_all_product_types", {}).startswith("{")  # catalog info is public
    assert store.state_hash() == INITIAL_HASH


def test_one_customer_per_conversation(session, store):
    sign_in(session, store)
    assert json.loads(session.call("get_order_details", {"order_id": "#W6779827"}))["user_id"] == ETHAN
    assert "does not belong" in session.call("get_order_details", {"order_id": OTHER_ORDER})
    assert "not the authenticated customer's" in session.call("get_user_details", {"user_id": "yusuf_rossi_9620"})
    other_email = store.user("yusuf_rossi_9620")["email"]
    assert "already authenticated" in session.call("find_user_id_by_email", {"email": other_email})
    assert session.user_id == ETHAN
    refused = session.call("cancel_pending_order", {"order_id": "#W9999999", "reason": "no longer needed"})
    assert refused == "Error: order not found"  # unknown orders get the tool's own answer
    assert "does not belong" in session.call(
        "return_delivered_order_items",
        {"order_id": OTHER_ORDER, "item_ids": ["4983901480"], "payment_method_id": "credit_card_9513926"},
    )
    assert session.pending is None and store.state_hash() == INITIAL_HASH


def test_write_needs_an_explicit_yes_in_the_next_message(session, store):
    sign_in(session, store)
    args = {"order_id": "#W6779827", "reason": "no longer needed"}
    proposal = session.call("cancel_pending_order", args)
    assert proposal.startswith("Confirmation needed") and "$4079.45" in proposal
    assert store.state_hash() == INITIAL_HASH and session.pending.name == "cancel_pending_order"
    assert session.on_customer_message("yes") is not None
    assert store.order("#W6779827")["status"] == "cancelled"
    assert [r.outcome for r in session.trace][-2:] == ["awaiting confirmation", "confirmed"]


def test_anything_but_yes_drops_the_write(session, store):
    sign_in(session, store)
    session.call("cancel_pending_order", {"order_id": "#W6779827", "reason": "ordered by mistake"})
    assert "nothing was changed" in session.on_customer_message("yes, but only the kettle")
    assert session.pending is None and store.state_hash() == INITIAL_HASH
    assert session.confirm().startswith("Error: there is no change waiting")  # a late Confirm click
    session.call("cancel_pending_order", {"order_id": "#W6779827", "reason": "ordered by mistake"})
    assert "nothing was changed" in session.on_customer_message("no")
    assert session.on_customer_message("yes") is None  # a yes after the no confirms nothing
    assert store.state_hash() == INITIAL_HASH


def test_a_write_that_would_fail_is_reported_at_once(session, store):
    sign_in(session, store)
    out = session.call(
        "modify_pending_order_payment", {"order_id": "#W6426438", "payment_method_id": "gift_card_7219486"}
    )
    assert out == "Error: insufficient gift card balance to pay for the order"
    assert session.pending is None and store.state_hash() == INITIAL_HASH


def test_dry_run_leaves_no_trace_even_after_a_committed_inner_transaction(store):
    order = store.order("#W6779827")
    order["status"] = "cancelled"
    with store.dry_run():
        with store.transaction() as tx:
            tx.put_order(order)
        assert store.order("#W6779827")["status"] == "cancelled"
    assert store.state_hash() == INITIAL_HASH


def test_sessions_are_isolated(store):
    a = PolicySession(ToolRegistry(), ToolContext(store))
    b = PolicySession(ToolRegistry(), ToolContext(store))
    sign_in(a, store)
    a.call("cancel_pending_order", {"order_id": "#W6779827", "reason": "no longer needed"})
    assert b.user_id is None and b.pending is None and b.trace == []
    assert b.call("get_order_details", {"order_id": "#W6779827"}) == NEEDS_AUTH
    assert b.on_customer_message("yes") is None  # b's yes cannot confirm a's write
    assert store.state_hash() == INITIAL_HASH


@pytest.mark.parametrize("text", ["yes", "Yes.", "yes please", "YES!", "confirm", "Yes, go ahead", "ok", "sure"])
def test_explicit_yes(text):
    assert is_explicit_yes(text)


@pytest.mark.parametrize("text", ["no", "yes but change the address", "not yet", "yes?", "maybe", "", "yesterday"])
def test_not_an_explicit_yes(text):
    assert not is_explicit_yes(text)


def test_langchain_tools_share_schemas_and_policy(session, store):
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from assistant.tools.langchain import langchain_tools

    tools = {t.name: t for t in langchain_tools(session.call)}
    assert len(tools) == 18
    schema = convert_to_openai_tool(tools["cancel_pending_order"])["function"]["parameters"]
    assert schema["properties"]["reason"]["enum"] == ["no longer needed", "ordered by mistake"]
    assert tools["get_order_details"].invoke({"order_id": "#W6779827"}) == NEEDS_AUTH
    email = store.user(ETHAN)["email"]
    assert tools["find_user_id_by_email"].invoke({"email": email}) == ETHAN
    assert session.user_id == ETHAN
