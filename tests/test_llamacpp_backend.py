"""The llama.cpp backend (the default when llama-cpp-python is installed, as `make install` does): the
adapter export, the re-encoded weights, the KV-cache sequences, batched scoring, and the backend choice."""

import json

import pytest
import torch

from assistant.llm import ModelError, ModelNotFoundError, pick_backend, shipped_adapter
from assistant.llm.gguf_files import merges_adapter, weight_format
from assistant.messages import ChatMessage

llama_cpp = pytest.importorskip("llama_cpp")

ADAPTER = shipped_adapter("smollm2")


@pytest.fixture(scope="module")
def fast(smollm2_checkpoint):
    from assistant.llm.llamacpp_backend import LlamaCppChatModel

    return LlamaCppChatModel("smollm2", ADAPTER, threads=2)


def agent_prompt(model, text: str) -> list[int]:
    from assistant.runtime import prompt_prefix

    return model.prompt_ids([*prompt_prefix("tau-retail", model.profile), ChatMessage("user", text)], None)


def test_the_default_backend_is_llamacpp_for_packaged_models(smollm2_checkpoint, monkeypatch):
    import assistant.llm.gguf_files as gguf_files

    monkeypatch.setattr(gguf_files, "read_cpu_flags", lambda: "flags : avx2 avx512_bf16")
    assert pick_backend("smollm2") == "llamacpp"
    monkeypatch.setattr(gguf_files, "read_cpu_flags", lambda: "flags : avx512_bf16 amx_bf16 amx_tile")
    assert pick_backend("smollm2") == "transformers"  # AMX: torch's bf16 on the tiles beats llama.cpp here
    monkeypatch.setattr(gguf_files, "read_cpu_flags", lambda: "flags : avx2 avx512_bf16")
    assert pick_backend(str(smollm2_checkpoint)) == "transformers"  # a checkpoint folder has no GGUF
    monkeypatch.setenv("SHOPASSIST_BACKEND", "transformers")
    assert pick_backend("smollm2") == "transformers"
    monkeypatch.setenv("SHOPASSIST_BACKEND", "fastest")
    with pytest.raises(ModelError, match="auto, llamacpp or transformers"):
        pick_backend("smollm2")
    monkeypatch.setenv("SHOPASSIST_BACKEND", "llamacpp")
    with pytest.raises(ModelNotFoundError, match="packaged models only"):
        pick_backend(str(smollm2_checkpoint))


def test_the_weight_format_follows_the_cpu(monkeypatch):
    assert weight_format("flags : fpu avx2 avx512f avx512_bf16") == "f16"  # merged: faster turns than bf16
    assert weight_format("flags : fpu avx2 fma f16c") == "f16"  # AVX2: the fastest prefill there
    assert weight_format("flags : fpu avx2 avx512_bf16 amx_bf16 amx_tile") == "q8_0"  # AMX: no extra buffers
    monkeypatch.setenv("SHOPASSIST_WEIGHTS", "q4_1")
    assert weight_format("avx512_bf16") == "q4_1"
    monkeypatch.setenv("SHOPASSIST_WEIGHTS", "int3")
    with pytest.raises(ModelError, match="SHOPASSIST_WEIGHTS"):
        weight_format()


def test_the_adapter_is_merged_only_into_weights_that_keep_its_update(monkeypatch):
    assert merges_adapter("f16") and not merges_adapter("bf16") and not merges_adapter("q8_0")
    monkeypatch.setenv("SHOPASSIST_MERGE_LORA", "0")
    assert not merges_adapter("f16")
    monkeypatch.setenv("SHOPASSIST_MERGE_LORA", "1")
    assert merges_adapter("q8_0")
    monkeypatch.setenv("SHOPASSIST_MERGE_LORA", "yes")
    with pytest.raises(ModelError, match="SHOPASSIST_MERGE_LORA"):
        merges_adapter("f16")


