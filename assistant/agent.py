"""The agent loop: one customer message in, one reply out, with at most `max_steps` tool calls between.

Each step the model either calls one tool or writes to the customer (a terminal action); the
hand-over tool `transfer_to_human_agents` ends the conversation. Tool calls go through the
conversation's `PolicySession`, so refusals, unknown tools and bad arguments come back to the model as
observations. All state lives in the `Agent` instance: one per conversation, nothing global.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from assistant.messages import ChatMessage
from assistant.policy import PolicySession

STEP_LIMIT_REPLY = "I'm sorry, I couldn't finish that on my own. Could you rephrase, or ask for a human agent?"
TRANSFER_REPLY = "I've passed your request to a human colleague, who will continue from here."


class Model(Protocol):
    def generate(self, messages: list[ChatMessage], tools: list[dict] | None = None, **kwargs) -> ChatMessage: ...


@dataclass
class Turn:
    reply: str
    steps: int  # model calls in this turn
    tool_calls: int
    transferred: bool = False
    hit_step_limit: bool = False


@dataclass
class Agent:
    model: Model
    session: PolicySession
    system_prompt: str
    max_steps: int = 8
    messages: list[ChatMessage] = field(default_factory=list)
    examples: list[ChatMessage] = field(default_factory=list)  # in-context examples, shown to the model only
    done: bool = False  # transferred to a human: the model no longer answers

    def __post_init__(self) -> None:
        if not self.messages:
            self.messages.append(ChatMessage("system", self.system_prompt))

    def respond(self, customer_message: str, on_text: Callable[[str], None] | None = None) -> Turn:
        """One customer message in, one reply out; `on_text` receives the reply as it is generated."""
        if self.done:
            return Turn(TRANSFER_REPLY, 0, 0, transferred=True)
        self.messages.append(ChatMessage("user", customer_message))
        settled = self.session.on_customer_message(customer_message)
        if settled is not None:  # the customer confirmed or declined a pending write
            self.messages.append(ChatMessage("tool", settled, name=self.session.trace[-1].name))

        schemas = self.session.registry.schemas()
        made: list[tuple[str, dict]] = []  # this turn's calls
        for step in range(1, self.max_steps + 1):
            # The same call twice in a row gets the same observation again: make the model answer instead.
            repeating = len(made) >= 2 and made[-1] == made[-2]
            view = self.messages[:1] + self.examples + self.messages[1:]
            streaming = {"on_text": on_text} if on_text is not None else {}
            message = self.model.generate(view, tools=None if repeating else schemas, **streaming)
            self.messages.append(message)
            if message.tool_call is None:
                return Turn(message.content, step, len(made))
            call = message.tool_call
            made.append((call.name, call.arguments))
            observation = self.session.call(call.name, call.arguments)
            self.messages.append(ChatMessage("tool", observation, name=call.name))
            if call.name in self.session.registry and self.session.registry.get(call.name).terminal:
                self.done = True
                return Turn(TRANSFER_REPLY, step, len(made), transferred=True)
        self.messages.append(ChatMessage("assistant", STEP_LIMIT_REPLY))
        return Turn(STEP_LIMIT_REPLY, self.max_steps, len(made), hit_step_limit=True)
