"""The UI's conversation hub, logs and cards, in process with the scripted model (no server, no browser)."""

import json
import threading

import pytest
from conftest import wait_for

from assistant.dialogues import latest_revisions, load_dialogues
from assistant.masking import export_dialogues, mask_dialogue
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import ToolCallRecord
from assistant.requests import clean_message
from assistant.scripted_models import RuleModel as ScriptedModel
from ui.cards import cards_from_trace, render_cards
from ui.conversation_store import ConversationStoreError
from ui.conversations import ConversationError, parse_step
from ui.serve import make_hub
from ui.views import HUMAN_MARK, shopper_view

IVAN = "ivan.santos3158@example.com"  # owns pending order #W8770097
OTHERS_ORDER = "#W6436609"  # a pending order of anya_garcia_3271


@pytest.fixture
def hub(store, search, tmp_path):
    return make_hub(ScriptedModel(), store, search, "tau-retail", logs=tmp_path / "logs")


def test_clean_message_rejects_empty_huge_and_strips_control_characters():
    assert clean_message("")[0] is None and clean_message("   \n")[0] is None
    assert clean_message(None)[0] is None
    text, problem = clean_message("x" * 10_000)
    assert text is None and "10,000" in problem
    assert clean_message("hi\x00\x1b[31m there\x7f") == ("hi[31m there", None)
    assert clean_message("line one\nline two")[0] == "line one\nline two"


def test_sign_in_cancel_through_confirmation_changes_the_store(hub, store):
    conversation = hub.new()
    hub.customer_turn(conversation, f"my email is {IVAN}")
    assert conversation.customer == "ivan_santos_6635"
    turn = hub.customer_turn(conversation, "please cancel #W8770097")
    assert turn.pending is not None and "#W8770097" in turn.pending
    assert store.orders()["#W8770097"]["status"] == "pending"  # nothing happens before the yes
    hub.customer_turn(conversation, "yes")
    assert store.orders()["#W8770097"]["status"] == "cancelled"
    assert conversation.pending is None
    assert [r.outcome for r in conversation.agent.session.trace][-1] == "confirmed"


def test_declining_a_pending_write_changes_nothing(hub, store):
    conversation = hub.new()
    hub.customer_turn(conversation, f"my email is {IVAN}")
    hub.customer_turn(conversation, "please cancel #W8770097")
    before = store.state_hash()
    hub.customer_turn(conversation, "no")
    assert store.state_hash() == before and conversation.pending is None


def test_another_customers_order_is_refused_and_nothing_changes(hub, store):
    conversation = hub.new()
    hub.customer_turn(conversation, f"my email is {IVAN}")
    before = store.state_hash()
    turn = hub.customer_turn(conversation, f"cancel {OTHERS_ORDER}")
    assert turn.pending is None
    assert conversation.agent.session.trace[-1].outcome == "refused"
    hub.customer_turn(conversation, "yes")
    assert store.state_hash() == before


def test_sessions_never_share_a_customer_or_a_pending_write(hub):
    a, b = hub.new(), hub.new()
    hub.customer_turn(a, f"my email is {IVAN}")
    hub.customer_turn(a, "please cancel #W8770097")
    assert b.customer is None and b.pending is None
    turn = hub.customer_turn(b, "please cancel #W8770097")  # not signed in in this session
    assert turn.pending is None and b.agent.session.trace[-1].outcome == "refused"


def test_search_gives_cards_logged_as_impressions_and_clicks(hub):
    conversation = hub.new()
    turn = hub.customer_turn(conversation, "find me a t-shirt")
    assert len(turn.cards) == 3 and [c.position for c in turn.cards] == [1, 2, 3]
    assert all(c.name == "T-Shirt" and c.price > 0 for c in turn.cards)
    hub.clicked(conversation, turn.cards[1].item_id)
    rows = [json.loads(line) for line in hub.interactions.path.read_text().splitlines()]
    assert [r["label"] for r in rows] == [0, 0, 0, 1]
    assert rows[3]["impression_id"] == rows[1]["impression_id"] and rows[3]["item_id"] == turn.cards[1].item_id
    assert {r["user_id"] for r in rows} == {f"anonymous:{conversation.id}"}
    with pytest.raises(ConversationError):
        hub.clicked(conversation, "0000000000")


