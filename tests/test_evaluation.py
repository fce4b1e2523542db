import json

import pytest
from conftest import INITIAL_HASH, TAU_TASKS

from assistant.agent import Agent
from assistant.evaluation import (
    Evaluator,
    TaskFileError,
    TrialResult,
    classify_failure,
    first_person,
    load_tasks,
    outputs_found,
    pass_hat_k,
)
from assistant.scripted_models import OracleModel, TalkOnlyModel
from ui.cli import main

SHARED = TAU_TASKS


def oracle(session, task, store):
    return Agent(OracleModel(store.user(task.user_id)["email"], list(task.actions), list(task.outputs)), session, "")


def talk_only(session, task, store):
    return Agent(TalkOnlyModel(), session, "")


@pytest.fixture(scope="module")
def all_tasks():
    return load_tasks(SHARED / "tasks_train.json") + load_tasks(SHARED / "tasks_dev.json")


def test_oracle_scores_one_and_talk_only_scores_the_no_change_share(all_tasks, pack, tmp_path):
    evaluator = Evaluator(pack, tmp_path, oracle)
    indices = range(len(all_tasks))
    results = evaluator.run(all_tasks, indices, progress=False)
    failed = [(r.task, r.state_match, r.outputs_found, r.error) for r in results if r.reward != 1.0]
    assert failed == [] and len(results) == 520
    assert all(r.invalid_calls == 0 for r in results)

    evaluator.make_agent = talk_only  # same evaluator: the gold hashes are cached
    talk = evaluator.run(all_tasks, indices, progress=False)
    expected = [i for i, t in enumerate(all_tasks) if evaluator.gold_hash(t) == INITIAL_HASH and not t.outputs]
    assert [r.task for r in talk if r.reward == 1.0] == expected
    assert pass_hat_k(talk, 1) == pytest.approx(len(expected) / 520)


def test_crashes_are_recorded_and_runs_resume(all_tasks, pack, tmp_path):
    made = []

    def flaky(session, task, store):
        made.append(task)
        if len(made) == 2:
            raise RuntimeError("model server fell over")
        return oracle(session, task, store)

    out = tmp_path / "results.jsonl"
    results = Evaluator(pack, tmp_path / "w", flaky).run(all_tasks, [0, 1, 2], out=out, progress=False)
    assert [r.reward for r in results] == [1.0, 0.0, 1.0]
    assert "model server fell over" in results[1].error
    assert len(out.read_text().splitlines()) == 3
    again = Evaluator(pack, tmp_path / "w", flaky).run(all_tasks, [0, 1, 2, 3], out=out, progress=False)
    assert len(made) == 4 and [r.task for r in again] == [0, 1, 2, 3]  # only task 3 ran again


def test_failed_trials_are_classified(all_tasks, store):
    from assistant.policy import PolicySession
    from assistant.tools import ToolContext, ToolRegistry

    def fits(t):  # a single cancel, by a customer with another pending order and a second payment method
        if [a["name"] for a in t.actions] != ["cancel_pending_order"]:
            return False
        u = store.user(t.user_id)
        pending = [o for o in u["orders"] if store.order(o)["status"] == "pending"]
        return len(pending) > 1 and len(u["payment_methods"]) > 1

    task = next(t for t in all_tasks if fits(t))
    user = store.user(task.user_id)

    def session_with(*calls):
        session = PolicySession(ToolRegistry(), ToolContext(store))
        for name, args in calls:
            session.call(name, args)
        return session

    def kind(session, state=False, found=None, transferred=False, limit=False):
        return classify_failure(task, session, state, found or {}, transferred, limit)

    gold = task.actions[0]["kwargs"]
    signed = ("find_user_id_by_email", {"email": user["email"]})
    other = next(o for o in user["orders"] if o != gold["order_id"] and store.order(o)["status"] == "pending")
    assert kind(session_with(), state=True) is None
    assert kind(session_with(), transferred=True) == "transferred"
    assert kind(session_with()) == "not signed in"
    assert kind(session_with(signed)) == "confirmation never asked"
    assert kind(session_with(signed), limit=True) == "step limit"
    assert kind(session_with(signed), state=True, found={"x": False}) == "required output missing"
    wrong_reason = "no longer needed" if gold["reason"] == "ordered by mistake" else "ordered by mistake"
    assert kind(session_with(signed, ("cancel_pending_order", {**gold, "reason": wrong_reason}))) == (
        "wrong items or arguments"
    )
    assert kind(session_with(signed, ("cancel_pending_order", {**gold, "order_id": other}))) == "wrong order"
    paid = store.order(gold["order_id"])["payment_history"][0]["payment_method_id"]
    method = next(m for m in user["payment_methods"] if m != paid)
    change = ("modify_pending_order_payment", {"order_id": gold["order_id"], "payment_method_id": method})
    assert kind(session_with(signed, change)) == "wrong write"


def test_pass_hat_k():
    def r(task, reward):
        return TrialResult(task, 0, reward, True, {}, 1, 1, 0, 0, False, 0.0, [])

    results = [r(0, 1.0), r(0, 1.0), r(0, 1.0), r(1, 1.0), r(1, 0.0), r(1, 0.0)]
    assert pass_hat_k(results, 1) == pytest.approx((1 + 1 / 3) / 2)
    assert pass_hat_k(results, 2) == pytest.approx(0.5)
    assert pass_hat_k(results, 3) == pytest.approx(0.5)


def test_output_matching_follows_the_reward_rule():
    assert outputs_found(["625.60"], ["It costs $625.6"]) == {"625.60": False}
    assert outputs_found(["1000"], ["That is 1,000 dollars"]) == {"1000": True}
    assert outputs_found(["10"], ["about 100"]) == {"10": True}


def test_first_person():
    text = "Your name is Lucas Martin and your email is l@x.com. You are patient. You want to cancel."
    assert first_person(text) == "My name is Lucas Martin and my email is l@x.com. I am patient. I want to cancel."


def test_bad_task_files(tmp_path):
    (tmp_path / "t.json").write_text('[{"user_id": "u", "instruction": "x"}]')
    with pytest.raises(TaskFileError, match="task 0 lacks or mangles field 'actions'"):
        load_tasks(tmp_path / "t.json")
    (tmp_path / "t.json").write_text("{")
    with pytest.raises(TaskFileError, match="cannot read tasks"):
        load_tasks(tmp_path / "t.json")


def test_cli_eval(capsys, tmp_path):
    out = tmp_path / "r.jsonl"
    args = ["eval", "tasks", "--file", str(SHARED / "tasks_dev.json"), "--agent", "oracle", "--limit", "3"]
    assert main([*args, "--trials", "2", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"] == 3 and summary["trials"] == 6 and summary["crashed"] == 0
    assert summary["pass^1"]["value"] == 1.0 and summary["pass^2"]["value"] == 1.0
    assert summary["valid_tool_call_share"] == 1.0
    assert len(out.read_text().splitlines()) == 6
    assert main(["eval", "tasks", "--file", str(tmp_path / "missing.json"), "--agent", "oracle"]) == 2
