"""A rule-following stand-in for the model, for UI tests and the load test (never used by the product).

It reads the last message and answers the way a well-behaved agent would: sign-in by email, order
look-ups, cancellations (which the policy layer turns into a pending write), product searches and a
hand-over on request; otherwise it echoes, so a test can tell sessions apart by their replies.
"""

import json
import re
import time

from assistant.llm.base import PromptProfile
from assistant.messages import ChatMessage, ToolCall

EMAIL = re.compile(r"[\w.+-]+@[\w.-]+\.\w+")
ORDER = re.compile(r"#W\d+")


class ScriptedModel:
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
