"""`shopassist ui`: the Gradio app — shopper chat, customer-service console and recommendations.

Everything the tabs do goes through `ui.conversations.ConversationHub` (agent, policy layer, logs), so
the UI holds no business logic: it renders conversations and forwards clicks. Bound to 127.0.0.1 with
analytics off unless the caller asks otherwise (`shopassist ui --host/--share`).
"""

import html
import json
import queue
import sys
import threading
from dataclasses import asdict
from typing import Any

import gradio as gr

from assistant.offline import enforce_offline
from assistant.recommend.recommender import Recommender, RecommendError, llm_ranker_for
from ui.cards import CARD_CSS, ProductCard, render_cards
from ui.conversations import (
    Conversation,
    ConversationError,
    ConversationHub,
    TurnResult,
    clean_message,
    parse_step,
)

SORRY = "Sorry, something went wrong on our side and nothing was changed. Please try again in a moment."
TRACE_HEADERS = ["#", "tool", "arguments", "outcome", "result"]
QUEUE_HEADERS = ["conversation", "status", "customer", "messages", "pending write"]


# --- rendering ---------------------------------------------------------------------------------------


def shopper_view(conversation: Conversation | None) -> tuple[list[dict[str, str]], list[int]]:
    """Chat messages the shopper sees (their messages and the answers) and each one's transcript index."""
    if conversation is None:
        return [], []
    shown, index = [], []
    for i, m in enumerate(conversation.transcript()):
        if m.role in ("user", "assistant") and m.tool_call is None and m.content:
            shown.append({"role": m.role, "content": _escape(m.content)})
            index.append(i)
    return shown, index


def console_view(conversation: Conversation) -> list[dict[str, Any]]:
    """The whole transcript for a human agent: tool calls and results shown as collapsible steps."""
    out = []
    for m in conversation.transcript()[1:]:
        if m.tool_call is not None:
            args = json.dumps(m.tool_call.arguments, ensure_ascii=False)
            call = _escape(f"{m.tool_call.name}({args})")
            out.append({"role": "assistant", "content": call, "metadata": {"title": "tool call"}})
        elif m.role == "tool":
            result = _escape(m.content[:1500])
            out.append({"role": "assistant", "content": result, "metadata": {"title": f"result: {m.name}"}})
        elif m.content:
            out.append({"role": m.role, "content": _escape(m.content)})
    return out


def _escape(text: str) -> str:
    """Customer and model text is shown as typed: markup is escaped, never rendered (markdown still is)."""
    return html.escape(text, quote=False)


def trace_rows(conversation: Conversation) -> list[list[Any]]:
    return [
        [i, r.name, json.dumps(r.arguments, ensure_ascii=False), r.outcome, r.output[:300]]
        for i, r in enumerate(conversation.agent.session.trace, 1)
    ]


def pending_text(summary: str | None) -> str:
    return f"**Waiting for your confirmation:** {summary}" if summary else ""


# --- the app -----------------------------------------------------------------------------------------


