"""The app's interaction log (`interactions.jsonl`): one row per product card shown (label 0) and one per
card clicked (label 1), joined by `impression_id`, in the impression-log schema of
`assistant.ranking.impressions` (docs/DATA.md) so a CTR model can train on it. The dialogue log and
its masked export live with their format in `assistant.dialogues` and `assistant.masking`."""

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from assistant.dialogues import append_jsonl
from assistant.ranking.impressions import impression_row
from ui.cards import ProductCard


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
        context = {"position": card.position, "query": card.query, "price": card.price, "conversation": conversation}
        return impression_row(user_id, card.item_id, ts, label, impression_id=impression, **context)
