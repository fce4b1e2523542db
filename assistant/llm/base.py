"""The one interface every model backend implements, and the settings they share."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from assistant.messages import ChatMessage
from retrieval.errors import ShopassistError

ToolChoice = Literal["auto", "required", "none"]
OnText = Callable[[str], None]  # receives reply text as it is generated (streaming)


class ModelError(ShopassistError, RuntimeError):
    """The model could not produce an answer (endpoint down, bad response); the message says what to do."""


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 200  # for a reply to the customer
    temperature: float = 0.0  # greedy by default: the agent should be reproducible
    top_p: float = 1.0
    constrained: bool = True  # False only to measure how often free decoding breaks a tool call
    # greedy replies check up to this many tokens guessed from the conversation in one step (0: one token
    # per step); what is kept is what the model chooses itself (`decoding.lookup_draft`)
    draft_tokens: int = 16


@dataclass(frozen=True)
class PromptProfile:
    """How the agent's prompt is built for a model; a fine-tuned adapter records the one it was trained with."""

    system_prompt: str = "retail_policy.v1"  # a template in assistant/prompts/
    examples: bool = True  # in-context examples (assistant/prompts/examples.v1.json) before the conversation
    brief_tools: bool = False  # tool list without descriptions
    tools_in_prompt: bool = True  # a fine-tuned model knows its tools from training: 500 fewer prompt tokens
    # Call a tool when the model gives the tool-call opening at least this probability (or ranks it first).
    # A base model rarely ranks it first even when a tool is plainly needed: on "find me a t-shirt under
    # $60" SmolLM2-135M gives it 0.11 against 0.01-0.02 for greetings. A fine-tuned model has learnt when
    # to call (None: only when ranked first); a low threshold makes it call tools instead of replying.
    tool_threshold: float | None = 0.05

    @classmethod
    def base(cls) -> "PromptProfile":
        return cls()

    @classmethod
    def fine_tuned(cls) -> "PromptProfile":
        return cls("agent_short.v1", examples=False, brief_tools=True, tools_in_prompt=False, tool_threshold=None)


class ChatModel(Protocol):
    name: str
    profile: PromptProfile

    def generate(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: ToolChoice = "auto",
        on_text: OnText | None = None,
    ) -> ChatMessage:
        """The next assistant message: a reply (streamed through `on_text`) or one tool call.

        `tools` are OpenAI-style function schemas. With `tool_choice="required"` the message is a call,
        with "none" a reply. Tool calls from local backends always match a declared tool's schema."""
        ...
