"""`shopassist eval zeroshot`: every method on the same LLMRank candidates, with the position-bias check.

Methods (all score the same 20 candidates per user, docs/EVALUATION.md "Zero-shot recommendation"):
random; popularity (how often an item appears in the file's histories — targets are never counted);
embedding (cosine of MiniLM title embeddings: candidate vs the mean of the last history items); and,
per LLM, pointwise P(Yes), listwise (3 shuffles, unless turned off) and the hybrids z(LLM pointwise) +
z(embedding) and z(LLM pointwise) + z(popularity); MMR re-ranking of the embedding and hybrid lists;
intra-list diversity of every top 10.
"""

import json
import random
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from assistant.recommend.llm_rank import HISTORY_SHOWN, context_text, zscore
from assistant.recommend.protocol import (
    Interaction,
    ProtocolData,
    Report,
    evaluate,
    random_expectation,
)


def random_scorer(seed: int = 0):
    def score(inter: Interaction, items: list[str]) -> list[float]:
        rng = random.Random(zlib.crc32(f"random:{seed}:{inter.user_id}".encode()))
        return [rng.random() for _ in items]

    return score


def popularity_scorer(data: ProtocolData):
    counts = Counter(i for x in data.histories for i in x.history)

    def score(_inter: Interaction, items: list[str]) -> list[float]:
        return [float(counts[i]) for i in items]

    return score


class TitleVectors:
    """MiniLM embeddings of item titles, encoded on first use (the item file holds far more than is ranked)."""

    def __init__(self, data: ProtocolData, embedder=None):
        if embedder is None:
            from retrieval.embeddings import PackagedMiniLM

            embedder = PackagedMiniLM()
        self.data, self.embedder, self.vectors = data, embedder, {}

    def __call__(self, ids: list[str]) -> np.ndarray:
        new = [i for i in dict.fromkeys(ids) if i not in self.vectors]
        if new:
            encoded = np.asarray(self.embedder.encode([self.data.titles[i] for i in new]))
            self.vectors.update(zip(new, encoded, strict=True))
        return np.stack([self.vectors[i] for i in ids])

    def diversity(self, ids: list[str]) -> float:
        from assistant.recommend.recommender import intra_list_diversity

        return intra_list_diversity(self(ids))


def embedding_scorer(
    data: ProtocolData, embedder=None, limit: int = HISTORY_SHOWN, vectors: TitleVectors | None = None
):
    vectors = vectors or TitleVectors(data, embedder)

    def score(inter: Interaction, items: list[str]) -> list[float]:
        user = vectors(list(inter.history[-limit:])).mean(axis=0)
        user = user / (np.linalg.norm(user) or 1.0)
        return (vectors(items) @ user).astype(float).tolist()

    return score


def mmr_scorer(scorer, vectors: TitleVectors, diversity: float):
    """Re-rank another scorer's list with MMR; scores are the reversed MMR positions."""
    from assistant.recommend.recommender import mmr

    def score(inter: Interaction, items: list[str]) -> list[float]:
        order = mmr(np.asarray(scorer(inter, items), dtype=np.float64), vectors(items), len(items), diversity)
        out = [0.0] * len(items)
        for pos, i in enumerate(order):
            out[i] = float(len(items) - pos)
        return out

    return score


def pointwise_scorer(ranker, data: ProtocolData):
    def score(inter: Interaction, items: list[str]) -> list[float]:
        return ranker.pointwise(context_text(data.titles, inter.history), [data.titles[i] for i in items])

    return score


def listwise_scorer(ranker, data: ProtocolData, shuffles: int = 3, shuffle: bool = True):
    def score(inter: Interaction, items: list[str]) -> list[float]:
        ctx = context_text(data.titles, inter.history)
        seed = zlib.crc32(inter.user_id.encode())
        return ranker.listwise(ctx, [data.titles[i] for i in items], shuffles=shuffles, seed=seed, shuffle=shuffle)

    return score


def hybrid_scorer(a, b, weight: float = 1.0):
    """z(a) + weight · z(b) within each candidate list."""

    def score(inter: Interaction, items: list[str]) -> list[float]:
        return (zscore(a(inter, items)) + weight * zscore(b(inter, items))).tolist()

    return score