def test_every_change_is_a_valid_log_revision_and_feedback_is_kept(hub):
    conversation = hub.new()
    hub.customer_turn(conversation, "hello")
    hub.customer_turn(conversation, f"my email is {IVAN}")
    answer = max(i for i, m in enumerate(conversation.transcript()) if m.role == "assistant")
    hub.feedback(conversation, answer, "down")
    with pytest.raises(ConversationError):
        hub.feedback(conversation, 0, "up")  # the system prompt is not an answer
    logged = load_dialogues(hub.log.path)  # validates every line
    assert [d.meta["revision"] for d in logged] == [1, 2, 3]
    latest = latest_revisions(logged)
    assert len(latest) == 1 and latest[0].feedback["rating"] == "down"
    assert latest[0].feedback["per_message"] == {str(answer): "down"}
    assert latest[0].customer == "ivan_santos_6635" and latest[0].source == "ui"


def test_concurrent_conversations_write_whole_lines(hub):
    conversations = [hub.new() for _ in range(8)]

    def talk(c):
        for i in range(5):
            hub.customer_turn(c, f"{c.id} message {i}")

    threads = [threading.Thread(target=talk, args=(c,)) for c in conversations]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latest = {d.id: d for d in latest_revisions(load_dialogues(hub.log.path))}
    assert len(latest) == 8
    for c in conversations:  # every message of a conversation is its own
        users = [m.content for m in latest[c.id].messages if m.role == "user"]
        assert users == [f"{c.id} message {i}" for i in range(5)]


def test_handover_lands_in_the_queue_and_customer_messages_wait(hub):
    conversation = hub.new()
    turn = hub.customer_turn(conversation, "I want to talk to a human")
    assert turn.transferred and conversation.status == "transferred"
    assert hub.queue() == [conversation] and "number 1 in the queue" in turn.reply  # the shopper is told
    second = hub.customer_turn(hub.new(), "I want to talk to a human")
    assert "number 2 in the queue" in second.reply
    waiting = hub.customer_turn(conversation, "hello? anyone?")
    assert waiting.waiting_for_human
    assert conversation.transcript()[-1] == ChatMessage("user", "hello? anyone?")
    with pytest.raises(ConversationError):
        hub.take_over(conversation, on=False)


def test_copilot_approve_edit_and_reject_are_recorded(hub, store):
    conversation = hub.new()
    hub.take_over(conversation)
    hub.customer_turn(conversation, f"my email is {IVAN}")  # waits for the human
    proposal = hub.propose(conversation)
    assert proposal.tool_call == ToolCall("find_user_id_by_email", {"email": IVAN})
    assert hub.run_step(conversation, proposal, proposal) == "ivan_santos_6635"
    hub.reject(conversation, ChatMessage("assistant", "a reply the human did not like"))
    edited = parse_step("reply", "Welcome back, Ivan. How can I help?")
    hub.run_step(conversation, edited, ChatMessage("assistant", "You are signed in as ivan_santos_6635."))
    # a human-approved write still goes through the policy layer's confirmation
    hub.run_step(
        conversation,
        parse_step(
            "tool call",
            '{"name": "cancel_pending_order", "arguments": {"order_id": "#W8770097", "reason": "no longer needed"}}',
        ),
    )
    assert conversation.pending is not None and store.orders()["#W8770097"]["status"] == "pending"
    actions = [e["action"] for e in conversation.human_edits]
    assert actions == ["approved", "rejected", "edited", "approved"]
    latest = latest_revisions(load_dialogues(hub.log.path))[0]
    assert [e["action"] for e in latest.human_edits] == actions
    edit = latest.human_edits[2]
    assert latest.messages[edit["message_index"]].content == "Welcome back, Ivan. How can I help?"
    # a person's answer is marked as theirs in the log and in the shopper's chat
    assert latest.messages[edit["message_index"]].meta == {"author": "human"}
    chat, _ = shopper_view(conversation)
    assert chat[-1]["content"] == HUMAN_MARK + "Welcome back, Ivan. How can I help?"
    assert not any(m["content"].startswith(HUMAN_MARK) for m in chat[:-1])


