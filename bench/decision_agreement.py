"""Do two ways of running the agent model take the same decisions? Step-by-step agreement on the suite.

    .venv/bin/python bench/decision_agreement.py                     # merged LoRA vs unmerged, both bf16
    .venv/bin/python bench/decision_agreement.py --suite bench/conversations.json --core
    .venv/bin/python bench/decision_agreement.py --candidate llamacpp --dialogues 20  # llama.cpp vs bf16
    .venv/bin/python bench/decision_agreement.py --candidate llamacpp --no-suite --tasks 20  # every τ dev step

The reference (the shipped adapter unmerged, peft's own forward) plays every conversation of the suite
(bench/conversations.json) through the guided agent; at each of its model calls the candidate (the
LoRA merged into the weights at load, what `make run` serves) is asked for the same step with the same
inputs (messages, legal tools, reply options), teacher-forced on the reference's trajectory, and the
chosen actions are compared: the same tool with the same arguments, or the same
reply. Results: bench/results/decision_agreement-<dtype or llamacpp>.json (SHOPASSIST_DTYPE=float32 for
the float32 path).
"""

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

BENCH = Path(__file__).parent
SHARED = Path(os.environ.get("SHOPASSIST_SHARED_DIR", BENCH.parent.parent / "shared")) / "data" / "tau-retail"


class Shadow:
    """Plays the reference model and asks the candidate for the same step at once (the legal tools'
    grounded schemas read the conversation's store, open only while it runs); the reference's step is
    the one taken, so the candidate is teacher-forced on the reference's trajectory."""

    def __init__(self, model, candidate):
        self.model, self.candidate = model, candidate
        self.steps: list[tuple[str, dict, dict]] = []
        self.seconds = {"reference": 0.0, "candidate": 0.0}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def forget(self, messages, shared: int = 1) -> None:  # a finished τ task: both let go of its cache
        for model in (self.model, self.candidate):
            if hasattr(model, "forget"):
                model.forget(messages, shared)

    def generate(self, messages, tools=None, **kwargs):
        kwargs.pop("on_text", None)
        started = time.perf_counter()
        got = decision(self.candidate.generate(copy.deepcopy(messages), copy.deepcopy(tools), **kwargs))
        self.seconds["candidate"] += time.perf_counter() - started
        started = time.perf_counter()
        message = self.model.generate(messages, tools, **kwargs)
        self.seconds["reference"] += time.perf_counter() - started
        self.steps.append((messages[-1].content[:200], decision(message), got))
        return message


def decision(message) -> dict:
    if message.tool_call is not None:
        return {"tool": message.tool_call.name, "arguments": message.tool_call.arguments}
    return {"reply": message.content}


def held_out_steps(reference, candidate, limit: int) -> list[tuple[str, dict, dict]]:
    """`shopassist eval sft`'s steps: each assistant step of the first `limit` held-out dialogues (tasks
    training never sees), the model free to call any tool or reply; replies compared on their first 8 tokens."""
    from assistant.llm import GenerationSettings
    from assistant.runtime import prompt_prefix
    from assistant.tools import ToolRegistry
    from finetune.evaluate import held_out_dialogues

    tools = ToolRegistry().schemas()
    steps = []
    for model in (reference, candidate):
        model.settings = GenerationSettings(max_new_tokens=8)
    for dialogue in held_out_dialogues(SHARED / "tasks_train.json", limit):
        messages = [m for m in dialogue.messages if m.role != "system"]
        for i, gold in enumerate(messages):
            if gold.role != "assistant":
                continue
            context = [*prompt_prefix("tau-retail", reference.profile), *messages[:i]]
            want = decision(reference.generate(copy.deepcopy(context), tools))
            got = decision(candidate.generate(copy.deepcopy(context), tools))
            steps.append((messages[i - 1].content[:200] if i else "", want, got))
    return steps


