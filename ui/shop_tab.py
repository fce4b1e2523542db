"""The Shop tab: the shopper's chat with streamed answers, product cards, Confirm/Cancel for a pending write,
thumbs up/down; a conversation with a human agent is polled for their answers.

The shopper's handle on their conversation is its secret token (never the id staff see), held in the
session and in the browser's storage, so reloading the page — or a server restart — gives the
conversation back, and no other conversation can be named."""

import queue
import threading
from dataclasses import asdict
from typing import Any

import gradio as gr

from assistant.requests import clean_message
from ui.cards import ProductCard, render_cards
from ui.conversations import Conversation, ConversationError, ConversationHub, TurnResult
from ui.views import _escape, pending_text, shopper_view

SORRY = "Sorry, something went wrong on our side and nothing was changed. Please try again in a moment."


def waiting_text(ahead: int) -> str:
    others = "1 other shopper" if ahead == 1 else f"{ahead} other shoppers"
    return f"*One moment: the assistant is answering {others} first; yours is next in line after them.*"


def build_shop_tab(hub: ConversationHub, app: gr.Blocks) -> gr.State:
    """The tab, its components and its events, inside `app`; returns the State holding the shopper's token."""

    def conversation_for(token: str | None) -> Conversation:
        return hub.for_shopper(token) or hub.new()

    def mine(token: str | None) -> Conversation:
        found = hub.for_shopper(token)
        if found is None:
            raise ConversationError("no conversation yet")
        return found

    # --- shopper -------------------------------------------------------------------------------------

    def chat_only(chat: list[dict[str, str]], token: str) -> tuple:
        """An update of `send`'s outputs that changes the chat only (cards and pending panel stay)."""
        return chat, token, gr.skip(), gr.skip(), gr.skip(), "", token

    def send(text: str, token: str | None):
        """Stream one answer: yields (chat, token, cards, pending summary, pending visible, box, stored token)."""
        conversation = conversation_for(token)
        token = conversation.token
        shown, _ = shopper_view(conversation)
        message, problem = clean_message(text)
        if problem is not None:
            user = {"role": "user", "content": _escape(str(text or "")[:200])}
            yield chat_only([*shown, user, {"role": "assistant", "content": problem}], token)
            return
        chunks: queue.Queue[str | int | None] = queue.Queue()  # reply text, or how many turns are ahead
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["turn"] = hub.customer_turn(conversation, message, on_text=chunks.put, on_wait=chunks.put)
            except Exception as exc:  # the shopper gets a plain message; the server keeps running
                outcome["error"] = exc
            finally:
                chunks.put(None)

        threading.Thread(target=work, daemon=True).start()
        asked = [*shown, {"role": "user", "content": _escape(message)}]
        streamed = ""
        while (chunk := chunks.get()) is not None:
            if isinstance(chunk, int):  # still in line for the model: say so instead of a frozen box
                yield chat_only([*asked, {"role": "assistant", "content": waiting_text(chunk)}], token)
                continue
            streamed += chunk
            yield chat_only([*asked, {"role": "assistant", "content": _escape(streamed)}], token)
        if "error" in outcome:
            yield chat_only([*asked, {"role": "assistant", "content": SORRY}], token)
            return
        turn: TurnResult = outcome["turn"]
        final, _ = shopper_view(conversation)
        if turn.waiting_for_human:
            final = [*final, {"role": "assistant", "content": _escape(turn.reply)}]
        cards = [asdict(c) for c in turn.cards] if turn.cards else gr.skip()
        yield (
            final,
            token,
            cards,
            pending_text(turn.pending),
            gr.update(visible=turn.pending is not None),
            "",
            token,
        )

    def confirm(token: str | None):
        yield from send("yes", token)

    def decline(token: str | None):
        yield from send("no", token)

    def restore(stored: str | None):
        """Page (re)load: the conversation this browser had, as the shopper last saw it."""
        conversation = hub.for_shopper(stored)
        if conversation is None:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        shown, _ = shopper_view(conversation)
        pending = conversation.pending
        cards = [asdict(c) for c in conversation.cards]
        visible = gr.update(visible=pending is not None)
        return shown, conversation.token, conversation.revision, cards, pending_text(pending), visible

    def like(token: str | None, data: gr.LikeData) -> None:
        try:
            conversation = mine(token)
        except ConversationError:
            return  # a conversation the server no longer knows: nothing to rate
        _, index = shopper_view(conversation)
        position = data.index[0] if isinstance(data.index, list | tuple) else data.index
        if 0 <= position < len(index) and conversation.transcript()[index[position]].role == "assistant":
            rating = None if data.liked is None or data.liked == "" else ("up" if data.liked else "down")
            hub.feedback(conversation, index[position], rating)

    def refresh_chat(token: str | None, seen: int):
        """Poll for a human agent's answers while a conversation is with the console."""
        try:
            conversation = mine(token)
        except ConversationError:
            return gr.skip(), seen, gr.skip(), gr.skip()
        if conversation.revision == seen or conversation.status == "model":
            return gr.skip(), conversation.revision, gr.skip(), gr.skip()
        shown, _ = shopper_view(conversation)
        pending = conversation.pending
        return shown, conversation.revision, pending_text(pending), gr.update(visible=pending is not None)

    def click_card(token: str | None, item_id: str) -> str:
        try:
            card = hub.clicked(mine(token), item_id)
        except ConversationError as exc:
            return str(exc)
        return f"**{card.name}** — {card.option_text()} — ${card.price:,.2f} (item {card.item_id})"

    with gr.Tab("Shop", id="shop"):
        shopper_token = gr.State(None)  # the conversation's secret token, never its id
        stored_token = gr.BrowserState(None, storage_key="shopassist-conversation")
        seen_revision = gr.State(0)
        cards_state = gr.State([])
        chat = gr.Chatbot(
            label="Assistant",
            height=420,
            elem_id="shopper-chat",
            feedback_options=("Like", "Dislike"),
            group_consecutive_messages=False,  # a colleague's answer is its own bubble, not merged into the bot's
        )
        with gr.Group(visible=False, elem_id="pending") as pending_box:
            pending_md = gr.Markdown(elem_id="pending-summary")
            with gr.Row():
                confirm_btn = gr.Button("Confirm", variant="primary", elem_id="confirm-write")
                decline_btn = gr.Button("Cancel", elem_id="decline-write")
        with gr.Row():
            box = gr.Textbox(
                placeholder="Ask about products or your orders…", scale=5, show_label=False, elem_id="shopper-input"
            )
            send_btn = gr.Button("Send", variant="primary", scale=1, elem_id="shopper-send")
        details = gr.Markdown(elem_id="card-details")

        @gr.render(inputs=cards_state)
        def show_cards(cards: list[dict]):
            if not cards:
                return
            with gr.Row(elem_id="product-cards"):
                for data in cards:
                    card = ProductCard(**data)
                    with gr.Column(min_width=220):
                        gr.HTML(render_cards([card]))
                        button = gr.Button("Details", size="sm", elem_classes=["sa-card-open"])
                        button.click(lambda cid, i=card.item_id: click_card(cid, i), shopper_token, details)

        outputs = [chat, shopper_token, cards_state, pending_md, pending_box, box, stored_token]
        box.submit(send, [box, shopper_token], outputs, api_name="send")
        send_btn.click(send, [box, shopper_token], outputs, api_name=False)
        confirm_btn.click(confirm, shopper_token, outputs, api_name="confirm")
        decline_btn.click(decline, shopper_token, outputs, api_name="decline")
        chat.like(like, shopper_token, None)
        timer = gr.Timer(2.0)
        timer.tick(
            refresh_chat,
            [shopper_token, seen_revision],
            [chat, seen_revision, pending_md, pending_box],
            api_name=False,
            show_progress="hidden",
        )
        app.load(
            restore,
            stored_token,
            [chat, shopper_token, seen_revision, cards_state, pending_md, pending_box],
            api_name="resume",  # also for API clients: the token `send` returned gives the conversation back
        )
    return shopper_token
