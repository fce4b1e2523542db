"""`shopassist ui`: the Gradio app — shopper chat, customer-service console and recommendations.

Everything the tabs do goes through `ui.conversations.ConversationHub` (agent, policy layer, logs), so
the UI holds no business logic: it renders conversations and forwards clicks. Bound to 127.0.0.1 with
analytics off unless the caller asks otherwise (`shopassist ui --host/--share`).
"""

import gradio as gr

from retrieval.offline import enforce_offline
from ui.cards import CARD_CSS
from ui.console_tab import build_console_tab
from ui.conversations import ConversationHub
from ui.recommend_tab import build_recommend_tab
from ui.shop_tab import build_shop_tab


def build_app(hub: ConversationHub, title: str = "shopassist") -> gr.Blocks:
    """The layout: three tabs over one hub. Each tab's module holds its components and handlers."""
    enforce_offline()
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        build_shop_tab(hub)
        build_console_tab(hub)
        build_recommend_tab(hub)
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, share: bool = False, **kwargs):
    """Start the server (queue on: streamed answers, many sessions; the model serialises generation)."""
    app.queue(default_concurrency_limit=32)
    return app.launch(
        server_name=host, server_port=port, share=share, css=CARD_CSS, footer_links=[], show_error=False, **kwargs
    )
