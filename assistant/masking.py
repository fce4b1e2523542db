"""Personal data out of logged dialogues: what `shopassist logs export` and `shopassist data dialogues --logs` write."""

import json
import re
from pathlib import Path
from typing import Any

from assistant.dialogues import Dialogue, append_dialogues, dialogue_from_dict, latest_revisions, load_dialogues

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PERSONAL_KEYS = ("first_name", "last_name", "address1", "address2", "city", "zip", "email", "user_id")


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
