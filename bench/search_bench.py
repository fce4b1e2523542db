"""Product-search benchmark: relevance of dense / lexical / fused ranking, and indexing and query speed.

    make bench                                        # relevance + speed at 591 and 100,000 items
    .venv/bin/python bench/search_bench.py --sizes 591 --queries 100   # quick run

Relevance: bench/search_queries.jsonl (50 shopper queries written for the tau-retail catalog). Grade 2
= the wanted product with every wanted option, grade 1 = the wanted product; only available items
count, because search hides the rest. nDCG@10 with these gains; recall@10 = grade-2 items in the top
10 / min(10, number of grade-2 items).

Speed: the tau-retail catalog (591 items) and N generated items (tau product types with random option
combinations, names and prices). Each size is indexed into a fresh embedded Chroma collection with the
product's own `index_catalog`. Query latency is timed per query after a warm-up, for: Chroma with the
query text (includes embedding it), Chroma with a precomputed embedding, the same with a price filter,
a brute-force numpy cosine search over the same vectors (the floor), and the full fused search.
Results go to stdout as Markdown and to bench/results/search.json.
"""

import argparse
import json
import math
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.offline import enforce_offline

enforce_offline()

from assistant.store import get_pack  # noqa: E402
from retrieval.catalog import CatalogItem, items_from_products  # noqa: E402
from retrieval.chroma_index import chroma_client, get_all, index_catalog, open_collection  # noqa: E402
from retrieval.embeddings import PackagedMiniLM  # noqa: E402
from retrieval.search import MODES, ProductSearch  # noqa: E402

BENCH = Path(__file__).parent
ADJECTIVES = ["Classic", "Pro", "Lite", "Ultra", "Eco", "Urban", "Trail", "Compact", "Deluxe", "Sport", "Prime"]


def load_queries() -> list[dict]:
    return [json.loads(line) for line in (BENCH / "search_queries.jsonl").read_text().splitlines() if line.strip()]


def gains(query: dict, items: list[CatalogItem]) -> dict[str, int]:
    out = {}
    for item in items:
        if item.available and item.title == query["product"]:
            match = all(item.options.get(k) == v for k, v in query["options"].items())
            out[item.item_id] = 2 if match else 1
    return out


def ndcg_at_10(ranked: list[str], gain: dict[str, int]) -> float:
    dcg = sum(gain.get(i, 0) / math.log2(r + 2) for r, i in enumerate(ranked[:10]))
    ideal = sorted(gain.values(), reverse=True)[:10]
    return dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal))


def recall_at_10(ranked: list[str], gain: dict[str, int]) -> float:
    best = {i for i, g in gain.items() if g == 2}
    return len(best & set(ranked[:10])) / min(10, len(best))


def relevance(search: ProductSearch, items: list[CatalogItem]) -> dict[str, dict[str, float]]:
    queries = load_queries()
    results, per_query = {}, {}
    for mode in MODES:
        nd, rc = [], []
        for q in queries:
            g = gains(q, items)
            ranked = [h.item_id for h in search.search(q["query"], k=10, mode=mode)]
            nd.append(ndcg_at_10(ranked, g))
            rc.append(recall_at_10(ranked, g))
        per_query[mode] = nd
        results[mode] = {"ndcg@10": statistics.mean(nd), "recall@10": statistics.mean(rc), "queries": len(queries)}
    for mode in MODES[1:]:  # paired per-query comparison of fused against each single ranking
        diffs = [a - b for a, b in zip(per_query["fused"], per_query[mode], strict=True)]
        results["fused"][f"vs {mode}: wins/ties/losses"] = "/".join(
            str(sum(f(d) for d in diffs)) for f in (lambda d: d > 1e-9, lambda d: abs(d) <= 1e-9, lambda d: d < -1e-9)
        )
    return results


