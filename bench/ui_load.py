"""UI load: concurrent shopper sessions against the running Gradio app, through gradio_client.

    .venv/bin/python bench/ui_load.py --sessions 4 --turns 2           # the default (shipped) model
    .venv/bin/python bench/ui_load.py --scripted --sessions 20 --turns 3
    .venv/bin/python bench/ui_load.py --sessions 1 --turns 4 --think 5  # one shopper reading each reply

Starts the real app in this process on 127.0.0.1 over a temporary copy of the tau-retail store, opens
`--sessions` clients at once, each sending `--turns` messages from bench/agent_prompts.jsonl (session n
starts at prompt n), and reports errors, per-turn latency (p50/p95, queueing included) and throughput in
turns per minute. `--think S`: each shopper reads for S seconds before the next message (the model reads
the reply ahead meanwhile; `--no-read-ahead` to compare); latencies are then reported per turn number too.
One model serves all sessions: generation is serialised by the model's lock, so
throughput, not latency, is what more sessions buy. `--scripted` uses the rule-following test model
(assistant.scripted_models.RuleModel) to measure the app itself. Results: bench/results/ui_load[_scripted].json.
"""

import argparse
import json
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

BENCH = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--scripted", action="store_true", help="the test model instead of the real one")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--think", type=float, default=0.0, help="seconds each shopper reads between turns")
    parser.add_argument("--no-read-ahead", action="store_true", help="the model does not read replies ahead")
    parser.add_argument("--tag", default="", help="appended to the result's file name")
    args = parser.parse_args()

    from agent_bench import load_prompts, open_search, percentile
    from gradio_client import Client

    from assistant.llm import load_chat_model
    from assistant.store import Store
    from ui.app import free_port, serve
    from ui.serve import make_hub
    from ui.staff import StaffLogin

    prompts = load_prompts()
    if args.scripted:
        from assistant.scripted_models import RuleModel as ScriptedModel

        model = ScriptedModel()
    else:
        model = load_chat_model(threads=args.threads)
    with tempfile.TemporaryDirectory() as work, Store.open("tau-retail", path=Path(work) / "store.sqlite3") as store:
        hub = make_hub(model, store, open_search(), "tau-retail", logs=Path(work) / "logs")
        if args.no_read_ahead:
            hub._read_ahead = lambda agent: None
        running = serve(hub, StaffLogin("staff", "unused"), port=free_port(), background=True)
        url = running.url
        latencies: list[float] = []
        by_turn: dict[int, list[float]] = {}
        errors: list[str] = []

        def session(n: int) -> None:
            try:
                client = Client(url, verbose=False)
                for t in range(args.turns):
                    if t and args.think:
                        time.sleep(args.think)
                    start = time.perf_counter()
                    client.predict(prompts[(n + t) % len(prompts)], api_name="/send")
                    latencies.append(time.perf_counter() - start)
                    by_turn.setdefault(t + 1, []).append(latencies[-1])
            except Exception as exc:  # counted, reported
                errors.append(repr(exc)[:300])

        started = time.perf_counter()
        threads = [threading.Thread(target=session, args=(n,)) for n in range(args.sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        running.stop()
    result = {
        "model": getattr(model, "name", "scripted"),
        "backend": getattr(model, "backend", "transformers") if not args.scripted else None,
        "sessions": args.sessions,
        "turns_per_session": args.turns,
        "turns": len(latencies),
        "errors": errors,
        "wall_s": round(wall, 1),
        "turns_per_minute": round(60 * len(latencies) / wall, 2),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "think_s": args.think,
        "read_ahead": not args.no_read_ahead,
        **({"latency_by_turn_s": {t: [round(x, 2) for x in v] for t, v in by_turn.items()}} if args.think else {}),
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs",
        "threads": args.threads,
    }
    out = BENCH / "results" / f"ui_load{'_scripted' if args.scripted else ''}{args.tag}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
