"""The Agent console tab: every conversation with its transcript, tool trace and pending write; the queue of
conversations waiting for a human; copilot mode, where the model proposes and a human approves, edits or
rejects each step (approved steps still go through the policy layer)."""

import json

import gradio as gr

from assistant.messages import ChatMessage, ToolCall
from ui.conversations import ConversationError, ConversationHub, parse_step
from ui.views import console_view, pending_text, trace_rows

TRACE_HEADERS = ["#", "tool", "arguments", "outcome", "result"]
QUEUE_HEADERS = ["conversation", "status", "customer", "messages", "pending write"]


def build_console_tab(hub: ConversationHub) -> None:
    """The tab, its components and its events, inside the caller's `gr.Blocks`."""

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
                step_text = gr.Textbox(label="Proposed step (edit before approving)", lines=5, elem_id="console-step")
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


def _from_state(proposed: dict | None):
    if not proposed:
        return None
    if "tool_call" in proposed:
        name, arguments = proposed["tool_call"]
        return ChatMessage("assistant", tool_call=ToolCall(name, arguments))
    return ChatMessage("assistant", proposed["content"])
