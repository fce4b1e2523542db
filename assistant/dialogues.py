"""The dialogue log format: one JSON object per line, one conversation per object (docs/DATA.md).

The UI appends every conversation in this format and the SFT builders write it, so fine-tuning reads
the product's own logs. Each change to a conversation appends its whole transcript as a new revision
(`meta.revision`), one fsynced line under a lock, so a crash keeps every earlier revision intact and
concurrent sessions never interleave inside a line; `latest_revisions` keeps the newest per conversation.
Loading validates every line; a bad line is reported with its number and what
is wrong, and the whole file is refused: a line never disappears silently.
"""

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.messages import ChatMessage, ToolCall
from retrieval.errors import ShopassistError

ROLES = ("system", "user", "assistant", "tool")
RATINGS = ("up", "down", None)
MAX_REPORTED = 20


class DialogueFormatError(ShopassistError, ValueError):
    """One or more lines of a dialogue log are malformed; the message lists them with line numbers."""


@dataclass
class Dialogue:
    id: str
    messages: list[ChatMessage]
    source: str  # tau-train, shopping, bitext, ui, user ...
    store: str | None = None
    customer: str | None = None  # the authenticated user id, if any
    feedback: dict[str, Any] = field(default_factory=dict)  # {"rating": "up" | "down", "comment": ...}
    human_edits: list[dict[str, Any]] = field(default_factory=list)  # steps a human approved or corrected
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "store": self.store,
            "customer": self.customer,
            "feedback": self.feedback,
            "human_edits": self.human_edits,
            "meta": self.meta,
            "messages": [m.to_dict() for m in self.messages],
        }


def message_from_dict(data: Any, i: int = 0) -> ChatMessage:
    """One message of the format, validated; `i` is its place, for the error message."""
    where = f"messages[{i}]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object")
    role = data.get("role")
    if role not in ROLES:
        raise ValueError(f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}")
    content = data.get("content", "")
    if not isinstance(content, str):
        raise ValueError(f"{where}.content must be a string")
    call = data.get("tool_call")
    tool_call = None
    if call is not None:
        if role != "assistant":
            raise ValueError(f"{where}: only assistant messages may carry a tool_call")
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise ValueError(f"{where}.tool_call needs a non-empty string 'name'")
        if not isinstance(call.get("arguments", {}), dict):
            raise ValueError(f"{where}.tool_call.arguments must be an object")
        tool_call = ToolCall(call["name"], call.get("arguments", {}))
    name = data.get("name")
    if role == "tool" and not isinstance(name, str):
        raise ValueError(f"{where}: a tool message needs 'name', the tool that produced it")
    author = data.get("author")
    if author is not None and author != "human":
        raise ValueError(f"{where}.author must be 'human' when present")
    return ChatMessage(role, content, tool_call, name, meta={"author": author} if author else {})


def dialogue_from_dict(data: Any) -> Dialogue:
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    for key in ("id", "source"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"missing or empty string field {key!r}")
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ValueError("'messages' must be a non-empty list")
    messages = [message_from_dict(m, i) for i, m in enumerate(raw)]
    for i, m in enumerate(messages):
        if m.role == "tool":
            previous = messages[i - 1] if i else None
            settled = previous is not None and previous.role == "user"  # a write the customer's reply confirmed
            if not settled and (previous is None or previous.tool_call is None or previous.tool_call.name != m.name):
                raise ValueError(
                    f"messages[{i}]: a tool result must follow the assistant's call of {m.name!r} "
                    "(or, for a confirmed write, the customer's reply)"
                )
    if not any(m.role == "assistant" for m in messages):
        raise ValueError("a dialogue needs at least one assistant message")
    feedback = data.get("feedback") or {}
    if not isinstance(feedback, dict) or feedback.get("rating") not in RATINGS:
        raise ValueError("'feedback' must be an object whose 'rating' is 'up', 'down' or null")
    edits = data.get("human_edits") or []
    if not isinstance(edits, list) or not all(isinstance(e, dict) for e in edits):
        raise ValueError("'human_edits' must be a list of objects")
    return Dialogue(
        id=data["id"],
        messages=messages,
        source=data["source"],
        store=data.get("store"),
        customer=data.get("customer"),
        feedback=feedback,
        human_edits=edits,
        meta=data.get("meta") or {},
    )


def load_dialogues(path: Path) -> list[Dialogue]:
    """Every dialogue of a JSONL log; raises DialogueFormatError listing each bad line (file:line: problem)."""
    path = Path(path)
    dialogues, problems = [], []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                dialogues.append(dialogue_from_dict(json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name} line {number}: not valid JSON ({exc.msg})")
            except ValueError as exc:
                problems.append(f"{path.name} line {number}: {exc}")
    if problems:
        more = f"\n... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise DialogueFormatError("\n".join(problems[:MAX_REPORTED]) + more)
    return dialogues


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Append one JSON line per row in a single write, then fsync; returns lines written."""
    lines = [json.dumps(row, ensure_ascii=False) + "\n" for row in rows]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # conversations hold personal data: the file is readable by its owner only, however it was made
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write("".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    return len(lines)


def append_dialogues(path: Path, dialogues: Iterable[Dialogue]) -> int:
    """Append whole lines and fsync, so a crash never leaves half a conversation; returns lines written."""
    return append_jsonl(path, (d.to_dict() for d in dialogues))


def latest_revisions(dialogues: list[Dialogue]) -> list[Dialogue]:
    """The newest revision of each conversation, in order of first appearance."""
    latest: dict[str, Dialogue] = {}
    for d in dialogues:
        if d.id not in latest or d.meta.get("revision", 0) >= latest[d.id].meta.get("revision", 0):
            latest[d.id] = d
    return list(latest.values())


class DialogueLog:
    """The running app's dialogue log: appends serialised across sessions."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, dialogue: Dialogue) -> None:
        with self._lock:
            append_dialogues(self.path, [dialogue])
