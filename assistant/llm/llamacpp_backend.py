"""The llama.cpp backend: the packaged GGUF and the shipped LoRA adapter on llama.cpp's CPU kernels.

The model's decisions are the guided model's (`guided_model.LocalChatModel`): the same prompts, the same
masks over the same logits, so constrained tool calls and reply choices are written exactly as on the
transformers backend. Only the forward pass changes — llama.cpp runs the 4-bit GGUF weights and the
adapter (converted by `gguf_lora`) about five times faster than transformers on 2 CPU cores.

Conversations live as sequences in one llama.cpp KV cache (`kv_unified`): a conversation that comes
back continues its own sequence, and copying a prefix into another sequence shares its cells instead of
copying them, so every conversation shares the system prompt's keys and values.
"""

import ctypes
import json
import logging
from pathlib import Path

import numpy as np
import torch

from assistant.llm.base import GenerationSettings, ModelError, PromptProfile
from assistant.llm.checkpoints import BASE_MODELS, ModelNotFoundError, load_tokenizer, read_profile, resolve_checkpoint
from assistant.llm.decoding import PARK_MIN_TOKENS, Budget, Decoder, common_prefix
from assistant.llm.gguf_files import base_gguf, has_amx, lora_gguf, merges_adapter, weight_format
from assistant.llm.guided_model import LocalChatModel

KV_CELLS = 8192  # the model's trained context, shared by the kept conversations (older ones make room)
BATCH = 512
SCRATCH = 16  # extra sequences: reply options are scored side by side in one batch, each on its own copy


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


class LlamaCppEngine:
    """One llama.cpp model and context: tokens in, logits out, per sequence id."""

    def __init__(self, gguf: Path, lora: Path | None, threads: int, sequences: int):
        """`sequences`: how many token sequences the KV cache holds (they share cells of common prefixes)."""
        import llama_cpp
        from llama_cpp import _internals, _logger

        # quiet: a full KV cache is logged as an error, but `_decode` makes room and retries
        _logger.logger.setLevel(logging.CRITICAL)
        self.lib = llama_cpp
        model_params = llama_cpp.llama_model_default_params()
        model_params.use_mmap = lora is None  # as llama-cpp-python does: an adapter needs its own copy
        # llama.cpp's extra (repacked / AMX) weight buffers segfault on AMX CPUs when a batch keeps the
        # logits of many rows (reply scoring); elsewhere they stay as measured
        model_params.use_extra_bufts = not has_amx()
        self.model = _internals.LlamaModel(path_model=str(gguf), params=model_params, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = KV_CELLS, BATCH, BATCH
        params.n_seq_max, params.kv_unified = sequences, True
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED  # faster at long contexts here
        self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=BATCH, embd=0, n_seq_max=1, verbose=False)
        self.gguf = gguf
        self.vocab = llama_cpp.llama_vocab_n_tokens(self.model.vocab)
        self.lora = None
        if lora is not None:
            self.lora = llama_cpp.llama_adapter_lora_init(self.model.model, str(lora).encode())
            if self.lora is None:
                raise ModelError(f"llama.cpp could not load the adapter {lora}")
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self.lora)
            if llama_cpp.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, (ctypes.c_float * 1)(1.0)):
                raise ModelError(f"llama.cpp could not apply the adapter {lora}")

    def decode(self, parts: list[tuple[list[int], int, int]], all_logits: bool = False) -> bool:
        """Run each `(tokens, first position, sequence id)` in one batch (at most `BATCH` tokens); logits
        are kept for each part's last token, or for every token. False when the KV cache has no room."""
        b, n = self.batch.batch, 0
        for tokens, start, seq in parts:
            for i, token in enumerate(tokens):
                b.token[n], b.pos[n], b.n_seq_id[n], b.logits[n] = token, start + i, 1, all_logits
                b.seq_id[n][0] = seq
                n += 1
            b.logits[n - 1] = True
        b.n_tokens = n
        code = self.lib.llama_decode(self.ctx.ctx, b)
        if code not in (0, 1):  # 1: no KV slot for the batch (the caller frees room and retries)
            raise ModelError(f"llama.cpp decode failed ({code})")
        return code == 0

    def logits(self, rows: int = 1) -> torch.Tensor:
        """The logits of the last decode's `rows` output positions ([vocab] for one, else [rows, vocab])."""
        data = np.ctypeslib.as_array(self.ctx.get_logits(), shape=(rows * self.vocab,))
        out = torch.from_numpy(data.copy())
        return out if rows == 1 else out.view(rows, self.vocab)

    def drop(self, seq: int, start: int = 0, end: int = -1) -> None:
        """Forget sequence `seq` from position `start` on (to `end`, exclusive, where given)."""
        self.ctx.kv_cache_seq_rm(seq, start, end)

    def shift(self, seq: int, start: int, delta: int) -> None:
        """Move sequence `seq`'s cells from position `start` on by `delta` positions (llama.cpp re-applies
        RoPE to their cached keys at the next decode)."""
        self.ctx.kv_cache_seq_shift(seq, start, -1, delta)

    def share(self, src: int, dst: int, length: int) -> None:
        self.ctx.kv_cache_seq_cp(src, dst, 0, length)


