"""The guided training data says only what the guided decoder can say: every call is legal at its step and
every argument is one of the grounded values (enums, copied customer words, refined item lists)."""

from pathlib import Path

import pytest
from conftest import TAU_TASKS

from assistant.guidance import legal_tools
from assistant.policy import PolicySession
from assistant.tools import ToolContext, ToolRegistry
from finetune.build_writes import KINDS, guided_writes, suite_users, write_dialogues

SUITE = Path(__file__).parents[1] / "bench" / "conversations.json"


def _reachable(schema: dict, arguments: dict) -> list[str]:
    """Arguments the grounded schema could not produce (empty when all could)."""
    params = schema["parameters"]
    props, chosen, problems = dict(params["properties"]), {}, []
    for key, value in arguments.items():
        if "x-refine" in params:
            props = params["x-refine"](chosen, props)
        spec = props.get(key)
        if spec is None:
            problems.append(f"{key} not offered")
        elif "enum" in spec and value not in spec["enum"]:
            problems.append(f"{key}={value!r} not in {spec['enum']}")
        elif "x-copy" in spec and value not in spec["x-copy"]:
            problems.append(f"{key}={value!r} is not copied from the customer")
        elif spec.get("type") == "array":
            positions = spec.get("prefixItems")
            for i, v in enumerate(value):
                enum = (positions[i] if positions else spec["items"]).get("enum")
                if enum is not None and v not in enum:
                    problems.append(f"{key}[{i}]={v!r} not in {enum}")
        chosen[key] = value
    return problems


def replay(dialogue, store) -> list[str]:
    session = PolicySession(ToolRegistry(), ToolContext(store))
    seen, problems, turn_start = [], [], 0
    for m in dialogue.messages:
        if m.role == "user":
            turn_start = len(session.trace)
            seen.append(m)
            session.on_customer_message(m.content)
            continue
        if m.role == "assistant" and m.tool_call is not None:
            legal = {
                t["function"]["name"]: t["function"] for t in legal_tools(session, seen, session.trace[turn_start:])
            }
            call = m.tool_call
            if call.name not in legal:
                problems.append(f"{call.name} not legal (legal: {sorted(legal)})")
            else:
                problems += [f"{call.name}: {p}" for p in _reachable(legal[call.name], call.arguments)]
            session.call(call.name, call.arguments)
        seen.append(m)
    return problems


@pytest.fixture(scope="module")
def writes():
    return write_dialogues("tau-retail", 36, TAU_TASKS / "tasks_train.json", SUITE, seed=3)


def test_write_dialogues_cover_every_write_and_end_in_the_policy_outcome(writes):
    assert len(writes) == 36
    names = {d.meta["write"] for d in writes}
    assert len(names) >= 5 and names <= {
        "cancel_pending_order",
        "return_delivered_order_items",
        "exchange_delivered_order_items",
        "modify_pending_order_items",
        "modify_pending_order_payment",
        "modify_pending_order_address",
    }
    assert len(KINDS) == 6
    for d in writes:
        tools = [m.tool_call.name for m in d.messages if m.tool_call]
        assert tools[-2:] == ["get_order_details", d.meta["write"]]
        assert d.messages[-1].role == "assistant" and d.messages[-2].role == "tool"
        assert d.messages[-2].name == d.meta["write"]  # the settled write: carried out or declined


def test_every_call_in_the_write_dialogues_is_one_the_guided_decoder_can_make(writes, pack, tmp_path):
    from assistant.store import FreshStores

    stores, problems = FreshStores(pack, tmp_path), {}
    for d in writes:  # each from the shipped state, as it was built (two may write to the same order)
        with stores.open() as store:
            if p := replay(d, store):
                problems[d.id] = p
    assert problems == {}


def test_evaluation_and_suite_customers_are_left_out(writes, store):
    from assistant.evaluation import held_out_sample, load_tasks

    dev = {t.user_id for t in load_tasks(TAU_TASKS / "tasks_dev.json")}
    train = load_tasks(TAU_TASKS / "tasks_train.json")
    held = {train[i].user_id for i in held_out_sample(len(train))}
    suite = suite_users(store.users(), SUITE)
    assert suite and {d.customer for d in writes}.isdisjoint(dev | held | suite)
    assert guided_writes("tau-retail", 5, set(store.users())) == []  # everyone excluded: nothing to build


def test_mid_conversation_handovers_continue_a_whole_dialogue_and_hand_over_at_once():
    from assistant.dialogues import dialogue_from_dict
    from finetune.build_guided import guided_status, handover_midway

    base = guided_status("tau-retail", 4, seed=1)
    for before, after in zip(base, handover_midway(base, None, seed=1), strict=True):
        again = dialogue_from_dict(after.to_dict())  # a valid line of the dialogue format
        assert [m.to_dict() for m in again.messages[: len(before.messages)]] == [m.to_dict() for m in before.messages]
        asked, answer = again.messages[len(before.messages) :]
        assert asked.role == "user" and answer.tool_call.name == "transfer_to_human_agents"
        assert after.customer == before.customer
