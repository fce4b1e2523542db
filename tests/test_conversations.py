"""The conversation suite (bench/conversations.json): its checker on a scripted model, and its core
conversations against the real shipped model, which must serve every one of them."""

import json
from pathlib import Path

import pytest

from assistant.conversations import SuiteFileError, check_turn, load_suite, run_conversation, run_suite, summary
from assistant.policy import PolicySession, ToolCallRecord
from assistant.runtime import agent_for_session
from assistant.scripted_models import RuleModel
from assistant.store import FreshStores
from assistant.tools import ToolContext, ToolRegistry

SUITE = Path(__file__).resolve().parent.parent / "bench" / "conversations.json"
CORE = [c for c in load_suite(SUITE) if c.get("core")]


def test_the_suite_is_well_formed_and_big_enough():
    suite = load_suite(SUITE)
    assert len(suite) >= 40 and len(CORE) >= 10
    tags = {t for c in suite for t in c["tags"]}
    assert {"shopping", "follow-up", "email", "name-zip", "status", "cancel", "return", "exchange", "modify"} <= tags
    assert {"confirm", "decline", "handover", "security", "smalltalk", "cannot"} <= tags


def test_bad_suite_files_are_refused(tmp_path):
    bad = tmp_path / "bad.json"
    for text in (
        "{",
        "{}",
        '[{"id": "a"}]',
        '[{"id": "a", "turns": [{"say": 1}]}]',
        '[{"id":"a","turns":[]},{"id":"a","turns":[]}]',
    ):
        bad.write_text(text)
        with pytest.raises(SuiteFileError):
            load_suite(bad)


def test_turn_checks_catch_what_they_claim(store):
    session = PolicySession(ToolRegistry(), ToolContext(store))
    calls = [ToolCallRecord("search_products", {"query": "blue t-shirt", "max_price": 70}, "[]", "ok")]
    assert (
        check_turn(
            {"calls": [{"name": "search_products", "args": {"query": {"contains": "t-shirt"}}}]},
            calls,
            "",
            session,
            False,
        )
        == []
    )
    failures = check_turn(
        {
            "calls": [{"name": "search_products", "args": {"max_price": {"lte": 60}}}],
            "transferred": True,
            "reply_has": ["$"],
        },
        calls,
        'here <tool_call>{"name": "x"}',
        session,
        False,
    )
    assert len(failures) == 5  # two markup markers, the price bound, no hand-over, no "$"
    assert any("max_price" in f for f in failures) and any("not handed over" in f for f in failures)
    assert check_turn({"act": "greet"}, [], "Hello!", session, False, act="greet") == []
    assert len(check_turn({"act": "greet"}, [], "Sorry, ...", session, False, act="cannot")) == 1


def test_the_scripted_model_runs_through_the_suite_harness(tmp_path, pack, search):
    model = RuleModel()
    results = run_suite(
        CORE, pack, tmp_path, lambda s: agent_for_session(model, s, "tau-retail"), search, tmp_path / "r.jsonl"
    )
    assert len(results) == len(CORE) and len((tmp_path / "r.jsonl").read_text().splitlines()) == len(CORE)
    assert json.dumps(summary(results))  # plain JSON
    assert any(r.passed for r in results) and not all(r.passed for r in results)  # the rules serve some, not all


@pytest.fixture(scope="module")
def shipped(smollm2_checkpoint):
    from assistant.llm import load_chat_model

    return load_chat_model("smollm2", threads=2)


@pytest.mark.slow
@pytest.mark.parametrize("conversation", CORE, ids=[c["id"] for c in CORE])
def test_the_shipped_model_serves(conversation, shipped, pack, search, tmp_path):
    stores = FreshStores(pack, tmp_path)
    result = run_conversation(conversation, stores, lambda s: agent_for_session(shipped, s, "tau-retail"), search)
    assert result.passed, (result.failures, result.calls, result.replies)