class LlamaCppDecoder(Decoder):
    """`Decoder`'s constrained decoding on llama.cpp; each kept conversation is one llama.cpp sequence."""

    score_limit = BATCH

    def __init__(self, engine: LlamaCppEngine, tokenizer, slots: int = 4):
        """`engine` holds `slots + SCRATCH` sequences: `slots` kept conversations, then scratch copies."""
        self.engine = engine
        self.tokenizer = tokenizer
        self.slots: list[list[int]] = [[] for _ in range(slots)]  # tokens held by each sequence id
        self.recent = list(range(slots))  # sequence ids, most recently used first
        self.active = 0
        self.ids = self.slots[0]
        self.logits: torch.Tensor | None = None
        self.masks = None
        self.logprob = 0.0
        self.carry = ""
        vocab = tokenizer.get_vocab()
        self.turn_ends = {vocab[t] for t in ("<|im_end|>", "<end_of_turn>") if t in vocab}

    def _message_start(self, ids: list[int], limit: int) -> int:
        """The last message boundary at or before `limit` (just after an end-of-turn token)."""
        return max((i + 1 for i in range(min(limit, len(ids))) if ids[i] in self.turn_ends), default=0)

    def start(self, prompt_ids: list[int]) -> int:
        """As `Decoder.start`: continue the kept sequence sharing the longest prefix with the prompt.

        A sequence that would lose more than `PARK_MIN_TOKENS` is kept whole and its prefix is shared
        into the least recently used sequence, which becomes the active one."""
        self.carry = ""
        best, reuse = self._reusable(prompt_ids)
        shifted = self._shift(prompt_ids, reuse)
        if shifted is not None:  # a trimmed conversation keeps its cells, moved up to where its prompt has them
            best, reuse = shifted
            target = best
        elif reuse > 0 and len(self.slots[best]) - reuse <= PARK_MIN_TOKENS:
            target = best
            self.engine.drop(target, reuse)
        else:
            target = next((s for s in reversed(self.recent) if s != best), best) if reuse > 0 else self._free()
            self.engine.drop(target)
            if reuse > 0:
                self.engine.share(best, target, reuse)
        self.slots[target] = list(prompt_ids[:reuse]) if reuse > 0 else []
        self._use(target)
        self.feed(prompt_ids[reuse:])
        return max(reuse, 0)

    def _reusable(self, prompt_ids: list[int]) -> tuple[int, int]:
        """The kept sequence sharing the longest prefix with the prompt (ties: the most recent), and how many
        of its tokens the prompt reuses. Only whole messages, the rest fed message by message: llama.cpp's
        kernels round differently for different batch shapes, so a prompt cut mid-message (by whatever
        conversation ran before) gave slightly different logits and, at near ties, different decisions."""
        shared = [common_prefix(s, prompt_ids) for s in self.slots]
        best = max(self.recent, key=lambda s: shared[s])
        return best, self._message_start(prompt_ids, min(shared[best], len(prompt_ids) - 1))

    def keep_trimmed(self, prompt_ids: list[int]) -> int:
        shifted = self._shift(prompt_ids, self._reusable(prompt_ids)[1])
        if shifted is None:
            return 0
        self._use(shifted[0])
        return shifted[1]

    def _shift(self, prompt_ids: list[int], reuse: int) -> tuple[int, int] | None:
        """Where a long conversation was trimmed (`LocalChatModel.prompt_ids` leaves out its oldest
        exchanges), a kept sequence holds the prompt with one stretch of old messages in the middle: those
        cells are dropped and the later ones moved up by llama.cpp's context shift (RoPE applied to the
        cached keys) instead of reading the whole prompt again, which took 19 s at 4,000 tokens on 2 cores in
        a τ task. Returns (sequence, tokens now held) or None where nothing longer than `reuse` is gained."""
        if len(prompt_ids) - reuse <= 2 * PARK_MIN_TOKENS:
            return None
        found = None
        for seq, ids in enumerate(self.slots):
            a = self._message_start(ids, common_prefix(ids, prompt_ids))
            if a == 0:
                continue
            for b in (i + 1 for i in range(a, len(ids) - 1) if ids[i] in self.turn_ends):
                same = a + common_prefix(ids[b:], prompt_ids[a:])
                held = self._message_start(prompt_ids, min(same, len(prompt_ids) - 1))
                if held > max(reuse + 2 * PARK_MIN_TOKENS, found[2] if found else 0):
                    found = (seq, a, held, b)
        if found is None:
            return None
        seq, a, held, b = found
        ids = self.slots[seq]
        # cells are shared by prefix copies (`share`), and moving a cell moves it for every sequence holding
        # it: no other sequence may hold cells from the cut on (a shared prefix is an equal prefix)
        if any(common_prefix(other, ids) > b for s, other in enumerate(self.slots) if s != seq):
            return None
        kept = held - a  # tokens after the cut that the prompt keeps
        self.engine.drop(seq, b + kept)
        self.engine.drop(seq, a, b)
        self.engine.shift(seq, b, a - b)
        self.slots[seq] = ids[:a] + ids[b : b + kept]
        return seq, held

    def _free(self) -> int:
        """An empty sequence if there is one, else the least recently used."""
        return next((s for s in reversed(self.recent) if not self.slots[s]), self.recent[-1])

    def _use(self, seq: int) -> None:
        self.active, self.ids = seq, self.slots[seq]
        self.recent.remove(seq)
        self.recent.insert(0, seq)

    def reset(self) -> None:
        for s in range(len(self.slots)):
            self.engine.drop(s)
            self.slots[s] = []
        self.ids = self.slots[self.active]

    def release(self, prompt_ids: list[int], keep: int, mine: int) -> None:
        """As `Decoder.release`; the freed cells go back to llama.cpp, which fills the lowest free cells first."""
        for s, ids in enumerate(self.slots):
            if common_prefix(ids, prompt_ids) >= mine:
                self.engine.drop(s, keep)
                del ids[keep:]

    def held(self) -> list[list[int]]:
        return [self.slots[s] for s in self.recent if self.slots[s]]

    def _decode(self, parts: list[tuple[list[int], int, int]], all_logits: bool = False) -> None:
        """Decode, evicting kept sequences other than the active one while the cache is full."""
        while not self.engine.decode(parts, all_logits):
            victims = [s for s in reversed(self.recent) if s != self.active and self.slots[s]]
            if not victims:
                raise ModelError("the conversation does not fit the model's context")
            self.engine.drop(victims[0])
            self.slots[victims[0]] = []

    def feed(self, ids: list[int]) -> None:
        cuts = [i + 1 for i, t in enumerate(ids) if t in self.turn_ends]
        for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True):  # one message at a time
            for i in range(a, b, BATCH):
                chunk = ids[i : min(i + BATCH, b)]
                self._decode([(chunk, len(self.ids), self.active)])
                self.ids.extend(chunk)
        if ids:
            self.logits = self.engine.logits()

    def feed_rows(self, ids: list[int]) -> torch.Tensor:
        if len(ids) > BATCH:
            raise ModelError(f"feed_rows takes at most {BATCH} tokens")
        self._decode([(ids, len(self.ids), self.active)], all_logits=True)
        self.ids.extend(ids)
        rows = self.engine.logits(len(ids)).view(len(ids), -1)
        self.logits = rows[-1]
        return rows

    def can_rewind(self) -> bool:
        return True

    def rewind(self, n: int, logits: torch.Tensor) -> None:
        if n > 0:
            del self.ids[-n:]
            self.engine.drop(self.active, len(self.ids))
        self.logits = logits

    def feed_forced(self, ids: list[int]) -> float:
        """As `Decoder.feed_forced`, in one batch with every row's logits: a tool's name or an option key
        once its first token decided it costs one step instead of one per token."""
        if len(ids) < 2 or len(ids) > BATCH or any(t in self.turn_ends for t in ids):
            return super().feed_forced(ids)
        logp = torch.log_softmax(self.feed_rows(ids)[:-1], -1)
        return float(logp.gather(1, torch.tensor(ids[1:])[:, None]).sum())

    def _run_rows(self, runs: list[tuple[int, ...]]) -> dict[tuple[int, ...], torch.Tensor]:
        """As `Decoder._run_rows`; the runs go side by side, each on a scratch copy of the active sequence (a
        copy shares the prefix's cells), up to `SCRATCH` and `BATCH` tokens a batch. A batch always fits
        beside the conversation: `max_context` + `BATCH` < `KV_CELLS`."""
        out: dict[tuple[int, ...], torch.Tensor] = {}
        here, scratch0, waiting = len(self.ids), len(self.slots), list(runs)
        while waiting:
            group, size = [], 0
            while waiting and len(group) < SCRATCH and (not group or size + len(waiting[0]) <= BATCH):
                size += len(waiting[0])
                group.append(waiting.pop(0))
            for n in range(len(group)):
                self.engine.share(self.active, scratch0 + n, here)
            try:
                self._decode([(list(run), here, scratch0 + n) for n, run in enumerate(group)], all_logits=True)
                rows = torch.log_softmax(self.engine.logits(size).view(size, -1), -1)
            finally:
                for n in range(len(group)):
                    self.engine.drop(scratch0 + n)
            at = 0
            for run in group:
                out[run] = rows[at : at + len(run)]
                at += len(run)
        return out


