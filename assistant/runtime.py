"""Assembling a conversation: store, search, ranker, policy session, system prompt and model into an `Agent`;
opening the product search every front end uses."""

import json
import typing
from dataclasses import dataclass
from importlib.resources import files

from assistant.agent import Agent
from assistant.config import chroma_dir
from assistant.llm.base import PromptProfile
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PolicySession
from assistant.prompts import render
from assistant.tools import ToolContext, ToolRegistry

if typing.TYPE_CHECKING:
    from retrieval.search import ProductSearch

EXAMPLES = "examples.v1.json"


def system_prompt(store_name: str, profile: PromptProfile | None = None) -> str:
    return render((profile or PromptProfile.base()).system_prompt, store_name=store_name)


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


def prompt_prefix(store_name: str, profile: PromptProfile | None = None) -> list[ChatMessage]:
    """What a model with this profile sees before the conversation: the system prompt, then any examples."""
    profile = profile or PromptProfile.base()
    return [
        ChatMessage("system", system_prompt(store_name, profile)),
        *(few_shot_examples() if profile.examples else []),
    ]


@dataclass
class AgentSettings:
    few_shot: bool | None = None  # None: as the model's prompt profile says (base models need examples)
    max_steps: int = 8
    guided: bool = True  # legal actions, grounded arguments and replies (False: `--unguided`, for comparison)
    intents: bool = True  # act on the intent reader where it is sure (assistant.intents; guided mode only)


def agent_for_session(model, session: PolicySession, store_name: str, settings: AgentSettings | None = None) -> Agent:
    settings = settings or AgentSettings()
    profile = getattr(model, "profile", None) or PromptProfile.base()
    few_shot = profile.examples if settings.few_shot is None else settings.few_shot
    examples = few_shot_examples() if few_shot else []
    return Agent(
        model,
        session,
        system_prompt(store_name, profile),
        max_steps=settings.max_steps,
        examples=examples,
        guided=settings.guided,
        intents=_intent_reader(session) if settings.guided and settings.intents else None,
    )


def _intent_reader(session: PolicySession):
    """The shipped intent reader, sharing the product search's embedding model where there is one."""
    from assistant.intents import shipped_reader

    search = session.ctx.search
    return shipped_reader(getattr(search, "embedder", None))


def new_agent(model, ctx: ToolContext, store_name: str, settings: AgentSettings | None = None) -> Agent:
    """One conversation: its own policy session and message history over shared store/search/model."""
    return agent_for_session(model, PolicySession(ToolRegistry(), ctx), store_name, settings)


def open_search(catalog: str) -> "ProductSearch":
    """Product search over an indexed catalog (`shopassist index`) in this state folder's Chroma index."""
    from retrieval.chroma_index import chroma_client, open_collection
    from retrieval.search import ProductSearch

    return ProductSearch(open_collection(chroma_client(chroma_dir()), catalog, create=False))
