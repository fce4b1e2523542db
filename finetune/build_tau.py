"""Training dialogues from τ-retail tasks: the gold actions played through the real agent, policy and tools.

A scripted teacher follows the store policy the way the fine-tuned model should: ask who the customer
is, authenticate (email if the customer gave one, else name + zip), look the order up before changing
it, one tool call per step, summarise each write and wait for the customer's yes, then answer. It
runs inside the real `Agent` with a real `PolicySession` on a fresh store, so every tool output in the
dialogue is what the tools really return. The customer's opening varies: the task instruction in the
first person, or a request in bitext wording for the same intent followed by the details when asked.

Only training files are accepted: a file named like an evaluation split is refused, and tasks that
also appear in tasks_dev.json beside it or in the fixed held-out sample of the training file
(`held_out_sample`, used by the benchmark) are skipped (tests/test_build_tau.py).
"""

import csv
import random
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.agent import Agent
from assistant.dialogues import Dialogue
from assistant.evaluation import Task, first_person, held_out_sample, load_tasks
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PolicySession
from assistant.replies import ACTS, grounded_reply
from assistant.runtime import system_prompt
from assistant.store import FreshStores, get_pack
from assistant.tools import ToolContext, ToolRegistry
from retrieval.errors import ShopassistError

EVAL_NAME = re.compile(r"(dev|test|eval|held)", re.IGNORECASE)
ASK_IDENTITY = next(a.text for a in ACTS if a.act == "ask_account")
# bitext intents whose wording fits each write (bitext's scripted answers are never used)
INTENTS = {
    "cancel_pending_order": ["cancel_order"],
    "modify_pending_order_address": ["change_shipping_address", "set_up_shipping_address"],
    "modify_pending_order_items": ["change_order"],
    "modify_pending_order_payment": ["change_order", "payment_issue"],
    "modify_user_address": ["change_shipping_address", "edit_account"],
    "return_delivered_order_items": ["get_refund", "track_refund"],
    "exchange_delivered_order_items": ["change_order"],
}


class EvaluationDataError(ShopassistError, ValueError):
    """A builder was given evaluation tasks; they are never used for training."""


def check_training_file(path: Path) -> None:
    if EVAL_NAME.search(Path(path).stem):
        raise EvaluationDataError(f"{path.name} looks like an evaluation split: training never reads it")


def held_out_instructions(path: Path) -> set[str]:
    """Instructions of the evaluation tasks beside a training file (tasks_dev.json), to exclude."""
    out: set[str] = set()
    for sibling in Path(path).parent.glob("tasks_*.json"):
        if EVAL_NAME.search(sibling.stem):
            out |= {t.instruction for t in load_tasks(sibling)}
    return out


def bitext_requests(path: Path) -> dict[str, list[str]]:
    """Customer requests by intent, without the ones that carry template placeholders."""
    by_intent: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            text = (row.get("instruction") or "").strip()
            if text and "{{" not in text and len(text) < 200:
                by_intent.setdefault(row["intent"], []).append(text)
    return by_intent


