"""Requests that describe a need, a person or an occasion: do they reach the right product types?

    .venv/bin/python bench/need_bench.py                 # all methods (loads the LLM; ~5 min on 2 cores)
    .venv/bin/python bench/need_bench.py --no-model      # search-only methods
    .venv/bin/python bench/need_bench.py --store complete-journey   # the grocery half (~1 min; needs
        `shopassist store import complete-journey` and `shopassist index --store complete-journey`)

Requests: bench/need_requests.json (62 requests over the tau-retail catalog; bench/need_requests_cj.json,
30 over the imported Complete Journey store; written for this bench,
none naming a product type). Each grades product types: 2 = what the request asks for, 1 = a sensible
second choice; an item's gain is its type's grade, 0 above the request's price bound, one less when it
lacks an option the request states. Only available items count (search hides the rest). nDCG@10 over
the items each method returns; type hit@3 = share of requests whose top three distinct types include a
grade-2 type. Latency: median and p95 per request, after one warm-up request.

Methods
- search, names only: the product's fused search (dense + BM25) over item documents as they were
  before type descriptions (name, options), on the request cut at its price bound.
- search (+ type descriptions): the same over documents with the pack's descriptions.json (what the
  product indexes now); dense and lexical alone for comparison.
- model types: the model's P(Yes) to "would a <type> suit what this shopper needs?" for every product
  type of the catalog (request-conditioned pointwise scoring, prompts/type_fit.v1.md, one shared-prefix
  batch per request); items are the three best types' items in search order.
- hybrid: the type route's cosine plus the model's type probability, items of the three best types.
The shipped fused search ranks a query that names no product type by dense + type route, one that
names a type by dense + BM25 (type route and BM25 together cost the product-name queries; measured).
- recommend: `Recommender.recommend` with no customer (its default then is the candidate order, method
  none); and each request paired with a tau-retail customer who has orders (seeded), once in candidate
  order, once by the default (auto: these requests all state a need, so the candidate order) and once by
  the fine-tuned ranker (`--method ranker`, `models/ranker-smollm2`): does ranking by purchases keep the
  list on the need?
Results: stdout (Markdown) and bench/results/need_requests.json.
"""

import argparse
import json
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

from assistant.requests import parse_request  # noqa: E402
from assistant.store import get_pack  # noqa: E402
from retrieval.catalog import CatalogItem, items_from_products  # noqa: E402
from retrieval.chroma_index import chroma_client, index_catalog, open_collection  # noqa: E402
from retrieval.embeddings import PackagedMiniLM  # noqa: E402
from retrieval.search import ProductSearch  # noqa: E402

BENCH = Path(__file__).parent


def load_requests(name: str = "need_requests.json") -> list[dict]:
    return json.loads((BENCH / name).read_text(encoding="utf-8"))


def gains(request: dict, items: list[CatalogItem]) -> dict[str, int]:
    out = {}
    bound = request.get("max_price")
    wanted = request.get("options", {})
    for item in items:
        grade = request["relevant"].get(item.title, 0)
        if not item.available or not grade or (bound is not None and item.price > bound):
            continue
        if any(item.options.get(k, "").lower() != v.lower() for k, v in wanted.items()):
            grade -= 1
        if grade:
            out[item.item_id] = grade
    return out


def ndcg_at_10(ranked: list[str], gain: dict[str, int]) -> float:
    dcg = sum(gain.get(i, 0) / math.log2(r + 2) for r, i in enumerate(ranked[:10]))
    ideal = sorted(gain.values(), reverse=True)[:10]
    return dcg / sum(g / math.log2(r + 2) for r, g in enumerate(ideal)) if ideal else 0.0


