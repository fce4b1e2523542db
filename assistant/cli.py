"""The `shopassist` command line. Every subcommand goes through `main`, which enforces offline mode."""

import argparse
import json
import sys
from pathlib import Path

from assistant.offline import enforce_offline


def _user_errors() -> tuple[type[Exception], ...]:
    from assistant.evaluation import TaskFileError
    from assistant.llm import ModelError, ModelNotFoundError
    from assistant.recommend.protocol import ProtocolFileError
    from assistant.recommend.recommender import RecommendError
    from assistant.store import StorePackError
    from finetune.build_tau import EvaluationDataError
    from finetune.ctr.data import LogFormatError
    from finetune.ctr.train import CTRConfigError
    from finetune.dialogues import DialogueFormatError
    from finetune.sft import ConfigError
    from retrieval.catalog import CatalogError
    from retrieval.chroma_index import IndexMissingError
    from retrieval.search import SearchInputError

    return (
        StorePackError,
        CatalogError,
        IndexMissingError,
        SearchInputError,
        TaskFileError,
        ModelError,
        ModelNotFoundError,
        DialogueFormatError,
        EvaluationDataError,
        ConfigError,
        CTRConfigError,
        LogFormatError,
        ProtocolFileError,
        RecommendError,
        FileExistsError,
    )


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as color=blue, got {text!r}")
    return key.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    from assistant.config import DEFAULT_STORE

    parser = argparse.ArgumentParser(prog="shopassist", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build or update the product search index (idempotent)")
    p.add_argument("--store", default=DEFAULT_STORE, help="shipped store pack to index (default %(default)s)")
    p.add_argument("--catalog", type=Path, help="index a JSONL or CSV catalog file instead (docs/DATA.md)")
    p.add_argument("--name", help="catalog name for --catalog (default: the file name without extension)")
    p.add_argument("--force", action="store_true", help="re-embed every item even if the index is up to date")
    p.add_argument("--batch-size", type=int, default=256)

    p = sub.add_parser("search", help="search the catalog")
    p.add_argument("query")
    p.add_argument("--store", default=DEFAULT_STORE, help="catalog to search: a store or an --name from index")
    p.add_argument("--max-price", type=float)
    p.add_argument("--min-price", type=float)
    p.add_argument("--category")
    p.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--include-unavailable", action="store_true", help="also list items out of stock")
    p.add_argument("--k", type=int, default=10, help="number of results, 1-50")
    p.add_argument("--mode", choices=["fused", "dense", "lexical"], default="fused")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")

    p = sub.add_parser("store", help="inspect, export, reset or import a store (import: a pack from public data)")
    p.add_argument("action", choices=["info", "reset", "export", "hash", "import"])
    p.add_argument("target", nargs="?", help="export: folder for the three JSON documents; import: complete-journey")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--households", type=int, help="import: only the first N households (a quick, small store)")

    p = sub.add_parser("eval", help="evaluate an agent on customer-service tasks (docs/EVALUATION.md)")
    p.add_argument(
        "what",
        choices=["tasks", "zeroshot", "zeroshot-data"],
        help="tasks: the agent on τ-retail tasks; zeroshot: the LLMRank protocol on --data; "
        "zeroshot-data: write LLMRank files from Complete Journey to --data",
    )
    p.add_argument("--file", type=Path, help="tasks: tasks JSON in the tau-retail task format")
    p.add_argument("--data", type=Path, help="zeroshot: folder with <name>.item, .test.inter and .random")
    p.add_argument("--users", type=int, default=200, help="zeroshot: users evaluated (default 200)")
    p.add_argument("--llm-users", type=int, help="zeroshot: users for the LLM methods (default --users)")
    p.add_argument("--shuffles", type=int, default=3, help="zeroshot: orderings per listwise ranking")
    p.add_argument(
        "--llms", default="base,fine-tuned", help="zeroshot: LLMs to compare: base, fine-tuned, none (comma-separated)"
    )
    p.add_argument(
        "--agent",
        choices=["model", "oracle", "talk-only"],
        default="model",
        help="model: the assistant itself (default); oracle: replays the gold actions (upper bound); "
        "talk-only: never calls a tool (floor)",
    )
    p.add_argument("--trials", type=int, default=1, help="trials per task; pass^k is reported for k = 1..trials")
    p.add_argument("--limit", type=int, default=0, help="first N tasks only (0 = all)")
    p.add_argument("--out", type=Path, help="tasks: results JSONL, appended per trial (resumes); zeroshot: report JSON")
    p.add_argument("--max-turns", type=int, default=10)
    p.add_argument("--store", default=DEFAULT_STORE)
    _model_arguments(p)

    p = sub.add_parser("finetune", help="build training dialogues and fine-tune the agent (docs/FINETUNING.md)")
    p.add_argument("action", choices=["build", "sft", "eval"])
    p.add_argument("--config", type=Path, help="sft: YAML training config (finetune/configs/)")
    p.add_argument("--tasks", type=Path, help="build: a τ-retail style training task file")
    p.add_argument("--bitext", type=Path, help="build: bitext customer_support_requests.csv for varied openings")
    p.add_argument("--variants", type=int, default=2, help="build: dialogues per task (default %(default)s)")
    p.add_argument("--shopping", type=int, default=0, help="build: N product-search dialogues over --store's catalog")
    p.add_argument("--logs", type=Path, help="build: the UI's dialogue log (latest revisions, feedback-filtered)")
    p.add_argument("--only-rated-up", action="store_true", help="build --logs: keep only thumbs-up conversations")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--out", type=Path, help="build: dialogue JSONL to write (appends)")
    p.add_argument("--adapter", type=Path, help="eval: the fine-tuned adapter to compare with its base model")
    p.add_argument("--model", default=None, help="eval: base model (default: the adapter's, else smollm2)")
    p.add_argument("--limit", type=int, default=20, help="eval: held-out tasks to use (default %(default)s)")

    p = sub.add_parser("chat", help="chat with the assistant in the terminal")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--trace", action="store_true", help="show each tool call, its arguments and result")
    p.add_argument("--search-only", action="store_true", help="no model: answer from product search only")
    _model_arguments(p)

    p = sub.add_parser("ui", help="the web app: shopper chat, agent console, recommendations (127.0.0.1)")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    _model_arguments(p)

    p = sub.add_parser("recommend", help="zero-shot recommendations for a free-form request (docs/RECOMMEND.md)")
    p.add_argument("request", help='what the shopper wants, e.g. "a birthday gift for a 10-year-old, under $30"')
    p.add_argument("--user", help="a customer's user id: their purchases and the CTR model shape the list")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--k", type=int, default=10, help="how many to recommend (1-50)")
    p.add_argument(
        "--method",
        choices=["pointwise", "listwise", "none"],
        default="none",
        help="none (default): candidate order — search, purchases, CTR model; pointwise / listwise: re-ranked by "
        "the LLM (at chance in our evaluation, docs/BENCHMARKS.md)",
    )
    p.add_argument("--diversity", type=float, default=0.0, help="MMR weight of novelty, 0 (off) to 1")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _model_arguments(p)

    p = sub.add_parser("train", help="train the CTR ranker that rank_products uses (docs/RANKING.md)")
    p.add_argument("what", choices=["ctr"])
    p.add_argument(
        "--config", type=Path, required=True, help="YAML config, e.g. finetune/configs/ctr_complete_journey.yaml"
    )
    p.add_argument("--output-dir", help="where to save the model (overrides the config's output_dir)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("logs", help="export the app's conversation logs for fine-tuning")
    p.add_argument("action", choices=["export"])
    p.add_argument("--out", type=Path, required=True, help="new JSONL file to write")
    p.add_argument("--source", type=Path, help="dialogue log (default: <state dir>/logs/dialogues.jsonl)")
    p.add_argument("--no-mask", dest="mask", action="store_false", help="keep emails, names and addresses")
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="packaged base model (smollm2, gemma3) or checkpoint folder; env SHOPASSIST_MODEL")
    p.add_argument("--adapter", type=Path, help="LoRA adapter folder; env SHOPASSIST_ADAPTER")
    p.add_argument("--threads", type=int, help="CPU threads for the model; env SHOPASSIST_THREADS")
    p.add_argument(
        "--examples",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the model in-context examples (default: as the model's prompt profile says; on for base models)",
    )
    p.add_argument("--max-steps", type=int, default=8, help="tool calls allowed per customer message")


def cmd_index(args: argparse.Namespace) -> int:
    from retrieval.catalog import items_from_products, read_catalog_file
    from retrieval.chroma_index import chroma_client, index_catalog, open_collection
    from retrieval.embeddings import PackagedMiniLM

    if args.catalog:
        items, name = read_catalog_file(args.catalog), args.name or args.catalog.stem
    else:
        from assistant.store import get_pack

        items, name = items_from_products(get_pack(args.store).read_documents()["products"]), args.store
    embedder = PackagedMiniLM()
    collection = open_collection(chroma_client(), name, embedder)
    report = index_catalog(collection, items, batch_size=args.batch_size, force=args.force, embedder=embedder)
    if report.skipped:
        print(f"index {collection.name!r} is up to date ({report.items} items)")
    else:
        print(
            f"indexed {report.upserted} items into {collection.name!r} in {report.seconds:.1f} s "
            f"({report.items_per_second:.0f} items/s); removed {report.removed} stale items"
        )
    return 0


def _open_search(store: str):
    from retrieval.chroma_index import chroma_client, open_collection
    from retrieval.search import ProductSearch

    return ProductSearch(open_collection(chroma_client(), store, create=False))


def cmd_search(args: argparse.Namespace) -> int:
    from assistant.chat import format_hit

    hits = _open_search(args.store).search(
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


def _load_model(args: argparse.Namespace):
    from assistant.llm import load_chat_model

    if args.threads is not None and args.threads < 1:
        raise SystemExit("--threads must be ≥ 1")
    return load_chat_model(args.model, args.adapter, args.threads)


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.chat import AgentChat, SearchChat, run_repl
    from assistant.runtime import AgentSettings
    from assistant.store import Store
    from assistant.tools import ToolContext

    search = _open_search(args.store)
    if args.search_only:
        run_repl(SearchChat(search), args.store)
        return 0
    model = _load_model(args)
    with Store.open(args.store) as store:
        settings = AgentSettings(few_shot=args.examples, max_steps=args.max_steps)
        from assistant.ranker import ranker_for_store

        ctx = ToolContext(store, search, ranker_for_store(args.store, store))
        run_repl(AgentChat(model, ctx, args.store, settings, trace=args.trace), args.store)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from assistant.runtime import AgentSettings
    from assistant.store import Store
    from ui.app import build_app, launch
    from ui.serve import make_hub

    search = _open_search(args.store)
    model = _load_model(args)
    with Store.open(args.store) as store:
        settings = AgentSettings(few_shot=args.examples, max_steps=args.max_steps)
        hub = make_hub(model, store, search, args.store, settings=settings)
        print(f"shopassist ui: model {model.name}, store {args.store!r}, logs in {hub.log.path.parent}")
        try:
            launch(build_app(hub), host=args.host, port=args.port, share=args.share)
        except OSError as exc:  # e.g. the port is taken by another server
            raise SystemExit(f"shopassist ui: cannot serve on {args.host}:{args.port}: {exc}; try --port N") from None
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    from ui.logs import export_dialogues
    from ui.serve import log_dir

    source = args.source or log_dir() / "dialogues.jsonl"
    if not source.is_file():
        raise SystemExit(f"shopassist logs: no log at {source} yet (the UI writes it)")
    n = export_dialogues(source, args.out, mask=args.mask)
    print(f"wrote {n} conversations to {args.out}" + (" (personal data masked)" if args.mask else ""))
    return 0


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from assistant.recommend import protocol, zeroshot_eval

    if args.data is None:
        raise SystemExit(f"shopassist eval {args.what}: give --data DIR")
    if args.what == "zeroshot-data":
        from assistant.recommend.convert import complete_journey

        counts = complete_journey(args.data, users=args.users)
        print(json.dumps({"written": str(args.data), **counts}))
        return 0
    if args.users < 1 or (args.llm_users is not None and args.llm_users < 1) or args.shuffles < 1:
        raise SystemExit("shopassist eval zeroshot: --users, --llm-users and --shuffles must be ≥ 1")
    data = protocol.load(args.data)
    models = []
    for label in [x.strip() for x in args.llms.split(",") if x.strip()]:
        if label == "none":
            continue
        if label not in ("base", "fine-tuned"):
            raise SystemExit(f"shopassist eval zeroshot: --llms takes base, fine-tuned or none, not {label!r}")
        from assistant.llm import load_chat_model
        from assistant.recommend.llm_rank import LLMRanker

        adapter = "none" if label == "base" else args.adapter  # None: the shipped adapter
        models.append((label, LLMRanker(load_chat_model(args.model, adapter, args.threads))))
    report = zeroshot_eval.run(data, models, args.users, args.llm_users, args.shuffles)
    print(zeroshot_eval.markdown(report))
    print(json.dumps({"position_bias_listwise_ndcg@10": report["position_bias_listwise_ndcg@10"]}))
    if args.out:
        zeroshot_eval.write_report(report, args.out)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from assistant.recommend.recommender import Recommender
    from assistant.store import Store

    model = None
    if args.method != "none":
        from assistant.recommend.llm_rank import LLMRanker

        model = LLMRanker(_load_model(args))
    from retrieval.chroma_index import IndexMissingError

    try:
        search = _open_search(args.store)
        search.snapshot  # noqa: B018 - fails now, not mid-request, when the index is empty
    except IndexMissingError as exc:
        search = None
        print(f"shopassist recommend: no product search ({exc}); using purchases and best sellers", file=sys.stderr)
    with Store.open(args.store) as store:
        from assistant.ranker import ranker_for_store

        rec = Recommender(store, search, ranker_for_store(args.store, store), model)
        results = rec.recommend(args.request, args.user, args.k, args.method, args.diversity)
    if not results:
        print("no items match", file=sys.stderr)
    for n, r in enumerate(results, 1):
        if args.json:
            print(json.dumps({"rank": n, **r.__dict__}))
        else:
            print(f"{n:2}. {r.name} — ${r.price:.2f} [item {r.item_id}] score {r.score:.3f}\n    {r.reason}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import tempfile

    if args.what != "tasks":
        return cmd_zeroshot(args)
    if args.file is None:
        raise SystemExit("shopassist eval tasks: give --file tasks.json")

    from assistant.agent import Agent
    from assistant.evaluation import Evaluator, load_tasks, summarize
    from assistant.runtime import AgentSettings, agent_for_session
    from assistant.scripted_models import OracleModel, TalkOnlyModel
    from assistant.store import get_pack

    if args.trials < 1 or args.limit < 0 or args.max_turns < 1:
        raise SystemExit("shopassist eval: --trials and --max-turns must be ≥ 1, --limit ≥ 0")
    tasks = load_tasks(args.file)
    indices = list(range(len(tasks)))[: args.limit or None]
    model = _load_model(args) if args.agent == "model" else None
    search = _open_search(args.store) if args.agent == "model" else None

    def make_agent(session, task, store):
        if args.agent == "oracle":
            oracle = OracleModel(store.user(task.user_id)["email"], list(task.actions), list(task.outputs))
            return Agent(oracle, session, system_prompt="")
        if args.agent == "talk-only":
            return Agent(TalkOnlyModel(), session, system_prompt="")
        session.ctx.search = search
        return agent_for_session(model, session, args.store, AgentSettings(args.examples, args.max_steps))

    with tempfile.TemporaryDirectory(prefix="shopassist-eval-") as work:
        evaluator = Evaluator(get_pack(args.store), Path(work), make_agent, max_turns=args.max_turns)
        results = evaluator.run(tasks, indices, trials=args.trials, out=args.out)
    print(json.dumps(summarize(results, args.trials), indent=2))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    if args.action == "sft":
        from finetune.sft import SFTConfig, train

        if args.config is None:
            raise SystemExit("shopassist finetune sft: give --config FILE (see finetune/configs/)")
        print(train(SFTConfig.from_yaml(args.config)))
        return 0
    if args.action == "eval":
        return _finetune_eval(args)
    from finetune.build_tau import build_tau_dialogues
    from finetune.dialogues import append_dialogues

    if args.out is None or (args.tasks is None and not args.shopping and args.logs is None):
        raise SystemExit("shopassist finetune build: give --out FILE and --tasks FILE, --shopping N and/or --logs FILE")
    if args.logs is not None:
        from finetune.build_logs import build_log_dialogues

        logged, log_report = build_log_dialogues(args.logs, require_up=args.only_rated_up)
        append_dialogues(args.out, logged)
        print(json.dumps({"logs": log_report.__dict__}))
    if args.tasks is not None:
        dialogues, report = build_tau_dialogues(args.tasks, args.bitext, variants=args.variants)
        append_dialogues(args.out, dialogues)
        print(json.dumps({"tau": report.__dict__}))
    if args.shopping:
        from assistant.store import get_pack
        from finetune.build_shopping import build_shopping_dialogues
        from retrieval.catalog import items_from_products

        items = items_from_products(get_pack(args.store).read_documents()["products"])
        search = _open_search(args.store)
        shopping = build_shopping_dialogues(search, items, args.store, args.shopping, args.bitext)
        append_dialogues(args.out, shopping)
        print(json.dumps({"shopping_and_no_tool": len(shopping)}))
    return 0


def _finetune_eval(args: argparse.Namespace) -> int:
    from assistant.llm import GenerationSettings, load_chat_model
    from finetune.evaluate import held_out_dialogues, tool_call_accuracy

    if args.tasks is None or args.adapter is None:
        raise SystemExit("shopassist finetune eval: give --adapter DIR and --tasks tasks_train.json")
    base_name = args.model
    if base_name is None:
        summary = args.adapter / "shopassist.json"
        base_name = json.loads(summary.read_text())["base_model"] if summary.is_file() else "smollm2"
    dialogues = held_out_dialogues(args.tasks, args.limit)
    report = {"held_out_dialogues": len(dialogues)}
    for label, adapter in (("before", "none"), ("after", args.adapter)):  # "none": not even the shipped one
        # only the choice between a call and a reply is scored on reply steps: short replies save minutes
        model = load_chat_model(base_name, adapter, settings=GenerationSettings(max_new_tokens=8))
        report[label] = tool_call_accuracy(model, dialogues).to_dict()
    print(json.dumps(report, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from finetune.ctr.train import CTRConfig, run

    config = CTRConfig.from_yaml(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    metrics = run(config, progress=not args.quiet)
    print(json.dumps({k: v for k, v in metrics.items() if k != "calibration_test"}, indent=2))
    return 0


COMMANDS = {
    "recommend": cmd_recommend,
    "train": cmd_train,
    "finetune": cmd_finetune,
    "index": cmd_index,
    "search": cmd_search,
    "store": cmd_store,
    "eval": cmd_eval,
    "chat": cmd_chat,
    "ui": cmd_ui,
    "logs": cmd_logs,
}


def main(argv: list[str] | None = None) -> int:
    enforce_offline()
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except _user_errors() as exc:
        print(f"shopassist {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
