"""Task evaluation: run customer-service tasks against an agent with a scripted customer and score them.

Protocol (docs/EVALUATION.md): each trial starts from the store's shipped state. The scripted
customer's first message is the task instruction in the first person; afterwards it answers "yes"
when a write is waiting for confirmation and otherwise restates the instruction. A trial ends when
the agent transfers to a human or after `max_turns` customer messages. It scores 1 if the final state
hash equals the hash after replaying the gold actions on a fresh store and every required output
appears in the agent's replies (lower-cased, commas removed), else 0.
"""

import json
import math
import os
import random
import re
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.agent import Agent
from assistant.policy import PolicySession
from assistant.store import FreshStores, Store, StorePack
from assistant.tools import ToolContext, ToolRegistry
from retrieval.errors import ShopassistError


class TaskFileError(ShopassistError, ValueError):
    """A task file is malformed; the message names the task and the problem."""


@dataclass(frozen=True)
class Task:
    user_id: str
    instruction: str
    actions: tuple[dict[str, Any], ...]
    outputs: tuple[str, ...]


def load_tasks(path: Path) -> list[Task]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise TaskFileError(f"{path}: cannot read tasks ({exc})") from None
    if not isinstance(raw, list):
        raise TaskFileError(f"{path}: expected a JSON list of tasks")
    tasks = []
    for i, t in enumerate(raw):
        try:
            actions = tuple({"name": a["name"], "kwargs": dict(a["kwargs"])} for a in t["actions"])
            tasks.append(Task(str(t["user_id"]), str(t["instruction"]), actions, tuple(t.get("outputs", []))))
        except (KeyError, TypeError) as exc:
            raise TaskFileError(f"{path}: task {i} lacks or mangles field {exc}") from None
    return tasks


_PRONOUNS = [
    (r"\bYour\b", "My"),
    (r"\byour\b", "my"),
    (r"\bYou are\b", "I am"),
    (r"\byou are\b", "I am"),
    (r"\bYou're\b", "I'm"),
    (r"\byou're\b", "I'm"),
    (r"\bYou\b", "I"),
    (r"\byourself\b", "myself"),
    (r"\byou\b", "me"),
]


def held_out_sample(n_tasks: int, k: int = 100, seed: int = 0) -> list[int]:
    """The fixed sample of training-file tasks kept for evaluation: never used to build training data."""
    return sorted(random.Random(seed).sample(range(n_tasks), min(k, n_tasks)))


def first_person(instruction: str) -> str:
    """'Your name is X and you want...' → 'My name is X and I want...' (a rule-based rewrite)."""
    text = instruction
    for pattern, replacement in _PRONOUNS:
        text = re.sub(pattern, replacement, text)
    # "me want" is what 'you' as a subject becomes above; subjects precede verbs
    text = re.sub(r"(^|[.;,!?]\s+|\band\s+|\bbut\s+|\bif\s+|\bthat\s+|\bwhen\s+)me\b", r"\1I", text)
    return " ".join(text.split())


@dataclass
class TrialResult:
    task: int
    trial: int
    reward: float
    state_match: bool
    outputs_found: dict[str, bool]
    turns: int
    steps: int
    tool_calls: int
    invalid_calls: int
    transferred: bool
    seconds: float
    seconds_per_turn: list[float]
    error: str | None = None
    failure: str | None = None  # one of FAILURES for a failed trial (older result files have none)


# Why a trial failed, the first that applies (docs/BENCHMARKS.md's failure table)
FAILURES = (
    "crashed",
    "transferred",
    "not signed in",
    "step limit",
    "confirmation never asked",
    "wrong write",
    "wrong order",
    "wrong items or arguments",
    "required output missing",
)


def classify_failure(
    task: Task, session: PolicySession, state_match: bool, found: dict[str, bool], transferred: bool, step_limit: bool
) -> str | None:
    """The failure kind of a trial, None if it passed. Writes are compared with the gold writes by name,
    then by order, then by every argument; a state that matches with a missing output is the last kind."""
    if state_match and all(found.values()):
        return None
    gold = [
        a for a in task.actions if a["name"] != "transfer_to_human_agents" and session.registry.get(a["name"]).writes
    ]
    proposed = [
        r
        for r in session.trace
        if r.name in session.registry and session.registry.get(r.name).writes and r.outcome == "awaiting confirmation"
    ]
    if transferred and not any(a["name"] == "transfer_to_human_agents" for a in task.actions):
        return "transferred"
    if session.user_id is None:
        return "not signed in"
    if state_match:
        return "required output missing"
    if gold and not proposed:
        return "step limit" if step_limit else "confirmation never asked"
    if sorted(a["name"] for a in gold) != sorted(r.name for r in proposed):
        return "wrong write"
    if sorted(str(a["kwargs"].get("order_id")) for a in gold) != sorted(
        str(r.arguments.get("order_id")) for r in proposed
    ):
        return "wrong order"
    return "wrong items or arguments"


def outputs_found(outputs: Sequence[str], replies: Sequence[str]) -> dict[str, bool]:
    said = [r.lower().replace(",", "") for r in replies]
    return {o: any(o.lower() in r for r in said) for o in outputs}


AgentFactory = Callable[[PolicySession, Task, Store], Agent]


