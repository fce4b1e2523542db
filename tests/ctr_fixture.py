"""A tiny impression log with a known signal, in the documented schema, for CTR tests.

60 users each prefer one of 4 item categories; every visit shows 8 random items of 80; an item of the
favourite category is bought with probability 0.6, any other with 0.05, and an item bought before is
likelier to be bought again. A model that learns anything beats random AUC on it.
"""

import json
import random
from pathlib import Path

import yaml

CATEGORIES = ["dairy", "bakery", "produce", "snacks"]


def write_log(path: Path, users: int = 60, items: int = 80, weeks: int = 10, seed: int = 0) -> Path:
    rng = random.Random(seed)
    favourite = {f"u{u}": rng.choice(CATEGORIES) for u in range(users)}
    category = {f"i{i}": CATEGORIES[i % len(CATEGORIES)] for i in range(items)}
    bought: set[tuple[str, str]] = set()
    with path.open("w", encoding="utf-8") as f:
        for week in range(1, weeks + 1):
            for user in favourite:
                for item in rng.sample(sorted(category), 8):
                    p = 0.6 if category[item] == favourite[user] else 0.05
                    if (user, item) in bought:
                        p = min(0.95, p + 0.3)
                    label = int(rng.random() < p)
                    if label:
                        bought.add((user, item))
                    rec = {
                        "user_id": user,
                        "item_id": item,
                        "timestamp": week,
                        "label": label,
                        "item_category": category[item],
                        "slot": rng.choice(["top", "side"]),
                    }
                    f.write(json.dumps(rec) + "\n")
    return path


def write_config(path: Path, log: Path, output_dir: Path, epochs: int = 6) -> Path:
    config = {
        "source": str(log),
        "output_dir": str(output_dir),
        "val_start": 8,
        "test_start": 9,
        "features": {
            "user_fields": [],
            "item_fields": ["item_category"],
            "context_fields": ["slot"],
            "category_field": "item_category",
            "history_length": 5,
            "history_fields": ["item_category"],
            "recent_window": 2,
            "since_cap": 10,
            "min_count": 1,
        },
        "dim": 8,
        "hidden": [32],
        "batch_size": 64,
        "learning_rate": 0.01,
        "epochs": epochs,
        "patience": 3,
        "threads": 1,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