def test_merged_weights_hold_the_base_weights_plus_the_adapter_update(smollm2_checkpoint):
    """W + alpha/r * B @ A, with the query rows in llama.cpp's rotary layout, stored in f16."""
    import gguf
    import numpy as np
    from gguf.quants import dequantize
    from safetensors.numpy import load_file

    from assistant.llm.checkpoints import BASE_MODELS
    from assistant.llm.gguf_files import _permute, base_gguf

    config = json.loads((smollm2_checkpoint / "config.json").read_text())
    packaged = BASE_MODELS["smollm2"].gguf_path()
    merged = {t.name: t for t in gguf.GGUFReader(str(base_gguf(packaged, "f16", ADAPTER, config))).tensors}
    base = {t.name: t for t in gguf.GGUFReader(str(packaged)).tensors}
    peft = json.loads((ADAPTER / "adapter_config.json").read_text())
    lora = load_file(str(ADAPTER / "adapter_model.safetensors"))
    prefix = "base_model.model.model.layers.3.self_attn.q_proj"
    a, b = lora[f"{prefix}.lora_A.weight"], _permute(lora[f"{prefix}.lora_B.weight"], config["num_attention_heads"])
    name = "blk.3.attn_q.weight"
    want = dequantize(base[name].data, base[name].tensor_type) + peft["lora_alpha"] / peft["r"] * (b @ a)
    got = dequantize(merged[name].data, merged[name].tensor_type)
    assert merged[name].tensor_type == gguf.GGMLQuantizationType.F16
    assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max()  # f16 rounding only
    assert merged["token_embd.weight"].tensor_type == base["token_embd.weight"].tensor_type  # untouched


def test_merged_and_unmerged_adapters_give_the_reference_distribution(smollm2_checkpoint):
    """Merged into f16 the adapter is at least as close to the float32 transformers model as run unmerged."""
    from assistant.llm.llamacpp_backend import LlamaCppChatModel
    from assistant.llm.transformers_backend import TransformersChatModel

    reference = TransformersChatModel("smollm2", ADAPTER, threads=2, dtype="float32")
    merged = LlamaCppChatModel("smollm2", ADAPTER, threads=2, weights="f16", merge=True)
    unmerged = LlamaCppChatModel("smollm2", ADAPTER, threads=2, weights="f16", merge=False)
    assert merged.decoder.engine.lora is None and unmerged.decoder.engine.lora is not None
    ids = agent_prompt(merged, "I'd like to exchange the boots from order #W2378156 for a bigger size")
    want = torch.log_softmax(_logits(reference, ids), -1)
    kls = []
    for model in (merged, unmerged):
        got = torch.log_softmax(_logits(model, ids), -1)
        assert int(got.argmax()) == int(want.argmax())
        kls.append(float((want.exp() * (want - got)).sum()))
    assert kls[0] < 0.01 and kls[0] <= kls[1] + 1e-3, kls


def test_the_exported_adapter_has_every_lora_pair(smollm2_checkpoint):
    import gguf

    from assistant.llm.gguf_files import lora_gguf

    config = json.loads((smollm2_checkpoint / "config.json").read_text())
    reader = gguf.GGUFReader(str(lora_gguf(ADAPTER, config)))
    names = {t.name for t in reader.tensors}
    peft = json.loads((ADAPTER / "adapter_config.json").read_text())
    assert len(names) == 2 * len(peft["target_modules"]) * config["num_hidden_layers"]
    assert {"blk.0.attn_q.weight.lora_a", "blk.29.ffn_down.weight.lora_b"} <= names
    assert float(reader.fields["adapter.lora.alpha"].contents()) == peft["lora_alpha"]


