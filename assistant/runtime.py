"""Assembling a conversation: store, search, ranker, policy session, system prompt and model into an `Agent`."""

import json
from dataclasses import dataclass
from importlib.resources import files

from assistant.agent import Agent
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PolicySession
from assistant.prompts import render
from assistant.tools import ToolContext, ToolRegistry

POLICY_PROMPT = "retail_policy.v1"
EXAMPLES = "examples.v1.json"


def system_prompt(store_name: str) -> str:
    return render(POLICY_PROMPT, store_name=store_name)


def few_shot_examples(name: str = EXAMPLES) -> list[ChatMessage]:
    """The in-context example turns a base model sees before the conversation (not part of the log)."""
    data = json.loads(files("assistant.prompts").joinpath(name).read_text(encoding="utf-8"))
    out = []
    for m in data["messages"]:
        call = m.get("tool_call")
        out.append(
            ChatMessage(
                m["role"],
                m.get("content", ""),
                ToolCall(call["name"], call["arguments"]) if call else None,
                m.get("name"),
            )
        )
    return out


@dataclass
class AgentSettings:
    few_shot: bool = True  # base models need examples; a fine-tuned model does not
    max_steps: int = 8


def new_agent(model, ctx: ToolContext, store_name: str, settings: AgentSettings | None = None) -> Agent:
    """One conversation: its own policy session and message history over shared store/search/model."""
    settings = settings or AgentSettings()
    session = PolicySession(ToolRegistry(), ctx)
    examples = few_shot_examples() if settings.few_shot else []
    return Agent(model, session, system_prompt(store_name), max_steps=settings.max_steps, examples=examples)
