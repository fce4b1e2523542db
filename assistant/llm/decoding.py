"""Token-level decoding with a reusable KV cache, and tool calls constrained to the tools' JSON schemas.

A tool call is written as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`. Instead of hoping
the model writes valid JSON, the decoder writes the JSON structure itself (braces, keys, commas, quotes)
and lets the model choose only what the schema leaves open: which tool, which optional argument comes
next, enum values, string contents, digits, booleans, list lengths. Every choice is masked to the tokens
the schema allows, so the result always parses and always validates; when a length budget runs out the
decoder closes the value itself. (A JSON-schema regex index such as outlines' takes 6-17 s to build per
schema on this CPU; here the masks are built once per tokenizer in well under a second for SmolLM2.)
"""

import bisect
import copy
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
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
    """Boolean masks over the vocabulary for the pieces of JSON the model writes itself.

    Tokenizers merge JSON punctuation with neighbours (SmolLM2 writes `": "#W1"` as `":`, ` "#`, `W`,
    `1`, `",`), so besides plain string tokens the masks admit tokens that open a string with its quote
    (` "#`) and tokens that close one together with the next structural character (`",`, `"}`, `"]`):
    the decoder follows the model's own tokenization instead of forcing odd token boundaries on it."""

    _cache: dict[int, "TokenMasks"] = {}
    _lock = threading.Lock()
    CLOSERS = ",}]:"

    def __init__(self, tokenizer, vocab_size: int):
        self.size = vocab_size
        special = set(tokenizer.all_special_ids)

        def mask() -> torch.Tensor:
            return torch.zeros(vocab_size, dtype=torch.bool)

        self.body, self.end, self.open, self.open_end = mask(), mask(), mask(), mask()
        self.end_then = {c: mask() for c in self.CLOSERS}  # `abc",` : ends a string, then `,`
        self.open_end_then = {c: mask() for c in self.CLOSERS}  # ` "ab",`
        self.digits, self.space = mask(), mask()
        self.number_stop = mask()  # `,` `}` `]`: the model ends a number by preferring one (not fed)
        for text in (",", "}", "]"):
            self.number_stop[tokenizer.encode(text, add_special_tokens=False)[0]] = True
        self.dot = tokenizer.encode(".", add_special_tokens=False)[0]
        for i in range(len(tokenizer)):
            text = tokenizer.decode([i])
            if i in special or not text or "\ufffd" in text:
                continue
            if text == " ":
                self.space[i] = True
            if text.lstrip(" ").isdigit() and text.isascii() and len(text) - len(text.lstrip(" ")) <= 1:
                self.digits[i] = True
            opened = text[2:] if text.startswith(' "') else text[1:] if text.startswith('"') else None
            for rest, plain, closed, closed_then in (
                (text, self.body, self.end, self.end_then),
                (opened, self.open, self.open_end, self.open_end_then),
            ):
                if rest is None:
                    continue
                if rest == "" and plain is self.body:
                    continue
                if _safe(rest):
                    plain[i] = True
                elif rest.endswith('"') and _safe(rest[:-1]):
                    closed[i] = True
                elif len(rest) >= 2 and rest[-2] == '"' and rest[-1] in self.CLOSERS and _safe(rest[:-2]):
                    closed_then[rest[-1]][i] = True

    @classmethod
    def for_tokenizer(cls, tokenizer, vocab_size: int) -> "TokenMasks":
        with cls._lock:
            key = id(tokenizer)
            if key not in cls._cache:
                cls._cache[key] = cls(tokenizer, vocab_size)
            return cls._cache[key]


def _safe(text: str) -> bool:
    """Characters that may stand unescaped inside a JSON string (we never let the model write escapes)."""
    return all(c >= " " and c not in '"\\' for c in text)


