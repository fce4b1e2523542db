"""CTR ranking: the log reader, past-only features, the time split, encoders, training and serving."""

import json
import random

import numpy as np
import pandas as pd
import pytest

from assistant.ranking import CTRRanker, RankingError
from assistant.ranking.features import FeatureEncoder, UserState, behaviour_features, item_popularity, item_stats
from assistant.ranking.impressions import LogFormatError, read_impression_log, time_split
from finetune.ctr.train import CTRConfig, CTRConfigError, fit, predict_batch, prepare, run, save, scores
from tests.ctr_fixture import write_config, write_log


@pytest.fixture(scope="module")
def fixture_log(tmp_path_factory):
    return write_log(tmp_path_factory.mktemp("ctr") / "impressions.jsonl")


@pytest.fixture(scope="module")
def trained(fixture_log, tmp_path_factory):
    """The fixture trained end to end through `run` (what `shopassist train ctr` does)."""
    root = tmp_path_factory.mktemp("ctr-model")
    config = CTRConfig.from_yaml(write_config(root / "config.yaml", fixture_log, root / "model"))
    metrics = run(config, progress=False)
    return config, metrics


# -- reader ------------------------------------------------------------------------------------------------


def test_reader_reads_the_documented_schema(fixture_log):
    data = read_impression_log(fixture_log)
    assert list(data.log.columns[:4]) == ["user_id", "item_id", "time", "label"]
    assert set(data.log["label"]) == {0, 1}
    assert data.context_columns == ("slot",)
    assert list(data.items.columns) == ["item_id", "item_category"] and len(data.items) == 80
    assert len(data.events) == int(data.log["label"].sum())  # purchases are the positive rows


def test_reader_accepts_csv_and_iso_dates(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp,label,slot\nu1,i1,2026-01-02T10:00:00,1,top\nu1,i2,2026-01-03,0,side\n")
    data = read_impression_log(path)
    assert data.log["time"].tolist() == sorted(data.log["time"]) and data.log["time"].iloc[0] > 1.7e9
    assert data.log["label"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"user_id": "u", "item_id": "i", "timestamp": 1, "label": 1}', "{not json"], "line 2: not valid JSON"),
        (['{"user_id": "u", "item_id": "i", "timestamp": 1}'], "line 1: missing label"),
        (['{"user_id": "u", "item_id": "i", "timestamp": 1, "label": 2}'], "line 1: label must be 0 or 1"),
        (['{"user_id": "u", "item_id": "i", "timestamp": "soon", "label": 0}'], "line 1: timestamp must be"),
        (["[1, 2]"], "line 1: expected a JSON object"),
        ([""], "no impressions"),
    ],
)
def test_reader_names_the_bad_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(LogFormatError, match=message):
        read_impression_log(path)