def type_hit_at_3(ranked: list[str], request: dict, title_of: dict[str, str]) -> float:
    types = list(dict.fromkeys(title_of[i] for i in ranked if i in title_of))[:3]
    return float(any(request["relevant"].get(t) == 2 for t in types))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def run_method(name: str, fn, requests: list[dict], items: list[CatalogItem]) -> dict:
    title_of = {it.item_id: it.title for it in items}
    fn(requests[0])  # warm-up
    nd, hits, seconds, per_request, gradeable = [], [], [], [], []
    for r in requests:
        started = time.perf_counter()
        ranked = fn(r)
        seconds.append(time.perf_counter() - started)
        gain = gains(r, items)
        nd.append(ndcg_at_10(ranked, gain))
        hits.append(type_hit_at_3(ranked, r, title_of))
        per_request.append(round(nd[-1], 3))
        gradeable.append(bool(gain))
    graded = [n for n, g in zip(nd, gradeable, strict=True) if g]
    out = {
        "ndcg@10": round(statistics.mean(nd), 3),
        # a request with no relevant item within its bound has no ideal list: nDCG is undefined there, and
        # the mean above counts it as 0 for every method; this one leaves it out
        "ndcg@10_gradeable": round(statistics.mean(graded), 3),
        "gradeable_requests": len(graded),
        "type_hit@3": round(statistics.mean(hits), 3),
        "p50_ms": round(1000 * statistics.median(seconds), 1),
        "p95_ms": round(1000 * percentile(seconds, 0.95), 1),
        "per_request": per_request,
    }
    print(
        f"| {name} | {out['ndcg@10']:.3f} | {out['ndcg@10_gradeable']:.3f} | {out['type_hit@3']:.3f} "
        f"| {out['p50_ms']:.0f} | {out['p95_ms']:.0f} |"
    )
    return out


def searcher(search: ProductSearch, mode: str = "fused", k: int = 10):
    def ranked(r: dict) -> list[str]:
        parsed = parse_request(r["request"])
        hits = search.search(parsed.query, max_price=parsed.max_price, min_price=parsed.min_price, k=k, mode=mode)
        return [h.item_id for h in hits]

    return ranked


def model_types(llm, search: ProductSearch, hybrid: bool):
    """Items of the product types the model scores highest for the request (request-conditioned pointwise
    scoring); `hybrid` adds the type route's cosine similarity to the model's probability."""
    types = sorted(search.snapshot.type_documents)

    def ranked(r: dict) -> list[str]:
        parsed = parse_request(r["request"])
        score = dict(zip(types, llm.type_fit(parsed.query, types), strict=True))
        if hybrid:
            cosine = search.type_scores(parsed.query)
            score = {t: score[t] + cosine.get(t, 0.0) for t in types}
        out: list[str] = []
        for name in sorted(types, key=lambda t: -score[t])[:3]:
            category = next(it.category for it in search.snapshot.items if it.title == name)
            hits = search.search(parsed.query, max_price=parsed.max_price, category=category, k=10)
            out += [h.item_id for h in hits]
            if len(out) >= 10:
                break
        return out

    return ranked


def recommender(search: ProductSearch, method: str = "none", customers: bool = False):
    import random

    from assistant.recommend.recommender import FineTunedRanker, Recommender
    from assistant.store import FreshStores

    store = FreshStores(get_pack("tau-retail"), Path(tempfile.mkdtemp(prefix="shopassist-need-"))).open()
    rec = Recommender(store, search, fine_tuned=FineTunedRanker() if method in ("auto", "ranker") else None)
    buyers = sorted(u for u in store.users() if rec.user_history(u))  # not only cancelled orders
    pick = dict(zip([r["request"] for r in load_requests()], random.Random(0).sample(buyers, 62), strict=False))

    def ranked(r: dict) -> list[str]:
        return [x.item_id for x in rec.recommend(r["request"], pick[r["request"]] if customers else None, 10, method)]

    return ranked


def name_queries(search: ProductSearch, items: list[CatalogItem]) -> dict:
    """The search bench's 50 product-name queries (bench/search_queries.jsonl): the type route must not
    cost the searches shoppers type most."""
    from search_bench import gains as name_gains
    from search_bench import load_queries

    scores = [
        ndcg_at_10([h.item_id for h in search.search(q["query"], k=10)], name_gains(q, items)) for q in load_queries()
    ]
    out = {"ndcg@10": round(statistics.mean(scores), 3), "queries": len(scores)}
    print(f"- product-name queries (bench/search_queries.jsonl), nDCG@10: {out['ndcg@10']:.3f}")
    return out


def report(requests: list[dict], items: list[CatalogItem], request_file: str, store: str) -> dict:
    """The results' header, and the table's heading printed."""
    import torch

    print(f"\n## Need-style requests (bench/{request_file}, {len(requests)} requests, {store})\n")
    gradeable = sum(1 for r in requests if gains(r, items))
    print(f"| method | nDCG@10 | nDCG@10, {gradeable} gradeable | type hit@3 | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|")
    return {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "store": store,
        "requests": len(requests),
        "methods": {},
    }


