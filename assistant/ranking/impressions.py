"""Impression logs: the labelled rows a CTR model learns from, from Complete Journey or any retailer's log.

Every source produces the same `ImpressionData`:
- `log`: one row per impression — `user_id`, `item_id`, `time` (a number: week, or seconds), `label`
  (1 bought/clicked, 0 shown and not), plus context feature columns;
- `events`: purchases (`user_id`, `item_id`, `time`) that user-behaviour features are computed from —
  always only those strictly before an impression's time (`assistant.ranking.features`);
- `items`: item attributes (`item_id` + columns), `users`: user attributes (`user_id` + columns).
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrieval.errors import ShopassistError

REQUIRED = ("user_id", "item_id", "timestamp", "label")


def impression_row(
    user_id: str, item_id: str, timestamp: float, label: int, impression_id: str = "", **context: Any
) -> dict[str, Any]:
    """One line of an impression log as `read_impression_log` reads it: the required fields, then context."""
    return {
        "impression_id": impression_id,
        "user_id": user_id,
        "item_id": item_id,
        "timestamp": round(float(timestamp), 3),
        "label": int(label),
        **context,
    }


class LogFormatError(ShopassistError, ValueError):
    """An impression log that cannot be read; the message names the file, line and problem."""


@dataclass
class ImpressionData:
    log: pd.DataFrame
    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"user_id": pd.Series([], dtype=str)}))
    context_columns: tuple[str, ...] = ()
    description: str = ""


def split_masks(times: np.ndarray, val_start: float, test_start: float) -> dict[str, np.ndarray]:
    """Train on times before `val_start`, validate on [val_start, test_start), test from `test_start` on."""
    if not val_start < test_start:
        raise ValueError(f"val_start ({val_start}) must come before test_start ({test_start})")
    t = np.asarray(times)
    return {"train": t < val_start, "val": (t >= val_start) & (t < test_start), "test": t >= test_start}


def time_split(log: pd.DataFrame, val_start: float, test_start: float) -> dict[str, pd.DataFrame]:
    """The log's rows in the three splits of `split_masks`."""
    parts = {k: log[m] for k, m in split_masks(log["time"].to_numpy(), val_start, test_start).items()}
    for name, part in parts.items():
        if part.empty or part["label"].nunique() < 2:
            raise ValueError(f"the {name} split has no rows or only one label; choose other split times")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


# -- a retailer's own log ----------------------------------------------------------------------------


def _parse_time(value, where: str) -> float:
    if isinstance(value, bool):
        raise LogFormatError(f"{where}: timestamp must be a number or an ISO date, got {value!r}")
    if isinstance(value, int | float) and np.isfinite(value):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return pd.Timestamp(value).timestamp()
        except (ValueError, TypeError):
            pass
    raise LogFormatError(f"{where}: timestamp must be a number or an ISO date, got {value!r}")


def _parse_label(value, where: str) -> int:
    if isinstance(value, bool) or value in (0, 1, "0", "1"):
        return int(value)
    raise LogFormatError(f"{where}: label must be 0 or 1, got {value!r}")


def _records(path: Path) -> Iterable[tuple[int, dict]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LogFormatError(f"{path} line {n}: not valid JSON ({exc.msg})") from None
                if not isinstance(rec, dict):
                    raise LogFormatError(f"{path} line {n}: expected a JSON object")
                yield n, rec
    elif path.suffix in (".csv", ".tsv"):
        import csv

        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            missing = set(REQUIRED) - set(reader.fieldnames or [])
            if missing:
                raise LogFormatError(f"{path} line 1: header lacks {', '.join(sorted(missing))}")
            for n, rec in enumerate(reader, 2):
                if None in rec:
                    raise LogFormatError(f"{path} line {n}: more fields than the header names")
                yield n, rec
    else:
        raise LogFormatError(f"{path}: impression logs are .jsonl, .csv or .tsv files")


def read_impression_log(path: Path) -> ImpressionData:
    """Read a log in the documented schema (docs/DATA.md "Impression logs").

    Required per row: `user_id`, `item_id`, `timestamp` (number or ISO date), `label` (0/1). Any other
    column is a context feature (strings categorical, numbers dense). Purchases for behaviour features
    are the rows labelled 1; item attributes are the `item_*` columns, taken from each item's latest row.
    The whole file is refused on the first bad line, with its number.
    """
    path = Path(path)
    if not path.is_file():
        raise LogFormatError(f"{path}: no such file")
    rows = []
    for n, rec in _records(path):
        where = f"{path} line {n}"
        missing = [k for k in REQUIRED if rec.get(k) in (None, "")]
        if missing:
            raise LogFormatError(f"{where}: missing {', '.join(missing)}")
        row = {k: v for k, v in rec.items() if k not in REQUIRED}
        row.update(
            user_id=str(rec["user_id"]),
            item_id=str(rec["item_id"]),
            time=_parse_time(rec["timestamp"], where),
            label=_parse_label(rec["label"], where),
        )
        rows.append(row)
    if not rows:
        raise LogFormatError(f"{path}: no impressions")
    log = pd.DataFrame(rows)
    item_cols = [c for c in log.columns if c.startswith("item_") and c != "item_id"]
    context = tuple(c for c in log.columns if c not in ("user_id", "item_id", "time", "label", *item_cols))
    items = log.sort_values("time").drop_duplicates("item_id", keep="last")[["item_id", *item_cols]]
    events = log.loc[log["label"] == 1, ["user_id", "item_id", "time"]]
    return ImpressionData(
        log=log[["user_id", "item_id", "time", "label", *context]].sort_values("time", kind="stable"),
        events=events.reset_index(drop=True),
        items=items.reset_index(drop=True),
        context_columns=context,
        description=f"impression log {path.name}",
    )
