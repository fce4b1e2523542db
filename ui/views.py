"""What the tabs show of a conversation: the shopper's chat, the console's transcript and trace, a pending
write. Customer and model text is escaped here, once, for every view."""

import html
import json
from typing import Any

from ui.conversations import Conversation

HUMAN_MARK = "**Customer service (a person):** "


def shopper_view(conversation: Conversation | None) -> tuple[list[dict[str, str]], list[int]]:
    """Chat messages the shopper sees (their messages and the answers) and each one's transcript index;
    answers a human agent wrote or approved are marked as theirs."""
    if conversation is None:
        return [], []
    shown, index = [], []
    for i, m in enumerate(conversation.transcript()):
        if m.role in ("user", "assistant") and m.tool_call is None and m.content:
            shown.append({"role": m.role, "content": _said(m)})
            index.append(i)
    return shown, index


def console_view(conversation: Conversation) -> list[dict[str, Any]]:
    """The whole transcript for a human agent: tool calls and results shown as collapsible steps."""
    out = []
    for m in conversation.transcript()[1:]:
        if m.tool_call is not None:
            args = json.dumps(m.tool_call.arguments, ensure_ascii=False)
            call = _escape(f"{m.tool_call.name}({args})")
            out.append({"role": "assistant", "content": call, "metadata": {"title": "tool call"}})
        elif m.role == "tool":
            result = _escape(m.content[:1500])
            out.append({"role": "assistant", "content": result, "metadata": {"title": f"result: {m.name}"}})
        elif m.content:
            out.append({"role": m.role, "content": _said(m)})
    return out


def _said(m) -> str:
    """A message's text as shown, marked when a person on the staff wrote or approved it."""
    return (HUMAN_MARK if m.meta.get("author") == "human" else "") + _escape(m.content)


def _escape(text: str) -> str:
    """Customer and model text is shown as typed: markup is escaped, never rendered (markdown still is)."""
    return html.escape(text, quote=False)


def trace_rows(conversation: Conversation) -> list[list[Any]]:
    return [
        [i, r.name, json.dumps(r.arguments, ensure_ascii=False), r.outcome, r.output[:300]]
        for i, r in enumerate(conversation.agent.session.trace, 1)
    ]


def pending_text(summary: str | None) -> str:
    return f"**Waiting for your confirmation:** {summary}" if summary else ""
