"""The guided chat model on a local decoder: prompt assembly, the call-or-reply decision, constrained calls.

Backends differ only in how tokens run (`Decoder` on transformers, `LlamaCppDecoder` on llama.cpp); what
the model decides from their logits is written once, here, so both backends make the same decisions.
"""

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import torch

from assistant.llm.base import GenerationSettings, OnText, PromptProfile, ToolChoice
from assistant.llm.decoding import TOOL_CLOSE, TOOL_OPEN, Budget, Decoder, common_prefix, lookup_draft
from assistant.llm.prompting import parse_tool_call, to_template_messages
from assistant.messages import ChatMessage, ToolCall

STOP_STRINGS = ("<|im_end|>", "<end_of_turn>", "<|endoftext|>", "<start_of_turn>", "<|im_start|>")


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def drop_oldest_exchange(messages: list[ChatMessage]) -> list[ChatMessage] | None:
    """Messages without the oldest customer turn and everything up to the next one; None if nothing can go."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if len(users) < 2:
        return None
    return messages[: users[0]] + messages[users[1] :]


class LocalChatModel:
    """`generate()` is serialised by a lock: one CPU model serves one generation at a time, many sessions."""

    guided = True  # understands legal tools with grounded schemas and reply options (assistant.guidance)
    serial = True  # one generation at a time: the web app keeps waiting shoppers in line (ui.conversations)

    def _setup(
        self,
        tokenizer,
        decoder: Decoder,
        profile: PromptProfile,
        max_context: int,
        settings: GenerationSettings | None,
        budget: Budget | None,
    ) -> None:
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.profile = profile
        # prompts beyond this are shortened: longer contexts are slow on a CPU and past what 135M models handle
        self.max_context = max_context
        self.settings = settings or GenerationSettings()
        self.budget = budget or Budget()
        self.stop_ids = {i for s in STOP_STRINGS if (i := tokenizer.convert_tokens_to_ids(s)) != tokenizer.unk_token_id}
        self.stop_ids.discard(None)
        if tokenizer.eos_token_id is not None:
            self.stop_ids.add(tokenizer.eos_token_id)
        self.tool_open = tokenizer.encode(TOOL_OPEN, add_special_tokens=False)
        # never written by a message (prompting.defuse); the tool-call tags are the template's own text
        self.markers = tuple(t for t in tokenizer.all_special_tokens if t not in (TOOL_OPEN, TOOL_CLOSE))
        known = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<end_of_turn>")]
        self.turn_end = next((i for i in known if i is not None and i != tokenizer.unk_token_id), None)
        if self.turn_end is None:
            self.turn_end = tokenizer.eos_token_id
        self._lock = threading.Lock()

    def prompt_ids(self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> list[int]:
        """The prompt tokens; when a long conversation outgrows the context, its oldest exchanges are left
        out (whole customer turns, the system message always stays).

        Leaving out one more exchange changes the prompt's start, so the whole of it must be read again.
        Hence a trimmed prompt is cut to leave room (a quarter of the budget) for the turns to come, and
        a later step keeps whichever cut the decoder's cache already holds while it still fits."""
        budget = self.max_context - max(self.settings.max_new_tokens, 400)
        variants = [self._render(messages, tools)]
        while len(variants[-1]) > budget - budget // 4:
            messages = drop_oldest_exchange(messages)
            if messages is None:
                break
            variants.append(self._render(messages, tools))
        if len(variants[0]) <= budget:
            return variants[0]
        fitting = [v for v in variants if len(v) <= budget] or variants[-1:]
        held = self.decoder.held()
        # the cut sharing the most with a cached sequence; when they share only the system prompt, the shortest
        return max(fitting, key=lambda v: (max(common_prefix(v, h) for h in held), -len(v)))

    def _render(self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            to_template_messages(
                messages,
                tools if self.profile.tools_in_prompt else None,
                self.profile.brief_tools,
                self.markers,
            ),
            tokenize=False,
            add_generation_prompt=True,
        )
        return self.tokenizer.encode(text, add_special_tokens=False)

    def warm(self, messages: list[ChatMessage]) -> None:
        """Read what every conversation starts with (the system prompt) and build the token masks at load,
        so the first customer does not wait for them; later conversations share these cells."""
        with self._lock:
            self.decoder.start(self.prompt_ids(messages, None))
            self.decoder.token_masks()

    def read_ahead(self, messages: list[ChatMessage], idle: Callable[[], bool]) -> int:
        """While no turn waits (`idle()`), read the conversation's messages so far into its cache, message
        by message, as its next prompt will start: the customer's next turn then reads only their own
        message, not the reply they are reading now (a product list is ~200 tokens, ~0.5 s at depth on
        2 cores). Messages are fed whole, as `start` would feed them, so decisions stay the same.
        Returns how many tokens were read; 0 when the prompt depends on the tools of the next step."""
        if self.profile.tools_in_prompt:
            return 0
        with self._lock:
            ids = self.prompt_ids(messages, None)
            # a conversation trimmed since its last step keeps its cells (moved up) rather than read again
            kept = self.decoder.keep_trimmed(ids) if idle() else 0
            held = max([kept, *(common_prefix(ids, h) for h in self.decoder.held())])
        # the generation prompt after the last message is not part of the next prompt
        ends = [i + 1 for i, t in enumerate(ids) if t == self.turn_end and i + 1 > held]
        read = 0
        for end in ends:
            with self._lock:
                if not idle():
                    break
                read += end - self.decoder.start(ids[:end])
        return read

    def forget(self, messages: list[ChatMessage], shared: int = 1) -> None:
        """A finished conversation's cache is let go, all but its first `shared` messages (the system prompt and
        examples every conversation starts with). In llama.cpp's one KV cache every kept cell is scanned by
        every other sequence's attention: another sequence holding 6,000 tokens halved a 512-token prefill
        (469 to 231 tokens/s), so a finished τ task kept parked slowed the next ones."""
        with self._lock:
            ids = self.prompt_ids(messages, None)
            start = common_prefix(ids, self._render(messages[:shared], None))
            keep = max((i + 1 for i in range(start) if ids[i] == self.turn_end), default=0)
            first_turn = next((i + 1 for i in range(keep, len(ids)) if ids[i] == self.turn_end), len(ids))
            self.decoder.release(ids, keep, first_turn)

    def generate(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: ToolChoice = "auto",
        on_text: OnText | None = None,
        replies: list[str] | None = None,
    ) -> ChatMessage:
        """With `replies` (guided mode) a reply is one of those texts, chosen by the model's probabilities,
        and the call-or-reply decision compares the legal actions' own probabilities (see `_decide`)."""
        tools = tools or []
        with self._lock:
            started = time.perf_counter()
            ids = self.prompt_ids(messages, tools)
            cached = self.decoder.start(ids)
            first_token_s = time.perf_counter() - started
            wants_tool = bool(tools) and tool_choice != "none"
            if replies:
                message = self._guided(ids, tools if wants_tool else [], replies, tool_choice == "required")
                if message.tool_call is None and on_text is not None:
                    on_text(message.content)
            elif wants_tool and (tool_choice == "required" or self._tool_is_likely()):
                message = self._tool_call(tools)
            else:
                message = self._reply(on_text)
            message.meta.update(
                prompt_tokens=len(ids),
                cached_tokens=cached,
                first_token_s=round(first_token_s, 4),
                seconds=round(time.perf_counter() - started, 4),
            )
            return message

    def _guided(self, ids: list[int], tools: list[dict[str, Any]], replies: list[str], required: bool) -> ChatMessage:
        """One legal action: a call of a legal tool or one of `replies`.

        The decision scores the actions themselves: a tool call by log P(`<tool_call>`) plus the log-probability
        of the best legal tool's name, a reply by log P(anything but `<tool_call>`). Probability the model puts
        on a tool that is not legal now counts for neither, so a model that wants the account before it may
        ask for it replies (and asks) instead of calling some other tool."""
        start = len(self.decoder.ids)
        meta: dict[str, Any] = {}
        if tools:
            logp = torch.log_softmax(self.decoder.logits, -1)
            open_lp = float(logp[self.tool_open[0]])
            reply_lp = float(torch.log1p(-torch.exp(logp[self.tool_open[0]]).clamp(max=1 - 1e-6)))
            meta = {"tool_logprob": round(open_lp, 3), "reply_logprob": round(reply_lp, 3)}
        # a name's log-probability is <= 0, so when the marker alone loses no call can win: names go unscored
        if tools and (required or open_lp > reply_lp):
            self.decoder.feed(self.tool_open)
            self.decoder.logprob = 0.0
            by_name = {t["function"]["name"]: t["function"] for t in tools}
            self.decoder.carry = ""
            self.decoder.feed_text('{"name":')
            name = self.decoder.choose([f' "{n}", "arguments":' for n in by_name])[2:].split('"', 1)[0]
            tool_lp = open_lp + self.decoder.logprob
            meta["tool_logprob"] = round(tool_lp, 3)
            if required or tool_lp > reply_lp:
                arguments = self.decoder.object(by_name[name]["parameters"], self.budget, lead=" ")
                self.decoder.feed_text("}" + TOOL_CLOSE)
                call = ToolCall(name, arguments, _call_id())
                return ChatMessage(
                    "assistant", tool_call=call, meta={**meta, "new_tokens": len(self.decoder.ids) - start}
                )
        choice, scores = 0, []
        if len(replies) > 1:
            end = [self.turn_end]
            encoded = [self.decoder.encode(r) + end for r in replies]
            scores = [lp / len(e) for lp, e in zip(self.decoder.score(ids, encoded), encoded, strict=True)]
            choice = max(range(len(replies)), key=scores.__getitem__)
        else:
            self.decoder.start(ids)
        meta.update(reply_index=choice, reply_scores=[round(x, 3) for x in scores], new_tokens=0)
        return ChatMessage("assistant", replies[choice], meta=meta)

    def _tool_is_likely(self) -> bool:
        logits = self.decoder.logits
        opening = self.tool_open[0]
        if int(torch.argmax(logits)) == opening:
            return True
        threshold = self.profile.tool_threshold
        return threshold is not None and float(torch.softmax(logits, -1)[opening]) >= threshold

    def _tool_call(self, tools: list[dict[str, Any]]) -> ChatMessage:
        start = len(self.decoder.ids)
        self.decoder.feed(self.tool_open)
        if not self.settings.constrained:
            text = TOOL_OPEN + self._free_text(64 + 8 * self.budget.string_tokens, None)
            parsed = parse_tool_call(text)
            if parsed is None:
                return ChatMessage("assistant", text, meta={"valid_json": False, "new_tokens": 0})
            return ChatMessage("assistant", tool_call=ToolCall(*parsed, _call_id()), meta={"valid_json": True})
        name, arguments = self.decoder.tool_call(tools, self.budget)
        return ChatMessage(
            "assistant",
            tool_call=ToolCall(name, arguments, _call_id()),
            meta={"new_tokens": len(self.decoder.ids) - start},
        )

    def _reply(self, on_text: OnText | None) -> ChatMessage:
        start = len(self.decoder.ids)
        # a reply never opens with the tool-call marker (the model may want a call when none is allowed)
        self.decoder.logits = self.decoder.logits.clone()
        self.decoder.logits[self.tool_open[0]] = float("-inf")
        text = self._free_text(self.settings.max_new_tokens, on_text)
        return ChatMessage("assistant", text.strip(), meta={"new_tokens": len(self.decoder.ids) - start})

    def _free_text(self, max_tokens: int, on_text: OnText | None) -> str:
        """Up to `max_tokens` tokens of text, to a stop token or a written `</tool_call>`.

        Greedy text is checked several tokens a step where the conversation guesses them (`lookup_draft`).
        On 2 cores a step of 5 tokens costs over twice a single one (`bench/agent_bench.py speed`,
        `batch_step_ms_after_800_tokens`), so a guess pays only when most of it is kept: it starts at 2
        tokens, doubles while wholly kept (up to `draft_tokens`) and shrinks to what was kept."""
        start, shown = len(self.decoder.ids), ""
        limit = self.settings.draft_tokens if self.settings.temperature <= 0 and self.decoder.can_rewind() else 0
        size = min(2, limit)
        while len(self.decoder.ids) - start < max_tokens:
            token = self.decoder.next_token(self.settings.temperature, self.settings.top_p)
            if token in self.stop_ids:
                break
            left = max_tokens - (len(self.decoder.ids) - start) - 1
            draft = lookup_draft([*self.decoder.ids, token], min(size, left))
            draft = draft[: next((i for i, t in enumerate(draft) if t in self.stop_ids), len(draft))]
            if draft:
                kept = self._feed_draft(token, draft)
                size = min(limit, 2 * size) if kept == len(draft) else max(1, kept)
            else:
                self.decoder.feed([token])
            text = self.tokenizer.decode(self.decoder.ids[start:])
            if TOOL_CLOSE in text[max(0, len(shown) - len(TOOL_CLOSE)) :] and self._cut_after(start, TOOL_CLOSE):
                break
            if on_text is not None and not text.endswith("\ufffd"):  # hold back half a UTF-8 character
                on_text(text[len(shown) :])
                shown = text
        return self.tokenizer.decode(self.decoder.ids[start:])

    def _feed_draft(self, token: int, draft: list[int]) -> int:
        """Feed `token` and `draft` in one batch, keeping the draft's tokens up to the first the model would
        not have chosen greedily (how many it keeps); the logits after the last kept one become the decoder's."""
        rows = self.decoder.feed_rows([token, *draft])
        chosen = torch.argmax(rows[:-1], -1).tolist()
        kept = next((i for i, (c, d) in enumerate(zip(chosen, draft, strict=True)) if c != d), len(draft))
        self.decoder.rewind(len(draft) - kept, rows[kept])
        return kept

    def _cut_after(self, start: int, marker: str) -> bool:
        """Where a token fed since `start` ended the text with `marker` (one step at a time would have stopped
        there), forget the tokens after it and say so."""
        ids, decode = self.decoder.ids, self.tokenizer.decode
        end = next((i for i in range(start + 1, len(ids) + 1) if decode(ids[start:i]).endswith(marker)), 0)
        if end and end < len(ids):
            self.decoder.rewind(len(ids) - end, self.decoder.logits)  # nothing reads these logits again
        return bool(end)
