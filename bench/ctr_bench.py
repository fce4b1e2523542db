"""CTR ranker benchmark: ours vs popularity, logistic regression, LightGBM and DeepCTR-Torch DeepFM.

    make bench                                    # full Complete Journey split (~15 min on 2 cores)
    .venv/bin/python bench/ctr_bench.py --households 300 --tag=-small   # quick run

Every model is trained and tested in this one run on the same split and features
(finetune/configs/ctr_complete_journey.yaml): weeks 1-40 train, 41-46 validate (early stopping /
best round), 47-53 test. Features: the categorical codes (user, item attributes, context) and the 7
past-only dense features for all; the recent-items history only for the models that can use a
sequence (ours: DIN attention + mean; DeepFM: mean-pooled VarLenSparseFeat). Training time is wall
time of fitting on 2 threads, after the shared feature build. Serving: `CTRRanker.predict` for one
user and N candidates (user state cached after the first call; the first call is reported apart).
Results: stdout (Markdown) and bench/results/ctr<tag>.json.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from retrieval.offline import enforce_offline

enforce_offline()


def block_update_check() -> None:
    """deepctr-torch asks pypi.python.org for a newer version when imported; never let it try."""
    import requests

    def refuse(*_a, **_k):
        raise requests.ConnectionError("shopassist bench runs offline")

    requests.get = refuse


def popularity(p, _config):
    # purchases of the item before the impression's time (the dense feature item_popularity)
    return {"test": p.frames["test"]["item_popularity"].to_numpy(), "train_seconds": 0.0}


def one_hot(p):
    from scipy import sparse
    from sklearn.preprocessing import OneHotEncoder

    enc = OneHotEncoder(handle_unknown="ignore", min_frequency=1)
    enc.fit(p.batches["train"].sparse)
    return {
        k: sparse.hstack([enc.transform(b.sparse), sparse.csr_matrix(b.dense)]).tocsr() for k, b in p.batches.items()
    }


def logistic_regression(p, _config):
    from sklearn.linear_model import LogisticRegression

    x = one_hot(p)
    start = time.perf_counter()
    model = LogisticRegression(max_iter=300, C=1.0)
    model.fit(x["train"], p.labels["train"])
    seconds = time.perf_counter() - start
    return {"test": model.predict_proba(x["test"])[:, 1], "train_seconds": seconds}


def lightgbm(p, config):
    import lightgbm as lgb

    def table(b):
        return np.concatenate([b.sparse.astype(np.float32), b.dense], axis=1)

    n_cat = p.batches["train"].sparse.shape[1]
    params = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 63,
        "min_data_in_leaf": 100,
        "num_threads": 2,
        "verbose": -1,
        "seed": config.seed,
        "max_cat_to_onehot": 8,
        "cat_smooth": 10,
    }
    train = lgb.Dataset(table(p.batches["train"]), p.labels["train"], categorical_feature=list(range(n_cat)))
    val = lgb.Dataset(table(p.batches["val"]), p.labels["val"], reference=train)
    start = time.perf_counter()
    booster = lgb.train(
        params, train, num_boost_round=500, valid_sets=[val], callbacks=[lgb.early_stopping(20, verbose=False)]
    )
    seconds = time.perf_counter() - start
    return {
        "test": booster.predict(table(p.batches["test"]), num_iteration=booster.best_iteration),
        "train_seconds": seconds,
        "rounds": booster.best_iteration,
    }


def deepfm(p, config):
    block_update_check()
    import torch
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DeepFM
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(config.seed)
    names = list(p.encoder.cardinalities())
    sizes = list(p.encoder.cardinalities().values())
    cols = [
        SparseFeat(n.replace(".", "_"), vocabulary_size=s, embedding_dim=config.dim)
        for n, s in zip(names, sizes, strict=True)
    ]
    dense_names = [f"dense_{i}" for i in range(p.batches["train"].dense.shape[1])]
    cols += [DenseFeat(n, 1) for n in dense_names]
    cols += [
        VarLenSparseFeat(
            SparseFeat("history", vocabulary_size=sizes[1], embedding_dim=config.dim, embedding_name="item_id"),
            maxlen=config.features.history_length,
            combiner="mean",
        )
    ]

    def inputs(b):
        x = {n.replace(".", "_"): b.sparse[:, i] for i, n in enumerate(names)}
        x.update({n: b.dense[:, i] for i, n in enumerate(dense_names)})
        x["history"] = b.history
        return x

    model = DeepFM(
        cols, cols, dnn_hidden_units=tuple(config.hidden), dnn_dropout=config.dropout, device="cpu", seed=config.seed
    )
    model.compile(torch.optim.Adam(model.parameters(), lr=config.learning_rate), "binary_crossentropy")
    best, best_state, seconds, epochs = -1.0, None, 0.0, 0
    for _epoch in range(config.epochs):
        epochs += 1
        start = time.perf_counter()
        model.fit(inputs(p.batches["train"]), p.labels["train"], batch_size=config.batch_size, epochs=1, verbose=0)
        seconds += time.perf_counter() - start
        auc = roc_auc_score(p.labels["val"], model.predict(inputs(p.batches["val"]), batch_size=16384)[:, 0])
        if auc <= best:
            break
        best, best_state = auc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return {
        "test": model.predict(inputs(p.batches["test"]), batch_size=16384)[:, 0],
        "train_seconds": seconds,
        "epochs": epochs,
        "rows_per_second": round(len(p.labels["train"]) * epochs / seconds),
    }


def ours(p, config):
    from finetune.ctr.train import fit, predict_batch

    model, history = fit(config, p, progress=False)
    return {
        "test": predict_batch(model, p.batches["test"]),
        "train_seconds": history["train_seconds"],
        "validations": len(history["epochs"]),
        "rows_per_second": history["rows_per_second"],
        "model": model,
        "history": history,
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": round(1000 * float(np.percentile(seconds, q)), 2) for q in (50, 95)}


def serving_latency(p, model, arch: dict, repeats: int) -> dict:
    """CTRRanker.predict for one user and 100 / 1,000 candidates, on a ranker built from this run's model."""
    import tempfile

    from assistant.ranking import CTRRanker
    from assistant.ranking.folder import save_ranker_files
    from finetune.ctr.train import ranker_files

    data = p.data
    by_user = {u: list(zip(g["item_id"], g["time"], strict=True)) for u, g in data.events.groupby("user_id")}
    with tempfile.TemporaryDirectory(prefix="ctr-bench-") as folder:  # the folder serving loads, as shipped
        save_ranker_files(Path(folder), ranker_files(p, model, arch))
        ranker = CTRRanker.load(Path(folder), lambda u: by_user.get(u, []))
    rng = np.random.default_rng(0)
    users = sorted(by_user)
    candidates = np.array(sorted(set(p.frames["test"]["item_id"])))
    out = {}
    for n in (100, 1000):
        first, warm = [], []
        for r in range(repeats):
            user = users[rng.integers(len(users))]
            cand = list(rng.choice(candidates, n, replace=False))
            start = time.perf_counter()
            ranker.predict(user, cand)
            first.append(time.perf_counter() - start)
            start = time.perf_counter()
            ranker.predict(user, cand)
            warm.append(time.perf_counter() - start)
            if r == 0:
                first, warm = [], []  # warm-up
        out[str(n)] = {"cached_user": percentiles(warm), "first_request_for_user": percentiles(first)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("finetune/configs/ctr_complete_journey.yaml"))
    parser.add_argument("--households", type=int, help="only the first N households (quick run)")
    parser.add_argument("--only", nargs="*", help="models to run (default all)")
    parser.add_argument("--repeats", type=int, default=200, help="serving latency samples per size")
    parser.add_argument("--tag", default="", help="suffix for the results file")
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from finetune.ctr.train import CTRConfig, calibration, prepare, scores

    config = CTRConfig.from_yaml(args.config)
    config.households = args.households
    torch.set_num_threads(config.threads or 2)
    p = prepare(config)
    y = p.labels["test"]
    report = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "data": p.data.description,
        "rows": {k: len(v) for k, v in p.batches.items()},
        "feature_seconds": round(p.seconds, 1),
        "models": {},
    }
    print(f"features: {p.seconds:.0f} s, rows {report['rows']}", file=sys.stderr)
    runners = {
        "popularity": popularity,
        "logistic regression": logistic_regression,
        "lightgbm": lightgbm,
        "deepctr-torch DeepFM": deepfm,
        "ours (DCN-v2 + DIN)": ours,
    }
    extra = {}
    for name, run in runners.items():
        if args.only and not any(o.lower() in name.lower() for o in args.only):
            continue
        print(f"-- {name}", file=sys.stderr)
        try:
            got = run(p, config)
        except Exception as exc:  # a baseline that cannot run is reported, not fatal
            report["models"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        pred = np.asarray(got["test"], dtype=np.float64)
        row = {"test_auc": round(float(roc_auc_score(y, pred)), 4), "train_seconds": round(got["train_seconds"], 1)}
        if name != "popularity":
            row.update({"test_logloss": scores(y, pred)["logloss"], "ece": calibration(y, pred)["ece"]})
            # neural models: rows through the optimiser per second; others: training rows / fit time
            row["train_rows_per_second"] = got.get("rows_per_second") or round(
                len(p.labels["train"]) / max(got["train_seconds"], 1e-9)
            )
        row.update({k: v for k, v in got.items() if k in ("epochs", "rounds", "validations")})
        report["models"][name] = row
        if "model" in got:
            extra = got
        print(json.dumps({name: row}), file=sys.stderr)
    if extra:
        report["serving"] = serving_latency(p, extra["model"], extra["history"]["arch"], args.repeats)
    out = Path(__file__).parent / "results" / f"ctr{args.tag}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("\n| model | test AUC | logloss | ECE | train s | rows/s |\n|---|---|---|---|---|---|")
    for name, row in report["models"].items():
        if "error" in row:
            print(f"| {name} | error: {row['error']} |")
            continue
        print(
            f"| {name} | {row['test_auc']} | {row.get('test_logloss', '–')} | {row.get('ece', '–')} | "
            f"{row['train_seconds']} | {row.get('train_rows_per_second', '–')} |"
        )
    if "serving" in report:
        print(json.dumps(report["serving"], indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