PARK_MIN_TOKENS = 256  # a sequence this short is cheaper to prefill again than to keep a copy of
DRAFT_NGRAM = 4  # last tokens a guess's earlier place must match: fewer match by chance, and a wrong guess costs


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def lookup_draft(ids: list[int], limit: int, ngram: int = DRAFT_NGRAM) -> list[int]:
    """Prompt-lookup drafting: where the last `ngram` tokens of `ids` occurred before, the up to `limit` tokens
    that followed them there, as a guess of what comes next; [] if they did not occur.

    A reply repeats its context: product names, prices and ids from a tool's result, the customer's words,
    its own earlier lines. The model checks a guess in one batch (`Decoder.feed_rows`) and keeps only the
    tokens it would have chosen itself, so a guess changes the speed, not the choices (but for the rounding
    of a batch's kernels at a near tie)."""
    if limit <= 0 or len(ids) <= ngram:
        return []
    seq = np.asarray(ids)
    tail = seq[-ngram:]
    hits = np.ones(len(seq) - ngram, dtype=bool)  # places i where seq[i:i+ngram] == tail, before the tail
    for k in range(ngram):
        hits &= seq[k : len(seq) - ngram + k] == tail[k]
    best: list[int] = []
    for i in np.flatnonzero(hits)[::-1]:  # the latest place that has `limit` tokens after it, else the longest
        follow = seq[i + ngram : i + ngram + limit]
        if len(follow) > len(best):
            best = follow.tolist()
            if len(best) == limit:
                break
    return best