def test_llamacpp_logits_match_transformers_with_the_adapter(fast):
    """The adapter really runs on llama.cpp (query/key rows permuted as llama.cpp stores them): its next-token
    distribution is the transformers one, and far closer to it than the base model's without the adapter."""
    from assistant.llm.llamacpp_backend import LlamaCppChatModel
    from assistant.llm.transformers_backend import TransformersChatModel

    reference = TransformersChatModel("smollm2", ADAPTER, threads=2, dtype="float32")
    base = LlamaCppChatModel("smollm2", None, threads=2)
    for text in ("my email is mei.kovacs8232@example.com, cancel my order", "do you have hiking boots?"):
        ids = agent_prompt(fast, text)
        want = torch.log_softmax(_logits(reference, ids), -1)
        got = torch.log_softmax(_logits(fast, ids), -1)
        without = torch.log_softmax(_logits(base, ids), -1)
        assert int(got.argmax()) == int(want.argmax())
        kl = float((want.exp() * (want - got)).sum())
        kl_base = float((want.exp() * (want - without)).sum())
        assert kl < 0.05 and kl * 5 < kl_base, (kl, kl_base)


def _logits(model, ids: list[int]) -> torch.Tensor:
    model.decoder.reset()
    model.decoder.start(ids)
    return model.decoder.logits.float()


def test_batched_scoring_equals_scoring_one_by_one(fast):
    decoder = fast.decoder
    ids = agent_prompt(fast, "I want to return my order")
    options = [decoder.encode(t) + [fast.turn_end] for t in ("Sure.", "What is your email address?", "I can't.")]
    together = decoder.score(ids, options)
    assert decoder.ids == ids  # scoring leaves the decoder after the prompt
    alone = []
    for option in options:
        decoder.start(ids)
        logp = torch.log_softmax(decoder.logits, -1)[option[0]].item()
        for prev, nxt in zip(option, option[1:], strict=False):
            decoder.feed([prev])
            logp += torch.log_softmax(decoder.logits, -1)[nxt].item()
        alone.append(logp)
    assert together == pytest.approx(alone, abs=0.05 * max(len(o) for o in options))


def test_candidates_sharing_a_start_are_scored_from_one_run(fast):
    """Copy candidates ("hiking", "hiking boots", ...) share their start: one fed run serves them all, with
    the scores of feeding each alone, and fewer tokens fed."""
    decoder = fast.decoder
    ids = agent_prompt(fast, "do you have waterproof hiking boots?")
    words = "waterproof hiking boots".split()
    spans = [" ".join(words[i : i + n]) for i in range(3) for n in range(1, 4 - i)]
    options = [decoder.encode(f' "{s}"}}') for s in spans]
    decoder.reset()
    decoder.start(ids)
    fed = []
    decode = decoder.engine.decode
    decoder.engine.decode = lambda parts, all_logits=False: (
        fed.append(sum(len(t) for t, _, _ in parts)) or decode(parts, all_logits)
    )
    try:
        together = decoder.score_here(options)
    finally:
        decoder.engine.decode = decode
    assert sum(fed) < sum(len(o) - 1 for o in options) * 2 / 3, fed
    for option, score in zip(options, together, strict=True):
        decoder.start(ids)
        alone = decoder.score_here([option])
        assert score == pytest.approx(alone[0], abs=0.05 * len(option))
    single = decoder.encode(' "",')  # an empty address2 and its comma: one token, nothing to feed
    assert len(single) == 1 and decoder.score_here([single])[0] < 0


def test_conversations_taking_turns_continue_their_own_cache(fast):
    decoder = fast.decoder
    decoder.reset()
    # a conversation longer than PARK_MIN_TOKENS past the shared system prompt is kept whole
    a = agent_prompt(fast, "do you have hiking boots in size 10? " + "I walk a lot in the hills. " * 50)
    b = agent_prompt(fast, "please cancel order #W7800651, I ordered it by mistake")
    decoder.start(a)
    assert 0 < decoder.start(b) < len(b)  # a new conversation shares the system prompt
    more = fast.tokenizer.encode(" and in black?", add_special_tokens=False)
    last_message = max(i + 1 for i, t in enumerate(a) if t in decoder.turn_ends)
    assert decoder.start(a + more) == last_message  # the first one continues from its last whole message
    assert len(decoder.held()) == 2


