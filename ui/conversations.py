"""Live conversations shared by the shopper chat and the customer-service console.

A `ConversationHub` owns every conversation of the running app: each has its own `Agent` and
`PolicySession` (so sessions never see each other's customer or pending write) over the shared store,
search and model. Every change is written to the dialogue log as a new revision of the conversation
(`assistant.dialogues`), so a crash loses at most the step in progress.

Conversations are answered by the model until either the model hands over (`transfer_to_human_agents`)
or a human turns on copilot mode; from then on customer messages wait in the console's queue, where the
model proposes each step and the human approves, edits or rejects it before it runs.
"""

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from assistant.agent import Agent, Turn
from assistant.dialogues import Dialogue, DialogueLog
from assistant.messages import ChatMessage, ToolCall
from assistant.requests import clean_message
from assistant.tools import ToolContext
from retrieval.errors import ShopassistError
from ui.cards import ProductCard, cards_from_trace
from ui.logs import InteractionLog

Status = Literal["model", "copilot", "transferred"]
WAITING_REPLY = "Thanks — a member of our team is looking at your conversation and will answer here shortly."


class ConversationError(ShopassistError, ValueError):
    """A request about a conversation cannot be served (unknown id, nothing to approve ...)."""


@dataclass
class TurnResult:
    reply: str
    cards: list[ProductCard]
    pending: str | None  # summary of a write awaiting the customer's confirmation
    transferred: bool
    waiting_for_human: bool = False


@dataclass
class Conversation:
    id: str
    agent: Agent
    status: Status = "model"
    feedback: dict[int, str] = field(default_factory=dict)  # assistant message index → "up" | "down"
    human_edits: list[dict[str, Any]] = field(default_factory=list)
    cards: list[ProductCard] = field(default_factory=list)  # the latest cards shown to the shopper
    revision: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def customer(self) -> str | None:
        return self.agent.session.user_id

    @property
    def pending(self) -> str | None:
        pending = self.agent.session.pending
        return pending.summary if pending is not None else None

    def transcript(self) -> list[ChatMessage]:
        return self.agent.messages


