"""`shopassist recommend "..."`: zero-shot recommendations for a free-form request (docs/RECOMMEND.md)."""

import argparse
import json
import sys

from ui.cli.common import load_model, model_arguments, open_search, store_argument


def register(sub) -> None:
    p = sub.add_parser("recommend", help="zero-shot recommendations for a free-form request (docs/RECOMMEND.md)")
    p.add_argument("request", help='what the shopper wants, e.g. "a birthday gift for a 10-year-old, under $30"')
    p.add_argument("--user", help="a customer's user id: their purchases and the CTR model shape the list")
    store_argument(p)
    p.add_argument("--k", type=int, default=10, help="how many to recommend (1-50)")
    p.add_argument(
        "--method",
        choices=["auto", "ranker", "pointwise", "listwise", "none"],
        default="auto",
        help="auto (default): the fine-tuned ranker for a customer with purchases, else none; ranker: "
        "models/ranker-smollm2 + best sellers + candidate order (the best method in docs/BENCHMARKS.md); none: "
        "candidate order — search, purchases, CTR model; pointwise / listwise: the chat model zero-shot (at chance)",
    )
    p.add_argument("--diversity", type=float, default=0.0, help="MMR weight of novelty, 0 (off) to 1")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    model_arguments(p, agent=False)
    p.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    from assistant.ranking import ranker_for_store
    from assistant.recommend.recommender import FineTunedRanker, Recommender
    from assistant.store import Store
    from retrieval.chroma_index import IndexMissingError

    model = None
    if args.method in ("pointwise", "listwise"):
        from assistant.recommend.llm_rank import LLMRanker

        model = LLMRanker(load_model(args, backend="transformers"))  # reads the network's logits
    try:
        search = open_search(args.store)
        search.snapshot  # noqa: B018 - fails now, not mid-request, when the index is empty
    except IndexMissingError as exc:
        search = None
        print(f"shopassist recommend: no product search ({exc}); using purchases and best sellers", file=sys.stderr)
    with Store.open(args.store) as store:
        fine_tuned = FineTunedRanker(threads=args.threads)
        rec = Recommender(store, search, ranker_for_store(args.store, store), model, fine_tuned=fine_tuned)
        results = rec.recommend(args.request, args.user, args.k, args.method, args.diversity)
        if not results:
            print(f"shopassist recommend: {rec.why_empty(args.request)}", file=sys.stderr)
        elif not args.json:
            print(rec.describe(len(results)))
    for n, r in enumerate(results, 1):
        if args.json:
            print(json.dumps({"rank": n, **r.__dict__}))
        else:
            print(f"{n:2}. {r.name} — ${r.price:.2f} [item {r.item_id}] score {r.score:.3f}\n    {r.reason}")
    return 0
