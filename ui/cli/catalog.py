"""`shopassist index` and `shopassist search`: the product search index and queries against it."""

import argparse
import json
import sys
from pathlib import Path

from ui.cli.common import open_search, option, positive_int, store_argument


def register(sub) -> None:
    p = sub.add_parser("index", help="build or update the product search index (idempotent)")
    store_argument(p, "shipped store pack to index (default %(default)s)")
    p.add_argument("--catalog", type=Path, help="index a JSONL or CSV catalog file instead (docs/DATA.md)")
    p.add_argument("--name", help="catalog name for --catalog (default: the file name without extension)")
    p.add_argument("--force", action="store_true", help="re-embed every item even if the index is up to date")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search the catalog")
    p.add_argument("query")
    store_argument(p, "catalog to search: a store or an --name from index")
    p.add_argument("--max-price", type=float)
    p.add_argument("--min-price", type=float)
    p.add_argument("--category")
    p.add_argument("--option", type=option, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--include-unavailable", action="store_true", help="also list items out of stock")
    p.add_argument("--k", type=int, default=10, help="number of results, 1-50")
    p.add_argument("--mode", choices=["fused", "dense", "lexical"], default="fused")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    p.set_defaults(func=cmd_search)


def cmd_index(args: argparse.Namespace) -> int:
    from assistant.config import chroma_dir
    from retrieval.catalog import read_catalog_file
    from retrieval.chroma_index import chroma_client, index_catalog, open_collection
    from retrieval.embeddings import PackagedMiniLM

    if args.catalog:
        items, name = read_catalog_file(args.catalog), args.name or args.catalog.stem
    else:
        from assistant.store import get_pack

        items, name = get_pack(args.store).catalog_items(), args.store
    embedder = PackagedMiniLM()
    collection = open_collection(chroma_client(chroma_dir()), name, embedder)
    report = index_catalog(collection, items, batch_size=args.batch_size, force=args.force, embedder=embedder)
    if report.skipped:
        print(f"index {collection.name!r} is up to date ({report.items} items)")
    else:
        print(
            f"indexed {report.upserted} items into {collection.name!r} in {report.seconds:.1f} s "
            f"({report.items_per_second:.0f} items/s); removed {report.removed} stale items"
        )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ui.chat import format_hit

    hits = open_search(args.store).search(
        args.query,
        max_price=args.max_price,
        min_price=args.min_price,
        category=args.category,
        options=dict(args.option),
        available_only=not args.include_unavailable,
        k=args.k,
        mode=args.mode,
    )
    for hit in hits:
        print(json.dumps(hit.to_dict()) if args.json else format_hit(hit))
    if not hits and not args.json:
        print("no items match", file=sys.stderr)
    return 0
