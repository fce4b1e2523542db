"""`shopassist eval tasks | sft | zeroshot`: the agent on τ-retail tasks, a fine-tuned adapter on
held-out dialogues, and recommenders on the LLMRank protocol. Each has only its own options."""

import argparse
import json
from pathlib import Path

from assistant.config import MODELS_DIR
from ui.cli.common import agent_settings, load_model, model_arguments, open_search, store_argument


def register(sub) -> None:
    group = sub.add_parser(
        "eval", help="evaluate: tasks, conversations (the agent), sft (an adapter), zeroshot (recommenders)"
    )
    kinds = group.add_subparsers(dest="what", required=True, metavar="{tasks,conversations,sft,zeroshot}")

    p = kinds.add_parser("tasks", help="the agent on τ-retail style tasks (docs/EVALUATION.md)")
    p.add_argument("--file", type=Path, required=True, help="tasks JSON in the tau-retail task format")
    p.add_argument(
        "--agent",
        choices=["model", "oracle", "talk-only"],
        default="model",
        help="model: the assistant itself (default); oracle: replays the gold actions (upper bound); "
        "talk-only: never calls a tool (floor)",
    )
    p.add_argument("--trials", type=int, default=1, help="trials per task; pass^k is reported for k = 1..trials")
    p.add_argument("--limit", type=int, default=0, help="first N tasks only (0 = all)")
    p.add_argument("--out", type=Path, help="results JSONL, appended per trial (resumes)")
    p.add_argument("--max-turns", type=int, default=10)
    store_argument(p)
    model_arguments(p)
    p.set_defaults(func=cmd_tasks)

    p = kinds.add_parser("conversations", help="the agent on the real-model conversation suite")
    p.add_argument("--file", type=Path, default=Path("bench/conversations.json"), help="suite JSON")
    p.add_argument("--only", help="comma-separated conversation ids or tags to run")
    p.add_argument("--core", action="store_true", help="only the conversations marked core (the make test subset)")
    p.add_argument("--out", type=Path, help="results JSONL (one line per conversation)")
    p.add_argument("--verbose", action="store_true", help="print every reply and call")
    store_argument(p)
    model_arguments(p)
    p.set_defaults(func=cmd_conversations)

    p = kinds.add_parser("sft", help="a fine-tuned adapter against its base model on held-out dialogues")
    p.add_argument("--adapter", type=Path, required=True, help="the fine-tuned adapter to compare with its base")
    p.add_argument("--tasks", type=Path, required=True, help="a τ-retail training task file (tasks_train.json)")
    p.add_argument("--model", default=None, help="base model (default: the adapter's, else smollm2)")
    p.add_argument("--limit", type=int, default=20, help="held-out tasks to use (default %(default)s)")
    p.set_defaults(func=cmd_sft)

    p = kinds.add_parser("zeroshot", help="recommenders on LLMRank files (docs/RECOMMEND.md)")
    p.add_argument("--data", type=Path, required=True, help="folder with <name>.item, .test.inter and .random")
    p.add_argument("--users", type=int, default=200, help="the first N users of the candidate file (default 200)")
    p.add_argument("--llm-users", type=int, help="users for the LLM methods (default --users)")
    p.add_argument("--shuffles", type=int, default=3, help="orderings per listwise ranking")
    p.add_argument(
        "--llms",
        default="base,fine-tuned",
        help="LLMs to compare: base, fine-tuned (the agent adapter), ranker (--ranker), none (comma-separated)",
    )
    p.add_argument(
        "--ranker", type=Path, default=MODELS_DIR / "ranker-smollm2", help="ranking LoRA (shopassist train ranker)"
    )
    p.add_argument("--no-listwise", action="store_true", help="pointwise and hybrids only (no listwise, no bias check)")
    p.add_argument("--out", type=Path, help="report JSON")
    model_arguments(p, agent=False)
    p.set_defaults(func=cmd_zeroshot)


