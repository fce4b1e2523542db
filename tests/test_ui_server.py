"""The running app (real Gradio server, scripted model): concurrent sessions, bad input, and a real browser.

The server is started as a user would (a separate process on 127.0.0.1) with its own state dir, so the
store changes a test makes are checked in that process's SQLite file.
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import TESTS, free_port, wait_for

from assistant.store import Store

pytestmark = pytest.mark.slow
IVAN = "ivan.santos3158@example.com"
SCREENSHOTS = os.environ.get("SHOPASSIST_SCREENSHOTS")  # e.g. docs/screenshots: refresh the README's pictures


STAFF = ("staff", "correct horse battery staple")


def _start(state: Path, tau_state: Path, port: int, delay: float = 0.01) -> subprocess.Popen:
    """The server as a user starts it: its own process on 127.0.0.1, state and staff password from the env."""
    env = {**os.environ, "SHOPASSIST_STATE_DIR": str(state), "SHOPASSIST_STAFF_PASSWORD": STAFF[1]}
    log = (state / "server.log").open("a")
    process = subprocess.Popen(
        [
            sys.executable,
            str(TESTS / "ui_server.py"),
            "--port",
            str(port),
            "--index-state",
            str(tau_state),
            "--delay",
            str(delay),
            "--network-log",
            str(state / "network.log"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError((state / "server.log").read_text()[-2000:])
        try:
            return urllib.request.urlopen(url, timeout=1).status == 200
        except OSError:
            return False

    wait_for(up, 90, "the UI server")
    return process


@pytest.fixture(scope="module")
def server(tau_collection, tau_state, tmp_path_factory):
    state = tmp_path_factory.mktemp("ui-state")
    process = _start(state, tau_state, port := free_port())
    yield f"http://127.0.0.1:{port}", state
    process.terminate()
    process.wait(30)


def test_no_outbound_connection_at_start_or_while_serving(server):
    url, state = server
    _client(url).predict("find me a t-shirt", api_name="/send")
    assert (state / "network.log").read_text() == ""


def _client(url, auth=None):
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False)


def _last(result) -> str:
    content = result[0][-1]["content"]
    return content[0]["text"] if isinstance(content, list) else content


def test_bound_to_loopback_only(server):
    url, _ = server
    assert url.startswith("http://127.0.0.1:")
    port = int(url.rsplit(":", 1)[1])
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # this machine's outward address, if any
        try:
            s.connect(("10.255.255.255", 1))
            outward = s.getsockname()[0]
        except OSError:
            pytest.skip("no non-loopback interface")
    if outward.startswith("127."):
        pytest.skip("no non-loopback interface")
    with pytest.raises(OSError), socket.create_connection((outward, port), timeout=2):
        pass


@pytest.mark.parametrize(
    "text, expect",
    [
        ("", "Please type a message."),
        ("x" * 10_240, "10,240 characters"),
        ("\x00\x07\x1b", "Please type a message."),
        ("<script>alert(1)</script><b>hi</b>", "echo: &lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;"),
    ],
)
def test_bad_input_gets_a_clear_reply_and_the_server_stays_up(server, text, expect):
    url, _ = server
    client = _client(url)
    assert expect in _last(client.predict(text, api_name="/send"))
    assert _last(client.predict("still there?", api_name="/send")) == "echo: still there?"


def test_twenty_concurrent_sessions_no_errors_no_leakage(server):
    url, _ = server
    results, errors, latencies = {}, [], []

    def session(n: int) -> None:
        try:
            client = _client(url)
            said = []
            for i in range(3):
                start = time.perf_counter()
                reply = client.predict(f"session {n} turn {i}", api_name="/send")
                latencies.append(time.perf_counter() - start)
                said.append(reply)
            results[n] = said
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=session, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert errors == []
    assert len(results) == 20
    for n, replies in results.items():
        final = replies[-1][0]  # the whole chat this session sees
        texts = [m["content"][0]["text"] if isinstance(m["content"], list) else m["content"] for m in final]
        assert texts == [x for i in range(3) for x in (f"session {n} turn {i}", f"echo: session {n} turn {i}")]
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\n20 sessions × 3 turns (scripted model): p50 {latencies[len(latencies) // 2]:.2f} s, p95 {p95:.2f} s")
    assert p95 < 30


def test_recommend_endpoint_returns_cards_with_reasons(server):
    url, _ = server
    cards, method = _client(url).predict("a t-shirt under $60", 3, "auto", api_name="/recommend")
    assert cards.count('class="sa-card"') == 3 and "matches “t-shirt”" in cards
    assert "3 of" in method and "product search" in method and "no LLM" in method  # the scripted model ranks nothing


# --- staff only, and each shopper only their own conversation -------------------------------------------


def _http(url: str, body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_console_gives_an_unauthenticated_client_nothing(server):
    url, _ = server
    _client(url).predict(f"my email is {IVAN}", api_name="/send")  # a conversation with a signed-in customer
    console = f"{url}/console"
    for path in ("/config", "/info", "/gradio_api/info", "/gradio_api/queue/status"):
        status, body = _http(console + path)
        assert status in (401, 403, 404), path
        assert "ivan" not in body
    for fn_index in range(16):  # every event of the console, called by number
        join = {"data": [], "fn_index": fn_index, "session_hash": "attacker", "trigger_id": None, "event_data": None}
        status, body = _http(f"{console}/gradio_api/queue/join", join)
        assert status in (401, 403), fn_index
        assert "ivan" not in body
    for endpoint in ("run/conversations", "call/conversations", "api/conversations"):
        assert _http(f"{console}/gradio_api/{endpoint}", {"data": []})[0] in (401, 403, 404, 405)
    from gradio_client.exceptions import AuthenticationError

    with pytest.raises((AuthenticationError, ValueError)):
        _client(f"{console}/", auth=("staff", "not the password"))
    rows, _ = _client(f"{console}/", auth=STAFF).predict(api_name="/conversations")
    assert rows["headers"][0] == "conversation"  # staff get in


def test_shopper_app_has_no_staff_event_and_cannot_reach_another_conversation(server):
    url, state = server
    config = json.loads(urllib.request.urlopen(f"{url}/config", timeout=10).read())
    elem_ids = {str(c.get("props", {}).get("elem_id")) for c in config["components"]}
    assert not [e for e in elem_ids if e.startswith("console-") or e == "rec-customer"]
    assert "conversations" not in {d.get("api_name") for d in config["dependencies"]}

    victim = _client(url)
    victim.predict(f"my email is {IVAN}", api_name="/send")
    asked = victim.predict("please cancel #W5183325", api_name="/send")
    assert "Shall I go ahead?" in _last(asked)
    rows, _ = _client(f"{url}/console/", auth=STAFF).predict(api_name="/conversations")
    ids = [row[0] for row in rows["data"]]
    attacker = _client(url)
    for guess in [*ids, "", "null", "../" * 3]:  # the ids staff see are no handle for a shopper
        chat, *_ = attacker.predict(guess, api_name="/resume")
        assert chat == [] or all("ivan" not in json.dumps(m) for m in chat)
    confirmed = attacker.predict(api_name="/confirm")  # lands in the attacker's own, empty conversation
    assert "ivan" not in json.dumps(confirmed[0]).lower()
    with Store.open("tau-retail", path=state / "stores" / "tau-retail.sqlite3") as store:
        assert store.orders()["#W5183325"]["status"] == "pending"
    victim.predict(api_name="/decline")


def test_stopping_with_browser_tabs_open_prints_one_line_not_tracebacks(tau_collection, tau_state, tmp_path):
    """Ctrl-C on `shopassist ui` while tabs hold their event streams: uvicorn cancels them after the graceful
    5 s and logged a traceback for each; now one line, and the process ends."""
    import signal

    process = _start(tmp_path, tau_state, port := free_port())
    streams = [
        urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/heartbeat/tab{i}", timeout=60) for i in range(2)
    ]
    assert all(s.status == 200 for s in streams)
    process.send_signal(signal.SIGINT)
    process.wait(30)
    for s in streams:
        s.close()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log[-2000:]
    assert "open browser connection(s)" in log


def test_kill_9_mid_conversation_loses_nothing_and_confirm_runs_once(tau_collection, tau_state, tmp_path):
    port, state = free_port(), tmp_path
    url = f"http://127.0.0.1:{port}"
    process = _start(state, tau_state, port)
    try:
        shopper = _client(url)
        shopper.predict(f"my email is {IVAN}", api_name="/send")
        asked = shopper.predict("please cancel #W8770097", api_name="/send")
        token, before = asked[-1], asked[0]
        assert "Shall I go ahead?" in _last(asked)
        handed = _client(url).predict("I want to talk to a human", api_name="/send")
        assert "number 1 in the queue" in _last(handed)
        process.kill()  # SIGKILL: no shutdown hook runs
        process.wait(10)
        process = _start(state, tau_state, port)

        rows, _ = _client(f"{url}/console/", auth=STAFF).predict(api_name="/conversations")
        assert [row[1] for row in rows["data"]] == ["transferred"]  # the queue is back
        again = _client(url)  # a reloaded page: a new session holding the stored token
        chat, pending = again.predict(token, api_name="/resume")
        assert chat == before and "W8770097" in pending  # transcript and pending write are back
        store_path = state / "stores" / "tau-retail.sqlite3"
        with Store.open("tau-retail", path=store_path) as store:
            assert store.orders()["#W8770097"]["status"] == "pending"
        assert "is now cancelled" in _last(again.predict(api_name="/confirm"))
        again.predict(api_name="/confirm")  # a second click: nothing is waiting any more
        with Store.open("tau-retail", path=store_path) as store:
            assert store.orders()["#W8770097"]["status"] == "cancelled"
        import sqlite3

        with sqlite3.connect(state / "conversations.sqlite3") as db:
            saved = [json.loads(s) for (s,) in db.execute("SELECT state FROM conversations")]
        runs = [
            r for c in saved for r in c["trace"] if r["name"] == "cancel_pending_order" and r["outcome"] == "confirmed"
        ]
        assert len(runs) == 1  # carried out exactly once
        assert oct((state / "conversations.sqlite3").stat().st_mode & 0o777) == "0o600"
    finally:
        process.kill()
        process.wait(10)


# --- a real browser -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("chromium and chromium-driver are not installed (make test installs them with apt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


def _wait_text(driver, css: str, text: str, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By

    wait_for(
        lambda: any(text in e.text for e in driver.find_elements(By.CSS_SELECTOR, css)), timeout, f"{text!r} in {css}"
    )


def _say(driver, text: str, expect: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, "#shopper-input textarea")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    _wait_text(driver, "#shopper-chat", expect)


def _shot(driver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


def _tab(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text.strip() == label).click()


def test_browser_shopper_flow_and_console(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, state = server
    browser.get(url)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#shopper-input textarea"), 30, "the chat box")

    _say(browser, "find me a t-shirt", "I found 3 items")
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".sa-card")) == 3, 15, "three product cards")
    assert all("T-Shirt" in c.text and "$" in c.text for c in browser.find_elements(By.CSS_SELECTOR, ".sa-card"))
    browser.find_elements(By.CSS_SELECTOR, ".sa-card-open")[0].click()
    _wait_text(browser, "#card-details", "T-Shirt")
    browser.find_elements(By.CSS_SELECTOR, "#shopper-chat button[aria-label=Dislike]")[-1].click()

    def rated_down() -> bool:
        lines = (state / "logs" / "dialogues.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["feedback"]["rating"] == "down"

    wait_for(rated_down, 10, "the thumbs-down in the dialogue log")
    rows = [json.loads(x) for x in (state / "logs" / "interactions.jsonl").read_text().splitlines()]
    shown = [r for r in rows if r["conversation"] == rows[-1]["conversation"]]
    assert [r["label"] for r in shown] == [0, 0, 0, 1]  # three cards shown, one opened
    assert shown[3]["impression_id"] == shown[0]["impression_id"]

    _say(browser, f"my email is {IVAN}", "signed in as ivan_santos_6635")
    _say(browser, "please cancel #W8770097", "Shall I go ahead?")
    confirm = browser.find_element(By.CSS_SELECTOR, "#confirm-write")
    wait_for(confirm.is_displayed, 10, "the Confirm button")
    _shot(browser, "shop.png")
    store_path = state / "stores" / "tau-retail.sqlite3"
    with Store.open("tau-retail", path=store_path) as store:
        assert store.orders()["#W8770097"]["status"] == "pending"
    confirm.click()
    _wait_text(browser, "#shopper-chat", "is now cancelled")
    with Store.open("tau-retail", path=store_path) as store:
        assert store.orders()["#W8770097"]["status"] == "cancelled"
        before = store.state_hash()

    _say(browser, "cancel #W6436609", "does not belong to the authenticated customer")  # another customer's
    with Store.open("tau-retail", path=store_path) as store:
        assert store.state_hash() == before

    _say(browser, "<script>window.__pwned = 1</script><img src=x onerror='window.__pwned=2'>", "echo: <script>")
    assert browser.execute_script("return window.__pwned") is None  # shown as text, never run
    assert not browser.find_elements(By.CSS_SELECTOR, "#shopper-chat img[src=x]")

    browser.refresh()  # a reloaded page gets its conversation back from the browser's storage
    _wait_text(browser, "#shopper-chat", "is now cancelled")

    _tab(browser, "Recommend")
    browser.find_element(By.CSS_SELECTOR, "#rec-request textarea").send_keys("a t-shirt under $60")
    browser.find_element(By.CSS_SELECTOR, "#rec-go").click()
    wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#rec-cards .sa-card")) == 5, 20, "recommendations")
    _wait_text(browser, "#rec-method", "method:")
    assert not browser.find_elements(By.CSS_SELECTOR, "#rec-customer")  # shoppers cannot name a customer
    _shot(browser, "recommend.png")

    browser.get(f"{url}/console/")  # the staff app asks for the login first
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "input[type=password]"), 30, "the staff login")
    assert not browser.find_elements(By.CSS_SELECTOR, "#console-refresh")
    browser.find_element(By.CSS_SELECTOR, "input[type=text]").send_keys(STAFF[0])
    password = browser.find_element(By.CSS_SELECTOR, "input[type=password]")
    password.send_keys(STAFF[1])
    password.send_keys(Keys.ENTER)
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#console-refresh"), 30, "the console after login")
    browser.find_element(By.CSS_SELECTOR, "#console-refresh").click()
    picker = browser.find_element(By.CSS_SELECTOR, "#console-picker input")
    picker.click()
    options = "li[role=option]"
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, options), 10, "the conversation list")
    next(
        o
        for o in browser.find_elements(By.CSS_SELECTOR, options)
        if "ivan_santos_6635" in (o.get_attribute("aria-label") or "")
    ).click()
    _wait_text(browser, "#console-trace", "cancel_pending_order")
    _wait_text(browser, "#console-trace", "confirmed")
    _wait_text(browser, "#console-trace", "refused")
    _shot(browser, "console.png")
