"""The LLMRank protocol (Hou et al., ECIR 2024) and its files, so results compare with published ones.

Files (tab-separated, RecBole atomic header `name:type`):
- `<name>.item`: `item_id:token  title:token_seq` — one item per line;
- `<name>.test.inter`: `user_id:token  item_id_list:token_seq  item_id:token` — the user's chronological
  history (space-separated ids, oldest first) and the true next item;
- `<name>.random`: `user_id:token  candidate_item_id_list:token_seq` — random candidate ids per user
  (LLMRank's own files have no header line; both forms are read).

As LLMRank's trainer does, the users evaluated are those of the candidate file, in its order, each
with their line of `.test.inter` (which may hold many more users); candidate ids the item file does
not know are skipped (LLMRank maps them to its padding item).

For each user: the first 19 candidates that are neither the target nor in the history, plus the
target, shuffled (seeded); a method scores the 20; the target's rank gives NDCG@1/5/10 and
Hit@1/5/10; 95 % intervals by bootstrap over users.
"""

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.errors import ShopassistError

N_CANDIDATES = 20
KS = (1, 5, 10)


class ProtocolFileError(ShopassistError, ValueError):
    """A malformed protocol file; the message names the file and line."""


@dataclass(frozen=True)
class Interaction:
    user_id: str
    history: tuple[str, ...]  # oldest first
    target: str


@dataclass
class ProtocolData:
    titles: dict[str, str]
    interactions: list[Interaction]  # the evaluated users: the candidate file's, in its order
    candidates: dict[str, list[str]]
    name: str = ""
    histories: list[Interaction] = field(default_factory=list)  # every line of .test.inter (popularity)

    def __post_init__(self) -> None:
        self.histories = self.histories or list(self.interactions)

    def candidate_set(self, inter: Interaction, n: int = N_CANDIDATES, seed: int = 0) -> list[str]:
        """The first n-1 candidates not the target nor in the history, plus the target, shuffled."""
        pool = self.candidates.get(inter.user_id)
        if pool is None:
            raise ProtocolFileError(f"user {inter.user_id} has no line in the candidate file")
        seen = set(inter.history) | {inter.target}
        picked = []
        for item in pool:
            if item not in seen and item not in picked:
                picked.append(item)
            if len(picked) == n - 1:
                break
        if len(picked) < n - 1:
            raise ProtocolFileError(f"user {inter.user_id}: only {len(picked)} usable candidates, {n - 1} needed")
        items = [*picked, inter.target]
        random.Random(f"{seed}:{inter.user_id}").shuffle(items)
        return items


def _rows(path: Path, columns: int, header_prefix: str | None) -> list[tuple[int, list[str]]]:
    if not path.is_file():
        raise ProtocolFileError(f"{path}: no such file")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if n == 1 and header_prefix is not None and line.startswith(header_prefix):
                continue
            parts = line.split("\t")
            if len(parts) != columns:
                raise ProtocolFileError(f"{path} line {n}: expected {columns} tab-separated fields, got {len(parts)}")
            if any(not p.strip() for p in parts):
                raise ProtocolFileError(f"{path} line {n}: empty field")
            out.append((n, [p.strip() for p in parts]))
    if not out:
        raise ProtocolFileError(f"{path}: no data lines")
    return out


def read_items(path: Path) -> dict[str, str]:
    titles = {}
    for n, (item_id, title) in _rows(Path(path), 2, "item_id:"):
        if item_id in titles:
            raise ProtocolFileError(f"{path} line {n}: item {item_id} listed twice")
        titles[item_id] = title
    return titles


def read_interactions(path: Path, titles: dict[str, str]) -> list[Interaction]:
    out, users = [], set()
    for n, (user, history, target) in _rows(Path(path), 3, "user_id:"):
        items = tuple(history.split())
        unknown = [i for i in (*items, target) if i not in titles]
        if unknown:
            raise ProtocolFileError(f"{path} line {n}: item id(s) not in the item file: {', '.join(unknown[:3])}")
        if user in users:
            raise ProtocolFileError(f"{path} line {n}: user {user} listed twice")
        users.add(user)
        out.append(Interaction(user, items, target))
    return out


def read_candidates(path: Path, titles: dict[str, str]) -> dict[str, list[str]]:
    """User → candidate ids, in the file's order; ids the item file does not know are left out."""
    out = {}
    for n, (user, items) in _rows(Path(path), 2, "user_id:"):
        if user in out:
            raise ProtocolFileError(f"{path} line {n}: user {user} listed twice")
        ids = [i for i in items.split() if i in titles]
        if not ids:
            raise ProtocolFileError(f"{path} line {n}: none of the candidate ids is in the item file")
        out[user] = ids
    return out


