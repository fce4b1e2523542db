"""Append-only logs the running app writes, and their export for fine-tuning.

- Dialogue log (`dialogues.jsonl`, the SFT format of docs/DATA.md): each change to a conversation
  appends its whole transcript as a new revision (`meta.revision`), one fsynced line under a lock, so a
  crash keeps every earlier revision intact and concurrent sessions never interleave inside a line.
  `latest_revisions` keeps the newest line per conversation.
- Interaction log (`interactions.jsonl`, the CTR schema of docs/DATA.md): one row per product card shown
  (label 0) and one per card clicked (label 1), joined by `impression_id`.
- `export_dialogues(..., mask=True)` writes the latest revisions with emails, names, addresses and user
  ids replaced by placeholders.
"""

import json
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from finetune.dialogues import Dialogue, append_dialogues, append_jsonl, dialogue_from_dict, load_dialogues
from ui.cards import ProductCard

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PERSONAL_KEYS = ("first_name", "last_name", "address1", "address2", "city", "zip", "email", "user_id")


class DialogueLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, dialogue: Dialogue) -> None:
        with self._lock:
            append_dialogues(self.path, [dialogue])


class InteractionLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._shown: dict[tuple[str, str], str] = {}  # (conversation, item) → impression id of the latest card

    def _write(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            append_jsonl(self.path, rows)

    def impressions(self, user_id: str, cards: list[ProductCard], conversation: str) -> None:
        now, rows = time.time(), []
        for card in cards:
            impression = uuid.uuid4().hex[:16]
            self._shown[(conversation, card.item_id)] = impression
            rows.append(self._row(impression, user_id, card, conversation, now, 0))
        self._write(rows)

    def click(self, user_id: str, card: ProductCard, conversation: str) -> None:
        impression = self._shown.get((conversation, card.item_id), "")
        self._write([self._row(impression, user_id, card, conversation, time.time(), 1)])

    @staticmethod
    def _row(impression: str, user_id: str, card: ProductCard, conversation: str, ts: float, label: int) -> dict:
        return {
            "impression_id": impression,
            "user_id": user_id,
            "item_id": card.item_id,
            "timestamp": round(ts, 3),
            "label": label,
            "position": card.position,
            "query": card.query,
            "price": card.price,
            "conversation": conversation,
        }


def latest_revisions(dialogues: list[Dialogue]) -> list[Dialogue]:
    """The newest revision of each conversation, in order of first appearance."""
    latest: dict[str, Dialogue] = {}
    for d in dialogues:
        if d.id not in latest or d.meta.get("revision", 0) >= latest[d.id].meta.get("revision", 0):
            latest[d.id] = d
    return list(latest.values())


def _personal_values(value: Any, found: set[str]) -> None:
    """Collect the values of personal fields anywhere inside a parsed tool result."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in PERSONAL_KEYS and isinstance(inner, str | int) and str(inner).strip():
                found.add(str(inner))
            else:
                _personal_values(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _personal_values(inner, found)


def mask_dialogue(dialogue: Dialogue) -> Dialogue:
    """The dialogue with emails, and every name/address/user id seen in its tool results, replaced."""
    found: set[str] = set(filter(None, [dialogue.customer]))
    for m in dialogue.messages:
        if m.role == "tool":
            try:
                _personal_values(json.loads(m.content), found)
            except json.JSONDecodeError:
                if m.name and m.name.startswith("find_user_id"):
                    found.add(m.content.strip())  # these tools answer with the bare user id
        if m.tool_call is not None:
            _personal_values(m.tool_call.arguments, found)
    # longest first, so "olivia_ito_3591" goes before "Olivia"; values shorter than 3 chars are not names
    values = sorted((v for v in found if len(v) >= 3), key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(v) for v in values), re.I) if values else None

    def scrub(text: str) -> str:
        text = EMAIL.sub("[email]", text)
        return pattern.sub("[personal]", text) if pattern else text

    def walk(value: Any) -> Any:  # string values only: keys and structure stay as they are
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    data = walk(dialogue.to_dict())
    data["customer"] = "[personal]" if dialogue.customer else None
    return dialogue_from_dict(data)


def export_dialogues(source: Path, out: Path, mask: bool = True) -> int:
    """Write the latest revision of every logged conversation to `out` (masked by default)."""
    dialogues = latest_revisions(load_dialogues(source))
    if mask:
        dialogues = [mask_dialogue(d) for d in dialogues]
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new file (exports never overwrite)")
    return append_dialogues(out, dialogues)
