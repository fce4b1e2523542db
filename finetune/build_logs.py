"""Training dialogues from the product's own conversation logs (the UI's `dialogues.jsonl`).

Each conversation is logged once per change; only its latest revision is used. Feedback filters
what is learnt: a conversation with any thumbs-down answer is left out unless a human corrected it
(approved or edited steps in copilot mode are what a human vouched for), and `require_up` keeps only
conversations someone rated up. Personal data can be masked on the way (`assistant.masking.mask_dialogue`).
"""

from dataclasses import dataclass
from pathlib import Path

from assistant.dialogues import Dialogue, load_dialogues


@dataclass
class LogBuildReport:
    conversations: int = 0
    kept: int = 0
    rated_down: int = 0
    not_rated_up: int = 0
    no_answer: int = 0


def build_log_dialogues(
    path: Path, require_up: bool = False, mask: bool = True
) -> tuple[list[Dialogue], LogBuildReport]:
    from assistant.dialogues import latest_revisions
    from assistant.masking import mask_dialogue

    report = LogBuildReport()
    out = []
    for dialogue in latest_revisions(load_dialogues(Path(path))):
        report.conversations += 1
        rating = dialogue.feedback.get("rating")
        corrected = any(e.get("action") in ("approved", "edited") for e in dialogue.human_edits)
        if rating == "down" and not corrected:
            report.rated_down += 1
            continue
        if require_up and rating != "up" and not corrected:
            report.not_rated_up += 1
            continue
        while dialogue.messages and dialogue.messages[-1].role != "assistant":  # ends waiting for an answer
            dialogue.messages.pop()
        if not any(m.role == "assistant" for m in dialogue.messages):
            report.no_answer += 1
            continue
        out.append(mask_dialogue(dialogue) if mask else dialogue)
        report.kept += 1
    return out, report
