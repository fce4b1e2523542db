"""`shopassist store info | reset | hash | export DIR | import SOURCE`: the embedded SQLite store."""

import argparse
from pathlib import Path

from ui.cli.common import store_argument


def register(sub) -> None:
    p = sub.add_parser("store", help="inspect, export, reset or import a store (import: a pack from public data)")
    p.add_argument("action", choices=["info", "reset", "export", "hash", "import"])
    p.add_argument("target", nargs="?", help="export: folder for the three JSON documents; import: complete-journey")
    store_argument(p)
    p.add_argument("--households", type=int, help="import: only the first N households (a quick, small store)")
    p.set_defaults(func=cmd_store)


def cmd_store(args: argparse.Namespace) -> int:
    from assistant.store import Store

    if args.action == "import":
        return _import_store(args)
    with Store.open(args.store) as store:
        if args.action == "reset":
            store.reset()
            print(f"store {args.store!r} reset to its shipped state ({store.path})")
        elif args.action == "export":
            if args.target is None:
                raise SystemExit("shopassist store export: give a folder, e.g. `shopassist store export out/`")
            for path in store.export_to_dir(Path(args.target)):
                print(path)
        elif args.action == "hash":
            print(store.state_hash())
        else:
            counts = ", ".join(f"{n} {t}" for t, n in store.counts().items())
            print(f"store {args.store!r} at {store.path}: {counts}; state hash {store.state_hash()}")
    return 0


def _import_store(args: argparse.Namespace) -> int:
    from assistant.config import store_db_path
    from assistant.store import Store
    from assistant.store.importers import SOURCES, import_pack

    if args.target not in SOURCES:
        raise SystemExit(f"shopassist store import: give a source, one of: {', '.join(SOURCES)}")
    if args.households is not None and args.households < 1:
        raise SystemExit("shopassist store import: --households must be ≥ 1")
    folder = import_pack(args.target, args.households)
    db = store_db_path(args.target)
    for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        stale.unlink(missing_ok=True)  # the database is rebuilt from the new pack on first open
    with Store.open(args.target) as store:
        counts = ", ".join(f"{n} {t}" for t, n in store.counts().items())
    print(f"imported {args.target!r} into {folder}: {counts}")
    print(f"next: shopassist index --store {args.target}   (search over its catalog)")
    return 0
