"""`shopassist logs export`: the app's conversations, personal data masked, for fine-tuning."""

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("logs", help="export the app's conversation logs for fine-tuning")
    p.add_argument("action", choices=["export"])
    p.add_argument("--out", type=Path, required=True, help="new JSONL file to write")
    p.add_argument("--source", type=Path, help="dialogue log (default: <state dir>/logs/dialogues.jsonl)")
    p.add_argument("--no-mask", dest="mask", action="store_false", help="keep emails, names and addresses")
    p.set_defaults(func=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    from assistant.config import log_dir
    from assistant.masking import export_dialogues

    source = args.source or log_dir() / "dialogues.jsonl"
    if not source.is_file():
        raise SystemExit(f"shopassist logs: no log at {source} yet (the UI writes it)")
    n = export_dialogues(source, args.out, mask=args.mask, customer=_customers())
    print(f"wrote {n} conversations to {args.out}" + (" (personal data masked)" if args.mask else ""))
    return 0


def _customers():
    """customer(store, user_id) → the record in that store's database, for masking (None if unknown)."""
    from assistant.store import Store
    from retrieval.errors import ShopassistError

    opened: dict[str, Store | None] = {}

    def customer(store_name: str, user_id: str):
        if store_name not in opened:
            try:
                opened[store_name] = Store.open(store_name)
            except ShopassistError:  # an unknown or missing store: mask by what the log holds
                opened[store_name] = None
        store = opened[store_name]
        return store.user(user_id) if store is not None else None

    return customer
