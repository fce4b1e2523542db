"""SFT: the loss mask, the config, and a real two-step LoRA run on a tiny model that loads and generates."""

import dataclasses
import json

import pytest

from assistant.dialogues import Dialogue, append_dialogues
from assistant.llm.prompting import to_template_messages
from assistant.messages import ChatMessage, ToolCall
from assistant.tools import ToolRegistry
from finetune.sft import IGNORE, ConfigError, SFTConfig, encode_dialogue, train

DIALOGUE = [
    ChatMessage("system", "SYSTEM-TEXT"),
    ChatMessage("user", "USER-ONE blue tent"),
    ChatMessage("assistant", tool_call=ToolCall("search_products", {"query": "blue tent"})),
    ChatMessage("tool", "TOOL-OUTPUT []", name="search_products"),
    ChatMessage("assistant", "ASSISTANT-REPLY none in stock"),
    ChatMessage("user", "yes"),
    ChatMessage("tool", "SETTLED-OUTPUT", name="cancel_pending_order"),
    ChatMessage("assistant", "ASSISTANT-END done"),
]


@pytest.fixture(scope="module")
def tokenizer(smollm2_checkpoint):
    from assistant.llm.transformers_backend import load_tokenizer

    return load_tokenizer(smollm2_checkpoint)


def test_loss_covers_only_what_the_assistant_writes(tokenizer):
    tools = ToolRegistry().schemas()
    encoded = encode_dialogue(tokenizer, DIALOGUE, tools, brief_tools=True, max_length=10_000)
    ids, labels = encoded["input_ids"], encoded["labels"]
    learned = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE])
    ignored = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label == IGNORE])
    call = '<tool_call>{"name": "search_products", "arguments": {"query": "blue tent"}}</tool_call>'
    assert learned == f"{call}<|im_end|>ASSISTANT-REPLY none in stock<|im_end|>ASSISTANT-END done<|im_end|>"
    for text in ("SYSTEM-TEXT", "USER-ONE", "TOOL-OUTPUT", "SETTLED-OUTPUT", "search_products(query: str"):
        assert text in ignored and text not in learned
    # the whole sequence is exactly what the backend renders at inference
    full = tokenizer.apply_chat_template(to_template_messages(DIALOGUE, tools, True), tokenize=False)
    assert tokenizer.decode(ids) == full


def test_config_rejects_unknown_fields_and_missing_data(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: [a.jsonl]\nlearnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown field\\(s\\) learnig_rate"):
        SFTConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="'data' must list"):
        SFTConfig.from_dict({"epochs": 1})


def test_two_step_lora_run_saves_an_adapter_that_loads_and_generates(garbage_checkpoint, tmp_path):
    from assistant.llm import load_chat_model

    data = tmp_path / "dialogues.jsonl"
    append_dialogues(data, [Dialogue(f"d{i}", DIALOGUE[1:], "test") for i in range(4)])
    config = SFTConfig(
        data=[str(data)],
        output_dir=str(tmp_path / "run"),
        model=str(garbage_checkpoint),
        max_length=1024,
        batch_size=2,
        max_steps=2,
        save_steps=1,
        logging_steps=1,
        lora_r=4,
        threads=2,
    )
    final = train(config)
    assert (final / "adapter_config.json").is_file() and (tmp_path / "run" / "loss.png").is_file()
    summary = json.loads((final / "shopassist.json").read_text())
    assert summary["steps"] == 2 and summary["profile"]["system_prompt"] == "agent_short.v1"
    assert summary["data"]["examples"] == 4 and summary["data"]["trained_tokens"] > 0

    model = load_chat_model(str(garbage_checkpoint), adapter=final, threads=2)
    assert model.profile.brief_tools and not model.profile.examples
    assert model.profile.tool_threshold is None  # a fine-tuned model calls a tool only when it ranks it first
    schemas = ToolRegistry().schemas()
    message = model.generate([ChatMessage("user", "tent")], schemas, tool_choice="required")
    ToolRegistry().get(message.tool_call.name).validate(message.tool_call.arguments)

    config.max_steps = 3  # a re-run resumes from the newest checkpoint instead of starting over
    summary = json.loads((train(config) / "shopassist.json").read_text())
    assert summary["steps"] == 3

    # a second stage continues the saved adapter on the dialogues the first did not use
    stage2 = dataclasses.replace(
        config, output_dir=str(tmp_path / "stage2"), init_adapter=str(final), skip=2, max_steps=1
    )
    summary = json.loads((train(stage2) / "shopassist.json").read_text())
    assert summary["steps"] == 1 and summary["data"]["dialogues"] == 2
    with pytest.raises(ConfigError, match="adapter_config.json"):
        SFTConfig.from_dict({"data": ["a.jsonl"], "init_adapter": str(tmp_path)})
    with pytest.raises(ConfigError, match="full_finetune"):
        SFTConfig.from_dict({"data": ["a.jsonl"], "init_adapter": str(final), "full_finetune": True})