class Decoder:
    """Runs a causal LM token by token over one growing sequence, reusing the KV cache of a shared prefix.

    Not thread-safe: the backend holds a lock around each generation.
    """

    score_limit: int | None = None  # a scored continuation is fed up to this many tokens (None: all)

    def __init__(self, model, tokenizer, slots: int = 4):
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.ids: list[int] = []
        self.cache = None
        self.slots = slots  # sequences whose KV cache is kept: the active one and the parked ones
        self.parked: list[tuple[list[int], Any]] = []
        self.logits: torch.Tensor | None = None
        self.masks: TokenMasks | None = None
        self.logprob = 0.0  # summed over the model's constrained choices since the caller last reset it
        self.carry = ""  # structure the model already wrote with its last string token (`",` → ",")

    # --- sequence and cache -------------------------------------------------------------------------
    def start(self, prompt_ids: list[int]) -> int:
        """Position the decoder after `prompt_ids`; returns how many prompt tokens were served from the cache.

        The cache of the active sequence is kept with up to `slots - 1` parked ones (other conversations
        the model served lately): the prompt continues whichever shares the longest prefix with it, so
        sessions that take turns do not re-read each other's conversations, and every conversation
        shares the system prompt's keys and values."""
        self.carry = ""  # nothing carries over from an earlier (possibly interrupted) generation
        candidates = [(self.ids, self.cache), *self.parked]
        shared = [common_prefix(ids, prompt_ids) if cache is not None else 0 for ids, cache in candidates]
        best = max(range(len(candidates)), key=lambda i: shared[i])
        reuse = min(shared[best], len(prompt_ids) - 1)  # at least one token must run to get fresh logits
        ids, cache = candidates[best]
        if best:  # a parked conversation comes back: the active one is parked in its place
            del self.parked[best - 1]
            self._park(self.ids, self.cache)
        if cache is None or reuse <= 0 or not getattr(cache, "is_croppable", False):
            if best == 0:
                self._park(ids, cache)
            reuse, self.ids, self.cache = 0, [], None
        else:
            if len(ids) - reuse > PARK_MIN_TOKENS:  # most of it would be cut: keep the whole of it parked
                self._park(list(ids), copy.deepcopy(cache))
            if len(ids) > reuse:
                cache.crop(reuse - len(ids))  # a negative value drops that many trailing tokens
            self.ids, self.cache = ids[:reuse], cache
        self.feed(prompt_ids[reuse:])
        return reuse

    def _park(self, ids: list[int], cache) -> None:
        if cache is None or len(ids) <= PARK_MIN_TOKENS or self.slots <= 1:
            return
        self.parked.insert(0, (ids, cache))  # most recent first; the oldest is dropped
        del self.parked[self.slots - 1 :]

    def reset(self) -> None:
        self.ids, self.cache, self.parked = [], None, []

    def release(self, prompt_ids: list[int], keep: int, mine: int) -> None:
        """Let go of the kept sequences of the conversation `prompt_ids` (those sharing more than its first
        `mine` tokens, i.e. its first customer message too), all but their first `keep` tokens. Another
        conversation that opened with the same message loses its cache too and reads it again."""
        self.parked = [(ids, cache) for ids, cache in self.parked if common_prefix(ids, prompt_ids) < mine]
        if self.cache is not None and common_prefix(self.ids, prompt_ids) >= mine:
            if keep > 0 and getattr(self.cache, "is_croppable", False):
                if len(self.ids) > keep:
                    self.cache.crop(keep - len(self.ids))  # a negative value drops that many trailing tokens
                del self.ids[keep:]
            else:
                self.ids, self.cache = [], None

    def held(self) -> list[list[int]]:
        """The token sequences whose KV cache is kept (the active one first)."""
        return [self.ids, *(ids for ids, _ in self.parked)]

    def keep_trimmed(self, prompt_ids: list[int]) -> int:
        """Make a kept sequence hold as much of a trimmed prompt as it can without reading (see the llama.cpp
        decoder's context shift); how many tokens it holds, 0 where it cannot (here: never)."""
        return 0

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

    @torch.inference_mode()
    def feed_rows(self, ids: list[int]) -> torch.Tensor:
        """Feed `ids` in one step: the logits after each of them, [len(ids), vocab] (`logits` is the last row)."""
        from transformers import DynamicCache

        if self.cache is None:
            self.cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=torch.tensor([ids], device=self.device), past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        rows = out.logits[0].float().cpu()
        self.logits = rows[-1]
        self.ids.extend(ids)
        return rows

    def can_rewind(self) -> bool:
        """Whether `rewind` works on the cache (not on a sliding-window one that has dropped what it needs)."""
        return getattr(self.cache, "is_croppable", False)

    def rewind(self, n: int, logits: torch.Tensor) -> None:
        """Forget the last `n` fed tokens (a draft's rejected guesses); `logits` are those after what is kept."""
        if n > 0:
            self.cache.crop(-n)
            del self.ids[-n:]
        self.logits = logits

    def feed_forced(self, ids: list[int]) -> float:
        """Feed `ids`, the rest of an option once only one is left; returns the model's log-probability of
        `ids[1:]` (the first was chosen, and counted, by the caller). One token at a time, as they were
        chosen before; llama.cpp's decoder feeds them in one batch."""
        total = 0.0
        for prev, token in zip(ids, ids[1:], strict=False):
            self.feed([prev])
            total += float(torch.log_softmax(self.logits, -1)[token])
        self.feed(ids[-1:])
        return total

    def feed_text(self, text: str) -> None:
        if self.carry:
            if not text.startswith(self.carry):
                raise ConstraintError(f"structure {text!r} does not continue the model's {self.carry!r}")
            text, self.carry = text[len(self.carry) :], ""
        self.feed(self.tokenizer.encode(text, add_special_tokens=False))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False)

    def _masked_argmax(self, allowed: torch.Tensor) -> int:
        scores = self.logits[: allowed.shape[0]].masked_fill(~allowed, float("-inf"))
        token = int(torch.argmax(scores))
        self.logprob += float(torch.log_softmax(self.logits, -1)[token])  # under the model, not the mask
        return token

    def score_here(self, continuations: list[list[int]]) -> list[float]:
        """Log-probability of each continuation from the current position; the decoder stays where it is.

        A continuation's tokens but its last are fed; one fed run serves every continuation whose fed part
        starts it (copy candidates "hiking", "hiking boots", "hiking boots under" are one run: a third of
        the tokens of feeding each)."""
        first = torch.log_softmax(self.logits, -1)
        totals = [float(first[ids[0]]) for ids in continuations]
        keys = [tuple(ids[:-1][: self.score_limit]) for ids in continuations]  # what each one feeds
        fed = sorted({key for key in keys if key})
        # sorted, a fed part that starts others comes just before them: a run is one that starts no other
        runs = [f for i, f in enumerate(fed) if i + 1 == len(fed) or fed[i + 1][: len(f)] != f]
        rows = self._run_rows(runs)
        for i, (ids, key) in enumerate(zip(continuations, keys, strict=True)):
            if key:
                run = runs[bisect.bisect_left(runs, key)]  # the first run at or after it starts with it
                targets = torch.tensor(ids[1 : len(key) + 1])
                totals[i] += float(rows[run][: len(key)].gather(1, targets[:, None]).sum())
        return totals

    @torch.inference_mode()
    def _run_rows(self, runs: list[tuple[int, ...]]) -> dict[tuple[int, ...], torch.Tensor]:
        """Each run fed after the current position, one at a time: its rows of next-token log-probabilities."""
        out = {}
        for run in runs:
            x = torch.tensor([run], device=self.device)
            logits = self.model(input_ids=x, past_key_values=self.cache, use_cache=True).logits[0].float()
            out[run] = torch.log_softmax(logits, -1).cpu()
            self.cache.crop(-len(run))  # drop what this run added
        return out

    def score(self, prompt_ids: list[int], continuations: list[list[int]]) -> list[float]:
        """Log-probability of each continuation after `prompt_ids`; the decoder is left after the prompt."""
        self.start(prompt_ids)
        return self.score_here(continuations)

    def token_masks(self) -> TokenMasks:
        """Built on first use (about a second: every vocabulary entry is classified), then shared."""
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
        if self.carry:  # the model already wrote the start of the next piece of structure
            options = [o for o in options if o.startswith(self.carry)]
            if not options:
                raise ConstraintError(f"no option continues the model's {self.carry!r}")
            done = [o for o in options if o == self.carry]
            if done:
                self.carry = ""
                return done[0]
        if len(options) == 1:
            self.feed_text(options[0])
            return options[0]
        skip, self.carry = len(self.carry), ""
        encoded = [(o, self.encode(o[skip:])) for o in options]
        depth = 0
        while True:
            allowed = torch.zeros(self.logits.shape[0], dtype=torch.bool)
            for _, ids in encoded:
                allowed[ids[depth]] = True
            token = self._masked_argmax(allowed)
            encoded = [(o, ids) for o, ids in encoded if ids[depth] == token]
            if len(encoded) == 1:  # the rest of the option is forced
                option, ids = encoded[0]
                self.logprob += self.feed_forced(ids[depth:])
                return option
            self.feed([token])
            depth += 1
            done = [o for o, ids in encoded if len(ids) == depth]
            if done:
                return done[0]

    def string(self, budget: int, closers: str, opened: bool = False) -> str:
        """A JSON string: the model writes its contents, with the opening quote unless `opened`, and may
        close it together with one of `closers` (left in `carry` for the structure that follows)."""
        masks = self.token_masks()
        start = len(self.ids)
        for step in range(budget):
            fresh = step == 0 and not opened
            plain, closed, then = (
                (masks.open, masks.open_end, masks.open_end_then) if fresh else (masks.body, masks.end, masks.end_then)
            )
            allowed = plain | closed
            for c in closers:
                allowed = allowed | then[c]
            token = self._masked_argmax(allowed)
            self.feed([token])
            if closed[token] or any(then[c][token] for c in closers):
                self.carry = "" if closed[token] else self.tokenizer.decode([token])[-1]
                return self._string_text(start, opened)
        if not opened and len(self.ids) == start:
            self.feed_text(' "')
        self.feed_text('"')  # budget spent: close the string ourselves
        return self._string_text(start, opened)

    def copy(self, spans: list[str], closers: str) -> str:
        """A JSON string that is one of `spans` (words the customer wrote), with its quotes: the span the
        model gives the highest log-probability followed by the closing quote and the next structure
        character (so it must commit to where the value ends). Only the string is fed: what follows is
        still chosen freely. A garbled copy cannot happen."""
        scored = [self.encode(f' "{s}"{closers[0]}') for s in spans]
        scores = self.score_here(scored)
        best = max(range(len(spans)), key=scores.__getitem__)
        self.logprob += scores[best]
        self.feed(self.encode(f' "{spans[best]}"'))
        return spans[best]

    def _string_text(self, start: int, opened: bool) -> str:
        text = self.tokenizer.decode(self.ids[start:])
        if not opened:
            text = text[text.index('"') + 1 :]
        if self.carry:
            text = text[: -len(self.carry)]
        return text[:-1]  # the closing quote

    def number(self, integer: bool, budget: int) -> int | float:
        """Digits chosen by the model; it stops by preferring `,` or `}` (not fed: the caller writes those)."""
        masks = self.token_masks()
        stop, dot = masks.number_stop, masks.dot
        text = ""
        for step in range(budget):
            allowed = masks.digits.clone()
            if step == 0:
                allowed |= masks.space  # `": 60` is `":`, ` `, `6`, `0` for SmolLM2
            if text.strip():
                allowed |= stop
                if not integer and "." not in text:
                    allowed[dot] = True
            token = self._masked_argmax(allowed)
            if stop[token] and not masks.digits[token]:
                break
            self.feed([token])
            text += self.tokenizer.decode([token])
        if not text.strip():
            self.feed_text("0")
            text += "0"
        if text.endswith("."):
            self.feed_text("0")
            text += "0"
        return int(text) if integer else float(text)

    # --- JSON values from a schema ------------------------------------------------------------------
    def value(self, schema: dict[str, Any], budget: Budget, closers: str) -> Any:
        """A value after `":` (no space yet: tokenizers merge it with what follows)."""
        kind = schema.get("type")
        if "enum" in schema:
            if not all(isinstance(v, str) for v in schema["enum"]):
                raise ConstraintError(f"only string enums are supported, got {schema['enum']!r}")
            return self.choose([f' "{v}"' for v in schema["enum"]])[2:-1]
        if kind == "string" and "x-copy" in schema:
            return self.copy(schema["x-copy"], closers)
        if kind == "string":
            return self.string(min(budget.string_tokens, schema.get("maxLength", 10**6)), closers)
        if kind in ("integer", "number"):
            return self.number(kind == "integer", budget.number_tokens)
        if kind == "boolean":
            return self.choose([" true", " false"]) == " true"
        if kind == "array" and "prefixItems" in schema:  # one value per position, each from its own enum
            values = []
            for n, item in enumerate(schema["prefixItems"]):
                opening = " [" if n == 0 else ", "
                values.append(self.choose([f'{opening}"{v}"' for v in item["enum"]])[len(opening) + 1 : -1])
            self.feed_text("]" if values else " []")
            return values
        if kind == "array":
            return self._array(
                schema.get("items", {"type": "string"}),
                budget,
                schema.get("minItems", 0),
                schema.get("maxItems"),
                bool(schema.get("uniqueItems")),
            )
        if kind == "object":
            return self.object(schema, budget, lead=" ")
        raise ConstraintError(f"unsupported schema type {kind!r}")

    def _array(
        self,
        items: dict[str, Any],
        budget: Budget,
        min_items: int = 0,
        items_max: int | None = None,
        unique: bool = False,
    ) -> list[str]:
        if items.get("type") != "string":
            raise ConstraintError("only arrays of strings are supported")
        values: list[str] = []
        if "enum" in items:  # each element one of the allowed values (ids the conversation grounded)
            enum = items["enum"]  # with `unique`, a value may appear as often as it is listed (an order's items)
            first = [f' ["{v}"' for v in dict.fromkeys(enum)] + ([] if min_items else [" []"])
            pick = self.choose(first)
            if pick == " []":
                return values
            values.append(pick[3:-1])
            most = min(budget.array_items, items_max if items_max is not None else budget.array_items)
            if unique:  # an item named more often than the order holds it is an error for the store's tools
                most = min(most, len(enum))
            while len(values) < most:
                left = [v for v in dict.fromkeys(enum) if not unique or values.count(v) < enum.count(v)]
                if len(values) < min_items:  # more are required: no closing yet
                    values.append(self.choose([f', "{v}"' for v in left])[3:-1])
                    continue
                pick = self.choose(["]"] + [f', "{v}"' for v in left])
                if pick == "]":
                    return values
                values.append(pick[3:-1])
            self.feed_text("]")
            return values
        if self.choose([" []", ' ["']) == " []":
            return values
        while True:
            last = len(values) + 1 >= budget.array_items
            values.append(self.string(budget.string_tokens, "]" if last else ",]", opened=True))
            if last:
                self.feed_text("]")
                return values
            if self.choose(["]", ', "']) == "]":
                return values

    def object(self, schema: dict[str, Any], budget: Budget, lead: str = "") -> dict[str, Any]:
        """An object after `lead`: required keys in order (written by us), then optional keys the model
        picks one by one, or for a free map (no properties) keys and values the model writes."""
        props: dict[str, Any] = schema.get("properties", {})
        required = [k for k in schema.get("required", []) if k in props]
        optional = [k for k in props if k not in required]
        result: dict[str, Any] = {}
        extra = schema.get("additionalProperties")
        empty = f"{lead}{{}}"
        if not props and isinstance(extra, dict):  # a free map such as {"color": "blue"}
            if self.choose([empty, f'{lead}{{"']) == empty:
                return result
            names = schema.get("propertyNames", {}).get("enum")
            entries = 0  # entries written, not distinct keys: a model repeating one key must still stop
            while True:
                if names:  # keys from a fixed list: choose one, quote and colon included
                    key = self.choose([f'{k}":' for k in names])[:-2]
                else:
                    key = self.string(budget.string_tokens, ":", opened=True)
                    self.feed_text(":")
                entries += 1
                full = entries >= budget.object_entries
                result[key] = self.value(extra, budget, "}" if full else ",}")
                if full:
                    self.feed_text("}")
                    return result
                if self.choose(["}", ', "']) == "}":
                    return result
        limit = len(required) + budget.object_entries

        def more_after(n_done: int) -> bool:  # can another key follow once `n_done` keys are written?
            return n_done < len(required) or (bool(optional) and n_done < limit)

        refine = schema.get("x-refine")  # narrows later properties once earlier values are chosen
        for n, key in enumerate(required):
            self.feed_text(f'{lead}{{"{key}":' if n == 0 else f', "{key}":')
            closers = "," if n + 1 < len(required) else (",}" if more_after(n + 1) else "}")
            result[key] = self.value(props[key], budget, closers)
            if refine is not None:
                props = refine(result, props)
        if not required:
            pick = self.choose([empty] + [f'{lead}{{"{k}":' for k in optional])
            if pick == empty:
                return result
            key = pick[len(lead) + 2 : -2]
            optional.remove(key)
            result[key] = self.value(props[key], budget, ",}" if more_after(1) else "}")
        while optional and len(result) < limit:
            pick = self.choose(["}"] + [f', "{k}":' for k in optional])
            if pick == "}":
                return result
            key = pick[3:-2]
            optional.remove(key)
            result[key] = self.value(props[key], budget, ",}" if more_after(len(result) + 1) else "}")
        self.feed_text("}")
        return result

    def tool_call(self, tools: list[dict[str, Any]], budget: Budget) -> tuple[str, dict[str, Any]]:
        """After `<tool_call>` has been fed: the tool name and its arguments, valid by construction."""
        by_name = {t["function"]["name"]: t["function"] for t in tools}
        self.carry = ""
        self.feed_text('{"name":')
        name = self.choose([f' "{n}", "arguments":' for n in by_name])[2:].split('"', 1)[0]
        arguments = self.object(by_name[name]["parameters"], budget, lead=" ")
        self.feed_text("}" + TOOL_CLOSE)
        return name, arguments
