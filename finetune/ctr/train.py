"""Build features, train the DCN-v2 ranker, evaluate, save it.

Run: `shopassist train ctr --config finetune/configs/ctr_complete_journey.yaml`
  or `python -m finetune.ctr.train --config finetune/configs/ctr_complete_journey.yaml`


The saved folder holds everything serving needs, written by `assistant.ranking.folder.save_ranker_files`: `model.pt`
(weights + architecture), `encoder.json` (vocabularies, price buckets, dense scaling, feature spec),
`tables.npz` (encoded item/user attributes and item statistics at the end of the data), plus
`config.yaml` (resolved), `metrics.json`, `history.jsonl` and `curves.png`.
"""

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from assistant.ranking.features import (
    Batch,
    FeatureEncoder,
    FeatureSpec,
    ItemTable,
    UserTable,
    assemble,
    behaviour_features,
    end_of_data_stats,
    item_stats,
)
from assistant.ranking.folder import RankerFiles, save_ranker_files
from assistant.ranking.impressions import ImpressionData, read_impression_log, split_masks
from retrieval.errors import ShopassistError


class CTRConfigError(ShopassistError, ValueError):
    """A training config that cannot be used; the message names the field."""


@dataclass
class CTRConfig:
    source: str = "complete-journey"  # or the path of an impression log (.jsonl/.csv/.tsv, docs/DATA.md)
    output_dir: str = "models/ctr-complete-journey"
    negatives_per_visit: int = 20  # complete-journey only
    households: int | None = None  # complete-journey only: the first N households (quick runs)
    val_start: float = 41  # time of the first validation impression (a week for complete-journey)
    test_start: float = 47
    features: FeatureSpec = field(
        default_factory=lambda: FeatureSpec(
            user_fields=["age", "income", "household_size", "kids_count"],
            item_fields=["department", "category", "product_type", "brand", "manufacturer"],
            context_fields=["store_id", "display", "mailer"],
            category_field="category",
        )
    )
    dim: int = 16
    cross_layers: int = 2
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.1
    context_dropout: float = 0.1  # train rows with context fields blanked, so serving without context works
    batch_size: int = 2048
    learning_rate: float = 0.001
    schedule: str = "constant"  # or "linear": decay to 5 % of learning_rate over all epochs
    weight_decay: float = 0.0
    epochs: int = 4
    eval_every: int = 0  # also validate every N steps (0: once per epoch)
    patience: int = 1  # stop after this many validations without a better AUC
    seed: int = 0
    threads: int | None = None

    @classmethod
    def from_yaml(cls, path: Path) -> "CTRConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CTRConfigError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(raw or {}, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> "CTRConfig":
        if not isinstance(raw, dict):
            raise CTRConfigError(f"{where}: expected a mapping of fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CTRConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        raw = dict(raw)
        if isinstance(raw.get("features"), dict):
            spec_fields = {f.name for f in dataclasses.fields(FeatureSpec)}
            bad = sorted(set(raw["features"]) - spec_fields)
            if bad:
                raise CTRConfigError(f"{where}: unknown features field(s) {', '.join(bad)}")
            raw["features"] = FeatureSpec(**raw["features"])
        config = cls(**raw)
        if config.schedule not in ("constant", "linear"):
            raise CTRConfigError(f"{where}: schedule is 'constant' or 'linear', not {config.schedule!r}")
        if config.batch_size < 1 or config.epochs < 1 or config.learning_rate <= 0:
            raise CTRConfigError(f"{where}: batch_size and epochs must be ≥ 1 and learning_rate > 0")
        if not config.val_start < config.test_start:
            raise CTRConfigError(f"{where}: val_start must come before test_start")
        if config.source != "complete-journey" and not Path(config.source).is_file():
            raise CTRConfigError(f"{where}: source is 'complete-journey' or an impression log file; {config.source}?")
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_source(config: CTRConfig) -> ImpressionData:
    if config.source == "complete-journey":
        from finetune.ctr.complete_journey import build_impressions

        return build_impressions(config.negatives_per_visit, config.seed, config.households)
    return read_impression_log(Path(config.source))


@dataclass
class Prepared:
    """A source's impressions split by time and encoded, with the fitted encoder and tables."""

    data: ImpressionData
    frames: dict[str, pd.DataFrame]  # split -> log rows plus raw dense features (for baselines)
    batches: dict[str, Batch]
    labels: dict[str, np.ndarray]
    encoder: FeatureEncoder
    items: ItemTable
    users: UserTable
    seconds: float


def prepare(config: CTRConfig, data: ImpressionData | None = None) -> Prepared:
    """Features for every impression from the events before it; encoders fitted on the train split only."""
    start = time.perf_counter()
    data = data if data is not None else load_source(config)
    spec = config.features
    missing = [f for f in spec.context_fields if f not in data.log]
    missing += [f"item {f}" for f in spec.item_fields if f not in data.items]
    missing += [f"user {f}" for f in spec.user_fields if f not in data.users]
    missing += [
        f"history field {f} (must be one of item_fields)" for f in spec.history_fields if f not in spec.item_fields
    ]
    if spec.category_field and spec.category_field not in data.items:
        missing.append(f"item {spec.category_field} (category_field)")
    if missing:
        raise CTRConfigError(f"features name columns the data lacks: {', '.join(missing)}")
    log = data.log.reset_index(drop=True)
    masks = split_masks(log["time"].to_numpy(), config.val_start, config.test_start)
    encoder = FeatureEncoder.fit(spec, log[masks["train"]], data.items, data.users)
    items, users = ItemTable.from_frame(encoder, data.items), UserTable.from_frame(encoder, data.users)
    behaviour, histories = behaviour_features(log, data.events, spec, items)
    stats = item_stats(data.events, log, log["item_id"], log["time"], spec.recent_window)
    dense = np.concatenate([behaviour, stats], axis=1)
    encoder.fit_dense(dense[masks["train"]])
    frames, batches, labels = {}, {}, {}
    for name, mask in masks.items():
        idx = np.flatnonzero(mask)
        if len(idx) == 0 or log["label"].to_numpy()[idx].min() == log["label"].to_numpy()[idx].max():
            raise CTRConfigError(f"the {name} split has no rows or one label only; move val_start/test_start")
        part = log.iloc[idx].reset_index(drop=True)
        batches[name] = assemble(
            encoder,
            items,
            users,
            part["user_id"].to_numpy(),
            part["item_id"].to_numpy(),
            part,
            behaviour[idx],
            stats[idx],
            [histories[i] for i in idx],
        )
        labels[name] = part["label"].to_numpy(np.float32)
        frames[name] = part.assign(**{n: dense[idx, j] for j, n in enumerate(_dense_names())})
    return Prepared(data, frames, batches, labels, encoder, items, users, time.perf_counter() - start)


def _dense_names() -> list[str]:
    from assistant.ranking.features import DENSE

    return list(DENSE)


# -- metrics ----------------------------------------------------------------------------------------------


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Expected calibration error over equal-width bins, and the bins (mean predicted vs observed)."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            table.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": int(m.sum()),
                    "predicted": round(float(p[m].mean()), 4),
                    "observed": round(float(y[m].mean()), 4),
                }
            )
            ece += m.mean() * abs(p[m].mean() - y[m].mean())
    return {
        "ece": round(float(ece), 4),
        "mean_predicted": round(float(p.mean()), 4),
        "observed_rate": round(float(y.mean()), 4),
        "bins": table,
    }


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {"auc": round(float(roc_auc_score(y, p)), 4), "logloss": round(float(log_loss(y, p)), 4)}


