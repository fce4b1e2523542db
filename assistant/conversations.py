"""The real-model conversation suite: multi-turn conversations with machine-checked expectations.

A suite file (`bench/conversations.json`) is a JSON list of conversations:

    {"id": "cancel-by-email", "core": true, "tags": ["cancel"],
     "turns": [{"say": "Hi, my email is ... cancel #W2631563 ...",
                "expect": {"calls": [{"name": "find_user_id_by_email", "args": {"email": "..."}}],
                           "pending": true}},
               {"say": "yes", "expect": {"confirmed": ["cancel_pending_order"]}}],
     "final": {"orders": {"#W2631563": {"status": "cancelled"}}, "signed_in": "mei_ahmed_5058"}}

Each turn runs the real agent loop, policy layer and tools on a fresh copy of the store. Expectations
check structure and state, never wording: tools called in the turn (name and key arguments: an exact
value, `{"contains": s}`, `{"lte": x}`, `{"gte": x}`), tools not called, the write awaiting
confirmation, writes confirmed, hand-over, the conversation act replied with (`act`: "greet", ...),
facts the reply must contain (`reply_has`, values taken from
the store; `found`: a product a search returned and the reply lists), and after the last turn
the store's order statuses and the signed-in customer. Every reply
is also checked for tool-call markup, whatever the expectations say.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.agent import Agent
from assistant.policy import PolicySession
from assistant.store import FreshStores, Store, StorePack
from assistant.tools import ToolContext, ToolRegistry
from retrieval.errors import ShopassistError

MARKUP = ("<tool_call>", "</tool_call>", '{"name"', "<|im_start|>", "<|im_end|>", '"arguments"')
DONE = ("ok", "awaiting confirmation", "confirmed", "error", "refused", "declined")  # the call ran in some way


class SuiteFileError(ShopassistError, ValueError):
    """A conversation suite file is malformed; the message names the conversation."""


@dataclass
class ConversationResult:
    id: str
    passed: bool
    failures: list[str]
    replies: list[str]
    calls: list[list[str]]  # per turn: "name(args) -> outcome"
    seconds: float
    tags: list[str] = field(default_factory=list)
    turn_seconds: list[float] = field(default_factory=list)


def load_suite(path: Path) -> list[dict[str, Any]]:
    try:
        suite = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteFileError(f"{path}: cannot read the suite ({exc})") from None
    if not isinstance(suite, list):
        raise SuiteFileError(f"{path}: expected a JSON list of conversations")
    seen = set()
    for i, c in enumerate(suite):
        if not isinstance(c, dict) or not isinstance(c.get("id"), str) or not isinstance(c.get("turns"), list):
            raise SuiteFileError(f"{path}: conversation {i} needs an id and a list of turns")
        if c["id"] in seen:
            raise SuiteFileError(f"{path}: conversation id {c['id']!r} appears twice")
        seen.add(c["id"])
        for t in c["turns"]:
            if not isinstance(t, dict) or not isinstance(t.get("say"), str):
                raise SuiteFileError(f"{path}: {c['id']}: every turn needs a 'say' string")
    return suite


def _arg_matches(value: Any, want: Any) -> bool:
    if isinstance(want, dict) and set(want) <= {"contains", "lte", "gte", "any_of"} and want:
        if "contains" in want and not (isinstance(value, str) and want["contains"].lower() in value.lower()):
            return False
        if "any_of" in want and value not in want["any_of"]:
            return False
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if "lte" in want and not (number and value <= want["lte"]):
            return False
        return not ("gte" in want and not (number and value >= want["gte"]))
    if isinstance(want, list) and isinstance(value, list):
        return sorted(map(str, value)) == sorted(map(str, want))
    return value == want


def _hits(output: str) -> list[dict]:
    try:
        data = json.loads(output)
    except json.JSONDecodeError:
        return []
    return [h for h in data if isinstance(h, dict)] if isinstance(data, list) else []


def check_turn(
    expect: dict[str, Any], records, reply: str, session: PolicySession, transferred: bool, act: str | None = None
) -> list[str]:
    """What in one turn broke its expectations (empty: the turn passed); `act`: the conversation act the
    guided agent chose for its reply (assistant.replies.ACTS), where it chose one."""
    failures = []
    if "act" in expect and act != expect["act"]:
        failures.append(f"replied with the {act!r} act, not {expect['act']!r}")
    for marker in MARKUP:
        if marker in reply:
            failures.append(f"markup {marker!r} in the reply")
    ran = [r for r in records if r.outcome in DONE]
    for want in expect.get("calls", []):
        hits = [r for r in ran if r.name == want["name"]]
        if not hits:
            failures.append(f"no {want['name']} call")
            continue
        args = want.get("args", {})
        if not any(all(_arg_matches(r.arguments.get(k), v) for k, v in args.items()) for r in hits):
            got = "; ".join(json.dumps(r.arguments) for r in hits)
            failures.append(f"{want['name']} arguments {got} do not match {json.dumps(args)}")
    for product in expect.get("found", []):  # a search this turn returned that product, and the reply lists it
        hits = [h for r in ran if r.name == "search_products" and r.outcome == "ok" for h in _hits(r.output)]
        if not any(h.get("name") == product for h in hits):
            failures.append(f"no search result is a {product}")
        elif not any(f"item {h['item_id']}" in reply for h in hits if h.get("name") == product):
            failures.append(f"the reply lists no {product} that was found")
    for product in expect.get("only_found", []):  # nothing else is shown as if it were what they asked for
        hits = [h for r in ran if r.name == "search_products" and r.outcome == "ok" for h in _hits(r.output)]
        if any(h.get("name") != product for h in hits):
            failures.append(f"a search this turn returned items that are not a {product}")
    for name in expect.get("no_calls", []):
        if any(r.name == name for r in records):
            failures.append(f"unexpected {name} call")
    if expect.get("no_tools") and records:
        failures.append(f"expected no tool call, got {[r.name for r in records]}")
    if "pending" in expect:
        pending = session.pending
        if expect["pending"] is False and pending is not None:
            failures.append(f"a {pending.name} write awaits confirmation")
        elif isinstance(expect["pending"], str) and (pending is None or pending.name != expect["pending"]):
            failures.append(f"expected a pending {expect['pending']}, got {pending.name if pending else None}")
    for name in expect.get("confirmed", []):
        if not any(r.name == name and r.outcome == "confirmed" for r in records):
            failures.append(f"{name} was not carried out")
    if expect.get("no_writes") and any(r.outcome == "confirmed" for r in records):
        failures.append("a write was carried out")
    if "transferred" in expect and bool(expect["transferred"]) != transferred:
        failures.append("not handed over" if expect["transferred"] else "handed over unasked")
    for fact in expect.get("reply_has", []):
        if fact.lower() not in reply.lower():
            failures.append(f"reply lacks {fact!r}")
    for fact in expect.get("reply_lacks", []):
        if fact.lower() in reply.lower():
            failures.append(f"reply states {fact!r}")
    if expect.get("reply") and not reply.strip():
        failures.append("empty reply")
    return failures


def check_final(final: dict[str, Any], store: Store, session: PolicySession) -> list[str]:
    failures = []
    for order_id, fields in final.get("orders", {}).items():
        order = store.order(order_id) or {}
        for key, want in fields.items():
            if order.get(key) != want:
                failures.append(f"order {order_id} {key} is {order.get(key)!r}, expected {want!r}")
    if "signed_in" in final and session.user_id != final["signed_in"]:
        failures.append(f"signed in as {session.user_id!r}, expected {final['signed_in']!r}")
    return failures


AgentFactory = Callable[[PolicySession], Agent]


def run_conversation(conversation: dict[str, Any], stores: FreshStores, make_agent: AgentFactory, search=None):
    start = time.perf_counter()
    failures, replies, calls, turn_seconds = [], [], [], []
    with stores.open() as store:
        session = PolicySession(ToolRegistry(), ToolContext(store, search))
        agent = make_agent(session)
        for n, turn in enumerate(conversation["turns"], 1):
            shown = len(session.trace)
            started = time.perf_counter()
            result = agent.respond(turn["say"])
            turn_seconds.append(round(time.perf_counter() - started, 3))
            records = session.trace[shown:]
            last = agent.messages[-1] if agent.messages else None
            act = last.meta.get("act") if last is not None and last.role == "assistant" else None
            replies.append(result.reply)
            calls.append([f"{r.name}({json.dumps(r.arguments)}) -> {r.outcome}" for r in records])
            expect = turn.get("expect", {})
            failures += [
                f"turn {n}: {f}" for f in check_turn(expect, records, result.reply, session, result.transferred, act)
            ]
        failures += [f"final: {f}" for f in check_final(conversation.get("final", {}), store, session)]
        agent.close()
    return ConversationResult(
        conversation["id"],
        not failures,
        failures,
        replies,
        calls,
        round(time.perf_counter() - start, 2),
        list(conversation.get("tags", [])),
        turn_seconds,
    )


def run_suite(
    suite: list[dict[str, Any]],
    pack: StorePack,
    workdir: Path,
    make_agent: AgentFactory,
    search=None,
    out: Path | None = None,
) -> list[ConversationResult]:
    """Every conversation on a fresh store; with `out`, results are appended one line each as they finish."""
    stores = FreshStores(pack, Path(workdir))
    results = []
    for conversation in suite:
        result = run_conversation(conversation, stores, make_agent, search)
        results.append(result)
        if out is not None:
            with Path(out).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(result)) + "\n")
    return results


def summary(results: list[ConversationResult]) -> dict[str, Any]:
    passed = sum(r.passed for r in results)
    return {
        "conversations": len(results),
        "passed": passed,
        "pass_rate": round(passed / len(results), 3) if results else 0.0,
        "failed": {r.id: r.failures for r in results if not r.passed},
        "seconds": round(sum(r.seconds for r in results), 1),
    }
