"""DCN-v2 with DIN-style attention over the user's recent purchases.

Inputs (`assistant.ranking.features.Batch`): categorical fields -> embeddings; the recent-items history
-> attention-pooled with the candidate item as query (Zhou et al. 2018, DIN) and mean-pooled; dense
features as they are. The concatenation feeds a cross network (Wang et al. 2021, DCN-v2: x_{l+1} =
x0 * (W x_l + b) + x_l) in parallel with an MLP; one logit out.
"""

import torch
from torch import nn


class AttentionPooling(nn.Module):
    """DIN activation unit: weight each history item by an MLP of (query, key, q-k, q*k); no softmax."""

    def __init__(self, dim: int, hidden: int = 32):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * dim, hidden), nn.PReLU(), nn.Linear(hidden, 1))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = query.unsqueeze(1).expand_as(keys)
        w = self.mlp(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        w = w.masked_fill(~mask, 0.0)
        return (w.unsqueeze(-1) * keys).sum(1)


class CrossNetV2(nn.Module):
    def __init__(self, width: int, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class DCNv2(nn.Module):
    def __init__(
        self,
        cardinalities: list[int],
        n_dense: int,
        item_field: int = 1,
        history_columns: tuple[int, ...] = (),
        dim: int = 16,
        cross_layers: int = 2,
        hidden: tuple[int, ...] = (256, 128),
        dropout: float = 0.1,
    ):
        super().__init__()
        self.item_field = item_field
        self.history_columns = tuple(history_columns)  # sparse columns whose tables also embed history items
        self.embeddings = nn.ModuleList(nn.Embedding(n, dim) for n in cardinalities)
        for emb in self.embeddings:
            nn.init.normal_(emb.weight, std=0.01)
        self.attention = AttentionPooling(dim)
        width = dim * (len(cardinalities) + 2) + n_dense
        self.cross = CrossNetV2(width, cross_layers)
        mlp, prev = [], width
        for h in hidden:
            mlp += [nn.Linear(prev, h), nn.ReLU(), nn.Dropout(dropout)]
            prev = h
        self.deep = nn.Sequential(*mlp)
        self.head = nn.Linear(width + prev, 1)

    def forward(
        self, sparse: torch.Tensor, dense: torch.Tensor, history: torch.Tensor, history_attrs: torch.Tensor
    ) -> torch.Tensor:
        fields = [emb(sparse[:, i]) for i, emb in enumerate(self.embeddings)]
        mask = history > 0
        # an item (candidate or history) is its id embedding plus those of the history fields (category, type...)
        query, hist = fields[self.item_field], self.embeddings[self.item_field](history)
        for j, col in enumerate(self.history_columns):
            query = query + fields[col]
            hist = hist + self.embeddings[col](history_attrs[:, :, j])
        attended = self.attention(query, hist, mask)
        count = mask.sum(1, keepdim=True).clamp(min=1)
        mean = (hist * mask.unsqueeze(-1)).sum(1) / count
        x0 = torch.cat([*fields, attended, mean, dense], dim=1)
        return self.head(torch.cat([self.cross(x0), self.deep(x0)], dim=1)).squeeze(-1)
