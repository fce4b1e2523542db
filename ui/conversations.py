"""Live conversations shared by the shopper chat and the customer-service console.

A `ConversationHub` owns every conversation of the running app: each has its own `Agent` and
`PolicySession` (so sessions never see each other's customer or pending write) over the shared store,
search and model. Every change is saved in one transaction (`ui.conversation_store`, loaded again at
start, so a restart loses nothing) and appended to the dialogue log as a new revision
(`assistant.dialogues`). A shopper reaches a conversation only through its secret token; staff see ids.

Conversations are answered by the model until either the model hands over (`transfer_to_human_agents`)
or a human turns on copilot mode; from then on customer messages wait in the console's queue, where the
model proposes each step and the human approves, edits or rejects it before it runs.
"""

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from assistant.agent import Agent, Turn
from assistant.dialogues import Dialogue, DialogueLog, message_from_dict
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PendingWrite, ToolCallRecord
from assistant.requests import clean_message
from assistant.tools import ToolContext
from retrieval.errors import ShopassistError
from ui.cards import ProductCard, cards_from_trace
from ui.conversation_store import ConversationStore, SavedConversation
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
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    status: Status = "model"
    feedback: dict[int, str] = field(default_factory=dict)  # assistant message index → "up" | "down"
    human_edits: list[dict[str, Any]] = field(default_factory=list)
    cards: list[ProductCard] = field(default_factory=list)  # the latest cards shown to the shopper
    revision: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    queued: float | None = None  # when it joined the queue for a human
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


class TurnLine:
    """First come, first served, one turn at a time, for a model that runs one generation at a time
    (`model.serial`): a lock alone lets any waiter in next, this line keeps arrival order and tells each
    waiting shopper how many turns are ahead of theirs."""

    def __init__(self):
        self._cond = threading.Condition()
        self._line: list[object] = []

    @contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None):
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            told = None
            while self._line[0] is not ticket:
                ahead = self._line.index(ticket)
                if on_wait is not None and ahead != told:
                    on_wait(ahead)
                    told = ahead
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._line.remove(ticket)
                self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._line)