def run(
    data: ProtocolData,
    models: list[tuple[str, object]],
    users: int = 200,
    llm_users: int | None = None,
    shuffles: int = 3,
    seed: int = 0,
    progress: bool = True,
    diversity: float = 0.3,
    listwise: bool = True,
) -> dict:
    """The full table; `models` = [(label, LLMRanker)], e.g. base and fine-tuned; MMR with weight `diversity`;
    `listwise=False` leaves out the listwise rows and the position-bias check (a pointwise-trained ranker)."""
    llm_users = llm_users or users
    vectors = TitleVectors(data)
    emb = embedding_scorer(data, vectors=vectors)
    pop = popularity_scorer(data)
    ild = vectors.diversity
    # encode every title the run will touch first, so no method's time includes the embedding model's
    for inter in data.interactions[: max(users, llm_users)]:
        vectors([*inter.history[-HISTORY_SHOWN:], *data.candidate_set(inter, seed=seed)])

    def run_one(name, scorer, n, **kw):
        return evaluate(data, name, scorer, n, seed, diversity_of=ild, **kw)

    reports: list[Report] = [
        run_one("random", random_scorer(seed), users),
        run_one("popularity", pop, users),
        run_one("embedding", emb, users),
        run_one(f"embedding + MMR {diversity}", mmr_scorer(emb, vectors, diversity), users),
    ]
    bias = {}
    for label, ranker in models:
        point = pointwise_scorer(ranker, data)
        cached: dict[tuple[str, tuple[str, ...]], list[float]] = {}

        def point_cached(inter, items, point=point, cached=cached):
            key = (inter.user_id, tuple(items))
            if key not in cached:
                cached[key] = point(inter, items)
            return cached[key]

        hybrid = hybrid_scorer(point_cached, emb)
        reports.append(run_one(f"{label} pointwise", point_cached, llm_users, progress=progress))
        if listwise:
            lists = listwise_scorer(ranker, data, shuffles)
            reports.append(run_one(f"{label} listwise", lists, llm_users, progress=progress))
        reports.append(run_one(f"{label} hybrid (pointwise + embedding)", hybrid, llm_users))
        reports.append(run_one(f"{label} hybrid + MMR {diversity}", mmr_scorer(hybrid, vectors, diversity), llm_users))
        reports.append(run_one(f"{label} hybrid (pointwise + popularity)", hybrid_scorer(point_cached, pop), llm_users))
        if listwise:  # position bias: no shuffling, the true item shown first vs last
            unshuffled = listwise_scorer(ranker, data, 1, shuffle=False)
            first = evaluate(data, f"{label} listwise, target first", unshuffled, llm_users, seed, place="first")
            last = evaluate(data, f"{label} listwise, target last", unshuffled, llm_users, seed, place="last")
            bias[label] = {"first": first.metrics()["ndcg@10"], "last": last.metrics()["ndcg@10"]}
    n = {r.method: len(r.ranks) for r in reports}
    return {
        "data": data.name,
        "users": n,
        "candidates": 20,
        "random_expectation_ndcg@10": round(random_expectation(), 4),
        "methods": {
            r.method: {**r.metrics(), "seconds_per_user": round(r.seconds / max(1, len(r.ranks)), 3)} for r in reports
        },
        "position_bias_listwise_ndcg@10": bias,
    }


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def markdown(report: dict) -> str:
    rows = [
        "| method | users | NDCG@1 | NDCG@5 | NDCG@10 (95 % CI) | Hit@1 | Hit@5 | Hit@10 | ILD@10 | s/user |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        ci = m["ndcg@10"]["ci95"]
        rows.append(
            f"| {name} | {report['users'][name]} | {m['ndcg@1']['mean']:.3f} | {m['ndcg@5']['mean']:.3f} | "
            f"{m['ndcg@10']['mean']:.3f} ({ci[0]:.3f}–{ci[1]:.3f}) | {m['hit@1']['mean']:.3f} | "
            f"{m['hit@5']['mean']:.3f} | {m['hit@10']['mean']:.3f} | "
            f"{m.get('diversity@10', {}).get('mean', float('nan')):.3f} | {m['seconds_per_user']} |"
        )
    return "\n".join(rows)
