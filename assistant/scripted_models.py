"""Scripted models that bound what the evaluator can score: an oracle and an agent that only talks.

They implement the same `generate(messages, tools)` interface as the real backends and run through the
real agent loop and policy layer, so `shopassist eval tasks --agent oracle` checks the whole harness.
"""

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