def test_a_restarted_hub_has_every_conversation_back_and_confirms_once(hub, store, search, tmp_path):
    shopper, handed = hub.new(), hub.new()
    hub.customer_turn(shopper, f"my email is {IVAN}")
    hub.customer_turn(shopper, "find me a t-shirt")
    hub.customer_turn(shopper, "please cancel #W8770097")
    hub.feedback(shopper, 2, "up")
    hub.customer_turn(handed, "I want to talk to a human")
    again = make_hub(ScriptedModel(), store, search, "tau-retail", logs=tmp_path / "logs")  # a new process's hub
    back = again.for_shopper(shopper.token)
    assert back is not None and back.id == shopper.id and again.for_shopper(shopper.id) is None
    assert [m.to_dict() for m in back.transcript()] == [m.to_dict() for m in shopper.transcript()]
    assert back.customer == "ivan_santos_6635" and back.pending == shopper.pending
    assert back.cards == shopper.cards and back.feedback == {2: "up"} and back.revision == shopper.revision
    assert [c.id for c in again.queue()] == [handed.id] and again.get(handed.id).agent.done
    again.customer_turn(back, "yes")
    assert store.orders()["#W8770097"]["status"] == "cancelled"
    third = make_hub(ScriptedModel(), store, search, "tau-retail", logs=tmp_path / "logs")
    assert third.for_shopper(shopper.token).pending is None  # the yes was saved: it cannot run twice
    runs = [r for r in third.get(shopper.id).agent.session.trace if r.outcome == "confirmed"]
    assert len(runs) == 1


def test_a_damaged_conversation_file_is_one_clear_error(store, search, tmp_path):
    (tmp_path / "conversations.sqlite3").write_text("not a database" * 100)
    with pytest.raises(ConversationStoreError, match="not a conversation database"):
        make_hub(ScriptedModel(), store, search, "tau-retail", logs=tmp_path / "logs")


def test_parse_step_reports_bad_tool_calls():
    with pytest.raises(ConversationError, match="not valid JSON"):
        parse_step("tool call", "{name: x}")
    with pytest.raises(ConversationError, match="name"):
        parse_step("tool call", '["x"]')
    with pytest.raises(ConversationError, match="arguments"):
        parse_step("tool call", '{"name": "x", "arguments": [1]}')
    with pytest.raises(ConversationError):
        parse_step("reply", "   ")


def test_masked_export_removes_personal_data(hub, tmp_path):
    conversation = hub.new()
    hub.customer_turn(conversation, f"my email is {IVAN}")
    hub.customer_turn(conversation, "show me order #W8770097")
    out = tmp_path / "export.jsonl"
    assert export_dialogues(hub.log.path, out) == 1
    text = out.read_text()
    for personal in (IVAN, "ivan_santos_6635", "Ivan", "Santos"):
        assert personal not in text
    assert "[email]" in text and "[personal]" in text
    exported = load_dialogues(out)[0]  # still the valid format
    assert json.loads(exported.messages[-2].content)["order_id"] == "#W8770097"  # tool JSON stays JSON
    with pytest.raises(FileExistsError):
        export_dialogues(hub.log.path, out)
    assert IVAN in hub.log.path.read_text()  # the log itself is untouched
    assert mask_dialogue(load_dialogues(hub.log.path)[-1]).customer == "[personal]"