def generated_items(n: int, base: list[CatalogItem], seed: int = 0) -> list[CatalogItem]:
    rng = random.Random(seed)
    by_product: dict[str, list[CatalogItem]] = {}
    for item in base:
        by_product.setdefault(item.title, []).append(item)
    names = sorted(by_product)
    out = []
    for i in range(n):
        variants = by_product[rng.choice(names)]
        keys = list(variants[0].options)
        options = {k: rng.choice([v.options[k] for v in variants if k in v.options]) for k in keys}
        price = round(rng.choice(variants).price * rng.uniform(0.6, 1.6), 2)
        out.append(
            CatalogItem(
                item_id=f"g{i:07d}",
                product_id=f"gp{i // 8:06d}",
                title=f"{rng.choice(ADJECTIVES)} {variants[0].title} {rng.randint(1, 999)}",
                category=variants[0].category,
                price=price,
                available=rng.random() < 0.7,
                options=options,
            )
        )
    return out


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {"p50_ms": ms[len(ms) // 2], "p95_ms": ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]}


def timed(fn, inputs: list) -> dict[str, float]:
    for x in inputs[:5]:
        fn(x)  # warm-up
    samples = []
    for x in inputs:
        start = time.perf_counter()
        fn(x)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def speed(size: int, base: list[CatalogItem], embedder: PackagedMiniLM, n_queries: int, workdir: Path) -> dict:
    items = base if size == len(base) else generated_items(size, base)
    collection = open_collection(chroma_client(workdir / f"chroma-{size}"), f"bench-{size}", embedder)

    start = time.perf_counter()
    embedder.encode([it.document() for it in items[:2000]])
    embed_rate = min(2000, len(items)) / (time.perf_counter() - start)

    report = index_catalog(collection, items, batch_size=512, progress=True, embedder=embedder)
    got = get_all(collection, include=["embeddings", "metadatas"])
    matrix = np.asarray(got["embeddings"], dtype=np.float32)
    prices = np.array([m["price"] for m in got["metadatas"]])
    ids = got["ids"]

    queries = [q["query"] for q in load_queries()]
    texts = [
        queries[i % len(queries)] + ("" if i < len(queries) else f" {ADJECTIVES[i % 11]}") for i in range(n_queries)
    ]
    vectors = embedder.encode(texts)
    cap = float(np.median(prices))
    where = {"price": {"$lte": cap}}
    k = 10

    def chroma_vec(v, where=None):
        return collection.query(query_embeddings=[v.tolist()], n_results=k, where=where, include=["metadatas"])

    def numpy_floor(v, mask=None):
        scores = matrix @ v
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, k)[:k]
        return top[np.argsort(-scores[top])]

    below = prices <= cap
    result = {
        "items": len(items),
        "embedding_items_per_s": embed_rate,
        "index_items_per_s": report.items_per_second,
        "index_seconds": report.seconds,
        "query": {
            "chroma, query text (embeds it)": timed(
                lambda t: collection.query(query_texts=[t], n_results=k, include=["metadatas"]), texts
            ),
            "chroma, precomputed embedding": timed(chroma_vec, list(vectors)),
            "chroma, precomputed embedding + price filter": timed(lambda v: chroma_vec(v, where), list(vectors)),
            "numpy brute force (floor)": timed(numpy_floor, list(vectors)),
            "numpy brute force + price filter": timed(lambda v: numpy_floor(v, below), list(vectors)),
        },
    }
    # how many of the exact top 10 the HNSW index returns
    overlap = []
    for v in vectors[:100]:
        exact = {ids[i] for i in numpy_floor(v)}
        overlap.append(len(exact & set(chroma_vec(v)["ids"][0])) / k)
    result["hnsw_recall@10_vs_exact"] = statistics.mean(overlap)
    search = ProductSearch(collection, embedder)
    search.snapshot  # noqa: B018  (build the BM25 snapshot outside the timing)
    result["query"]["shopassist search, dense (embed + chroma), in stock"] = timed(
        lambda t: search.search(t, k=k, mode="dense"), texts[: min(len(texts), 100)]
    )
    result["query"]["shopassist search, fused (embed + chroma + BM25), in stock, price <= median"] = timed(
        lambda t: search.search(t, max_price=cap, k=k), texts[: min(len(texts), 100)]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="591,100000", help="catalog sizes; 591 = the real tau-retail catalog")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per configuration")
    parser.add_argument(
        "--compare-size", type=int, default=10000, help="items for the indexing-mode comparison; 0 = skip"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "search.json")
    args = parser.parse_args()

    import torch

    base = items_from_products(get_pack("tau-retail").read_documents()["products"])
    embedder = PackagedMiniLM()
    out = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        collection = open_collection(chroma_client(work / "rel"), "tau-retail", embedder)
        index_catalog(collection, base, progress=False)
        out["relevance"] = relevance(ProductSearch(collection, embedder), base)
        print("\n## Relevance (bench/search_queries.jsonl, tau-retail catalog)\n")
        print("| ranking | nDCG@10 | recall@10 |\n|---|---|---|")
        for mode, r in out["relevance"].items():
            print(f"| {mode} | {r['ndcg@10']:.3f} | {r['recall@10']:.3f} |")
        fused = out["relevance"]["fused"]
        for key in [k for k in fused if k.startswith("vs ")]:
            print(f"- fused {key} (per query nDCG@10): {fused[key]}")

        out["speed"] = []
        for size in (int(s) for s in args.sizes.split(",")):
            r = speed(size, base, embedder, args.queries, work)
            out["speed"].append(r)
            print(f"\n## Speed at {r['items']:,} items\n")
            print(f"- embedding alone: {r['embedding_items_per_s']:.0f} items/s")
            print(
                f"- indexing (embed + Chroma upsert): {r['index_items_per_s']:.0f} items/s ({r['index_seconds']:.0f} s)"
            )
            print(f"- HNSW recall@10 vs exact search: {r['hnsw_recall@10_vs_exact']:.3f}\n")
            print("| query path | p50 ms | p95 ms |\n|---|---|---|")
            for name, p in r["query"].items():
                print(f"| {name} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
