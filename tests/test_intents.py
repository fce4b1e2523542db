"""The shipped intent reader: what a customer's message asks for, on messages it was never trained on."""

import json
from pathlib import Path

import numpy as np
import pytest

from assistant.intents import INTENTS, SHIPPED, SURE, IntentModelError, IntentReader, shipped_reader
from finetune.intents import suite_messages

SUITE = Path(__file__).parent.parent / "bench" / "conversations.json"


@pytest.fixture(scope="module")
def reader(embedder):
    return IntentReader.load(SHIPPED, embedder)


def test_the_suite_messages_are_read_as_the_suite_expects(reader):
    pairs = suite_messages(SUITE)  # never trained on: the trainer leaves the suite out
    assert {label for _, label in pairs} == {"human", "shopping", "order"}
    read = [reader.read(text) for text, _ in pairs]
    right = sum(r.label == label for r, (_, label) in zip(read, pairs, strict=True))
    assert right / len(pairs) >= 0.95, [(t, r) for r, (t, _) in zip(read, pairs, strict=True)]
    for r, (text, label) in zip(read, pairs, strict=True):
        if r.sure:  # acting on a wrong reading would skip the model entirely: never on these
            assert r.label == label, text


def test_orders_and_off_topic_questions_are_left_to_the_model(reader):
    for text in [
        "I'd like to exchange the hiking boots I got for a bigger size",
        "I want to cancel my order",
        "I'm Fatima Anderson, zip 32100",
        "yes",
        "what's the weather like tomorrow?",
    ]:
        assert not reader.read(text).sure, text


def test_the_shipped_metrics_come_from_a_held_out_split():
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    held = metrics["held_out"]
    assert held["n"] >= 0.15 * sum(metrics["examples"].values())
    for label in SURE:
        assert held[label]["precision_when_acting"] >= 0.98 and held[label]["recall_when_acting"] >= 0.9


def test_a_damaged_model_file_is_one_clear_error(tmp_path, embedder):
    (tmp_path / "intents.npz").write_bytes(b"not a numpy file")
    with pytest.raises(IntentModelError, match="shopassist train intents"):
        IntentReader.load(tmp_path, embedder)
    with pytest.raises(IntentModelError):
        IntentReader(np.zeros((2, 4)), np.zeros(4), INTENTS)


def test_the_reader_is_loaded_once_per_process(embedder):
    assert shipped_reader(embedder) is shipped_reader(embedder)


def test_the_write_head_reads_which_write_a_request_asks_for(reader):
    # written for this test, in no training source
    asks = {
        "please cancel my order, I don't need it any more": "cancel_pending_order",
        "the blender I got is broken, I want to send it back for a refund": "return_delivered_order_items",
        "Hi, could my pending order #W1234567 be paid with my PayPal rather than the card?": (
            "modify_pending_order_payment"
        ),
    }
    for text, write in asks.items():
        assert write in reader.wanted_writes(text), (text, reader.writes.probabilities(reader.vectors([text])))
    # a refund says what the customer wants, not which write gives it: the family, or a member of it
    money_back = reader.wanted_writes("I'm travelling and can't take delivery, so I just want my money back")
    assert set(money_back) & {"refund", "cancel_pending_order", "return_delivered_order_items"}
    nothing = ["what's the fee if I cancel?", "where is my order #W1234567?", "yes", "any backpacks under $50?"]
    for text in nothing + ["I want to talk to a human", ""]:
        assert reader.wanted_writes(text) == {}, text


def test_a_question_asks_for_no_change_and_a_complaint_may(reader):
    # written for this test, in no training source: questions about orders, and requests that name no write
    for text in ["is my order #W1234567 shipped?", "what did I order last month?", "my email is a@b.com", ""]:
        assert not reader.asks_for_write(text), text
    for text in ["I ordered the wrong size", "the lamp I got doesn't work", "my card expired, can I use paypal?"]:
        assert reader.asks_for_write(text), text


def test_the_write_head_metrics_come_from_a_held_out_split():
    writes = json.loads((SHIPPED / "metrics.json").read_text())["writes"]
    held = writes["held_out"]
    assert held["n"] >= 0.15 * sum(writes["examples"].values())
    for write in ("cancel_pending_order", "return_delivered_order_items", "modify_pending_order_address"):
        assert held[write]["precision_when_acting"] >= 0.95 and held[write]["recall_when_acting"] >= 0.85
