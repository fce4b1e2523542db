"""Token-level decoding with a reusable KV cache, and tool calls constrained to the tools' JSON schemas.

A tool call is written as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Instead of hoping
the model writes valid JSON, the decoder writes the JSON structure itself (braces, keys, commas, quotes)
and lets the model choose only what the schema leaves open: which tool, which optional argument comes
next, enum values, string contents, digits, booleans, list lengths. Every choice is masked to the tokens
the schema allows, so the result always parses and always validates; when a length budget runs out the
decoder closes the value itself. (A JSON-schema regex index such as outlines' takes 6-17 s to build per
schema on this CPU; here the masks are built once per tokenizer in well under a second for SmolLM2.)
"""

import json
import threading
from dataclasses import dataclass
from typing import Any

import torch

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"


class ConstraintError(ValueError):
    """A schema uses a construct the constrained decoder does not support (a bug in a tool declaration)."""


@dataclass(frozen=True)
class Budget:
    """Upper bounds that keep a constrained call short; the decoder closes a value when one runs out."""

    string_tokens: int = 48
    number_tokens: int = 8
    array_items: int = 12
    object_entries: int = 6


class TokenMasks:
    """Boolean masks over the vocabulary: which tokens may appear inside a JSON string, end one, or form a number."""

    _cache: dict[int, "TokenMasks"] = {}
    _lock = threading.Lock()

    def __init__(self, tokenizer, vocab_size: int):
        texts = [tokenizer.decode([i]) for i in range(len(tokenizer))]
        self.size = vocab_size
        body = torch.zeros(vocab_size, dtype=torch.bool)
        end = torch.zeros(vocab_size, dtype=torch.bool)
        digits = torch.zeros(vocab_size, dtype=torch.bool)
        special = set(tokenizer.all_special_ids)
        for i, text in enumerate(texts):
            if i in special or not text or "\ufffd" in text:
                continue
            inner = text[:-1] if text.endswith('"') else text
            safe = all(c >= " " and c not in '"\\' for c in inner)
            if safe and text.endswith('"'):
                end[i] = True
            elif safe:
                body[i] = True
            if text.isdigit() and text.isascii():
                digits[i] = True
        self.string_body, self.string_end, self.digits = body, end, digits

    @classmethod
    def for_tokenizer(cls, tokenizer, vocab_size: int) -> "TokenMasks":
        with cls._lock:
            key = id(tokenizer)
            if key not in cls._cache:
                cls._cache[key] = cls(tokenizer, vocab_size)
            return cls._cache[key]


