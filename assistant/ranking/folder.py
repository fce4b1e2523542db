"""The CTR model folder, written and read in one place: `model.pt`, `encoder.json`, `tables.npz`.

Training (`finetune.ctr.train`) saves with `save_ranker_files` and adds its reports (config, metrics,
curves); serving loads with `load_ranker_files`. One format, one owner, so they cannot drift apart.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.ranking.checks import RankingError
from assistant.ranking.features import FeatureEncoder, ItemTable, UserTable

MODEL_FILES = ("model.pt", "encoder.json", "tables.npz")


@dataclass
class RankerFiles:
    """Everything serving needs: the network (weights + architecture), the fitted encoders, the item
    table with end-of-data statistics, the user table and the time the statistics were taken at."""

    model: Any  # assistant.ranking.model.DCNv2
    arch: dict[str, Any]
    encoder: FeatureEncoder
    items: ItemTable
    users: UserTable
    serve_time: float


def save_ranker_files(folder: Path, files: RankerFiles) -> None:
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # fp16 halves the shipped size; the scores it changes are below the 6 significant digits reported
    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in files.model.state_dict().items()}
    torch.save({"arch": files.arch, "state_dict": state}, folder / "model.pt")
    (folder / "encoder.json").write_text(files.encoder.dumps(), encoding="utf-8")
    items, users = files.items, files.users
    if items.stats is None:
        raise ValueError("the item table needs end-of-data statistics (features.end_of_data_stats) to be served")
    categories = items.category or [""] * len(items.ids)
    cat_names, cat_codes = np.unique(np.array(categories, dtype="U"), return_inverse=True)
    np.savez_compressed(
        folder / "tables.npz",
        item_ids=np.array(items.ids, dtype="U"),
        item_attrs=items.attrs.astype(np.int32),
        item_category=cat_codes.astype(np.int32),
        category_names=cat_names.astype("U"),
        item_stats=np.asarray(items.stats, dtype=np.float32),
        user_ids=np.array(list(users.row), dtype="U"),
        user_attrs=users.attrs.astype(np.int32),
        serve_time=np.array([files.serve_time]),
    )


def load_ranker_files(folder: Path) -> RankerFiles:
    import torch

    from assistant.ranking.model import DCNv2

    folder = Path(folder)
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if missing:
        raise RankingError(
            f"{folder} holds no {', '.join(missing)}: train one with `shopassist train ctr --config ...`"
        )
    saved = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    model = DCNv2(**saved["arch"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["state_dict"].items()})
    model.eval()
    encoder = FeatureEncoder.from_dict(json.loads((folder / "encoder.json").read_text(encoding="utf-8")))
    t = np.load(folder / "tables.npz")
    names = t["category_names"].tolist()
    categories = [names[c] for c in t["item_category"]] if encoder.spec.category_field else None
    items = ItemTable(
        t["item_ids"].tolist(), t["item_attrs"].astype(np.int64), categories, t["item_stats"].astype(np.float64)
    )
    users = UserTable(t["user_ids"].tolist(), t["user_attrs"].astype(np.int64))
    return RankerFiles(model, saved["arch"], encoder, items, users, float(t["serve_time"][0]))