def cmd_tasks(args: argparse.Namespace) -> int:
    import tempfile

    from assistant.agent import Agent
    from assistant.evaluation import Evaluator, load_tasks, summarize
    from assistant.runtime import agent_for_session
    from assistant.scripted_models import OracleModel, TalkOnlyModel
    from assistant.store import get_pack

    if args.trials < 1 or args.limit < 0 or args.max_turns < 1:
        raise SystemExit("shopassist eval: --trials and --max-turns must be ≥ 1, --limit ≥ 0")
    tasks = load_tasks(args.file)
    indices = list(range(len(tasks)))[: args.limit or None]
    model = load_model(args) if args.agent == "model" else None
    search = open_search(args.store) if args.agent == "model" else None

    def make_agent(session, task, store):
        if args.agent == "oracle":
            oracle = OracleModel(store.user(task.user_id)["email"], list(task.actions), list(task.outputs))
            return Agent(oracle, session, system_prompt="")
        if args.agent == "talk-only":
            return Agent(TalkOnlyModel(), session, system_prompt="")
        session.ctx.search = search
        return agent_for_session(model, session, args.store, agent_settings(args))

    with tempfile.TemporaryDirectory(prefix="shopassist-eval-") as work:
        evaluator = Evaluator(get_pack(args.store), Path(work), make_agent, max_turns=args.max_turns)
        results = evaluator.run(tasks, indices, trials=args.trials, out=args.out)
    print(json.dumps(summarize(results, args.trials), indent=2))
    return 0


def cmd_conversations(args: argparse.Namespace) -> int:
    import tempfile

    from assistant.conversations import load_suite, run_suite, summary
    from assistant.runtime import agent_for_session
    from assistant.store import get_pack

    suite = load_suite(args.file)
    if args.core:
        suite = [c for c in suite if c.get("core")]
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        suite = [c for c in suite if c["id"] in wanted or wanted & set(c.get("tags", []))]
    model, search = load_model(args), open_search(args.store)
    with tempfile.TemporaryDirectory(prefix="shopassist-suite-") as work:
        results = run_suite(
            suite,
            get_pack(args.store),
            Path(work),
            lambda session: agent_for_session(model, session, args.store, agent_settings(args)),
            search,
            args.out,
        )
    if args.verbose:
        for r in results:
            print(f"== {r.id} {'PASS' if r.passed else 'FAIL'} {r.seconds}s")
            for reply, calls in zip(r.replies, r.calls, strict=True):
                for c in calls:
                    print(f"   call {c[:300]}")
                print(f"   reply {reply[:400]!r}")
            for f in r.failures:
                print(f"   !! {f}")
    print(json.dumps({"model": model.name, **summary(results)}, indent=2))
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    from assistant.llm import GenerationSettings, load_chat_model
    from finetune.evaluate import held_out_dialogues, tool_call_accuracy

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


def cmd_zeroshot(args: argparse.Namespace) -> int:
    from assistant.recommend import protocol, zeroshot_eval

    if args.users < 1 or (args.llm_users is not None and args.llm_users < 1) or args.shuffles < 1:
        raise SystemExit("shopassist eval zeroshot: --users, --llm-users and --shuffles must be ≥ 1")
    data = protocol.load(args.data)
    models = []
    for label in [x.strip() for x in args.llms.split(",") if x.strip()]:
        if label == "none":
            continue
        if label not in ("base", "fine-tuned", "ranker"):
            raise SystemExit(f"shopassist eval zeroshot: --llms takes base, fine-tuned, ranker or none, not {label!r}")
        from assistant.llm import load_chat_model
        from assistant.recommend.llm_rank import LLMRanker

        adapter = {"base": "none", "ranker": args.ranker}.get(label, args.adapter)  # None: the shipped adapter
        models.append((label, LLMRanker(load_chat_model(args.model, adapter, args.threads, backend="transformers"))))
    report = zeroshot_eval.run(data, models, args.users, args.llm_users, args.shuffles, listwise=not args.no_listwise)
    print(zeroshot_eval.markdown(report))
    print(json.dumps({"position_bias_listwise_ndcg@10": report["position_bias_listwise_ndcg@10"]}))
    if args.out:
        zeroshot_eval.write_report(report, args.out)
    return 0
