"""Zero-shot LLM ranking by prompting, read from next-token logits (no generation).

- pointwise: for each candidate, P("Yes") against P("No") as the first answer token to "Would this
  customer want <item>?" (`prompts/rank_pointwise.v1.md`); the prompt part shared by all candidates
  (instructions, the customer's history) runs once, then the candidates go through in batches on its
  KV cache, so a batch scores as its rows would alone.
- listwise: the candidates as a lettered list (`prompts/rank_listwise.v1.md`); the distribution over the
  letter tokens A, B, ... at the answer is the model's ranking (one forward pass per ordering, as in
  single-token listwise reranking). Against position bias the list is shown in several seeded
  shuffles and each item's log-probabilities are averaged.
"""

import random
import string

import numpy as np
import torch

from assistant.prompts import render

POINTWISE = "rank_pointwise.v1"
LISTWISE = "rank_listwise.v1"
TYPE_FIT = "type_fit.v1"
LETTERS = string.ascii_uppercase
HISTORY_SHOWN = 10  # the most recent history items shown to the LLM (LLMRank uses up to 50; CPU budget)


def context_text(titles: dict[str, str], history: tuple[str, ...], limit: int = HISTORY_SHOWN) -> str:
    """The customer part of the pointwise prompt: the evaluation, the fine-tuning and the recommender all
    show a history this way, so the fine-tuned ranker reads in serving what it was trained on."""
    recent = history[-limit:]
    lines = "\n".join(f"- {titles[i]}" for i in recent)
    return f"This customer recently bought (oldest first):\n{lines}"


def zscore(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return (v - v.mean()) / (v.std() or 1.0)


def chat_prompt(tokenizer, template: str, **variables: str) -> str:
    """A ranking prompt as the model reads it: one chat-formatted user turn, open for the answer token.
    The ranker's fine-tuning (`finetune.tallrec`) renders its examples with this too."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": render(template, **variables)}], tokenize=False, add_generation_prompt=True
    )


class LLMRanker:
    def __init__(self, chat_model, batch_size: int = 10):
        """`chat_model`: a `TransformersChatModel` (its network, tokenizer and lock are shared)."""
        self.chat = chat_model
        self.tok = chat_model.tokenizer
        self.net = chat_model.model
        self.batch_size = batch_size
        self.name = chat_model.name
        self.yes, self.no = self._token("Yes"), self._token("No")
        self.letters = [self._token(c) for c in LETTERS]
        self.forward_calls = 0  # counted, so tests can check that scoring is batched

    def _token(self, text: str) -> int:
        ids = self.tok.encode(text, add_special_tokens=False)
        return ids[0]

    def _split_prompt(self, template: str, slot: str, **variables: str) -> tuple[str, str]:
        """The chat-formatted prompt cut where `slot` goes: (shared prefix, suffix after the slot)."""
        marker = "\x00SLOT\x00"
        prefix, suffix = chat_prompt(self.tok, template, **{slot: marker}, **variables).split(marker)
        return prefix, suffix

    def next_token_logits(self, prefix: str, middles: list[str], suffix: str) -> torch.Tensor:
        """Next-token logits after `prefix + middle + suffix` for each middle, [len(middles), vocab].

        The shared prefix is run once and its KV cache copied into each batch of `batch_size` rows; rows are
        padded on the right and read at their own last token, so a row scores the same in any batch.
        """
        import copy

        from transformers import DynamicCache

        pre = self.tok.encode(prefix, add_special_tokens=False)
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        out = []
        with self.chat._lock, torch.inference_mode():
            cache = DynamicCache(config=self.net.config)
            self.net(input_ids=torch.tensor([pre]), past_key_values=cache, use_cache=True, logits_to_keep=1)
            self.forward_calls += 1
            for s in range(0, len(middles), self.batch_size):
                rows = [self.tok.encode(m + suffix, add_special_tokens=False) for m in middles[s : s + self.batch_size]]
                width = max(len(r) for r in rows)
                ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
                mask = torch.tensor([[1] * (len(pre) + len(r)) + [0] * (width - len(r)) for r in rows])
                positions = torch.arange(len(pre), len(pre) + width).repeat(len(rows), 1)
                batch_cache = copy.deepcopy(cache)
                batch_cache.batch_repeat_interleave(len(rows))
                logits = self.net(
                    input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=batch_cache
                ).logits
                self.forward_calls += 1
                last = torch.tensor([len(r) - 1 for r in rows])
                out.append(logits[torch.arange(len(rows)), last].float())
        return torch.cat(out)

    def pointwise(self, context: str, items: list[str]) -> list[float]:
        prefix, suffix = self._split_prompt(POINTWISE, "item", context=context)
        logits = self.next_token_logits(prefix, items, suffix)
        pair = torch.stack([logits[:, self.yes], logits[:, self.no]], dim=1)
        return torch.softmax(pair, dim=1)[:, 0].tolist()

    def type_fit(self, request: str, types: list[str]) -> list[float]:
        """P(Yes) that each product type suits the request: the model's reading of a need ("a gift for a
        hiker") as product types, one shared-prefix batch over the catalog's types."""
        prefix, suffix = self._split_prompt(TYPE_FIT, "item", request=request)
        logits = self.next_token_logits(prefix, types, suffix)
        pair = torch.stack([logits[:, self.yes], logits[:, self.no]], dim=1)
        return torch.softmax(pair, dim=1)[:, 0].tolist()

    def listwise(self, context: str, items: list[str], shuffles: int = 3, seed: int = 0, shuffle: bool = True):
        """Mean log-probability of each item's letter over `shuffles` orderings (the given order if not shuffle)."""
        if len(items) > len(LETTERS):
            raise ValueError(f"listwise ranking takes at most {len(LETTERS)} candidates, got {len(items)}")
        rng = random.Random(seed)
        orders = []
        for s in range(shuffles if shuffle else 1):
            order = list(range(len(items)))
            if shuffle and s > 0:
                rng.shuffle(order)
            orders.append(order)
        listings = ["\n".join(f"{LETTERS[j]}. {items[i]}" for j, i in enumerate(order)) for order in orders]
        prefix, suffix = self._split_prompt(LISTWISE, "items", context=context)
        logits = self.next_token_logits(prefix, listings, suffix)
        total = np.zeros(len(items))
        for row, order in zip(logits, orders, strict=True):
            logp = torch.log_softmax(row[self.letters[: len(items)]], dim=0).numpy()
            for j, i in enumerate(order):
                total[i] += logp[j]
        return (total / len(orders)).tolist()