def build_app(hub: ConversationHub, title: str = "shopassist") -> gr.Blocks:
    enforce_offline()

    def conversation_for(conversation_id: str | None) -> Conversation:
        if conversation_id:
            try:
                return hub.get(conversation_id)
            except ConversationError:
                pass  # a server restart forgot it: start a new one
        return hub.new()

    # --- shopper -------------------------------------------------------------------------------------

    def chat_only(chat: list[dict[str, str]], conversation_id: str) -> tuple:
        """An update of `send`'s outputs that changes the chat only (cards and pending panel stay)."""
        return chat, conversation_id, gr.skip(), gr.skip(), gr.skip(), ""

    def send(text: str, conversation_id: str | None):
        """Stream one answer: yields (chat, conversation id, cards, pending summary, pending visible, box)."""
        conversation = conversation_for(conversation_id)
        shown, _ = shopper_view(conversation)
        message, problem = clean_message(text)
        if problem is not None:
            user = {"role": "user", "content": _escape(str(text or "")[:200])}
            yield chat_only([*shown, user, {"role": "assistant", "content": problem}], conversation.id)
            return
        chunks: queue.Queue[str | None] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["turn"] = hub.customer_turn(conversation, message, on_text=chunks.put)
            except Exception as exc:  # the shopper gets a plain message; the server keeps running
                outcome["error"] = exc
            finally:
                chunks.put(None)

        threading.Thread(target=work, daemon=True).start()
        asked = [*shown, {"role": "user", "content": _escape(message)}]
        streamed = ""
        while (chunk := chunks.get()) is not None:
            streamed += chunk
            yield chat_only([*asked, {"role": "assistant", "content": _escape(streamed)}], conversation.id)
        if "error" in outcome:
            yield chat_only([*asked, {"role": "assistant", "content": SORRY}], conversation.id)
            return
        turn: TurnResult = outcome["turn"]
        final, _ = shopper_view(conversation)
        if turn.waiting_for_human:
            final = [*final, {"role": "assistant", "content": _escape(turn.reply)}]
        cards = [asdict(c) for c in turn.cards] if turn.cards else gr.skip()
        yield (
            final,
            conversation.id,
            cards,
            pending_text(turn.pending),
            gr.update(visible=turn.pending is not None),
            "",
        )

    def confirm(conversation_id: str | None):
        yield from send("yes", conversation_id)

    def decline(conversation_id: str | None):
        yield from send("no", conversation_id)

    def like(conversation_id: str | None, data: gr.LikeData) -> None:
        try:
            conversation = hub.get(conversation_id or "")
        except ConversationError:
            return  # a conversation the server no longer knows: nothing to rate
        _, index = shopper_view(conversation)
        position = data.index[0] if isinstance(data.index, list | tuple) else data.index
        if 0 <= position < len(index) and conversation.transcript()[index[position]].role == "assistant":
            rating = None if data.liked is None or data.liked == "" else ("up" if data.liked else "down")
            hub.feedback(conversation, index[position], rating)

    def refresh_chat(conversation_id: str | None, seen: int):
        """Poll for a human agent's answers while a conversation is with the console."""
        if not conversation_id:
            return gr.skip(), seen, gr.skip(), gr.skip()
        try:
            conversation = hub.get(conversation_id)
        except ConversationError:
            return gr.skip(), seen, gr.skip(), gr.skip()
        if conversation.revision == seen or conversation.status == "model":
            return gr.skip(), conversation.revision, gr.skip(), gr.skip()
        shown, _ = shopper_view(conversation)
        pending = conversation.pending
        return shown, conversation.revision, pending_text(pending), gr.update(visible=pending is not None)

    def click_card(conversation_id: str | None, item_id: str) -> str:
        try:
            card = hub.clicked(hub.get(conversation_id or ""), item_id)
        except ConversationError as exc:
            return str(exc)
        return f"**{card.name}** — {card.option_text()} — ${card.price:,.2f} (item {card.item_id})"

    # --- console -------------------------------------------------------------------------------------

    def list_conversations():
        everything = hub.all()
        rows = [
            [c.id, c.status, c.customer or "", len(c.transcript()) - 1, c.pending or ""]
            for c in everything
            if c.status != "model"
        ]
        choices = [(f"{c.id} · {c.status} · {c.customer or 'not signed in'}", c.id) for c in everything]
        return rows, gr.update(choices=choices)

    def show(conversation_id: str | None):
        if not conversation_id:
            return [], [], "", False
        try:
            conversation = hub.get(conversation_id)
        except ConversationError as exc:
            return [], [], str(exc), False
        return (
            console_view(conversation),
            trace_rows(conversation),
            pending_text(conversation.pending) or "No write is waiting for confirmation.",
            conversation.status != "model",
        )

    def set_copilot(conversation_id: str | None, on: bool) -> str:
        if not conversation_id:
            return "Pick a conversation first."
        try:
            hub.take_over(hub.get(conversation_id), on)
        except ConversationError as exc:
            return str(exc)
        return "Copilot mode: the model proposes, you approve." if on else "The model answers on its own again."

    def propose(conversation_id: str | None):
        if not conversation_id:
            return gr.skip(), gr.skip(), None, "Pick a conversation first."
        try:
            step = hub.propose(hub.get(conversation_id))
        except ConversationError as exc:
            return gr.skip(), gr.skip(), None, str(exc)
        except Exception as exc:
            return gr.skip(), gr.skip(), None, f"The model could not propose a step: {exc}"
        if step.tool_call is not None:
            text = json.dumps({"name": step.tool_call.name, "arguments": step.tool_call.arguments}, indent=1)
            return "tool call", text, {"tool_call": [step.tool_call.name, step.tool_call.arguments]}, "Proposed."
        return "reply", step.content, {"content": step.content}, "Proposed."

    def approve(conversation_id: str | None, kind: str, text: str, proposed: dict | None):
        try:
            conversation = hub.get(conversation_id or "")
            step = parse_step("reply" if kind == "reply" else "tool call", text)
            original = _from_state(proposed)
            observation = hub.run_step(conversation, step, original)
        except ConversationError as exc:
            return (*show(conversation_id), str(exc), None)
        status = "Sent to the customer." if observation is None else f"Ran; result: {observation[:300]}"
        return (*show(conversation_id), status, None)

    def reject(conversation_id: str | None, proposed: dict | None):
        original = _from_state(proposed)
        if not conversation_id or original is None:
            return "Nothing proposed to reject.", None
        hub.reject(hub.get(conversation_id), original)
        return "Rejected; nothing ran.", None

    # --- recommendations -----------------------------------------------------------------------------

    recommender = Recommender(hub.ctx.store, hub.ctx.search, hub.ctx.ranker, llm_ranker_for(hub.model))

    def recommend(request: str, customer: str, k: float, method: str = "none"):
        message, problem = clean_message(request)
        if problem:
            return "", problem
        if recommender.llm is None:
            method = "none"  # a remote or scripted model gives no logits to rank with
        try:
            recs = recommender.recommend(message, (customer or "").strip() or None, int(k), method)
        except RecommendError as exc:
            return "", f"Cannot recommend that: {exc}"
        except Exception as exc:  # the model or the index failed: say so, keep the server up
            print(f"shopassist ui: recommend failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return "", "Recommendations are not available right now; nothing was changed."
        cards = [
            ProductCard(r.item_id, r.name, r.options, r.price, True, r.reason, i, message)
            for i, r in enumerate(recs, 1)
        ]
        if method == "none":
            how = "candidate order (no LLM)"
        else:
            kind = "P(Yes) per item" if method == "pointwise" else "lettered lists"
            how = f"zero-shot LLM ranking, {kind}, {recommender.llm.name}"
        sources = "product search, the customer's purchases, best sellers"
        if recommender.ranker is not None:
            sources += f", scored by {recommender.ranker.method}"
        return render_cards(cards), f"{len(cards)} of {recommender.last_pool} candidates ({sources}) · method: {how}"

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"## {title}")
        with gr.Tab("Shop", id="shop"):
            conversation_id = gr.State(None)
            seen_revision = gr.State(0)
            cards_state = gr.State([])
            chat = gr.Chatbot(
                label="Assistant", height=420, elem_id="shopper-chat", feedback_options=("Like", "Dislike")
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
                            button.click(lambda cid, i=card.item_id: click_card(cid, i), conversation_id, details)

            outputs = [chat, conversation_id, cards_state, pending_md, pending_box, box]
            box.submit(send, [box, conversation_id], outputs, api_name="send")
            send_btn.click(send, [box, conversation_id], outputs, api_name=False)
            confirm_btn.click(confirm, conversation_id, outputs, api_name="confirm")
            decline_btn.click(decline, conversation_id, outputs, api_name="decline")
            chat.like(like, conversation_id, None)
            timer = gr.Timer(2.0)
            timer.tick(
                refresh_chat,
                [conversation_id, seen_revision],
                [chat, seen_revision, pending_md, pending_box],
                api_name=False,
                show_progress="hidden",
            )

        with gr.Tab("Agent console", id="console"):
            with gr.Row():
                refresh_btn = gr.Button("Refresh", elem_id="console-refresh")
                picker = gr.Dropdown(label="Conversation", choices=[], elem_id="console-picker")
            queue_table = gr.Dataframe(
                headers=QUEUE_HEADERS, label="Waiting for a human", interactive=False, elem_id="console-queue"
            )
            with gr.Row():
                transcript = gr.Chatbot(label="Conversation", height=380, elem_id="console-transcript")
                with gr.Column():
                    pending_console = gr.Markdown(elem_id="console-pending")
                    copilot = gr.Checkbox(
                        label="Copilot mode: approve every step before it runs", elem_id="console-copilot"
                    )
                    kind = gr.Radio(["reply", "tool call"], value="reply", label="Next step")
                    step_text = gr.Textbox(
                        label="Proposed step (edit before approving)", lines=5, elem_id="console-step"
                    )
                    proposed_state = gr.State(None)
                    with gr.Row():
                        propose_btn = gr.Button("Propose next step", elem_id="console-propose")
                        approve_btn = gr.Button("Approve / send", variant="primary", elem_id="console-approve")
                        reject_btn = gr.Button("Reject", elem_id="console-reject")
                    console_status = gr.Markdown(elem_id="console-status")
            trace_table = gr.Dataframe(
                headers=TRACE_HEADERS, label="Tool trace", interactive=False, wrap=True, elem_id="console-trace"
            )
            refresh_btn.click(list_conversations, None, [queue_table, picker], api_name="conversations")
            shown = [transcript, trace_table, pending_console, copilot]
            picker.change(show, picker, shown, api_name=False)
            copilot.input(set_copilot, [picker, copilot], console_status, api_name=False)
            propose_btn.click(propose, picker, [kind, step_text, proposed_state, console_status], api_name=False)
            approve_btn.click(
                approve,
                [picker, kind, step_text, proposed_state],
                [*shown, console_status, proposed_state],
                api_name=False,
            )
            reject_btn.click(reject, [picker, proposed_state], [console_status, proposed_state], api_name=False)

        with gr.Tab("Recommend", id="recommend"):
            with gr.Row():
                request = gr.Textbox(label="What are you looking for?", scale=4, elem_id="rec-request")
                customer = gr.Textbox(label="Customer id (optional)", scale=2, elem_id="rec-customer")
                k = gr.Slider(1, 20, value=5, step=1, label="How many")
                rec_rank = gr.Radio(
                    [
                        ("Candidate order", "none"),
                        ("LLM: yes/no per item", "pointwise"),
                        ("LLM: lettered lists", "listwise"),
                    ],
                    value="none",
                    label="Ranking (the LLM is at chance in our evaluation)",
                    elem_id="rec-ranking",
                )
            rec_btn = gr.Button("Recommend", variant="primary", elem_id="rec-go")
            rec_method = gr.Markdown(elem_id="rec-method")
            rec_cards = gr.HTML(elem_id="rec-cards")
            rec_btn.click(recommend, [request, customer, k, rec_rank], [rec_cards, rec_method], api_name="recommend")
    return app


def _from_state(proposed: dict | None):
    from assistant.messages import ChatMessage, ToolCall

    if not proposed:
        return None
    if "tool_call" in proposed:
        name, arguments = proposed["tool_call"]
        return ChatMessage("assistant", tool_call=ToolCall(name, arguments))
    return ChatMessage("assistant", proposed["content"])


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int | None = None, share: bool = False, **kwargs):
    """Start the server (queue on: streamed answers, many sessions; the model serialises generation)."""
    app.queue(default_concurrency_limit=32)
    return app.launch(
        server_name=host, server_port=port, share=share, css=CARD_CSS, footer_links=[], show_error=False, **kwargs
    )