def test_cards_escape_markup_and_follow_a_ranking():
    hits = [
        {"item_id": "1", "name": "<script>alert(1)</script>", "options": {"color": "<b>red</b>"}, "price": 5.0},
        {"item_id": "2", "name": "Mug", "options": {}, "price": 7.5, "available": False},
    ]
    search = ToolCallRecord(
        "search_products", {"query": "<img src=x onerror=alert(1)>", "max_price": 10}, json.dumps(hits), "ok"
    )
    ranking = ToolCallRecord(
        "rank_products",
        {"user_id": "u", "item_ids": ["1", "2"]},
        json.dumps([{"item_id": "2", "method": "popularity-fallback"}, {"item_id": "1"}]),
        "ok",
    )
    cards = cards_from_trace([search, ranking])
    assert [c.item_id for c in cards] == ["2", "1"] and [c.position for c in cards] == [1, 2]
    assert "popularity-fallback" in cards[0].reason and "under $10.00" in cards[0].reason
    html = render_cards(cards)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "Out of stock" in html
    failed = ToolCallRecord("search_products", {"query": "x"}, "Error: bad", "error")
    assert cards_from_trace([failed]) == []


def test_logged_conversations_become_training_dialogues_filtered_by_feedback(hub, tmp_path):
    from finetune.build_logs import build_log_dialogues

    liked, disliked, unrated = hub.new(), hub.new(), hub.new()
    for c in (liked, disliked, unrated):
        hub.customer_turn(c, f"my email is {IVAN}")
    hub.feedback(liked, len(liked.transcript()) - 1, "up")
    hub.feedback(disliked, len(disliked.transcript()) - 1, "down")
    kept, report = build_log_dialogues(hub.log.path)
    assert {d.id for d in kept} == {liked.id, unrated.id} and report.rated_down == 1
    assert all(IVAN not in str(d.to_dict()) for d in kept)  # masked by default
    only_up, report = build_log_dialogues(hub.log.path, require_up=True)
    assert [d.id for d in only_up] == [liked.id] and report.not_rated_up == 1


def test_masking_leaves_no_personal_data_typed_or_fetched(store, tmp_path):
    import os
    import stat

    from assistant.dialogues import Dialogue, append_dialogues
    from assistant.masking import customer_record_values

    user = store.user("fatima_anderson_2157")
    method = next(iter(user["payment_methods"]))
    typed = [
        "Hi, I'm Fatima Anderson, zip 32100, call me on 555-123-4567 or +1 (212) 555-0199.",
        f"charge my card ending 4242, or card number 4111 1111 1111 1111, or {method}",
        "ship it to 45 Oak Street, Austin instead, my email is fa@example.com",
    ]
    messages = [ChatMessage("system", "s")] + [ChatMessage("user", t) for t in typed]
    messages.append(ChatMessage("assistant", "Item 8124970213 is $49.67 in order #W2974929."))
    log = tmp_path / "logs" / "dialogues.jsonl"
    append_dialogues(log, [Dialogue("c1", messages, "app", "tau-retail", customer="fatima_anderson_2157")])
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600  # owner-only, as the store's database
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    out = tmp_path / "export.jsonl"
    export_dialogues(log, out, customer=lambda s, u: store.user(u))
    text = out.read_text()
    leaks = ["Fatima", "Anderson", "32100", "555-123-4567", "555-0199", "4242", "4111", method, "45 Oak Street"]
    leaks += ["fa@example.com", user["address"]["address1"], "fatima_anderson_2157"]
    assert [v for v in leaks if v in text] == []
    assert "8124970213" in text and "#W2974929" in text and "$49.67" in text  # ids and facts stay usable
    # without the store record, the typed name is still found
    alone = mask_dialogue(Dialogue("c2", messages, "app", "tau-retail"))
    assert "Fatima" not in json.dumps(alone.to_dict()) and customer_record_values(None) == set()


class SerialRuleModel(ScriptedModel):
    """The scripted model as a CPU model is: one generation at a time, slowly."""

    serial = True

    def __init__(self):
        super().__init__()
        self.order: list[str] = []
        self.gate = threading.Event()  # the first turn holds the model until the test lets it go

    def generate(self, messages, tools=None, **kwargs):
        if messages[-1].role == "user":
            self.order.append(messages[-1].content)
        self.gate.wait(30)
        return super().generate(messages, tools, **kwargs)