def test_a_prompts_logits_do_not_depend_on_the_conversation_before_it(fast):
    """Only whole messages are reused and the rest is fed message by message, so a prompt that shares a
    few words with the previous conversation's reads exactly as it does in a fresh process."""
    decoder = fast.decoder
    prompt = agent_prompt(fast, "Has my order #W3794101 arrived?")
    decoder.reset()
    decoder.start(prompt)
    alone = decoder.logits.clone()
    decoder.reset()
    decoder.start(agent_prompt(fast, "Has my order #W2611340 shipped yet?"))  # shares "Has my order #W"
    assert decoder.start(prompt) > 0  # the system prompt is reused
    assert torch.equal(decoder.logits, alone)


def test_a_full_cache_drops_the_oldest_conversations_not_the_active_one(fast):
    decoder = fast.decoder
    decoder.reset()
    filler = fast.tokenizer.encode(" the quick brown fox jumps over the lazy dog." * 400, add_special_tokens=False)
    prompts = [agent_prompt(fast, f"question {n}") + filler[:3000] for n in range(4)]
    for prompt in prompts:
        decoder.start(prompt)
    assert decoder.ids == prompts[-1] and len(decoder.held()) < 4  # 12,000 tokens do not fit 8,192 cells
    last_message = max(i + 1 for i, t in enumerate(prompts[-1]) if t in decoder.turn_ends)
    assert decoder.start(prompts[-1] + filler[:5]) == last_message  # continued, not prefilled again


def test_amx_is_read_from_the_cpu_flags():
    from assistant.llm.gguf_files import has_amx

    assert has_amx("flags : avx512f amx_bf16 amx_tile amx_int8") and not has_amx("flags : avx2 avx512_bf16")


def test_warming_up_reads_the_system_prompt_once_for_every_conversation(fast):
    from assistant.runtime import prompt_prefix

    fast.decoder.reset()
    fast.warm(prompt_prefix("tau-retail", fast.profile))
    assert fast.decoder.masks is not None  # built at load, not in the first customer's turn
    prompt = agent_prompt(fast, "do you sell tents?")
    system_end = min(i + 1 for i, t in enumerate(prompt) if t in fast.decoder.turn_ends)
    assert fast.decoder.start(prompt) == system_end  # the first conversation reads only its own message


def test_reading_a_reply_ahead_leaves_the_next_turn_its_own_message_and_the_same_logits(fast):
    """While the shopper reads the reply the model reads it too (message by message, as `start` would):
    the next turn reads only the new message and decides from the same logits as without it."""
    from assistant.runtime import prompt_prefix

    reply = 'Here is what I found for "T-Shirt":\n- T-Shirt (color black, size S) — $52.88, item 1176194968'
    before = [*prompt_prefix("tau-retail", fast.profile), ChatMessage("user", "find me a t-shirt under $60")]
    so_far = [*before, ChatMessage("assistant", reply + "\nWould you like one of these?")]
    prompt = fast.prompt_ids([*so_far, ChatMessage("user", "any in blue?")], None)
    fast.decoder.reset()
    fast.decoder.start(prompt)
    cold = fast.decoder.logits.clone()
    fast.decoder.reset()
    fast.decoder.start(fast.prompt_ids(before, None))  # the turn that chose the reply
    assert fast.read_ahead(so_far, lambda: False) == 0  # a turn waiting goes first
    assert fast.read_ahead(so_far, lambda: True) > 0
    assert fast.read_ahead(so_far, lambda: True) == 0  # read once
    reply_end = len(fast.prompt_ids(so_far, None)) - len(fast.tokenizer.encode("\n<|im_start|>assistant\n"))
    assert fast.decoder.start(prompt) == reply_end
    assert torch.equal(fast.decoder.logits, cold)


