"""The dialogue log format (assistant/dialogues.py): round trip, and every malformed line reported."""

import json

import pytest

from assistant.dialogues import Dialogue, DialogueFormatError, append_dialogues, load_dialogues
from assistant.messages import ChatMessage, ToolCall


def sample(i: int = 0) -> Dialogue:
    return Dialogue(
        id=f"d{i}",
        source="ui",
        store="tau-retail",
        customer="yusuf_rossi_9620",
        feedback={"rating": "up"},
        messages=[
            ChatMessage("user", "blue tent?"),
            ChatMessage("assistant", tool_call=ToolCall("search_products", {"query": "blue tent"})),
            ChatMessage("tool", "[]", name="search_products"),
            ChatMessage("assistant", "Nothing in stock, sorry."),
        ],
    )


def test_append_and_load_round_trip(tmp_path):
    path = tmp_path / "log.jsonl"
    assert append_dialogues(path, [sample(0)]) == 1 and append_dialogues(path, [sample(1)]) == 1
    loaded = load_dialogues(path)
    assert [d.id for d in loaded] == ["d0", "d1"]
    assert loaded[0].to_dict() == sample(0).to_dict()


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d.pop("id"), "missing or empty string field 'id'"),
        (lambda d: d.update(messages=[]), "non-empty list"),
        (lambda d: d["messages"][0].update(role="robot"), "messages[0].role must be one of"),
        (lambda d: d["messages"][1]["tool_call"].update(arguments="q"), "arguments must be an object"),
        (
            lambda d: d["messages"][2].update(name="rank_products"),
            "must follow the assistant's call of 'rank_products'",
        ),
        (lambda d: d["messages"][0].update(tool_call={"name": "x"}), "only assistant messages"),
        (lambda d: d.update(feedback={"rating": "meh"}), "'rating' is 'up', 'down' or null"),
        (lambda d: d.update(messages=[{"role": "user", "content": "hi"}]), "at least one assistant message"),
    ],
)
def test_each_bad_line_is_reported_with_its_number(tmp_path, mutate, problem):
    good = json.dumps(sample().to_dict())
    bad = sample().to_dict()
    mutate(bad)
    path = tmp_path / "log.jsonl"
    path.write_text(f"{good}\n\n{json.dumps(bad)}\n{good}\n")
    with pytest.raises(DialogueFormatError) as info:
        load_dialogues(path)
    assert str(info.value).startswith("log.jsonl line 3: ") and problem in str(info.value)


def test_all_bad_lines_are_listed_not_just_the_first(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("{oops\n" + json.dumps(sample().to_dict()) + "\n[]\n")
    with pytest.raises(DialogueFormatError) as info:
        load_dialogues(path)
    assert str(info.value).splitlines() == [
        "log.jsonl line 1: not valid JSON (Expecting property name enclosed in double quotes)",
        "log.jsonl line 3: a line must be a JSON object",
    ]