class Evaluator:
    def __init__(self, pack: StorePack, workdir: Path, make_agent: AgentFactory, max_turns: int = 10):
        self.pack, self.workdir, self.make_agent, self.max_turns = pack, Path(workdir), make_agent, max_turns
        self.stores = FreshStores(pack, self.workdir)
        self._gold: dict[str, str] = {}

    def gold_hash(self, task: Task) -> str:
        """State hash after replaying the gold actions (all but the hand-over) on a fresh store."""
        key = json.dumps(task.actions, sort_keys=True)
        if key not in self._gold:
            registry = ToolRegistry()
            with self.stores.open() as store:
                ctx = ToolContext(store)
                for action in task.actions:
                    if action["name"] != "transfer_to_human_agents":
                        registry.invoke(ctx, action["name"], action["kwargs"])
                self._gold[key] = store.state_hash()
        return self._gold[key]

    def run_trial(self, task: Task, index: int, trial: int) -> TrialResult:
        start = time.perf_counter()
        gold = self.gold_hash(task)
        with self.stores.open() as store:
            session = PolicySession(ToolRegistry(), ToolContext(store))
            agent = self.make_agent(session, task, store)
            message, replies, per_turn = first_person(task.instruction), [], []
            steps = calls = 0
            transferred = step_limit = False
            for _ in range(self.max_turns):
                turn_start = time.perf_counter()
                turn = agent.respond(message)
                per_turn.append(time.perf_counter() - turn_start)
                replies.append(turn.reply)
                steps, calls = steps + turn.steps, calls + turn.tool_calls
                step_limit = step_limit or turn.hit_step_limit
                if turn.transferred:
                    transferred = True
                    break
                message = "yes" if session.pending is not None else first_person(task.instruction)
            agent.close()
            turns = len(replies)
            state_match = store.state_hash() == gold
            found = outputs_found(task.outputs, replies)
            invalid = sum(r.outcome == "invalid" for r in session.trace)
            failure = classify_failure(task, session, state_match, found, transferred, step_limit)
        return TrialResult(
            index,
            trial,
            float(state_match and all(found.values())),
            state_match,
            found,
            turns,
            steps,
            calls,
            invalid,
            transferred,
            time.perf_counter() - start,
            per_turn,
            failure=failure,
        )

    def run(
        self,
        tasks: Sequence[Task],
        indices: Sequence[int],
        trials: int = 1,
        out: Path | None = None,
        progress: bool = True,
    ) -> list[TrialResult]:
        """Run every (task, trial); with `out`, results are appended per trial and a re-run resumes."""
        from tqdm.auto import tqdm

        done: dict[tuple[int, int], TrialResult] = {}
        if out is not None and Path(out).exists():
            for line in Path(out).read_text().splitlines():
                if line.strip():
                    r = TrialResult(**json.loads(line))
                    done[(r.task, r.trial)] = r
        results = []
        todo = [(i, t) for i in indices for t in range(trials)]
        for index, trial in tqdm(todo, desc="tasks", unit="trial", disable=not progress):
            if (index, trial) in done:
                results.append(done[(index, trial)])
                continue
            try:
                result = self.run_trial(tasks[index], index, trial)
            except Exception:  # a crashing task is recorded and the run goes on
                error = traceback.format_exc()
                result = TrialResult(index, trial, 0.0, False, {}, 0, 0, 0, 0, False, 0.0, [], error, "crashed")
            results.append(result)
            if out is not None:
                with Path(out).open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(result)) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        return results


def pass_hat_k(results: Sequence[TrialResult], k: int) -> float:
    """τ-bench's pass^k: mean over tasks of C(successes, k) / C(trials, k)."""
    by_task: dict[int, list[float]] = {}
    for r in results:
        by_task.setdefault(r.task, []).append(r.reward)
    values = [math.comb(int(sum(v)), k) / math.comb(len(v), k) for v in by_task.values() if len(v) >= k]
    return sum(values) / len(values) if values else float("nan")


def bootstrap_ci(results: Sequence[TrialResult], k: int, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of pass^k, resampling tasks."""
    by_task: dict[int, list[TrialResult]] = {}
    for r in results:
        by_task.setdefault(r.task, []).append(r)
    groups = list(by_task.values())
    rng = random.Random(seed)
    stats = sorted(pass_hat_k([r for g in rng.choices(groups, k=len(groups)) for r in g], k) for _ in range(resamples))
    return stats[int(0.025 * resamples)], stats[int(0.975 * resamples) - 1]


def summarize(results: Sequence[TrialResult], trials: int) -> dict[str, Any]:
    calls = sum(r.tool_calls for r in results)
    turn_times = sorted(t for r in results for t in r.seconds_per_turn)
    summary: dict[str, Any] = {
        "tasks": len({r.task for r in results}),
        "trials": len(results),
        "crashed": sum(r.error is not None for r in results),
        "valid_tool_call_share": 1 - sum(r.invalid_calls for r in results) / calls if calls else float("nan"),
        "avg_steps": sum(r.steps for r in results) / max(1, len(results)),
        "turn_p50_s": turn_times[len(turn_times) // 2] if turn_times else float("nan"),
    }
    failed = [r.failure or ("crashed" if r.error else "unclassified") for r in results if r.reward < 1]
    summary["failures"] = {kind: failed.count(kind) for kind in (*FAILURES, "unclassified") if kind in failed}
    for k in range(1, trials + 1):
        low, high = bootstrap_ci(results, k)
        summary[f"pass^{k}"] = {"value": pass_hat_k(results, k), "ci95": [low, high]}
    return summary