def test_a_forced_option_is_fed_in_one_batch_with_its_log_probability(fast):
    """Once one option is left, its remaining tokens run in one batch: the same log-probability and next
    logits as one token at a time (up to the kernels' rounding for another batch shape)."""
    from assistant.llm.decoding import Decoder

    decoder = fast.decoder
    prompt = agent_prompt(fast, "do you have hiking boots under $200?")
    forced = decoder.encode('<tool_call>{"name": "search_products", "arguments": {"query":')
    decoder.reset()
    decoder.start(prompt)
    one_by_one = Decoder.feed_forced(decoder, forced)
    logits = decoder.logits.clone()
    decoder.start(prompt)
    batched = decoder.feed_forced(forced)
    assert decoder.ids == prompt + forced
    # A batch runs through other kernels (q8_0 on AMX most): a token the model is unsure of (p ~ 0.5 here)
    # moves by up to ~0.08 there; the next step's choice must not move at all.
    assert batched == pytest.approx(one_by_one, abs=0.15)
    assert int(decoder.logits.argmax()) == int(logits.argmax())
    assert torch.allclose(torch.softmax(decoder.logits, -1), torch.softmax(logits, -1), atol=0.01)


def test_a_finished_conversation_leaves_the_cache_but_its_system_prompt_and_others_stay(fast):
    """`forget` (an evaluation task's end) frees the finished conversation's cells; the system prompt stays
    for the next one, another conversation keeps its own, and the next prompt reads as in a fresh cache."""
    from assistant.runtime import prompt_prefix

    start = prompt_prefix("tau-retail", fast.profile)
    long = "do you have hiking boots in size 10? " + "I walk a lot in the hills. " * 50
    done = [*start, ChatMessage("user", long), ChatMessage("assistant", "Which color?")]
    other = agent_prompt(fast, "please cancel order #W7800651, I ordered it by mistake. " * 20)  # kept whole
    nxt = agent_prompt(fast, "Has my order #W3794101 arrived?")
    fast.decoder.reset()
    fast.decoder.start(nxt)
    alone = fast.decoder.logits.clone()
    fast.decoder.reset()
    fast.decoder.start(other)
    fast.decoder.start(fast.prompt_ids(done, None))
    fast.forget(done, shared=len(start))
    system_end = min(i + 1 for i, t in enumerate(nxt) if t in fast.decoder.turn_ends)
    assert sorted(len(h) for h in fast.decoder.held()) == [system_end, len(other)]
    assert fast.decoder.start(nxt) == system_end
    assert torch.equal(fast.decoder.logits, alone)


def _outgrown_chat(model) -> tuple[list[int], list[ChatMessage]]:
    """The longest prompt of a chat that is not trimmed at a 2,000-token context, and the chat 4 messages on."""
    from assistant.runtime import prompt_prefix

    start = prompt_prefix("tau-retail", model.profile)
    exchanges = []
    for n in range(40):
        exchanges += [
            ChatMessage("user", f"Is backpack {n} waterproof? I hike in the rain, {n} days a week, on steep trails."),
            ChatMessage("assistant", f"Backpack {n} is water-resistant, weighs {n + 1}.2 kg and holds {20 + n} l."),
        ]
    fits = [n for n in range(2, len(exchanges), 2) if len(model._render([*start, *exchanges[:n]], None)) < 1600]
    return model.prompt_ids([*start, *exchanges[: fits[-1]]], None), [*start, *exchanges[: fits[-1] + 4]]


