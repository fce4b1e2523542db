"""The latency cost of guided decoding, side by side in one run: the core conversations of
bench/conversations.json, each played guided and then unguided by the same loaded model.

    python bench/guidance_latency.py [--rounds 1] [--out bench/results/guidance_latency.json]

Reports per-turn seconds (p50 / p95 / mean) for both modes and the suite's pass count in each.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

from assistant.conversations import load_suite, run_conversation  # noqa: E402
from assistant.llm import load_chat_model  # noqa: E402
from assistant.runtime import AgentSettings, agent_for_session, open_search  # noqa: E402
from assistant.store import FreshStores, get_pack  # noqa: E402

BENCH = Path(__file__).parent


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))], 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=BENCH / "conversations.json")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "guidance_latency.json")
    args = parser.parse_args()
    suite = [c for c in load_suite(args.file) if c.get("core")]
    model, search = load_chat_model(threads=args.threads), open_search("tau-retail")
    turns: dict[str, list[float]] = {"guided": [], "unguided": []}
    passed = {"guided": 0, "unguided": 0}
    with tempfile.TemporaryDirectory() as work:
        stores = FreshStores(get_pack("tau-retail"), Path(work))
        for _ in range(args.rounds):
            for conversation in suite:
                for mode in ("guided", "unguided"):
                    settings = AgentSettings(guided=mode == "guided")

                    def make(session, settings=settings):
                        return agent_for_session(model, session, "tau-retail", settings)

                    result = run_conversation(conversation, stores, make, search)
                    turns[mode] += result.turn_seconds
                    passed[mode] += result.passed
    report = {
        "model": model.name,
        "machine": f"{platform.machine()}, {args.threads} threads",
        "conversations": len(suite) * args.rounds,
        **{
            mode: {
                "turns": len(xs),
                "p50_s": pct(xs, 0.5),
                "p95_s": pct(xs, 0.95),
                "mean_s": round(statistics.mean(xs), 3),
                "passed": passed[mode],
            }
            for mode, xs in turns.items()
        },
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
