"""`shopassist ui`: two Gradio apps on one server — the shoppers' (Shop, Recommend) at `/` and the staff
console at `/console`, behind a login.

They are separate `gr.Blocks`, so nothing of the console (its events, its API, its `fn_index`es) exists
in the shoppers' app, and every route of the console app asks for the staff login (`ui.staff`).
Everything the tabs do goes through `ui.conversations.ConversationHub` (agent, policy layer, logs), so
the UI holds no business logic. Bound to 127.0.0.1 with analytics off unless the caller asks otherwise.
"""

import asyncio
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass

import gradio as gr
import uvicorn
from fastapi import FastAPI

from retrieval.offline import enforce_offline
from ui.cards import CARD_CSS
from ui.console_tab import build_console_tab
from ui.conversations import ConversationHub
from ui.recommend_tab import build_recommend_tab
from ui.shop_tab import build_shop_tab
from ui.staff import StaffLogin

CONSOLE_PATH = "/console"
QUEUE_LIMIT = 32  # sessions served at once; the model itself serialises generation


def build_app(hub: ConversationHub, title: str = "shopassist") -> gr.Blocks:
    """The shoppers' app: chat and recommendations, each personalised only by the shopper's own sign-in."""
    enforce_offline()
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        token = build_shop_tab(hub, app)
        build_recommend_tab(hub, shopper_token=token)
    return app


def build_console_app(hub: ConversationHub, title: str = "shopassist · staff") -> gr.Blocks:
    """The staff app: every conversation, copilot mode, and recommendations for any customer."""
    enforce_offline()
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        build_console_tab(hub)
        build_recommend_tab(hub)
    return app


def web_app(hub: ConversationHub, staff: StaffLogin) -> FastAPI:
    """Both apps mounted on one FastAPI app; the console's mount comes first so `/` does not shadow it."""
    server = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    common = {"footer_links": [], "show_error": False, "ssr_mode": False, "css": CARD_CSS}
    console = build_console_app(hub).queue(default_concurrency_limit=QUEUE_LIMIT)
    gr.mount_gradio_app(
        server, console, CONSOLE_PATH, auth=staff.check, auth_message="Customer-service staff only.", **common
    )
    shop = build_app(hub).queue(default_concurrency_limit=QUEUE_LIMIT)
    gr.mount_gradio_app(server, shop, "", **common)
    return server


class QuietShutdown(logging.Filter):
    """At a stop, uvicorn cancels the event streams open browser tabs hold (Gradio's heartbeats) once the
    graceful 5 s are up and logs a traceback for each: one line says it instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            return False
        if "timeout graceful shutdown exceeded" in str(record.msg):
            record.msg, record.args = "shopassist ui: stopping; closed %s open browser connection(s)", record.args
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


@dataclass
class Running:
    """A server started in a background thread (tests and benchmarks); `stop()` ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve(hub: ConversationHub, staff: StaffLogin, host: str = "127.0.0.1", port: int = 7860, background=False):
    """Serve both apps on host:port; blocks, unless `background` (then returns a `Running`)."""
    _check_free(host, port)
    config = uvicorn.Config(
        web_app(hub, staff),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,  # open event streams must not keep a stopping server alive
    )
    server = uvicorn.Server(config)
    quiet = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, QuietShutdown) for f in quiet.filters):
        quiet.addFilter(QuietShutdown())
    if not background:
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn has shut down by now and raises Ctrl-C's signal again
            print("shopassist ui: stopped", file=sys.stderr)
        finally:
            hub.close()
        return None
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise OSError(f"the server did not start on {host}:{port}")
    return Running(f"http://{host}:{port}", server, thread)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _check_free(host: str, port: int) -> None:
    """Fail with one clear line, before anything starts, if the address is taken or cannot be bound."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