class Teacher:
    """Plays one task by the policy; implements the model interface of the agent loop."""

    def __init__(self, task: Task, user: dict[str, Any], asked_first: bool, guided: bool = False):
        email = user["email"]
        if email.lower() in task.instruction.lower():
            auth = ToolCall("find_user_id_by_email", {"email": email})
        else:
            name = user["name"]
            zip_code = user["address"]["zip"]
            auth = ToolCall(
                "find_user_id_by_name_zip",
                {"first_name": name["first_name"], "last_name": name["last_name"], "zip": zip_code},
            )
        self.plan: list[ToolCall] = [auth]
        looked_up: set[str] = set()
        for action in task.actions:
            order_id = action["kwargs"].get("order_id")
            if order_id and order_id not in looked_up:
                looked_up.add(order_id)
                self.plan.append(ToolCall("get_order_details", {"order_id": order_id}))
            self.plan.append(ToolCall(action["name"], dict(action["kwargs"])))
        self.outputs = list(task.outputs)
        self.ask_identity = asked_first
        self.position = 0
        self.guided = guided  # reply as the guided agent does (assistant.replies); set `agent` before use
        self.agent: Agent | None = None

    def generate(self, messages: list[ChatMessage], tools: list[dict] | None = None, **kwargs: Any) -> ChatMessage:
        last = messages[-1]
        if self.ask_identity:
            self.ask_identity = False
            return ChatMessage("assistant", ASK_IDENTITY)
        if self.guided and last.role == "tool" and last.content.startswith("Confirmation needed"):
            return ChatMessage("assistant", grounded_reply(self.agent.this_turn[-1], self.agent.session))
        if last.role == "tool" and last.content.startswith("Confirmation needed"):
            summary = last.content.rsplit("reply yes: ", 1)[-1].rstrip(".")
            return ChatMessage("assistant", f"Here is what I will do: {summary}. Shall I go ahead? Please reply yes.")
        if self.position < len(self.plan):
            self.position += 1
            return ChatMessage("assistant", tool_call=self.plan[self.position - 1])
        if self.guided:
            turn = self.agent.this_turn
            return ChatMessage("assistant", grounded_reply(turn[-1], self.agent.session) if turn else ACTS[-1].text)
        said = " ".join(self.outputs)
        done = f"All done. {said} " if said else "All done. "
        return ChatMessage("assistant", done + "Is there anything else I can help you with?")


@dataclass
class TauBuildReport:
    tasks: int
    dialogues: int
    skipped_held_out: int
    failed: int  # the teacher did not reach the gold state (gold actions the tools refuse)


def build_tau_dialogues(
    tasks_path: Path,
    bitext_path: Path | None = None,
    variants: int = 2,
    seed: int = 0,
    store_name: str = "tau-retail",
    hold_out: int = 100,
    only: list[int] | None = None,
    guided: bool = False,
) -> tuple[list[Dialogue], TauBuildReport]:
    """Dialogues for every task except evaluation tasks and the fixed held-out sample of `hold_out` tasks.

    `only`: build exactly these task indices instead (evaluation dialogues for held-out tasks)."""
    tasks = load_tasks(tasks_path)
    if only is None:
        check_training_file(tasks_path)
        held_out = held_out_instructions(tasks_path)
        held_out |= {tasks[i].instruction for i in held_out_sample(len(tasks), hold_out)} if hold_out else set()
    else:
        held_out = {t.instruction for i, t in enumerate(tasks) if i not in set(only)}
    requests = bitext_requests(bitext_path) if bitext_path else {}
    rng = random.Random(seed)
    pack = get_pack(store_name)
    registry = ToolRegistry()
    dialogues: list[Dialogue] = []
    skipped = failed = 0
    with tempfile.TemporaryDirectory(prefix="shopassist-build-") as tmp:
        stores = FreshStores(pack, Path(tmp))
        for index, task in enumerate(tasks):
            if task.instruction in held_out:
                skipped += 1
                continue
            for variant in range(variants):
                with stores.open() as store:
                    user = store.user(task.user_id)
                    intents = [i for a in task.actions for i in INTENTS.get(a["name"], []) if i in requests]
                    opener = rng.choice(requests[rng.choice(intents)]) if variant % 2 == 1 and intents else None
                    teacher = Teacher(task, user, asked_first=opener is not None, guided=guided)
                    session = PolicySession(registry, ToolContext(store))
                    agent = Agent(teacher, session, system_prompt(store_name), max_steps=4 + len(teacher.plan))
                    teacher.agent = agent
                    details = first_person(task.instruction)
                    agent.respond(opener or details)
                    if opener is not None:
                        agent.respond(details)
                    while session.pending is not None:
                        agent.respond("yes")
                    if any(r.outcome in ("error", "refused", "invalid") for r in session.trace):
                        failed += 1
                        continue
                    dialogues.append(
                        Dialogue(
                            id=f"tau-train-{index}-{variant}",
                            messages=agent.messages,
                            source="tau-train",
                            store=store_name,
                            customer=session.user_id,
                            meta={"task_index": index, "opener": "bitext" if opener else "instruction"},
                        )
                    )
    return dialogues, TauBuildReport(len(tasks), len(dialogues), skipped, failed)