class ConversationHub:
    def __init__(
        self,
        model,
        ctx: ToolContext,
        store_name: str,
        make_agent: Callable[[Any, ToolContext, str], Agent],
        log: DialogueLog | None = None,
        interactions: InteractionLog | None = None,
        saved: ConversationStore | None = None,
    ):
        self.model, self.ctx, self.store_name, self.make_agent = model, ctx, store_name, make_agent
        self.log, self.interactions, self.saved = log, interactions, saved
        self._conversations: dict[str, Conversation] = {}
        self._by_token: dict[str, Conversation] = {}
        self._lock = threading.Lock()
        self.line = TurnLine() if getattr(model, "serial", False) else None
        self._closing = threading.Event()
        self._readers: list[threading.Thread] = []
        for row in saved.load() if saved is not None else []:
            self._add(self._restore(row))
        self.make_agent(model, ctx, store_name).warm()
        if hasattr(ctx.search, "warm"):
            ctx.search.warm()

    # --- conversations -------------------------------------------------------------------------------

    def new(self) -> Conversation:
        conversation = Conversation(uuid.uuid4().hex[:12], self.make_agent(self.model, self.ctx, self.store_name))
        self._add(conversation)
        return conversation

    def _add(self, conversation: Conversation) -> None:
        with self._lock:
            self._conversations[conversation.id] = conversation
            self._by_token[conversation.token] = conversation

    def for_shopper(self, token: str | None) -> Conversation | None:
        """The conversation whose secret token the shopper's browser holds; None if there is none."""
        if not token:
            return None
        with self._lock:
            return self._by_token.get(str(token))

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
        """Conversations waiting for a human, first come first served: handed over by the model, or taken
        over in copilot mode."""
        waiting = [c for c in self.all() if c.status != "model"]
        return sorted(waiting, key=lambda c: c.queued or c.updated)

    # --- the shopper's side --------------------------------------------------------------------------

    def customer_turn(
        self,
        conversation: Conversation,
        text: str,
        on_text: Callable[[str], None] | None = None,
        on_wait: Callable[[int], None] | None = None,
    ) -> TurnResult:
        """One shopper message in, the agent's answer out; `on_wait(n)` hears how many other shoppers'
        turns are ahead while this one waits for the model."""
        with conversation.lock:
            shown = len(conversation.agent.session.trace)
            if conversation.status != "model":
                conversation.agent.add_customer_message(text)
                self._save(conversation)
                return TurnResult(WAITING_REPLY, [], conversation.pending, True, waiting_for_human=True)
            # saved before the model runs: a write the message confirmed is never forgotten or run twice
            durable = (lambda: self._persist(conversation)) if self.saved is not None else None
            with self.line.turn(on_wait) if self.line is not None else nullcontext():
                turn: Turn = conversation.agent.respond(text, on_text=on_text, on_recorded=durable)
            reply = turn.reply
            if turn.transferred:
                conversation.status, conversation.queued = "transferred", time.time()
                # what happens next: they joined the end of the queue of those waiting for a person
                place = len(self.queue())
                reply = f"{turn.reply} You are number {place} in the queue; please keep this page open."
                said = [m for m in conversation.transcript() if m.role == "assistant" and m.tool_call is None]
                if said:  # the chat shows the transcript: the queue place goes into the reply it holds
                    said[-1].content = reply
            cards = cards_from_trace(conversation.agent.session.trace[shown:])
            if cards:
                conversation.cards = cards
                self._impressions(conversation, cards)
            self._save(conversation)
            if self.line is not None and not turn.transferred:
                reader = threading.Thread(target=self._read_ahead, args=(conversation.agent,), daemon=True)
                reader.start()
                with self._lock:
                    self._readers = [*(r for r in self._readers if r.is_alive()), reader]
            return TurnResult(reply, cards, conversation.pending, turn.transferred)

    def _read_ahead(self, agent: Agent) -> None:
        """The model reads this reply while the shopper does, unless another shopper's turn is waiting."""
        line = self.line
        agent.read_ahead(lambda: len(line) == 0 and not self._closing.is_set())

    def close(self) -> None:
        """The server stopped: end reading ahead and wait for it (a daemon thread still inside torch when
        the interpreter exits aborts the process)."""
        self._closing.set()
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            reader.join()

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
            conversation.queued = (conversation.queued or time.time()) if on else None
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
            if step.tool_call is None:  # the shopper's chat and the log show that a person wrote this
                step.meta["author"] = "human"
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

    def _restore(self, row: SavedConversation) -> Conversation:
        agent = self.make_agent(self.model, self.ctx, self.store_name)
        agent.messages = [message_from_dict(m, i) for i, m in enumerate(row.messages)]
        session = agent.session
        session.user_id = row.user_id
        session.pending = PendingWrite(**row.pending) if row.pending else None
        session.trace = [ToolCallRecord(**r) for r in row.trace]
        agent.done, agent._turn_start = row.done, row.turn_start
        return Conversation(
            row.id,
            agent,
            token=row.token,
            status=row.status,  # type: ignore[arg-type]
            feedback={int(k): v for k, v in row.feedback.items()},
            human_edits=row.human_edits,
            cards=[ProductCard(**c) for c in row.cards],
            revision=row.revision,
            created=row.created,
            updated=row.updated,
            queued=row.queued,
        )

    def _persist(self, conversation: Conversation) -> None:
        agent = conversation.agent
        pending = agent.session.pending
        self.saved.save(
            SavedConversation(
                id=conversation.id,
                token=conversation.token,
                status=conversation.status,
                messages=[m.to_dict() for m in agent.messages],
                user_id=agent.session.user_id,
                pending=asdict(pending) if pending is not None else None,
                trace=[asdict(r) for r in agent.session.trace],
                done=agent.done,
                turn_start=agent._turn_start,
                feedback={str(k): v for k, v in conversation.feedback.items()},
                human_edits=conversation.human_edits,
                cards=[asdict(c) for c in conversation.cards],
                revision=conversation.revision,
                created=conversation.created,
                updated=conversation.updated,
                queued=conversation.queued,
            )
        )

    def _save(self, conversation: Conversation) -> None:
        conversation.revision += 1
        conversation.updated = time.time()
        if self.saved is not None:
            self._persist(conversation)
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
