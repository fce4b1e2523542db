"""Typed records exchanged between the agent loop, model backends and the UI."""

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = "call_0"


@dataclass
class ChatMessage:
    role: Role
    content: str = ""
    tool_call: ToolCall | None = None  # assistant messages only: at most one call per step
    name: str | None = None  # tool messages: which tool produced the observation
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"valid_json": False} from a backend

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant", "tool"):
            raise ValueError(f"unknown message role {self.role!r}")
        if self.tool_call is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool calls")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_call:
            data["tool_call"] = {"name": self.tool_call.name, "arguments": self.tool_call.arguments}
        if self.name:
            data["name"] = self.name
        if self.meta.get("author"):  # "human": written or approved by a customer-service agent
            data["author"] = self.meta["author"]
        return data
