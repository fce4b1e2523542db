"""Fine-tune the model to rank (the TALLRec recipe): "would this customer want this product?" → Yes / No.

Run: `shopassist train ranker --config finetune/configs/ranker_tallrec.yaml`

Examples come from Complete Journey households that no evaluation file lists (every user of the
`.random` files under `exclude` is left out), from weeks up to `last_week` (most evaluation targets are
bought later; the count is saved with the adapter). Per household, `positives` points of its sequence
of first purchases: the next new product is a positive, the `HISTORY_SHOWN` products before it the
history, and `negatives` products drawn from all products sold (as LLMRank draws candidates), not yet
bought, are negatives. Each example is the zero-shot ranker's own prompt (`prompts/rank_pointwise.v1.md`
through `llm_rank.chat_prompt`), so the fine-tuned ranker is read exactly as the base one; the loss
covers only the answer token and the end-of-turn marker. Training is `finetune.sft.train` (LoRA,
checkpoints, resume).
"""

import dataclasses
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.recommend.llm_rank import HISTORY_SHOWN, POINTWISE, chat_prompt, context_text
from finetune.sft import IGNORE, ConfigError, Examples, SFTConfig

TASK = "pointwise ranking: P(Yes) that the customer wants the product (TALLRec recipe)"


@dataclass
class RankerConfig:
    exclude: list[str]  # LLMRank folders (e.g. runs/zeroshot/cj and its valid/): their users are held out
    households: int = 800
    positives: int = 1  # positions per household
    negatives: int = 1  # random products per positive
    last_week: int = 46  # examples use weeks 1..last_week only; most evaluation targets come later
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)  # `SFTConfig` fields (output_dir, lora_r, ...)

    @classmethod
    def from_yaml(cls, path: Path) -> "RankerConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(raw, dict) or set(raw) - known:
            raise ConfigError(f"{path}: a ranker config has the fields {', '.join(sorted(known))}")
        if not raw.get("exclude"):
            raise ConfigError(f"{path}: 'exclude' must list the LLMRank folders the evaluation uses")
        return cls(**raw)

    def sft(self) -> SFTConfig:
        # `data` names where the examples come from; the builder below reads it, not SFT's dialogue reader
        return SFTConfig.from_dict({"data": ["complete-journey"], **self.train}, "ranker config: train")


def evaluation_targets(folders: list[str]) -> dict[str, str]:
    """User → target item of every LLMRank candidate file (`*.random`) in `folders`: the users held out."""
    from assistant.recommend.protocol import load

    targets: dict[str, str] = {}
    for folder in map(Path, folders):
        files = sorted(folder.glob("*.random"))
        if not files:
            raise ConfigError(f"{folder}: no LLMRank candidate file (*.random) to hold out")
        for f in files:
            targets |= {x.user_id: x.target for x in load(f.parent, f.stem).interactions}
    return targets


def sample_pairs(config: RankerConfig, targets: dict[str, str]) -> tuple[list[dict], dict]:
    """(history ids, candidate id, label) rows and their provenance; `targets`: held-out user → their
    evaluation target (their households are never sampled; their target weeks are counted)."""
    from assistant.recommend.convert import first_purchases, title
    from assistant.store.complete_journey import user_key

    items, tx, firsts = first_purchases()
    last_week = config.last_week
    firsts = firsts.assign(user=firsts["household_id"].map(user_key), item=firsts["product_id"].astype(str))
    hits = firsts[firsts["user"].isin(targets) & (firsts["item"] == firsts["user"].map(targets))]
    target_weeks = hits.set_index("user")["week"]
    if missing := sorted(set(targets) - set(target_weeks.index)):
        raise ConfigError(f"{len(missing)} evaluation target(s) not in the transactions, e.g. {missing[0]}")
    early = firsts[firsts["week"] <= last_week]
    sold = sorted(set(tx.loc[tx["week"] <= last_week, "product_id"].astype(str)))
    sequences = {u: list(g["item"]) for u, g in early.groupby("user", sort=True)}
    pool = sorted(u for u, seq in sequences.items() if u not in targets and len(seq) > HISTORY_SHOWN)
    rng = random.Random(config.seed)
    rng.shuffle(pool)
    rows = []
    for user in pool[: config.households]:
        seq = sequences[user]
        for t in rng.sample(range(HISTORY_SHOWN, len(seq)), min(config.positives, len(seq) - HISTORY_SHOWN)):
            history, bought = tuple(seq[t - HISTORY_SHOWN : t]), set(seq[: t + 1])
            rows.append({"user": user, "history": history, "item": seq[t], "label": True})
            negatives = 0
            while negatives < config.negatives:
                if (item := rng.choice(sold)) not in bought:
                    rows.append({"user": user, "history": history, "item": item, "label": False})
                    negatives += 1
    rng.shuffle(rows)
    used = {i for r in rows for i in (*r["history"], r["item"])}
    titles = {i: title(items.loc[i]) for i in used}
    for r in rows:
        r["context"] = context_text(titles, r["history"])
        r["title"] = titles[r["item"]]
    about = {
        "households": len({r["user"] for r in rows}),
        "held_out_users": len(targets),
        "last_week": last_week,
        "evaluation_targets_after_last_week": f"{int((target_weeks > last_week).sum())} of {len(targets)}",
        "positives": sum(r["label"] for r in rows),
        "negatives": sum(not r["label"] for r in rows),
    }
    return rows, about


def encode(tokenizer, rows: list[dict], max_length: int) -> Examples:
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer = {
        True: tokenizer.encode("Yes", add_special_tokens=False)[0],
        False: tokenizer.encode("No", add_special_tokens=False)[0],
    }
    examples, truncated = [], 0
    for r in rows:
        prompt = tokenizer.encode(
            chat_prompt(tokenizer, POINTWISE, context=r["context"], item=r["title"]), add_special_tokens=False
        )
        if len(prompt) + 2 > max_length:  # never cut the answer off: drop the row instead
            truncated += 1
            continue
        ids = [*prompt, answer[r["label"]], end]
        examples.append({"input_ids": ids, "labels": [IGNORE] * len(prompt) + ids[len(prompt) :]})
    stats = {
        "examples": len(examples),
        "truncated": truncated,
        "tokens": sum(len(e["input_ids"]) for e in examples),
        "trained_tokens": 2 * len(examples),
    }
    return examples, stats


def train(config: RankerConfig) -> Path:
    from assistant.llm.checkpoints import resolve_checkpoint
    from assistant.llm.transformers_backend import load_tokenizer
    from finetune import sft

    sft_config = config.sft()
    rows, about = sample_pairs(config, evaluation_targets(config.exclude))
    print(f"ranker data: {json.dumps(about)}", file=sys.stderr)
    tokenizer = load_tokenizer(resolve_checkpoint(sft_config.model))
    examples = encode(tokenizer, rows, sft_config.max_length)
    return sft.train(sft_config, examples, {"task": TASK, "ranker_data": about})


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    print(train(RankerConfig.from_yaml(args.config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