class SteppedRuleModel(SerialRuleModel):
    """Each shopper's turn holds the model until the test lets that one turn go."""

    def __init__(self, turns: int):
        super().__init__()
        self.turns = [threading.Event() for _ in range(turns)]

    def generate(self, messages, tools=None, **kwargs):
        if messages[-1].role == "user":
            self.order.append(messages[-1].content)
            self.turns[len(self.order) - 1].wait(30)
        return ScriptedModel.generate(self, messages, tools, **kwargs)


def test_waiting_shoppers_are_served_in_arrival_order_and_told_their_place(store, search, tmp_path):
    model = SteppedRuleModel(4)
    hub = make_hub(model, store, search, "tau-retail", logs=tmp_path / "logs")
    told: dict[int, list[int]] = {n: [] for n in range(4)}

    def talk(n: int) -> None:
        hub.customer_turn(hub.new(), f"shopper {n} says hello", on_wait=told[n].append)

    threads = []
    for n in range(4):
        threads.append(threading.Thread(target=talk, args=(n,)))
        threads[-1].start()
        wait_for(lambda n=n: len(hub.line) == n + 1, 10, f"shopper {n} in line")
    # one turn at a time, each let go once every shopper behind it has heard their place: with all turns let
    # go at once, a shopper the scheduler woke late skipped a place (2 heard [2], not [2, 1]) under load
    for k in range(4):
        behind = range(k + 1, 4)
        wait_for(lambda k=k, behind=behind: all(told[j][-1:] == [j - k] for j in behind), 10, f"places after {k}")
        model.turns[k].set()
    for t in threads:
        t.join(60)
    assert [m.split()[1] for m in model.order] == ["0", "1", "2", "3"]  # first come, first served
    assert told == {0: [], 1: [1], 2: [2, 1], 3: [3, 2, 1]}  # each hears their place as the line moves


def test_the_model_reads_a_reply_ahead_only_while_no_shopper_waits(store, search, tmp_path):
    model = SerialRuleModel()
    model.gate.set()
    asked: list[tuple[list, object]] = []
    model.read_ahead = lambda messages, idle: asked.append((messages, idle)) or 0
    hub = make_hub(model, store, search, "tau-retail", logs=tmp_path / "logs")
    conversation = hub.new()
    hub.customer_turn(conversation, "hello")
    wait_for(lambda: asked, 10, "the read-ahead")
    messages, idle = asked[0]
    assert messages[-1].role == "assistant" and messages[-1].content == conversation.transcript()[-1].content
    assert idle()  # nobody in line
    with hub.line.turn():  # a shopper's turn in line: the read-ahead gives way
        assert not idle()
    hub.close()  # the server stopped: reading ahead ends, and is waited for, before the process exits
    assert not idle() and not any(r.is_alive() for r in hub._readers)


def test_the_terminal_chat_waits_for_its_read_ahead_before_it_exits(store, search, tmp_path):
    """A read-ahead still inside torch when the interpreter exits is killed there: `shopassist chat` fed
    from a pipe aborted (exit 134) after its last reply. Closing the chat ends the read-ahead and joins it."""
    from ui.chat import AgentChat

    model, stopped = ScriptedModel(), threading.Event()

    def read_ahead(messages, idle):
        while idle():  # a long conversation read message by message
            threading.Event().wait(0.01)
        stopped.set()
        return 0

    model.read_ahead = read_ahead
    ctx = make_hub(ScriptedModel(), store, search, "tau-retail", logs=tmp_path / "logs").ctx
    chat = AgentChat(model, ctx, "tau-retail", out=lambda text: None)
    chat.reply("hello")
    assert not stopped.is_set()
    chat.close()
    assert stopped.is_set() and not chat._reader.is_alive()


def test_the_server_warms_the_model_on_the_shared_system_prompt_at_start(store, search, tmp_path):
    warmed = []

    class Warmed(ScriptedModel):
        def warm(self, messages):
            warmed.append([m.role for m in messages])

    make_hub(Warmed(), store, search, "tau-retail", logs=tmp_path / "logs")
    assert warmed == [["system"]]  # once, before any shopper: the system prompt only