class ConversationHub:
    def __init__(
        self,
        model,
        ctx: ToolContext,
        store_name: str,
        make_agent: Callable[[Any, ToolContext, str], Agent],
        log: DialogueLog | None = None,
        interactions: InteractionLog | None = None,
    ):
        self.model, self.ctx, self.store_name, self.make_agent = model, ctx, store_name, make_agent
        self.log, self.interactions = log, interactions
        self._conversations: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    # --- conversations -------------------------------------------------------------------------------

    def new(self) -> Conversation:
        conversation = Conversation(uuid.uuid4().hex[:12], self.make_agent(self.model, self.ctx, self.store_name))
        with self._lock:
            self._conversations[conversation.id] = conversation
        return conversation

    def get(self, conversation_id: str) -> Conversation:
        with self._lock:
            found = self._conversations.get(conversation_id)
        if found is None:
            raise ConversationError(f"no conversation {conversation_id!r}; pick one from the list")
        return found

    def all(self) -> list[Conversation]:
        with self._lock:
            return sorted(self._conversations.values(), key=lambda c: c.updated, reverse=True)

    def queue(self) -> list[Conversation]:
        """Conversations waiting for a human: handed over by the model, or taken over in copilot mode."""
        return [c for c in self.all() if c.status != "model"]

    # --- the shopper's side --------------------------------------------------------------------------

    def customer_turn(
        self, conversation: Conversation, text: str, on_text: Callable[[str], None] | None = None
    ) -> TurnResult:
        with conversation.lock:
            shown = len(conversation.agent.session.trace)
            if conversation.status != "model":
                conversation.agent.add_customer_message(text)
                self._save(conversation)
                return TurnResult(WAITING_REPLY, [], conversation.pending, True, waiting_for_human=True)
            turn: Turn = conversation.agent.respond(text, on_text=on_text)
            reply = turn.reply
            if turn.transferred:
                conversation.status = "transferred"
                # what happens next: they joined the end of the queue of those waiting for a person
                place = len(self.queue())
                reply = f"{turn.reply} You are number {place} in the queue; please keep this page open."
            cards = cards_from_trace(conversation.agent.session.trace[shown:])
            if cards:
                conversation.cards = cards
                self._impressions(conversation, cards)
            self._save(conversation)
            return TurnResult(reply, cards, conversation.pending, turn.transferred)

    def feedback(self, conversation: Conversation, index: int, rating: str | None) -> None:
        """Thumbs up/down on the assistant message at `index` of the transcript (None clears it)."""
        with conversation.lock:
            messages = conversation.transcript()
            if not 0 <= index < len(messages) or messages[index].role != "assistant":
                raise ConversationError(f"message {index} is not an answer of the assistant")
            if rating is None:
                conversation.feedback.pop(index, None)
            elif rating in ("up", "down"):
                conversation.feedback[index] = rating
            else:
                raise ConversationError("a rating is 'up' or 'down'")
            self._save(conversation)

    def clicked(self, conversation: Conversation, item_id: str) -> ProductCard:
        card = next((c for c in conversation.cards if c.item_id == item_id), None)
        if card is None:
            raise ConversationError(f"item {item_id} was not shown in this conversation")
        if self.interactions is not None:
            self.interactions.click(self._user(conversation), card, conversation.id)
        return card

    # --- the human agent's side (copilot) -------------------------------------------------------------

    def take_over(self, conversation: Conversation, on: bool = True) -> None:
        with conversation.lock:
            if conversation.status == "transferred" and not on:
                raise ConversationError("the model handed this conversation over; it stays with a human")
            conversation.status = "copilot" if on else "model"
            self._save(conversation)

    def propose(self, conversation: Conversation) -> ChatMessage:
        """The model's next step for the human to approve, edit or reject; nothing runs yet."""
        with conversation.lock:
            return conversation.agent.propose()

    def run_step(
        self, conversation: Conversation, step: ChatMessage, proposed: ChatMessage | None = None
    ) -> str | None:
        """Run a step the human approved (as proposed, or edited); returns a tool call's observation.

        Calls go through the policy layer like the model's: authentication, one customer per
        conversation and confirmation before writes still hold for a human-approved step.
        """
        with conversation.lock:
            index = len(conversation.agent.messages)  # where the step lands in the transcript
            observation = conversation.agent.apply(step)
            edited = proposed is not None and _step_dict(proposed) != _step_dict(step)
            conversation.human_edits.append(
                {
                    "message_index": index,
                    "action": "edited" if edited else "approved",
                    "proposed": _step_dict(proposed) if proposed is not None else None,
                    "final": _step_dict(step),
                    "time": time.time(),
                }
            )
            cards = cards_from_trace(conversation.agent.session.trace[-1:]) if step.tool_call else []
            if cards:
                conversation.cards = cards
            self._save(conversation)
            return observation

    def reject(self, conversation: Conversation, proposed: ChatMessage) -> None:
        with conversation.lock:
            conversation.human_edits.append(
                {
                    "message_index": None,
                    "action": "rejected",
                    "proposed": _step_dict(proposed),
                    "final": None,
                    "time": time.time(),
                }
            )
            self._save(conversation)

    # --- logs ----------------------------------------------------------------------------------------

    def _user(self, conversation: Conversation) -> str:
        return conversation.customer or f"anonymous:{conversation.id}"

    def _impressions(self, conversation: Conversation, cards: list[ProductCard]) -> None:
        if self.interactions is not None:
            self.interactions.impressions(self._user(conversation), cards, conversation.id)

    def _save(self, conversation: Conversation) -> None:
        conversation.revision += 1
        conversation.updated = time.time()
        if self.log is None or not any(m.role == "assistant" for m in conversation.transcript()):
            return  # the log format needs an answer; the first one writes the conversation so far
        ratings = set(conversation.feedback.values())
        rating = "down" if "down" in ratings else "up" if "up" in ratings else None
        self.log.append(
            Dialogue(
                id=conversation.id,
                messages=list(conversation.transcript()),
                source="ui",
                store=self.store_name,
                customer=conversation.customer,
                feedback={"rating": rating, "per_message": {str(k): v for k, v in conversation.feedback.items()}},
                human_edits=list(conversation.human_edits),
                meta={"revision": conversation.revision, "status": conversation.status, "time": conversation.updated},
            )
        )


def _step_dict(step: ChatMessage) -> dict[str, Any]:
    if step.tool_call is not None:
        return {"tool_call": {"name": step.tool_call.name, "arguments": step.tool_call.arguments}}
    return {"content": step.content}


def parse_step(kind: str, text: str) -> ChatMessage:
    """A step the human typed or edited: a reply's text, or a tool call as {"name": ..., "arguments": {...}}."""
    if kind == "reply":
        message, problem = clean_message(text)
        if problem:
            raise ConversationError(problem)
        return ChatMessage("assistant", message)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversationError(f"the tool call is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConversationError('write the tool call as {"name": "tool_name", "arguments": {...}}')
    arguments = data.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ConversationError("the tool call's arguments must be a JSON object")
    return ChatMessage("assistant", tool_call=ToolCall(data["name"], arguments))
