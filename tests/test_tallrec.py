"""The ranker's fine-tuning data (finetune/tallrec.py): held-out users, the ranker's own prompt, the loss mask."""

from pathlib import Path

import pytest

from assistant.recommend.llm_rank import POINTWISE, chat_prompt
from finetune.sft import IGNORE, ConfigError
from finetune.tallrec import RankerConfig, encode, evaluation_targets, sample_pairs

DATA = Path(__file__).parent / "data" / "llmrank"


@pytest.fixture(scope="module")
def tokenizer(smollm2_checkpoint):
    from assistant.llm.transformers_backend import load_tokenizer

    return load_tokenizer(smollm2_checkpoint)


def test_held_out_users_are_every_candidate_files_users():
    targets = evaluation_targets([str(DATA / "published")])
    listed = [ln.split("\t")[0] for ln in (DATA / "published" / "published.random").read_text().splitlines() if ln]
    assert set(targets) == set(listed) and len(targets) == 8
    with pytest.raises(ConfigError, match="no LLMRank candidate file"):
        evaluation_targets([str(DATA)])


def test_examples_are_the_rankers_prompt_and_only_the_answer_is_trained(tokenizer):
    rows = [
        {"context": "This customer recently bought (oldest first):\n- Milk", "title": "Bread", "label": True},
        {"context": "This customer recently bought (oldest first):\n- Milk", "title": "Nails", "label": False},
    ]
    (yes, no), stats = encode(tokenizer, rows, 512)
    prompt = tokenizer.encode(
        chat_prompt(tokenizer, POINTWISE, context=rows[0]["context"], item="Bread"), add_special_tokens=False
    )
    assert yes["input_ids"][: len(prompt)] == prompt  # exactly what LLMRanker.pointwise reads
    for ex, word in ((yes, "Yes"), (no, "No")):
        trained = [t for t in ex["labels"] if t != IGNORE]
        assert trained == ex["input_ids"][-2:] and trained[0] == tokenizer.encode(word)[0]
    assert stats["examples"] == 2 and stats["trained_tokens"] == 4
    assert encode(tokenizer, rows, 64)[1] == {"examples": 0, "truncated": 2, "tokens": 0, "trained_tokens": 0}


def test_pairs_never_use_held_out_households_or_later_weeks():
    # targets first bought in weeks 31, 2 and 32 (Complete Journey package data)
    targets = {"household_1": "845078", "household_2": "1000840", "household_3": "6534178"}
    held = set(targets)
    config = RankerConfig(exclude=["unused"], households=6, positives=2, negatives=1, last_week=30)
    rows, about = sample_pairs(config, targets)
    assert about["households"] == 6 and about["evaluation_targets_after_last_week"] == "2 of 3"
    assert about["positives"] == about["negatives"] == 12
    assert not {r["user"] for r in rows} & held
    for r in rows:
        assert len(r["history"]) == 10 and r["item"] not in r["history"]
        assert r["context"].count("\n- ") == 10 and r["title"]


def test_a_bad_ranker_config_is_one_clear_error(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("households: 3\n")
    with pytest.raises(ConfigError, match="'exclude' must list"):
        RankerConfig.from_yaml(bad)
    bad.write_text("exclude: [x]\nepochs: 2\n")
    with pytest.raises(ConfigError, match="a ranker config has the fields"):
        RankerConfig.from_yaml(bad)


def test_the_shipped_ranker_ranks_a_customers_recommendations(store, search):
    """The real models/ranker-smollm2, through the product: `recommend` picks it for a customer with
    purchases and every item carries its P(Yes)."""
    from assistant.recommend.recommender import FineTunedRanker, Recommender

    rec = Recommender(store, search, fine_tuned=FineTunedRanker())
    out = rec.recommend("what should I buy next?", "mei_kovacs_8020", k=8)
    assert rec.last_method == "ranker" and rec.fine_tuned.failed is None
    assert len(out) == 8 and [r.score for r in out] == sorted((r.score for r in out), reverse=True)
    assert all(0.0 < float(r.facts["ranker P(Yes)"]) < 1.0 for r in out)
    assert rec.fine_tuned.get().forward_calls <= 4  # one shared prefix, then batches of candidates
