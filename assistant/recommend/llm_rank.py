"""Zero-shot LLM ranking by prompting, read from next-token logits (no generation).

- pointwise: for each candidate, P("Yes") against P("No") as the first answer token to "Would this
  customer want <item>?" (`prompts/rank_pointwise.v1.md`); all candidates of a request go through the
  model in batches, padded on the left with explicit positions, so a batch scores as its rows would alone.
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
LETTERS = string.ascii_uppercase


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

    def _prompt(self, user_text: str) -> str:
        return self.tok.apply_chat_template(
            [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
        )

    def last_logits(self, texts: list[str]) -> torch.Tensor:
        """Next-token logits after each text, [len(texts), vocab], in batches of `batch_size`."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            rows = [self.tok.encode(t, add_special_tokens=False) for t in texts[s : s + self.batch_size]]
            width = max(len(r) for r in rows)
            pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
            ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with self.chat._lock, torch.inference_mode():
                logits = self.net(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
            self.forward_calls += 1
            out.append(logits.float())
        return torch.cat(out)

    def pointwise(self, context: str, items: list[str]) -> list[float]:
        texts = [self._prompt(render(POINTWISE, context=context, item=item)) for item in items]
        logits = self.last_logits(texts)
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
        texts = []
        for order in orders:
            listing = "\n".join(f"{LETTERS[j]}. {items[i]}" for j, i in enumerate(order))
            texts.append(self._prompt(render(LISTWISE, context=context, items=listing)))
        logits = self.last_logits(texts)
        total = np.zeros(len(items))
        for row, order in zip(logits, orders, strict=True):
            logp = torch.log_softmax(row[self.letters[: len(items)]], dim=0).numpy()
            for j, i in enumerate(order):
                total[i] += logp[j]
        return (total / len(orders)).tolist()