class Decoder:
    """Runs a causal LM token by token over one growing sequence, reusing the KV cache of a shared prefix.

    Not thread-safe: the backend holds a lock around each generation.
    """

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.ids: list[int] = []
        self.cache = None
        self.logits: torch.Tensor | None = None
        self.masks: TokenMasks | None = None

    # --- sequence and cache -------------------------------------------------------------------------
    def start(self, prompt_ids: list[int]) -> int:
        """Position the decoder after `prompt_ids`; returns how many prompt tokens were served from the cache."""
        reuse = 0
        for a, b in zip(self.ids, prompt_ids, strict=False):
            if a != b:
                break
            reuse += 1
        reuse = min(reuse, len(prompt_ids) - 1)  # at least one token must run to get fresh logits
        if self.cache is not None and reuse > 0 and getattr(self.cache, "is_croppable", False):
            if len(self.ids) > reuse:
                self.cache.crop(reuse - len(self.ids))  # a negative value drops that many trailing tokens
            self.ids = self.ids[:reuse]
        else:
            reuse, self.ids, self.cache = 0, [], None
        self.feed(prompt_ids[reuse:])
        return reuse

    @torch.inference_mode()
    def feed(self, ids: list[int]) -> None:
        if not ids:
            return
        from transformers import DynamicCache

        if self.cache is None:
            self.cache = DynamicCache(config=self.model.config)
        input_ids = torch.tensor([ids], device=self.device)
        out = self.model(input_ids=input_ids, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.cache = out.past_key_values
        self.logits = out.logits[0, -1].float()
        self.ids.extend(ids)

    def feed_text(self, text: str) -> None:
        self.feed(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _masked_argmax(self, allowed: torch.Tensor) -> int:
        scores = self.logits[: allowed.shape[0]].masked_fill(~allowed, float("-inf"))
        return int(torch.argmax(scores))

    def _mask(self) -> TokenMasks:
        if self.masks is None:
            self.masks = TokenMasks.for_tokenizer(self.tokenizer, self.logits.shape[0])
        return self.masks

    def next_token(self, temperature: float = 0.0, top_p: float = 1.0) -> int:
        if temperature <= 0:
            return int(torch.argmax(self.logits))
        probs = torch.softmax(self.logits / temperature, dim=-1)
        if top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, 0) - sorted_probs < top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
        return int(torch.multinomial(probs, 1))

    # --- constrained choices ------------------------------------------------------------------------
    def choose(self, options: list[str]) -> str:
        """Greedy walk down the token trie of `options`; feeds and returns the chosen option.

        No option may be a prefix of another (callers end each option with a delimiter)."""
        if len(options) == 1:
            self.feed_text(options[0])
            return options[0]
        encoded = [(o, self.encode(o)) for o in options]
        depth = 0
        while True:
            allowed = torch.zeros(self.logits.shape[0], dtype=torch.bool)
            for _, ids in encoded:
                allowed[ids[depth]] = True
            token = self._masked_argmax(allowed)
            encoded = [(o, ids) for o, ids in encoded if ids[depth] == token]
            self.feed([token])
            depth += 1
            done = [o for o, ids in encoded if len(ids) == depth]
            if done:
                return done[0]

    def string(self, budget: int) -> str:
        """The contents of a JSON string whose opening quote has been fed; feeds the closing quote."""
        masks = self._mask()
        allowed = masks.string_body | masks.string_end
        start = len(self.ids)
        for _ in range(budget):
            token = self._masked_argmax(allowed)
            self.feed([token])
            if masks.string_end[token]:
                return self.tokenizer.decode(self.ids[start:])[:-1]
        self.feed_text('"')  # budget spent: close the string ourselves
        return self.tokenizer.decode(self.ids[start:-1]) if len(self.ids) > start else ""

    def number(self, integer: bool, budget: int) -> int | float:
        """Digits chosen by the model; it stops by preferring `,` or `}` (not fed: the caller writes those)."""
        masks = self._mask()
        stop = torch.zeros_like(masks.digits)
        for text in (",", "}", " ,", ", "):
            for token in self.encode(text)[:1]:
                stop[token] = True
        dot = self.encode(".")[0]
        text = ""
        for _ in range(budget):
            allowed = masks.digits | stop if text else masks.digits.clone()
            if not integer and text and "." not in text:
                allowed[dot] = True
            token = self._masked_argmax(allowed)
            if stop[token] and not masks.digits[token]:
                break
            self.feed([token])
            text += self.tokenizer.decode([token])
        if text.endswith("."):
            self.feed_text("0")
            text += "0"
        return int(text) if integer else float(text)

    # --- JSON values from a schema ------------------------------------------------------------------
    def value(self, schema: dict[str, Any], budget: Budget) -> Any:
        kind = schema.get("type")
        if "enum" in schema:
            if not all(isinstance(v, str) for v in schema["enum"]):
                raise ConstraintError(f"only string enums are supported, got {schema['enum']!r}")
            self.feed_text('"')
            return self.choose([f'{v}"' for v in schema["enum"]])[:-1]
        if kind == "string":
            self.feed_text('"')
            return self.string(min(budget.string_tokens, schema.get("maxLength", 10**6)))
        if kind in ("integer", "number"):
            return self.number(kind == "integer", budget.number_tokens)
        if kind == "boolean":
            return self.choose(["true", "false"]) == "true"
        if kind == "array":
            return self._array(schema.get("items", {"type": "string"}), budget)
        if kind == "object":
            return self.object(schema, budget)
        raise ConstraintError(f"unsupported schema type {kind!r}")

    def _array(self, items: dict[str, Any], budget: Budget) -> list[Any]:
        values: list[Any] = []
        self.feed_text("[")
        first = self.choose(["]", '"']) if items.get("type") == "string" else None
        if first == "]":
            return values
        while True:
            if items.get("type") == "string":
                values.append(self.string(budget.string_tokens))
            else:
                values.append(self.value(items, budget))
            if len(values) >= budget.array_items:
                self.feed_text("]")
                return values
            sep = self.choose(["]", ', "']) if items.get("type") == "string" else self.choose(["]", ", "])
            if sep == "]":
                return values

    def object(self, schema: dict[str, Any], budget: Budget) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        result: dict[str, Any] = {}
        self.feed_text("{")
        for key in required:
            self.feed_text(f'{", " if result else ""}"{key}": ')
            result[key] = self.value(props[key], budget)
        optional = [k for k in props if k not in required]
        while optional and len(result) < len(required) + budget.object_entries:
            sep = ", " if result else ""
            pick = self.choose(["}"] + [f'{sep}"{k}": ' for k in optional])
            if pick == "}":
                return result
            key = json.loads(pick[len(sep) : -2])
            optional.remove(key)
            result[key] = self.value(props[key], budget)
        extra = schema.get("additionalProperties")
        if not props and isinstance(extra, dict):  # a free map such as {"color": "blue"}
            while len(result) < budget.object_entries:
                sep = ', "' if result else '"'
                if self.choose(["}", sep]) == "}":
                    return result
                key = self.string(budget.string_tokens)
                self.feed_text(": ")
                result[key] = self.value(extra, budget)
        self.feed_text("}")
        return result

    def tool_call(self, tools: list[dict[str, Any]], budget: Budget) -> tuple[str, dict[str, Any]]:
        """After `<tool_call>` has been fed: the tool name and its arguments, valid by construction."""
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        self.feed_text('{"name": "')
        name = self.choose([f'{n}", "arguments": ' for n in by_name]).split('"', 1)[0]
        arguments = self.object(by_name[name]["parameters"], budget)
        self.feed_text("}" + TOOL_CLOSE)
        return name, arguments
