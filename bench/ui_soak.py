"""Soak: concurrent shopper sessions against the real web app with one `kill -9` and restart in the middle.

    .venv/bin/python bench/ui_soak.py --sessions 20 --turns 20        # scripted model, loopback only

Starts `tests/ui_server.py` (the real app with the rule-following test model, assistant.scripted_models)
as its own process over a fresh state dir, using the catalog index of the project's state dir
(`shopassist index` first). Each session signs in as a different customer who has a pending order,
searches, asks to cancel that order (a write waiting for Confirm) at the half-way turn, and goes on.
When every session has its pending write, the server is killed with SIGKILL and started again; each
session then reconnects as a reloaded page does (a new client holding the stored token, `/resume`),
presses Confirm and finishes its turns. Counted from the server's saved conversations and its store:

- conversations lost: sessions whose transcript after the run lacks any message they had sent;
- writes doubled: orders cancelled by more than one confirmed write (and writes lost: confirmed, not done);
- errors seen: failed requests or the app's apology reply, outside the restart itself.

Results: bench/results/ui_soak.json; a session is bounded by --deadline seconds.
"""

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

BENCH = Path(__file__).parent
ROOT = BENCH.parent
SEARCHES = ["find me a t-shirt", "find a backpack", "show me hiking boots", "looking for a water bottle"]
SORRY = "something went wrong on our side"


def start(state: Path, index_state: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "SHOPASSIST_STATE_DIR": str(state), "SHOPASSIST_STAFF_PASSWORD": "soak"}
    with (state / "server.log").open("a") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "ui_server.py"),
                "--port",
                str(port),
                "--index-state",
                str(index_state),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ui_soak: the server exited: {(state / 'server.log').read_text()[-1500:]}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=1).status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("ui_soak: the server did not start within 120 s")


def _quantiles(values: list[float]) -> dict[str, float | None]:
    from agent_bench import percentile

    if not values:  # every turn of that phase failed: counted under errors
        return {"p50": None, "p95": None}
    return {"p50": round(percentile(values, 0.5), 3), "p95": round(percentile(values, 0.95), 3)}


def customers_with_pending_orders(n: int) -> list[tuple[str, str]]:
    """(email, pending order id) of the first n customers of the shipped store that have one."""
    from assistant.store import Store

    with tempfile.TemporaryDirectory() as work, Store.open("tau-retail", path=Path(work) / "s.sqlite3") as store:
        orders, picked = store.orders(), {}
        for order_id, order in orders.items():
            user = order["user_id"]
            if order["status"] == "pending" and user not in picked:
                picked[user] = (store.user(user)["email"], order_id)
        return list(picked.values())[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--deadline", type=float, default=600, help="seconds a session may take in all")
    parser.add_argument("--index-state", type=Path, default=ROOT / ".shopassist", help="state dir with the index")
    args = parser.parse_args()
    if args.turns < 4:
        raise SystemExit("ui_soak: --turns must be at least 4 (sign-in, cancel, confirm, one more)")
    from gradio_client import Client

    from ui.app import free_port

    people = customers_with_pending_orders(args.sessions)
    half = args.turns // 2  # turn `half - 1` asks to cancel, turn `half` confirms after the restart
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="ui-soak-"))
    process = start(work, args.index_state, port)
    before: list[float] = []
    after: list[float] = []
    errors: list[str] = []
    sent: dict[int, list[str]] = {n: [] for n in range(len(people))}
    tokens: dict[int, str] = {}
    at_barrier = threading.Barrier(len(people) + 1)
    restarted = threading.Event()

    def turn(client, n: int, text: str | None, times: list[float]) -> None:
        started = time.perf_counter()
        try:
            result = client.predict(api_name="/confirm") if text is None else client.predict(text, api_name="/send")
        except Exception as exc:  # counted: every request here is made while the server is up
            errors.append(f"session {n}: {type(exc).__name__}: {str(exc)[:200]}")
            return
        times.append(time.perf_counter() - started)
        sent[n].append("yes" if text is None else text)
        tokens[n] = result[-1]
        reply = result[0][-1]["content"]
        reply = reply[0]["text"] if isinstance(reply, list) else reply
        if SORRY in reply:
            errors.append(f"session {n}: the app apologised for an error")

    def session(n: int) -> None:
        email, order = people[n]
        deadline = time.monotonic() + args.deadline
        client = Client(url, verbose=False)
        plan = [f"my email is {email}"] + [SEARCHES[(n + t) % len(SEARCHES)] for t in range(1, half - 1)]
        for text in [*plan, f"please cancel {order}"]:
            if time.monotonic() < deadline:
                turn(client, n, text, before)
        at_barrier.wait()
        restarted.wait()
        client = Client(url, verbose=False)  # a reloaded page: a new session with the stored token
        client.predict(tokens.get(n, ""), api_name="/resume")
        turn(client, n, None, after)  # Confirm
        for t in range(half + 1, args.turns):
            if time.monotonic() < deadline:
                turn(client, n, SEARCHES[(n + t) % len(SEARCHES)], after)

    threads = [threading.Thread(target=session, args=(n,), daemon=True) for n in range(len(people))]
    started = time.perf_counter()
    for t in threads:
        t.start()
    at_barrier.wait()
    os.kill(process.pid, signal.SIGKILL)  # no shutdown hook runs
    process.wait(10)
    down = time.perf_counter()
    process = start(work, args.index_state, port)
    restart_s = time.perf_counter() - down
    restarted.set()
    for t in threads:
        t.join(args.deadline)
    wall = time.perf_counter() - started
    process.terminate()
    process.wait(30)

    with sqlite3.connect(work / "conversations.sqlite3") as db:
        saved = {json.loads(s)["token"]: json.loads(s) for (s,) in db.execute("SELECT state FROM conversations")}
    lost = 0
    for n, said in sent.items():
        row = saved.get(tokens.get(n, ""))
        users = [m["content"] for m in row["messages"] if m["role"] == "user"] if row else []
        lost += users != said
    from assistant.store import Store

    with Store.open("tau-retail", path=work / "stores" / "tau-retail.sqlite3") as store:
        orders = store.orders()
    confirmed: dict[str, int] = {}
    for row in saved.values():
        for record in row["trace"]:
            if record["name"] == "cancel_pending_order" and record["outcome"] == "confirmed":
                confirmed[record["arguments"]["order_id"]] = confirmed.get(record["arguments"]["order_id"], 0) + 1
    doubled = sum(count > 1 for count in confirmed.values())
    not_done = sum(orders[o]["status"] != "cancelled" for o in confirmed)
    result = {
        "model": "scripted (assistant.scripted_models.RuleModel)",
        "sessions": len(people),
        "turns_per_session": args.turns,
        "turns_done": len(before) + len(after),
        "conversations_lost": lost,
        "writes_doubled": doubled,
        "writes_confirmed": len(confirmed),
        "writes_lost": not_done,
        "errors": len(errors),
        "error_examples": errors[:5],
        "turn_s_before_restart": _quantiles(before),
        "turn_s_after_restart": _quantiles(after),
        "restart_s": round(restart_s, 1),
        "wall_s": round(wall, 1),
        "mean_turn_s": round(statistics.mean(before + after), 3) if before + after else None,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": "python bench/ui_soak.py " + " ".join(sys.argv[1:]),
    }
    out = BENCH / "results" / "ui_soak.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if lost or doubled or not_done or errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
