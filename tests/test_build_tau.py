"""Training dialogues from τ-retail tasks: real tool outputs, the policy's shape, evaluation tasks excluded."""

import json
import shutil

import pytest
from conftest import TAU_TASKS

from assistant.dialogues import append_dialogues, load_dialogues
from assistant.evaluation import held_out_sample
from finetune.build_tau import EvaluationDataError, build_tau_dialogues

WRITES = {
    "cancel_pending_order",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
    "exchange_delivered_order_items",
}


@pytest.fixture
def tasks_dir(tmp_path):
    train = json.loads((TAU_TASKS / "tasks_train.json").read_text())[:6]
    dev = json.loads((TAU_TASKS / "tasks_dev.json").read_text())
    (tmp_path / "tasks_train.json").write_text(json.dumps(train + dev[:1]))  # a dev task slipped in
    shutil.copy(TAU_TASKS / "tasks_dev.json", tmp_path / "tasks_dev.json")
    return tmp_path


def test_evaluation_files_and_tasks_never_become_training_data(tasks_dir):
    with pytest.raises(EvaluationDataError):
        build_tau_dialogues(tasks_dir / "tasks_dev.json")
    dialogues, report = build_tau_dialogues(tasks_dir / "tasks_train.json", variants=1, hold_out=0)
    assert report.skipped_held_out == 1 and report.tasks == 7
    assert {d.meta["task_index"] for d in dialogues} <= set(range(6))
    held = set(held_out_sample(7, 2))
    dialogues, report = build_tau_dialogues(tasks_dir / "tasks_train.json", variants=1, hold_out=2)
    assert not held & {d.meta["task_index"] for d in dialogues} and report.skipped_held_out >= 2


def test_dialogues_follow_the_policy_and_round_trip(tasks_dir, tmp_path):
    bitext = TAU_TASKS.parent / "bitext" / "customer_support_requests.csv"
    dialogues, report = build_tau_dialogues(tasks_dir / "tasks_train.json", bitext, variants=2, hold_out=0)
    assert report.dialogues == len(dialogues) > 0
    assert {d.meta["opener"] for d in dialogues} == {"instruction", "bitext"}
    for d in dialogues:
        calls = [m.tool_call for m in d.messages if m.tool_call is not None]
        assert calls[0].name in ("find_user_id_by_email", "find_user_id_by_name_zip")  # authenticate first
        for i, m in enumerate(d.messages):
            if m.tool_call is not None and m.tool_call.name in WRITES:
                # the policy's confirmation request, then a summary to the customer, then their yes
                assert d.messages[i + 1].content.startswith("Confirmation needed")
                assert d.messages[i + 2].role == "assistant" and "reply yes" in d.messages[i + 2].content
                assert d.messages[i + 3].content == "yes"
        assert d.messages[-1].role == "assistant" and d.messages[-1].tool_call is None
    path = tmp_path / "tau.jsonl"
    append_dialogues(path, dialogues)
    assert [d.to_dict() for d in load_dialogues(path)] == [d.to_dict() for d in dialogues]


def test_tool_call_accuracy_scores_calls_arguments_and_replies(tasks_dir):
    from assistant.llm.base import PromptProfile
    from assistant.messages import ChatMessage, ToolCall
    from finetune.evaluate import tool_call_accuracy

    dialogues, _ = build_tau_dialogues(tasks_dir / "tasks_train.json", variants=1, hold_out=0)
    dialogues = dialogues[:2]
    gold = {}  # conversation length seen by the model → the gold next step
    for d in dialogues:
        messages = [m for m in d.messages if m.role != "system"]
        for i, m in enumerate(messages):
            if m.role == "assistant":
                gold[(d.id, i)] = m

    class Replay:  # answers exactly as the gold dialogue, or with a wrong argument when told to
        profile = PromptProfile.fine_tuned()

        def __init__(self, corrupt: bool):
            self.corrupt = corrupt

        def generate(self, view, tools=None, **kwargs):
            conversation = [m for m in view if m.role != "system"]
            step = next(g for (d, i), g in gold.items() if i == len(conversation) and _same(d, conversation))
            if step.tool_call is None or not self.corrupt:
                return step
            return ChatMessage("assistant", tool_call=ToolCall(step.tool_call.name, {"bogus": 1}))

    def _same(dialogue_id, conversation):
        d = next(x for x in dialogues if x.id == dialogue_id)
        return [m.content for m in d.messages if m.role != "system"][: len(conversation)] == [
            m.content for m in conversation
        ]

    perfect = tool_call_accuracy(Replay(corrupt=False), dialogues)
    assert perfect.steps > 0 and perfect.reply_steps > 0
    assert (perfect.called, perfect.right_tool, perfect.exact_arguments, perfect.valid, perfect.replied) == (
        1.0,
        1.0,
        1.0,
        1.0,
        1.0,
    )
    broken = tool_call_accuracy(Replay(corrupt=True), dialogues)
    assert broken.right_tool == 1.0 and broken.exact_arguments == 0.0 and broken.valid == 0.0