def test_reader_refuses_csv_without_required_columns(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item_id,timestamp,label\nu,i,1,1\n")
    with pytest.raises(LogFormatError, match="line 1: header lacks user_id"):
        read_impression_log(path)


# -- time split and leakage ----------------------------------------------------------------------------------


def test_time_split_is_ordered_and_disjoint(fixture_log):
    log = read_impression_log(fixture_log).log
    parts = time_split(log, 8, 9)
    assert parts["train"]["time"].max() < 8 <= parts["val"]["time"].min()
    assert parts["val"]["time"].max() < 9 <= parts["test"]["time"].min()
    assert sum(len(p) for p in parts.values()) == len(log)
    with pytest.raises(ValueError, match="must come before"):
        time_split(log, 9, 8)


def _brute_force(events, user, item, now, category_of, cap):
    """The behaviour features recomputed from scratch with only the events strictly before `now`."""
    past = events[(events["user_id"] == user) & (events["time"] < now)].sort_values("time", kind="stable")
    state = UserState()
    for e in past.itertuples(index=False):
        state.add(e.item_id, e.time, category_of(e.item_id))
    return state.dense(item, category_of(item), now, cap), state.history(5)


def test_features_use_only_the_past(fixture_log):
    config = CTRConfig.from_yaml(write_config(fixture_log.with_suffix(".yaml"), fixture_log, fixture_log.parent / "m"))
    p = prepare(config)
    data = p.data
    log = data.log.reset_index(drop=True)
    dense, histories = behaviour_features(log, data.events, config.features, p.items)
    rng = random.Random(1)
    for r in rng.sample(range(len(log)), 60):
        row = log.iloc[r]
        want_dense, want_history = _brute_force(
            data.events, row.user_id, row.item_id, row.time, p.items.category_of, 10
        )
        assert dense[r].tolist() == want_dense and histories[r] == want_history
    # popularity counts only purchases strictly before the row's time (and within the window for "recent")
    pop = item_popularity(data.events, log["item_id"], log["time"], 2)
    for r in rng.sample(range(len(log)), 60):
        row = log.iloc[r]
        ev = data.events[data.events["item_id"] == row.item_id]
        assert pop[r, 0] == (ev["time"] < row.time).sum()
        assert pop[r, 1] == ((ev["time"] < row.time) & (ev["time"] >= row.time - 2)).sum()
    stats = item_stats(data.events, log, log["item_id"], log["time"], 2)
    for r in rng.sample(range(len(log)), 60):
        row = log.iloc[r]
        shown = log[(log["item_id"] == row.item_id) & (log["time"] < row.time)]
        assert stats[r, 2:].tolist() == [len(shown), shown["label"].sum()]


def test_future_purchases_do_not_change_features(fixture_log):
    config = CTRConfig.from_yaml(write_config(fixture_log.with_suffix(".yaml"), fixture_log, fixture_log.parent / "m"))
    p = prepare(config)
    log, events = p.data.log.reset_index(drop=True), p.data.events
    early = log[log["time"] <= 5].reset_index(drop=True)
    before = behaviour_features(early, events, config.features, p.items)
    # every user buys every item in week 6 and later: nothing about weeks ≤ 5 may change
    future = pd.DataFrame(
        [(u, i, 6.0) for u in log["user_id"].unique() for i in p.items.ids], columns=["user_id", "item_id", "time"]
    )
    poisoned = pd.concat([events, future], ignore_index=True)
    after = behaviour_features(early, poisoned, config.features, p.items)
    assert np.array_equal(before[0], after[0]) and before[1] == after[1]
    future_log = pd.concat([log, future.assign(label=1)], ignore_index=True)
    assert np.array_equal(
        item_stats(events, log, early["item_id"], early["time"], 2),
        item_stats(poisoned, future_log, early["item_id"], early["time"], 2),
    )


def test_encoders_are_fitted_on_the_train_split_only(fixture_log, tmp_path):
    log = read_impression_log(fixture_log).log
    log.loc[log["time"] >= 8, "slot"] = "only-later"
    path = tmp_path / "later.jsonl"
    with path.open("w") as f:
        for rec in log.rename(columns={"time": "timestamp"}).to_dict("records"):
            f.write(json.dumps({**rec, "item_category": "x"}) + "\n")
    config = CTRConfig.from_yaml(write_config(tmp_path / "c.yaml", path, tmp_path / "m"))
    p = prepare(config)
    assert "only-later" not in p.encoder.vocabs["context.slot"]
    assert (p.batches["test"].sparse[:, -1] == 0).all()  # unseen value -> unknown


# -- encoders, training, saving, serving --------------------------------------------------------------------


def test_encoder_round_trips_through_json(fixture_log):
    config = CTRConfig.from_yaml(write_config(fixture_log.with_suffix(".yaml"), fixture_log, fixture_log.parent / "m"))
    p = prepare(config)
    again = FeatureEncoder.from_dict(json.loads(p.encoder.dumps()))
    assert again == p.encoder
    assert again.cardinalities() == p.encoder.cardinalities()
    assert again.code("item_id", "i3") == p.encoder.code("item_id", "i3") != 0
    assert again.code("item_id", "never-seen") == 0


def test_trained_model_beats_random_and_is_saved(trained):
    config, metrics = trained
    assert metrics["test"]["auc"] > 0.7  # random is 0.5; the fixture's signal is strong
    assert 0 < metrics["test"]["logloss"] < 0.69
    out = metrics["output_dir"]
    from pathlib import Path

    files = {f.name for f in Path(out).iterdir()}
    assert {"model.pt", "encoder.json", "tables.npz", "config.yaml", "metrics.json", "curves.png"} <= files
    assert metrics["calibration_test"]["bins"] and 0 <= metrics["calibration_test"]["ece"] < 0.5


def test_serving_matches_training_features(fixture_log, tmp_path):
    """A saved and reloaded ranker scores a row exactly as the training batch did (no train/serve skew)."""
    config = CTRConfig.from_yaml(write_config(tmp_path / "c.yaml", fixture_log, tmp_path / "m", epochs=1))
    config.context_dropout = 0.0
    p = prepare(config)
    model, history = fit(config, p, progress=False)
    save(config, p, model, history, {})
    events = p.data.events
    test = p.frames["test"]
    row_time = float(test["time"].iloc[0])
    user = test["user_id"].iloc[0]
    rows = test[(test["user_id"] == user) & (test["time"] == row_time)]
    past = events[events["user_id"] == user]
    ranker = CTRRanker.load(tmp_path / "m", history=lambda u: list(zip(past["item_id"], past["time"], strict=True)))
    ranker.serve_time = row_time
    ids = pd.Series(ranker.items.ids)
    ranker.items.stats = item_stats(events, p.data.log, ids, pd.Series([row_time] * len(ids)), 2)
    for r in rows.itertuples(index=False):
        got = ranker.predict(user, [r.item_id], context={"slot": r.slot}).items[0].score
        idx = np.flatnonzero((test["user_id"] == user) & (test["time"] == row_time) & (test["item_id"] == r.item_id))
        want = predict_batch(model, p.batches["test"].take(idx))[0]
        assert got == pytest.approx(float(want), abs=2e-3)  # weights are saved in float16


def test_ranker_paths_and_clear_errors(trained):
    _, metrics = trained
    history = {"u1": [("i1", 3.0), ("i5", 4.0)]}
    ranker = CTRRanker.load(metrics["output_dir"], history=lambda u: history.get(u, []))
    pred = ranker.predict("u1", ["i1", "i2", "i3"])
    assert [s.item_id for s in pred.items] == ["i1", "i2", "i3"]
    assert {s.path for s in pred.items} == {"personal"} and all(0 < s.score < 1 for s in pred.items)
    assert {s.path for s in ranker.predict("a-new-shopper", ["i1"]).items} == {"cold-user"}
    ranked = ranker.rank("u1", ["i1", "i2", "i3"])
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
    assert ranked[0]["method"].startswith("ctr-dcnv2")
    # deterministic
    assert ranker.predict("u1", ["i1", "i2"]) == ranker.predict("u1", ["i1", "i2"])
    for args, message in [
        (("u1", []), "item_ids is empty"),
        (("u1", ["i1", "i2", "i1"]), "listed more than once: i1"),
        (("u1", ["i1", "nope"]), "unknown item id\\(s\\): nope"),
        (("", ["i1"]), "user_id is empty"),
        (("u1", [f"i{n % 80}" for n in range(1001)]), "at most 1000"),
    ]:
        with pytest.raises(RankingError, match=message):
            ranker.predict(*args)
    with pytest.raises(RankingError, match="unknown context field"):
        ranker.predict("u1", ["i1"], context={"weather": "rain"})


def test_rank_products_tool_uses_the_ctr_ranker(trained, store):
    from assistant.tools import ToolContext, ToolRegistry

    ranker = CTRRanker.load(trained[1]["output_dir"])
    ctx = ToolContext(store, None, ranker)
    registry = ToolRegistry()

    def call(**kwargs):
        return registry.invoke(ctx, "rank_products", kwargs)

    out = json.loads(call(user_id="u3", item_ids=["i4", "i8", "i9"]))
    assert len(out) == 3 and all(o["method"].startswith("ctr-dcnv2") for o in out)
    assert call(user_id="u3", item_ids=["i4", "i4"]).startswith("Error: item id(s) listed more than once: i4")
    assert call(user_id="u3", item_ids=["1008292230"]).startswith("Error: unknown item id(s): 1008292230")


def test_bad_configs_are_refused(tmp_path, fixture_log):
    for raw, message in [
        ({"epochs": 0}, "epochs must be"),
        ({"learning_rate": 0.0001, "colour": 1}, "unknown field\\(s\\) colour"),
        ({"val_start": 9, "test_start": 8}, "val_start must come before"),
        ({"source": str(tmp_path / "missing.jsonl")}, "impression log file"),
        ({"features": {"depth": 3}}, "unknown features field"),
    ]:
        with pytest.raises(CTRConfigError, match=message):
            CTRConfig.from_dict(raw)


def test_features_the_data_lacks_are_named(fixture_log, tmp_path):
    config = CTRConfig.from_yaml(write_config(tmp_path / "c.yaml", fixture_log, tmp_path / "m"))
    config.features.item_fields = ["item_category", "item_colour"]
    config.features.category_field = "item_size"
    with pytest.raises(CTRConfigError, match="lacks: item item_colour, item item_size \\(category_field\\)"):
        prepare(config)


def test_metrics_are_computed_from_predictions():
    y = np.array([0, 0, 1, 1], dtype=np.float32)
    assert scores(y, np.array([0.1, 0.2, 0.8, 0.9]))["auc"] == 1.0
    assert scores(y, np.array([0.9, 0.8, 0.2, 0.1]))["auc"] == 0.0


def test_train_ctr_cli(fixture_log, tmp_path, capsys):
    from ui.cli import main

    config = write_config(tmp_path / "c.yaml", fixture_log, tmp_path / "out", epochs=2)
    assert main(["train", "ctr", "--config", str(config), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "resolved config" in captured.err.splitlines()[0]  # the resolved config comes first
    report = json.loads(captured.out)
    assert report["output_dir"] == str(tmp_path / "out") and report["test"]["auc"] > 0.5
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 0\n")
    assert main(["train", "ctr", "--config", str(bad)]) == 2
    assert "epochs must be" in capsys.readouterr().err