def test_a_trimmed_conversation_moves_its_cells_instead_of_reading_again(fast):
    """When a long conversation outgrows the context and its oldest exchanges are left out, the kept cells
    are moved up (llama.cpp's context shift) instead of the whole prompt being read again. The kept cells
    were computed with the left-out exchanges before them, so the logits are close to a fresh read's, not
    equal (KL 0.06 nats here): the next token is the same."""
    before, fast.max_context = fast.max_context, 2000  # trimmed beyond 1,600 tokens (2,000 less 400 to write)
    try:
        fast.decoder.reset()
        early, longer = _outgrown_chat(fast)
        fast.decoder.start(early)
        later = fast.prompt_ids(longer, None)
        assert len(later) < len(early)  # trimmed: the oldest exchanges are left out
        system_end = min(i + 1 for i, t in enumerate(later) if t in fast.decoder.turn_ends)
        held = fast.decoder.start(later)
        moved = fast.decoder.logits.float()
        assert held > system_end + 512  # the kept exchanges were not read again
        assert fast.decoder.held()[0] == later[: len(fast.decoder.ids)]
        fresh = _logits(fast, later)
    finally:
        fast.max_context = before
        fast.decoder.reset()
    p, q = torch.log_softmax(moved, -1), torch.log_softmax(fresh, -1)
    assert int(moved.argmax()) == int(fresh.argmax())
    assert float((q.exp() * (q - p)).sum()) < 0.2


def test_reading_ahead_a_trimmed_conversation_moves_its_cells_too(fast):
    """The web app reads a conversation ahead while the shopper reads the reply: a trimmed one keeps its cells
    there as well, and only the messages after them are read."""
    before, fast.max_context = fast.max_context, 2000
    try:
        fast.decoder.reset()
        early, longer = _outgrown_chat(fast)
        fast.decoder.start(early)
        ids = fast.prompt_ids(longer, None)
        read = fast.read_ahead(longer, lambda: True)
        assert 0 < read < 512 and fast.decoder.held()[0] == ids[: len(fast.decoder.ids)]
    finally:
        fast.max_context = before
        fast.decoder.reset()


@pytest.mark.parametrize("backend", ["llama.cpp", "transformers"])
def test_a_reply_written_with_guessed_batches_is_the_models_greedy_text_and_leaves_no_stray_cells(fast, backend):
    """A free reply after a search result repeats what it read: guessed tokens are checked in batches
    (`lookup_draft`), and what is kept is what one token a step chooses (up to the rounding of a batch's
    kernels) while rejected guesses leave no cells behind: the next step's logits are a fresh read's."""
    from assistant.llm.transformers_backend import TransformersChatModel
    from assistant.runtime import prompt_prefix

    model = fast if backend == "llama.cpp" else TransformersChatModel("smollm2", ADAPTER, threads=2)
    from assistant.tools import ToolRegistry

    listing = "\n".join(
        f'{{"item_id": "{9100000 + i}", "name": "T-Shirt", "options": {{"color": "{c}", "size": "M"}}, "price": 52.88}}'
        for i, c in enumerate(("black", "blue", "red", "white", "green"))
    )
    messages = [
        *prompt_prefix("tau-retail", model.profile),
        ChatMessage("user", "find me a t-shirt under $60"),
        ChatMessage("tool", f"[{listing}]", name="search_products"),
    ]
    schemas = ToolRegistry().schemas()
    decoder, batches = model.decoder, []
    feed_rows = decoder.feed_rows
    decoder.feed_rows = lambda ids: batches.append(len(ids)) or feed_rows(ids)
    try:
        model.decoder.reset()
        reply = model.generate(messages, schemas, tool_choice="none")
    finally:
        del decoder.feed_rows
    written = decoder.ids[reply.meta["prompt_tokens"] :]
    assert len(written) == reply.meta["new_tokens"] > 20
    assert batches and sum(batches) - len(batches) > 0  # guesses were checked, some kept
    held, after = list(decoder.ids), decoder.logits.clone()
    decoder.reset()
    decoder.start(held[: reply.meta["prompt_tokens"]])
    for i, token in enumerate(written):  # one token a step: each is the greedy choice, or within rounding of it
        logits = decoder.logits.clone()
        logits[model.tool_open[0]] = float("-inf")  # a reply never opens a tool call
        assert float(logits.max() - logits[token]) < 0.1, i
        decoder.feed([token])
    assert int(decoder.logits.argmax()) == int(after.argmax())
    assert torch.allclose(torch.softmax(decoder.logits, -1), torch.softmax(after, -1), atol=0.01)