def task_steps(shadow: Shadow, search, limit: int) -> list:
    """Every model step of the first `limit` τ dev tasks, played by the guided agent as `shopassist eval tasks`
    does (simulated customer, fresh store per task) on the reference's trajectory; the reference's reward per
    task's result. The candidate's differing steps are in `shadow.steps`."""
    from assistant.evaluation import Evaluator, load_tasks
    from assistant.runtime import agent_for_session
    from assistant.store import get_pack

    tasks = load_tasks(SHARED / "tasks_dev.json")

    def make_agent(session, task, store):
        session.ctx.search = search
        return agent_for_session(shadow, session, "tau-retail")

    with tempfile.TemporaryDirectory(prefix="agreement-tasks-") as work:
        evaluator = Evaluator(get_pack("tau-retail"), Path(work), make_agent)
        return evaluator.run(tasks, list(range(min(limit, len(tasks)))), progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", type=Path, default=BENCH / "conversations.json")
    parser.add_argument("--core", action="store_true", help="only the conversations make test runs")
    parser.add_argument("--no-suite", action="store_true", help="no conversations (with --tasks or --dialogues)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--candidate", choices=["merged", "llamacpp"], default="merged")
    parser.add_argument("--tag", default="", help="appended to the result's file name")
    parser.add_argument(
        "--dialogues", type=int, default=0, help="also compare every step of this many held-out dialogues"
    )
    parser.add_argument(
        "--tasks", type=int, default=0, help="also compare every step of the first N τ dev tasks (guided, as served)"
    )
    args = parser.parse_args()

    from agent_bench import open_search

    from assistant.conversations import load_suite, run_suite
    from assistant.llm import shipped_adapter
    from assistant.llm.transformers_backend import TransformersChatModel
    from assistant.runtime import agent_for_session
    from assistant.store import get_pack

    adapter = shipped_adapter("smollm2")
    dtype = os.environ.get("SHOPASSIST_DTYPE", "auto")
    if args.candidate == "llamacpp":
        from assistant.llm.llamacpp_backend import LlamaCppChatModel

        candidate = LlamaCppChatModel("smollm2", adapter, args.threads)
        weights = candidate.decoder.engine.gguf.name
        described, tag = f"{candidate.name} on llama.cpp ({weights}: {candidate.weights})", "llamacpp"
    else:
        candidate = TransformersChatModel("smollm2", adapter, args.threads, dtype=dtype, merge_adapter=True)
        tag = str(candidate.model.dtype).removeprefix("torch.")
        described = f"{candidate.name}, LoRA merged at load ({tag})"
    unmerged = TransformersChatModel("smollm2", adapter, args.threads, dtype=dtype, merge_adapter=False)
    reference = Shadow(unmerged, candidate)
    suite = [] if args.no_suite else [c for c in load_suite(args.suite) if c.get("core") or not args.core]
    search = open_search()
    with tempfile.TemporaryDirectory(prefix="agreement-") as work:
        results = run_suite(
            suite, get_pack("tau-retail"), Path(work), lambda s: agent_for_session(reference, s, "tau-retail"), search
        )
    task_shadow = Shadow(unmerged, candidate)
    task_results = task_steps(task_shadow, search, args.tasks) if args.tasks else []
    dialogue_steps = held_out_steps(unmerged, candidate, args.dialogues) if args.dialogues else []
    differing = [
        {"last_message": m, "reference": want, "candidate": got} for m, want, got in reference.steps if want != got
    ]
    task_differing = [
        {"last_message": m, "reference": want, "candidate": got} for m, want, got in task_shadow.steps if want != got
    ]
    dialogue_differing = [
        {"last_message": m, "reference": want, "candidate": got} for m, want, got in dialogue_steps if want != got
    ]
    steps = len(reference.steps)
    same = steps - len(differing)
    result = {
        "reference": f"{reference.name}, LoRA unmerged ({str(reference.model.model.dtype).removeprefix('torch.')})",
        "candidate": described,
        "conversations": len(suite),
        "steps": steps,
        "agreeing_steps": same,
        "agreement": round(same / steps, 4) if steps else None,
        "differing": differing[:20],
        "reference_suite_passed": sum(r.passed for r in results),
        "tau_dev_tasks": args.tasks,
        "task_steps": len(task_shadow.steps),
        "task_agreeing_steps": len(task_shadow.steps) - len(task_differing),
        "task_agreement": round(1 - len(task_differing) / len(task_shadow.steps), 4) if task_shadow.steps else None,
        "reference_task_rewards": [r.reward for r in task_results],
        "task_crashes": [r.error.strip().splitlines()[-1] for r in task_results if r.error],
        "task_differing": task_differing[:20],
        "held_out_dialogues": args.dialogues,
        "dialogue_steps": len(dialogue_steps),
        "dialogue_agreeing_steps": len(dialogue_steps) - len(dialogue_differing),
        "dialogue_agreement": round(1 - len(dialogue_differing) / len(dialogue_steps), 4) if dialogue_steps else None,
        # the same kind of action (which tool, or a reply), arguments aside
        "dialogue_same_action": sum(want.get("tool") == got.get("tool") for _, want, got in dialogue_steps),
        "dialogue_differing": dialogue_differing[:20],
        "model_seconds": {k: round(v + task_shadow.seconds[k], 1) for k, v in reference.seconds.items()},
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads {args.threads}",
        "command": "python bench/decision_agreement.py " + " ".join(sys.argv[1:]),
    }
    out = BENCH / "results" / f"decision_agreement-{tag}{args.tag}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("differing")}, indent=2))
    for d in differing[:10]:
        print(json.dumps(d, ensure_ascii=False)[:400])


if __name__ == "__main__":
    main()