class LlamaCppChatModel(LocalChatModel):
    def __init__(
        self,
        model: str = "smollm2",
        adapter: str | Path | None = None,
        threads: int | None = None,
        max_context: int = 6144,
        settings: GenerationSettings | None = None,
        budget: Budget | None = None,
        slots: int = 4,
        weights: str | None = None,
        merge: bool | None = None,
    ):
        """`weights`: `bf16`, `f16`, `q8_0` or `q4_1` (the packaged file); by default chosen from the CPU.
        `merge`: the adapter merged into the weights or run by llama.cpp as a LoRA at every step; by default
        as `merges_adapter` decides for the format."""
        if model not in BASE_MODELS:
            raise ModelNotFoundError(f"the llama.cpp backend runs the packaged GGUF models: {', '.join(BASE_MODELS)}")
        checkpoint = resolve_checkpoint(model)  # the tokenizer and config (the weights stay in the GGUF)
        config = json.loads((checkpoint / "config.json").read_text())
        self.name = model if adapter is None else f"{model}+{Path(adapter).name}"
        self.backend = "llama.cpp"
        packaged, fmt = BASE_MODELS[model].gguf_path(), weights or weight_format()
        if merge is None:
            merge = merges_adapter(fmt)
        merge = merge and adapter is not None
        self.weights = f"{fmt}, LoRA merged" if merge else f"{fmt}, LoRA unmerged" if adapter else fmt
        if merge:
            weights_file, lora = base_gguf(packaged, fmt, Path(adapter), config), None
        else:
            weights_file = base_gguf(packaged, fmt)
            lora = lora_gguf(Path(adapter), config) if adapter is not None else None
        engine = LlamaCppEngine(weights_file, lora, threads or 2, slots + SCRATCH)
        tokenizer = load_tokenizer(checkpoint)
        profile = read_profile(adapter) or read_profile(checkpoint) or PromptProfile.base()
        context = min(config.get("max_position_embeddings", 8192), max_context)
        self._setup(tokenizer, LlamaCppDecoder(engine, tokenizer, slots), profile, context, settings, budget)
