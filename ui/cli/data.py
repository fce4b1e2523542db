"""`shopassist data dialogues | zeroshot`: write training dialogues, write LLMRank evaluation files."""

import argparse
import json
from pathlib import Path

from ui.cli.common import open_search, store_argument


def register(sub) -> None:
    group = sub.add_parser("data", help="build data: dialogues (SFT training), zeroshot (LLMRank files)")
    kinds = group.add_subparsers(dest="what", required=True, metavar="{dialogues,zeroshot}")

    p = kinds.add_parser("dialogues", help="training dialogues from tasks, the catalog and the app's logs")
    p.add_argument("--out", type=Path, required=True, help="dialogue JSONL to write (appends)")
    p.add_argument("--tasks", type=Path, help="a τ-retail style training task file")
    p.add_argument("--bitext", type=Path, help="bitext customer_support_requests.csv for varied openings")
    p.add_argument("--variants", type=int, default=2, help="dialogues per task (default %(default)s)")
    p.add_argument("--shopping", type=int, default=0, help="N product-search dialogues over --store's catalog")
    p.add_argument("--logs", type=Path, help="the UI's dialogue log (latest revisions, feedback-filtered)")
    p.add_argument("--only-rated-up", action="store_true", help="with --logs: keep only thumbs-up conversations")
    p.add_argument("--guided", action="store_true", help="replies as the guided agent renders them (assistant.replies)")
    p.add_argument("--status", type=int, default=0, help="with --guided: N order-status dialogues over store customers")
    store_argument(p)
    p.set_defaults(func=cmd_dialogues)

    p = kinds.add_parser("zeroshot", help="LLMRank files (.item, .test.inter, .random) from Complete Journey")
    p.add_argument("--data", type=Path, required=True, help="folder to write")
    p.add_argument("--users", type=int, default=200, help="households in the evaluation set (default 200)")
    p.add_argument(
        "--store",
        help="build them from this store pack's orders instead (e.g. tau-retail: a domain the ranker never saw)",
    )
    p.set_defaults(func=cmd_zeroshot)


def cmd_dialogues(args: argparse.Namespace) -> int:
    from assistant.dialogues import append_dialogues
    from finetune.build_tau import build_tau_dialogues

    if args.tasks is None and not args.shopping and args.logs is None:
        raise SystemExit("shopassist data dialogues: give --tasks FILE, --shopping N and/or --logs FILE")
    if args.logs is not None:
        from finetune.build_logs import build_log_dialogues

        logged, log_report = build_log_dialogues(args.logs, require_up=args.only_rated_up)
        append_dialogues(args.out, logged)
        print(json.dumps({"logs": log_report.__dict__}))
    if args.tasks is not None:
        dialogues, report = build_tau_dialogues(args.tasks, args.bitext, variants=args.variants, guided=args.guided)
        append_dialogues(args.out, dialogues)
        print(json.dumps({"tau": report.__dict__}))
    if args.guided and (args.shopping or args.status):
        from assistant.store import get_pack
        from finetune.build_guided import guided_dialogues

        items = get_pack(args.store).catalog_items()
        guided = guided_dialogues(open_search(args.store), items, args.store, args.shopping, args.status, args.bitext)
        append_dialogues(args.out, guided)
        print(json.dumps({"guided_shopping_status_acts": len(guided)}))
    elif args.shopping:
        from assistant.store import get_pack
        from finetune.build_shopping import build_shopping_dialogues

        items = get_pack(args.store).catalog_items()
        shopping = build_shopping_dialogues(open_search(args.store), items, args.store, args.shopping, args.bitext)
        append_dialogues(args.out, shopping)
        print(json.dumps({"shopping_and_no_tool": len(shopping)}))
    return 0


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from assistant.recommend.convert import complete_journey, store_pack

    if args.store:
        from assistant.store import Store

        with Store.open(args.store) as store:
            counts = store_pack(args.data, store, users=args.users)
    else:
        counts = complete_journey(args.data, users=args.users)
    print(json.dumps({"written": str(args.data), **counts}))
    return 0
