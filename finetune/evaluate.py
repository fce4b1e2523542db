"""`shopassist eval sft`: how well a model reproduces the policy's tool calls on held-out dialogues.

For every assistant step of a held-out dialogue that calls a tool, the model sees the conversation up
to that step and produces its next message (as in the agent: constrained, tool or reply by its own
choice). Reported: the share of steps where it called a tool at all, called the right tool, and called
it with exactly the gold arguments. Held-out dialogues come from the fixed held-out sample of the
training task file, which the builders never train on.
"""

from dataclasses import dataclass
from pathlib import Path

from assistant.dialogues import Dialogue
from assistant.evaluation import held_out_sample, load_tasks
from assistant.runtime import prompt_prefix
from assistant.tools import ToolRegistry
from finetune.build_tau import build_tau_dialogues


@dataclass
class CallAccuracy:
    steps: int
    called: float  # the model made a tool call where the gold dialogue does
    right_tool: float
    exact_arguments: float
    valid: float  # calls whose arguments validate against the tool's schema (of the calls made)
    reply_steps: int  # gold steps that answer the customer instead of calling a tool
    replied: float  # ... where the model also answered rather than calling a tool

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def held_out_dialogues(tasks_path: Path, limit: int = 0) -> list[Dialogue]:
    n = len(load_tasks(tasks_path))
    indices = held_out_sample(n)[: limit or None]
    dialogues, _ = build_tau_dialogues(tasks_path, variants=1, only=indices)
    return dialogues


def tool_call_accuracy(model, dialogues: list[Dialogue], store_name: str = "tau-retail") -> CallAccuracy:
    prefix = prompt_prefix(store_name, model.profile)
    registry = ToolRegistry()
    tools = registry.schemas()
    steps = called = right = exact = valid = reply_steps = replied = 0
    for d in dialogues:
        messages = [m for m in d.messages if m.role != "system"]
        for i, gold in enumerate(messages):
            if gold.role != "assistant":
                continue
            out = model.generate([*prefix, *messages[:i]], tools)
            if gold.tool_call is None:
                reply_steps += 1
                replied += out.tool_call is None
                continue
            steps += 1
            if out.tool_call is None:
                continue
            called += 1
            try:
                registry.get(out.tool_call.name).validate(out.tool_call.arguments)
                valid += 1
            except (KeyError, ValueError):
                pass
            if out.tool_call.name == gold.tool_call.name:
                right += 1
                exact += out.tool_call.arguments == gold.tool_call.arguments
    n = max(steps, 1)
    return CallAccuracy(
        steps, called / n, right / n, exact / n, valid / max(called, 1), reply_steps, replied / max(reply_steps, 1)
    )