# -- training ---------------------------------------------------------------------------------------------


def build_model(config: CTRConfig, encoder: FeatureEncoder):
    from assistant.ranking.features import DENSE
    from assistant.ranking.model import DCNv2

    names = list(encoder.cardinalities())
    arch = {
        "cardinalities": list(encoder.cardinalities().values()),
        "n_dense": len(DENSE),
        "item_field": 1,
        "history_columns": tuple(names.index(f"item.{f}") for f in encoder.spec.history_fields),
        "dim": config.dim,
        "cross_layers": config.cross_layers,
        "hidden": tuple(config.hidden),
        "dropout": config.dropout,
    }
    return DCNv2(**arch), arch


def predict_batch(model, batch: Batch, batch_size: int = 16384) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(batch), batch_size):
            part = batch.take(np.arange(s, min(s + batch_size, len(batch))))
            logits = model(*part.tensors())
            out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def context_columns(config: CTRConfig) -> slice:
    """Where the context fields sit among the sparse columns (they come last)."""
    n = len(config.features.context_fields)
    return slice(-n, None) if n else slice(0, 0)


def fit(config: CTRConfig, prepared: Prepared, progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """Train with BCE and early stopping on validation AUC; returns the best model and its history."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    model, arch = build_model(config, prepared.encoder)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    train, y_train = prepared.batches["train"], prepared.labels["train"]
    rng = np.random.default_rng(config.seed)
    ctx = context_columns(config)
    history: dict[str, list] = {"step_loss": [], "epochs": []}
    best_auc, best_state, bad, step, stop = -1.0, None, 0, 0, False
    start = time.perf_counter()
    running: list[float] = []
    rows = 0

    def validate(epoch: float) -> bool:
        """Record a validation; True when patience has run out."""
        nonlocal best_auc, best_state, bad
        val = scores(prepared.labels["val"], predict_batch(model, prepared.batches["val"]))
        model.train()
        record = {
            "epoch": round(epoch, 3),
            "step": step,
            "train_loss": round(float(np.mean(running[-200:])), 5),
            **{f"val_{k}": v for k, v in val.items()},
            "seconds": round(time.perf_counter() - start, 1),
        }
        history["epochs"].append(record)
        print(json.dumps(record), file=sys.stderr)
        if val["auc"] > best_auc:
            best_auc, bad = val["auc"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        bad += 1
        return bad >= config.patience

    steps_per_epoch = -(-len(train) // config.batch_size)
    total = steps_per_epoch * config.epochs
    if config.schedule == "linear":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: max(0.05, 1 - k / total))
    else:
        sched = None
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        bar = tqdm(
            range(0, len(order), config.batch_size), desc=f"epoch {epoch}", disable=not progress, file=sys.stderr
        )
        for i, s in enumerate(bar, 1):
            idx = order[s : s + config.batch_size]
            part = train.take(idx)  # a copy: blanking context below leaves the data as it is
            if config.context_dropout > 0 and config.features.context_fields:
                blank = rng.random(len(idx)) < config.context_dropout
                part.sparse[blank, ctx] = 0
            logits = model(*part.tensors())
            loss = loss_fn(logits, torch.from_numpy(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            running.append(loss.item())
            step += 1
            rows += len(idx)
            if step % 50 == 0:
                history["step_loss"].append([step, float(np.mean(running[-50:]))])
                bar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
            if config.eval_every and step % config.eval_every == 0 and i < steps_per_epoch:
                if stop := validate(epoch - 1 + i / steps_per_epoch):
                    break
        if stop or validate(epoch):
            break
    model.load_state_dict(best_state)
    history["train_seconds"] = round(time.perf_counter() - start, 1)
    history["rows_per_second"] = round(rows / history["train_seconds"])
    history["arch"] = arch
    return model, history


def plot_curves(history: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    if history["step_loss"]:
        steps, losses = zip(*history["step_loss"], strict=True)
        a.plot(steps, losses)
    a.set(xlabel="step", ylabel="train BCE (50-step mean)", title="training loss")
    epochs = [e["epoch"] for e in history["epochs"]]  # fractional when validating within epochs
    b.plot(epochs, [e["val_auc"] for e in history["epochs"]], marker="o")
    b.set(xlabel="epoch", ylabel="validation AUC", title="validation AUC")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save(config: CTRConfig, prepared: Prepared, model, history: dict[str, Any], metrics: dict[str, Any]) -> Path:
    """Write the model folder; files are written beside it first and moved in, so a crash leaves the old one."""
    import shutil

    out = Path(config.output_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_ranker_files(tmp, ranker_files(prepared, model, history["arch"]))
    (tmp / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    with (tmp / "history.jsonl").open("w", encoding="utf-8") as f:
        for rec in history["epochs"]:
            f.write(json.dumps(rec) + "\n")
    plot_curves(history, tmp / "curves.png")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def ranker_files(prepared: Prepared, model, arch: dict[str, Any]) -> RankerFiles:
    """What serving loads: the item table gains the item statistics at the end of the data."""
    data = prepared.data
    end, stats = end_of_data_stats(data.events, data.log, data.items, prepared.encoder.spec.recent_window)
    items = ItemTable(prepared.items.ids, prepared.items.attrs, prepared.items.category, stats)
    return RankerFiles(model, arch, prepared.encoder, items, prepared.users, end)


def run(config: CTRConfig, progress: bool = True) -> dict[str, Any]:
    print(yaml.safe_dump({"resolved config": config.to_dict()}, sort_keys=False), file=sys.stderr)
    t0 = time.perf_counter()
    prepared = prepare(config)
    sizes = {k: len(v) for k, v in prepared.batches.items()}
    rates = {k: round(float(v.mean()), 4) for k, v in prepared.labels.items()}
    print(f"features ready in {prepared.seconds:.0f} s: rows {sizes}, positive rate {rates}", file=sys.stderr)
    model, history = fit(config, prepared, progress)
    p_test = predict_batch(model, prepared.batches["test"])
    y_test = prepared.labels["test"]
    metrics = {
        "data": prepared.data.description,
        "rows": sizes,
        "positive_rate": rates,
        "test": scores(y_test, p_test),
        "val_best_auc": max(e["val_auc"] for e in history["epochs"]),
        "calibration_test": calibration(y_test, p_test),
        "feature_seconds": round(prepared.seconds, 1),
        "train_seconds": history["train_seconds"],
        "train_rows_per_second": history["rows_per_second"],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    out = save(config, prepared, model, history, metrics)
    metrics["output_dir"] = str(out)
    return metrics


def main(argv: list[str] | None = None) -> int:
    import argparse

    from retrieval.offline import enforce_offline

    enforce_offline()
    parser = argparse.ArgumentParser(prog="python -m finetune.ctr.train", description="train the CTR ranker")
    parser.add_argument("--config", type=Path, required=True, help="YAML config (finetune/configs/)")
    parser.add_argument("--output-dir", help="where to save the model (overrides the config's output_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        config = CTRConfig.from_yaml(args.config)
        if args.output_dir:
            config.output_dir = args.output_dir
        metrics = run(config, progress=not args.quiet)
    except ShopassistError as exc:
        print(f"finetune.ctr.train: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in metrics.items() if k != "calibration_test"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