def write(out: dict, path: Path) -> None:
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-model", action="store_true", help="only the methods that need no LLM")
    parser.add_argument("--out", type=Path, help="default: bench/results/<the store's request file>")
    parser.add_argument(
        "--store",
        choices=["tau-retail", "complete-journey"],
        default="tau-retail",
        help="complete-journey: bench/need_requests_cj.json on the imported grocery store, with its own index",
    )
    args = parser.parse_args()
    grocer = args.store == "complete-journey"
    out_path = args.out or BENCH / "results" / ("need_requests_cj.json" if grocer else "need_requests.json")
    if grocer:
        write(grocery(), out_path)
        return

    pack = get_pack("tau-retail")
    plain = items_from_products(pack.read_documents()["products"])
    described = pack.catalog_items()
    requests = load_requests()
    embedder = PackagedMiniLM()
    out = report(requests, described, "need_requests.json", "tau-retail")
    with tempfile.TemporaryDirectory() as tmp:
        collections = {}
        for label, items in (("names only", plain), ("descriptions", described)):
            collection = open_collection(chroma_client(Path(tmp) / label.replace(" ", "_")), "tau-retail", embedder)
            index_catalog(collection, items, progress=False)
            collections[label] = collection
        plain_search = ProductSearch(collections["names only"], embedder)
        item_search = ProductSearch(collections["descriptions"], embedder, by_type=False)
        search = ProductSearch(collections["descriptions"], embedder)  # the product's search
        methods = out["methods"]
        runs = [
            ("search, names only (before)", searcher(plain_search), plain),
            ("+ type descriptions in item documents, fused", searcher(item_search), described),
            ("+ type descriptions, dense only", searcher(item_search, "dense"), described),
            ("+ type descriptions, lexical only", searcher(item_search, "lexical"), described),
            ("+ type route (shipped search: dense + types; + BM25 if a type is named)", searcher(search), described),
            ("recommend, method none (shipped)", recommender(search), described),
            ("recommend, with a customer, candidate order", recommender(search, customers=True), described),
            ("recommend, with a customer, default (auto)", recommender(search, "auto", True), described),
        ]
        if not args.no_model:
            from assistant.llm import load_chat_model
            from assistant.recommend.llm_rank import LLMRanker

            llm = LLMRanker(load_chat_model("smollm2", None, backend="transformers"))
            runs += [
                (
                    "recommend, with a customer, --method ranker",
                    recommender(search, "ranker", True),
                    described,
                ),
                ("model types: P(Yes) per product type, SmolLM2-135M", model_types(llm, search, False), described),
                ("hybrid: type route + model type probability", model_types(llm, search, True), described),
            ]
        for name, fn, items in runs:
            methods[name] = run_method(name, fn, requests, items)
        methods["name queries: fused before"] = name_queries(plain_search, plain)
        methods["name queries: shipped search"] = name_queries(search, described)
    write(out, out_path)


def grocery() -> dict:
    """The Complete Journey half: the product's own index of the imported store (68,222 items; building two
    more in a temporary folder, as the tau-retail run does, would take 20 minutes), the shipped search
    and `recommend` as a shopper calls them. The store's items are named by product type, so a type's
    grade is its items' grade."""
    from assistant.recommend.recommender import Recommender
    from assistant.runtime import open_search
    from assistant.store import Store

    pack = get_pack("complete-journey")  # fails with the import command when the store is not imported
    items = pack.catalog_items()
    requests = load_requests("need_requests_cj.json")
    search = open_search("complete-journey")
    out = report(requests, items, "need_requests_cj.json", "complete-journey")
    with Store.open("complete-journey") as store:
        rec = Recommender(store, search)

        def recommended(r: dict) -> list[str]:
            return [x.item_id for x in rec.recommend(r["request"], None, 10, "none")]

        for name, fn in (
            # the pack has no type descriptions, so the type route is off: fused = dense + BM25
            ("shipped search (fused: dense + BM25)", searcher(search)),
            ("search, dense only", searcher(search, "dense")),
            ("search, lexical only", searcher(search, "lexical")),
            ("recommend, method none (shipped)", recommended),
        ):
            out["methods"][name] = run_method(name, fn, requests, items)
    return out


if __name__ == "__main__":
    main()
