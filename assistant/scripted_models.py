"""Scripted models: one family for the evaluator's bounds, unit tests, UI tests and the load bench.

They implement the same `generate(messages, tools, ...)` interface as the real backends and run through
the real agent loop and policy layer:
- `OracleModel` replays a task's gold actions (`shopassist eval tasks --agent oracle`: the upper bound);
- `TalkOnlyModel` never calls a tool (the floor);
- `ReplayModel` returns given steps in order and records what it was shown (agent-loop unit tests);
- `RuleModel` follows a few rules like a well-behaved agent (the web app's tests and load bench).
None of them is ever the product's model.
"""

import json
import re
import time

from assistant.llm.base import PromptProfile
from assistant.messages import ChatMessage, ToolCall


class TalkOnlyModel:
    """Never calls a tool: scores exactly the tasks that need no change and no specific answer."""

    def generate(self, messages: list[ChatMessage], tools: list[dict] | None = None, **kwargs) -> ChatMessage:
        return ChatMessage("assistant", "I understand. Is there anything else I can help you with?")


class OracleModel:
    """Authenticates the task's customer, then replays the gold actions, asking for each confirmation,
    and finally says the task's required outputs."""

    def __init__(self, email: str, actions: list[dict], outputs: list[str]):
        self.plan = [ToolCall("find_user_id_by_email", {"email": email})]
        self.plan += [ToolCall(a["name"], dict(a["kwargs"]), f"call_{i}") for i, a in enumerate(actions)]
        self.outputs = outputs
        self.position = 0

    def generate(self, messages: list[ChatMessage], tools: list[dict] | None = None, **kwargs) -> ChatMessage:
        last = messages[-1]
        if last.role == "tool" and last.content.startswith("Confirmation needed"):
            summary = last.content.rsplit("reply yes: ", 1)[-1]
            return ChatMessage("assistant", f"{summary} Shall I go ahead? Please reply yes.")
        if self.position < len(self.plan):
            self.position += 1
            return ChatMessage("assistant", tool_call=self.plan[self.position - 1])
        return ChatMessage("assistant", "All done. " + " ".join(self.outputs))


class ReplayModel:
    """Returns the given messages in order and records what it was shown."""

    def __init__(self, *replies: ChatMessage, expect_tools: set[str] | None = None):
        self.replies = list(replies)
        self.expect_tools = expect_tools or set()
        self.seen: list[list[ChatMessage]] = []
        self.offered: list[bool] = []  # whether tools were offered at each step

    def generate(self, messages, tools=None, **kwargs) -> ChatMessage:
        self.seen.append(list(messages))
        self.offered.append(bool(tools))
        if tools and self.expect_tools:
            missing = self.expect_tools - {t["function"]["name"] for t in tools}
            if missing:
                raise AssertionError(f"tools not offered: {sorted(missing)}")
        return self.replies.pop(0)


EMAIL = re.compile(r"[\w.+-]+@[\w.-]+\.\w+")
ORDER = re.compile(r"#W\d+")


class RuleModel:
    """A rule-following stand-in for the model (UI tests, the load bench; never the product): it reads the
    last message and answers as a well-behaved agent would: sign-in by email, order look-ups,
    cancellations (which the policy layer turns into a pending write), product searches and a hand-over
    on request; otherwise it echoes, so a test can tell sessions apart by their replies."""

    name = "scripted"
    profile = PromptProfile.fine_tuned()

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds per reply chunk, to make streaming and concurrency visible

    def generate(self, messages, tools=None, *, tool_choice="auto", on_text=None) -> ChatMessage:
        last = messages[-1]
        if tools and last.role == "user":
            call = self._call(last.content)
            if call is not None:
                return ChatMessage("assistant", tool_call=call)
        return self._reply(self._text(messages), on_text)

    @staticmethod
    def _call(text: str) -> ToolCall | None:
        lower = text.lower()
        if m := EMAIL.search(text):
            return ToolCall("find_user_id_by_email", {"email": m.group()})
        if (m := ORDER.search(text)) and "cancel" in lower:
            return ToolCall("cancel_pending_order", {"order_id": m.group(), "reason": "no longer needed"})
        if m := ORDER.search(text):
            return ToolCall("get_order_details", {"order_id": m.group()})
        if "human" in lower:
            return ToolCall("transfer_to_human_agents", {"summary": "The customer asked for a person."})
        if lower.startswith(("find", "show me", "i need", "looking for")):
            return ToolCall("search_products", {"query": text, "k": 3})
        return None

    @staticmethod
    def _text(messages) -> str:
        last = messages[-1]
        if last.role != "tool":
            return f"echo: {last.content}"
        if last.content.startswith("Confirmation needed"):
            return "Here is what I will do: " + last.content.split(":", 2)[-1].strip() + " Shall I go ahead?"
        if last.content.startswith("Error"):
            return f"I could not do that. {last.content}"
        try:
            data = json.loads(last.content)
        except json.JSONDecodeError:
            return f"You are signed in as {last.content}." if last.name.startswith("find_user") else last.content
        if isinstance(data, list):
            return f"I found {len(data)} items for you."
        return f"Done: order {data.get('order_id')} is now {data.get('status')}."

    def _reply(self, text: str, on_text) -> ChatMessage:
        if on_text is not None:
            for i in range(0, len(text), 12):
                if self.delay:
                    time.sleep(self.delay)
                on_text(text[i : i + 12])
        return ChatMessage("assistant", text)
