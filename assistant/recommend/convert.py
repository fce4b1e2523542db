"""Build LLMRank-format files from The Complete Journey (`shopassist data zeroshot complete-journey`).

Per household, the products it bought in the order of their first purchase; the last of them is the
target ("the next new product this household bought"), the `history` before it the history. The
target is new by construction, so it is never in the history. Titles: product type, category, brand
and package size. Candidates: 100 random products per user from all products sold (LLMRank samples
from all items). Users with at least `history` earlier products are drawn (seeded) into a test file
and a disjoint validation file. The files are derived from the PyPI package and stay local (runs/).
"""

import random
from pathlib import Path

from assistant.recommend.protocol import Interaction, write


def title(row) -> str:
    kind = row.product_type if row.product_type != "unknown" else row.category
    parts = [kind.title(), f"({row.category.title()})"]
    if row.brand != "unknown":
        parts.append(f"{row.brand} brand")
    if row.package_size != "unknown":
        parts.append(row.package_size)
    return " ".join(parts)


def first_purchases():
    """(items by id, transactions in time order, each household's first purchase of each product): the
    sequences these files are cut from, and the ranker's fine-tuning examples (`finetune.tallrec`) too."""
    from assistant.store.complete_journey import item_table, load_tables

    d = load_tables(["transactions", "products"])
    items = item_table(d["products"], {}).set_index("item_id")
    tx = d["transactions"]
    tx = tx[tx["product_id"].astype(str).isin(items.index)]  # a few sold ids have no product record
    tx = tx.sort_values(["transaction_timestamp", "basket_id", "product_id"], kind="stable")
    return items, tx, tx.drop_duplicates(["household_id", "product_id"])


def complete_journey(
    out_dir: Path, users: int = 200, valid_users: int = 100, history: int = 20, candidates: int = 100, seed: int = 0
) -> dict[str, int]:
    from assistant.store.complete_journey import user_key

    items, tx, firsts = first_purchases()
    sequences = {user_key(hh): [str(p) for p in g["product_id"]] for hh, g in firsts.groupby("household_id", sort=True)}
    eligible = sorted(u for u, seq in sequences.items() if len(seq) > history)
    rng = random.Random(seed)
    rng.shuffle(eligible)
    chosen = {"test": eligible[:users], "valid": eligible[users : users + valid_users]}
    sold = sorted(set(tx["product_id"].astype(str)))
    inters, cands = {}, {}
    for split, who in chosen.items():
        inters[split] = []
        for u in who:
            seq = sequences[u]
            inters[split].append(Interaction(u, tuple(seq[-history - 1 : -1]), seq[-1]))
            cands[u] = rng.sample(sold, candidates)
    used = {i for x in (*inters["test"], *inters["valid"]) for i in (*x.history, x.target)}
    used |= {i for ids in cands.values() for i in ids}
    titles = {i: title(items.loc[i]) for i in sorted(used, key=int)}
    out_dir = Path(out_dir)
    name = out_dir.name
    write(out_dir, name, titles, inters["test"], {u: cands[u] for u in chosen["test"]})
    valid = out_dir / "valid"
    write(valid, name, titles, inters["valid"], {u: cands[u] for u in chosen["valid"]})
    return {"items": len(titles), "test_users": len(inters["test"]), "valid_users": len(inters["valid"])}


def store_title(name: str, options: dict[str, str]) -> str:
    """An item as the rankers read it in a store pack: the product name and its options."""
    opts = ", ".join(f"{k} {v}" for k, v in options.items())
    return f"{name} ({opts})" if opts else name


def store_pack(
    out_dir: Path, store, history: int = 4, users: int = 200, candidates: int = 100, seed: int = 0
) -> dict[str, int]:
    """LLMRank files from a store's own orders (not cancelled), for evaluating on a domain the ranker never
    saw: per customer, the items in the order of their first purchase (the order of the customer's order
    list: tau-retail's orders carry no dates); customers with more than `history` such items are drawn
    (seeded), the last item is the target and everything before it the history."""
    from assistant.ranking.history import store_history
    from retrieval.catalog import items_from_products

    catalog = {it.item_id: it for it in items_from_products(store.products())}
    events = store_history(store)
    sequences = {}
    for user_id in sorted(store.users()):
        seq = list(dict.fromkeys(i for i, _t in events(user_id) if i in catalog))
        if len(seq) > history:
            sequences[user_id] = seq
    eligible = sorted(sequences)
    rng = random.Random(seed)
    rng.shuffle(eligible)
    chosen = eligible[:users]
    pool = sorted(catalog)
    inters = [Interaction(u, tuple(sequences[u][:-1]), sequences[u][-1]) for u in chosen]
    cands = {u: rng.sample(pool, candidates) for u in chosen}
    used = {i for x in inters for i in (*x.history, x.target)} | {i for ids in cands.values() for i in ids}
    titles = {i: store_title(catalog[i].title, catalog[i].options) for i in sorted(used)}
    out_dir = Path(out_dir)
    write(out_dir, out_dir.name, titles, inters, cands)
    return {"items": len(titles), "test_users": len(inters), "eligible_users": len(eligible)}