def load(folder: Path, name: str | None = None) -> ProtocolData:
    """`<folder>/<name>.item`, `.test.inter` and `.random`; name defaults to the folder's name."""
    folder = Path(folder)
    name = name or folder.name
    titles = read_items(folder / f"{name}.item")
    inters = read_interactions(folder / f"{name}.test.inter", titles)
    cands = read_candidates(folder / f"{name}.random", titles)
    by_user = {x.user_id: x for x in inters}
    missing = [u for u in cands if u not in by_user]
    if missing:
        raise ProtocolFileError(
            f"{folder / f'{name}.random'}: {len(missing)} user(s) have no line in {name}.test.inter, "
            f"e.g. {', '.join(missing[:3])}"
        )
    return ProtocolData(titles, [by_user[u] for u in cands], cands, name, histories=inters)


def write(folder: Path, name: str, titles: dict[str, str], inters: list[Interaction], cands: dict[str, list[str]]):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)

    def clean(text: str) -> str:
        return " ".join(str(text).replace("\t", " ").split())

    with (folder / f"{name}.item").open("w", encoding="utf-8") as f:
        f.write("item_id:token\ttitle:token_seq\n")
        for i, t in titles.items():
            f.write(f"{i}\t{clean(t)}\n")
    with (folder / f"{name}.test.inter").open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id_list:token_seq\titem_id:token\n")
        for x in inters:
            f.write(f"{x.user_id}\t{' '.join(x.history)}\t{x.target}\n")
    with (folder / f"{name}.random").open("w", encoding="utf-8") as f:
        f.write("user_id:token\tcandidate_item_id_list:token_seq\n")
        for u, ids in cands.items():
            f.write(f"{u}\t{' '.join(ids)}\n")


# -- metrics ----------------------------------------------------------------------------------------------


def target_rank(scores: list[float], target_index: int, tie_seed: int = 0) -> int:
    """1-based rank of the target; ties are broken by a seeded random order (the same for every method)."""
    rng = random.Random(tie_seed)
    keys = [rng.random() for _ in scores]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], keys[i]))
    return order.index(target_index) + 1


def ndcg_at(rank: int, k: int) -> float:
    return 1.0 / math.log2(rank + 1) if rank <= k else 0.0


def hit_at(rank: int, k: int) -> float:
    return 1.0 if rank <= k else 0.0


def random_expectation(n: int = N_CANDIDATES, k: int = 10) -> float:
    """NDCG@k of a random ranking of n candidates with one relevant item (0.2271 for n=20, k=10)."""
    return sum(ndcg_at(r, k) for r in range(1, n + 1)) / n


@dataclass
class Report:
    method: str
    ranks: list[int]
    seconds: float = 0.0
    diversity: list[float] = field(default_factory=list)  # intra-list diversity of each user's top 10

    def metrics(self, boot: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
        ranks = np.asarray(self.ranks)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(ranks), size=(boot, len(ranks)))
        out = {}
        for k in KS:
            for name, fn in (("ndcg", ndcg_at), ("hit", hit_at)):
                values = np.array([fn(int(r), k) for r in ranks])
                means = values[idx].mean(axis=1)
                out[f"{name}@{k}"] = {
                    "mean": round(float(values.mean()), 4),
                    "ci95": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)],
                }
        if self.diversity:
            out["diversity@10"] = {"mean": round(float(np.mean(self.diversity)), 4)}
        return out


# scorer: (interaction, candidate ids in presented order) -> one score per candidate, higher = better
Scorer = Callable[[Interaction, list[str]], list[float]]


def evaluate(
    data: ProtocolData,
    method: str,
    scorer: Scorer,
    users: int = 200,
    seed: int = 0,
    place: str | None = None,
    progress: bool = False,
    diversity_of: Callable[[list[str]], float] | None = None,
) -> Report:
    """Rank each user's 20 candidates with `scorer`; `place` = "first"/"last" puts the target there instead of
    shuffling (the position-bias check)."""
    import time

    from tqdm import tqdm

    start = time.perf_counter()
    ranks, diversity = [], []
    for inter in tqdm(data.interactions[:users], desc=method, disable=not progress):
        items = data.candidate_set(inter, seed=seed)
        if place is not None:
            items.remove(inter.target)
            items = [inter.target, *items] if place == "first" else [*items, inter.target]
        scores = scorer(inter, items)
        if len(scores) != len(items):
            raise ValueError(f"{method} returned {len(scores)} scores for {len(items)} candidates")
        tie_seed = zlib.crc32(f"{seed}:{inter.user_id}".encode())
        ranks.append(target_rank(list(scores), items.index(inter.target), tie_seed=tie_seed))
        if diversity_of is not None:
            top = [items[i] for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:10]]
            diversity.append(diversity_of(top))
    return Report(method, ranks, time.perf_counter() - start, diversity)
