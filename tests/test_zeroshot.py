"""Zero-shot recommendation: LLMRank files and protocol, metrics, LLM scoring, reasons, MMR, the CLI."""

import json
import math
import re

import numpy as np
import pytest

from assistant.recommend import protocol
from assistant.recommend.protocol import ProtocolFileError, Report, ndcg_at, target_rank
from tests.conftest import DATA

TINY = DATA / "llmrank" / "tiny"


@pytest.fixture(scope="module")
def tiny():
    return protocol.load(TINY)


# -- files ---------------------------------------------------------------------------------------------------


def test_reads_the_recbole_files(tiny):
    assert len(tiny.titles) == 30 and tiny.titles["100"] == "Milk Small pack"
    assert [x.user_id for x in tiny.interactions] == [f"u{i}" for i in range(6)]
    assert tiny.interactions[0].history == ("127", "112", "124", "128", "113") and tiny.interactions[0].target == "101"
    assert len(tiny.candidates["u0"]) == 25  # the .random file has no header, as LLMRank's own


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("tiny.item", "item_id:token\ttitle:token_seq\n1\tMilk\n2\n", "tiny.item line 3: expected 2 tab-separated"),
        ("tiny.item", "1\tMilk\n1\tBread\n", "tiny.item line 2: item 1 listed twice"),
        ("tiny.test.inter", "u1\t1 2\t99\n", "tiny.test.inter line 1: item id\\(s\\) not in the item file: 99"),
        ("tiny.test.inter", "u1\t1\t2\nu1\t2\t1\n", "line 2: user u1 listed twice"),
        ("tiny.test.inter", "u1\t \t2\n", "line 1: empty field"),
        ("tiny.random", "u1\t77 78\n", "tiny.random line 1: none of the candidate ids is in the item file"),
        ("tiny.random", "u1\t1 2\nu1\t2 1\n", "tiny.random line 2: user u1 listed twice"),
        ("tiny.random", "u1\t1 2\nu9\t1 2\n", "1 user\\(s\\) have no line in tiny.test.inter, e.g. u9"),
        ("tiny.random", "", "no data lines"),
    ],
)
def test_malformed_lines_name_the_line(tmp_path, file, content, message):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.item").write_text("item_id:token\ttitle:token_seq\n1\tMilk\n2\tBread\n")
    (folder / "tiny.test.inter").write_text("user_id:token\titem_id_list:token_seq\titem_id:token\nu1\t1\t2\n")
    (folder / "tiny.random").write_text("u1\t1 2\n")
    (folder / file).write_text(content)
    with pytest.raises(ProtocolFileError, match=message):
        protocol.load(folder)


def test_llmranks_published_layout_evaluates_the_candidate_files_users_in_its_order():
    # laid out as LLMRank's datasets: .random without a header, listing 8 of the 40 users of .test.inter,
    # ids that do not start at 0, in an order of its own, with a candidate id the item file does not know
    data = protocol.load(DATA / "llmrank" / "published")
    order = [
        line.split("\t")[0]
        for line in (DATA / "llmrank" / "published" / "published.random").read_text().split("\n")
        if line
    ]
    assert [x.user_id for x in data.interactions] == order and len(order) == 8
    assert len(data.histories) == 40  # popularity still counts every history
    assert all("999999" not in ids for ids in data.candidates.values())
    report = protocol.evaluate(data, "oracle", lambda x, items: [1.0 if i == x.target else 0.0 for i in items], users=3)
    assert len(report.ranks) == 3 and set(report.ranks) == {1}  # --users N: the first N of the candidate file
    evaluated = []
    protocol.evaluate(data, "seen", lambda x, items: evaluated.append(x.user_id) or [0.0] * len(items), users=5)
    assert evaluated == order[:5]


def test_candidate_sets_follow_the_protocol(tiny):
    for inter in tiny.interactions:
        items = tiny.candidate_set(inter, seed=0)
        assert len(items) == 20 and len(set(items)) == 20
        assert items.count(inter.target) == 1  # the target once, never leaked twice
        assert not set(items) & set(inter.history)  # nothing from the history
        others = [i for i in tiny.candidates[inter.user_id] if i not in inter.history and i != inter.target][:19]
        assert sorted(others + [inter.target]) == sorted(items)  # the first 19 usable, in file order
        assert tiny.candidate_set(inter, seed=0) == items  # deterministic
    inter = tiny.interactions[0]
    assert tiny.candidate_set(inter, seed=1) != tiny.candidate_set(inter, seed=0)


def test_too_few_candidates_is_a_clear_error(tiny):
    short = protocol.ProtocolData(tiny.titles, tiny.interactions, {"u0": ["100", "102"]}, "x")
    with pytest.raises(ProtocolFileError, match="u0: only"):
        short.candidate_set(tiny.interactions[0])


def test_converter_files_round_trip(tmp_path, tiny):
    protocol.write(tmp_path / "copy", "copy", tiny.titles, tiny.interactions, tiny.candidates)
    again = protocol.load(tmp_path / "copy")
    assert again.titles == tiny.titles and again.interactions == tiny.interactions
    assert again.candidates == tiny.candidates


def test_store_orders_become_protocol_files_for_the_transfer_evaluation(tmp_path, store):
    """`shopassist data zeroshot --store tau-retail`: histories are each customer's purchases in order."""
    from assistant.recommend.convert import store_pack
    from assistant.recommend.recommender import Recommender

    counts = store_pack(tmp_path / "tau", store, users=30)
    data = protocol.load(tmp_path / "tau")
    assert counts["test_users"] == len(data.interactions) == 30 <= counts["eligible_users"]
    rec = Recommender(store, None)
    for inter in data.interactions:
        bought = list(dict.fromkeys(rec.user_history(inter.user_id)))
        assert [*inter.history, inter.target] == bought and len(inter.history) >= 4
        assert len(data.candidate_set(inter)) == protocol.N_CANDIDATES
    assert all(data.titles[i].split(" (")[0] for x in data.interactions for i in x.history)


# -- metrics -------------------------------------------------------------------------------------------------


def test_metrics_against_hand_computed_values():
    assert ndcg_at(1, 10) == 1.0 and ndcg_at(3, 10) == 0.5 and ndcg_at(11, 10) == 0.0
    assert ndcg_at(2, 5) == pytest.approx(1 / math.log2(3))
    assert protocol.random_expectation() == pytest.approx(0.2271, abs=1e-4)
    assert target_rank([0.1, 0.9, 0.5], 2) == 2 and target_rank([0.1, 0.9, 0.5], 1) == 1
    m = Report("x", [1, 3, 11]).metrics()
    assert m["ndcg@10"]["mean"] == pytest.approx(0.5, abs=1e-4)
    assert m["hit@1"]["mean"] == pytest.approx(1 / 3, abs=1e-4) and m["hit@10"]["mean"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    assert m["ndcg@5"]["mean"] == pytest.approx(0.5, abs=1e-4)
    low, high = m["ndcg@10"]["ci95"]
    assert low <= 0.5 <= high


def test_evaluate_with_oracles_and_positions(tiny):
    best = protocol.evaluate(tiny, "oracle", lambda x, items: [1.0 if i == x.target else 0.0 for i in items])
    worst = protocol.evaluate(tiny, "anti", lambda x, items: [0.0 if i == x.target else 1.0 for i in items])
    assert best.ranks == [1] * 6 and worst.ranks == [20] * 6
    first = protocol.evaluate(tiny, "pos", lambda x, items: [-k for k in range(len(items))], place="first")
    last = protocol.evaluate(tiny, "pos", lambda x, items: [-k for k in range(len(items))], place="last")
    assert first.ranks == [1] * 6 and last.ranks == [20] * 6


def test_baselines_score_every_candidate(tiny, embedder):
    from assistant.recommend import zeroshot_eval as z

    for scorer in (z.random_scorer(), z.popularity_scorer(tiny), z.embedding_scorer(tiny, embedder)):
        report = protocol.evaluate(tiny, "b", scorer)
        assert len(report.ranks) == 6 and all(1 <= r <= 20 for r in report.ranks)


# -- LLM scoring (a 2-layer random Llama: the mechanics, not the quality) ------------------------------------


@pytest.fixture(scope="module")
def llm(garbage_checkpoint):
    from assistant.llm.transformers_backend import TransformersChatModel
    from assistant.recommend.llm_rank import LLMRanker

    return LLMRanker(TransformersChatModel(str(garbage_checkpoint), dtype="float32", threads=1), batch_size=4)


def test_pointwise_is_batched_and_deterministic(llm):
    items = [f"item number {i}" for i in range(10)]
    before = llm.forward_calls
    first = llm.pointwise("This customer recently bought: milk", items)
    assert llm.forward_calls - before == 1 + 3  # the shared prefix once, then 10 items in batches of 4
    assert len(first) == 10 and all(0.0 < p < 1.0 for p in first)
    assert llm.pointwise("This customer recently bought: milk", items) == first
    llm.batch_size = 1
    try:
        alone = llm.pointwise("This customer recently bought: milk", items)
    finally:
        llm.batch_size = 4
    assert np.allclose(alone, first, atol=1e-4)  # left padding with explicit positions changes nothing


def test_listwise_aggregates_shuffles(llm):
    items = [f"product {c}" for c in "abcdefg"]
    scores = llm.listwise("Request: snacks", items, shuffles=3, seed=5)
    assert len(scores) == 7 and all(s < 0 for s in scores)  # mean log-probabilities
    assert llm.listwise("Request: snacks", items, shuffles=3, seed=5) == scores
    with pytest.raises(ValueError, match="at most 26"):
        llm.listwise("x", [str(i) for i in range(27)])


# -- the product recommender ----------------------------------------------------------------------------------


class FakeLLM:
    """Unit-test stand-in: prefers cheaper items (scores from the prompt text, deterministic)."""

    def pointwise(self, context, items):
        return [1.0 / (1.0 + float(re.search(r"\$([\d.]+)$", t).group(1))) for t in items]

    def listwise(self, context, items):
        return self.pointwise(context, items)


def test_recommendations_have_grounded_reasons(store, search):
    from assistant.recommend.recommender import Recommender

    rec = Recommender(store, search, llm=FakeLLM())
    products = store.products()
    variants = {iid: (p, v) for p in products.values() for iid, v in p["variants"].items()}
    for user in (None, "mei_kovacs_8020"):
        out = rec.recommend("waterproof hiking boots under $250", user, k=8)
        assert 1 <= len(out) <= 8
        assert [r.score for r in out] == sorted((r.score for r in out), reverse=True)
        for r in out:
            product, variant = variants[r.item_id]
            assert r.facts["price"] == f"${variant['price']:.2f}" and variant["price"] <= 250
            assert r.facts["category"] == product.get("category", product["name"])
            for key in ("brand", "size", "color", "material"):
                if key in r.facts:
                    assert r.facts[key] == variant["options"][key]
            text = r.reason
            for value in r.facts.values():
                text = text.replace(value, "")
            assert not re.search(r"\d", text), f"a number the facts do not hold: {r.reason}"
    with_user = rec.recommend("something nice", "mei_kovacs_8020", k=20, method="none")
    assert any("bought_before" in r.sources or "co_purchase" in r.sources for r in with_user)


class FakeFineTuned:
    """Unit-test stand-in for `FineTunedRanker`: loads nothing, scores as FakeLLM does."""

    available, name = True, "fine-tuned ranker (fake)"

    def get(self):
        return self

    def pointwise(self, context, items):  # shorter titles first, strictly inside (0, 1)
        assert context.startswith("This customer recently bought (oldest first):\n- ")  # as it was trained
        return [1.0 / (2.0 + len(t)) for t in items]


def test_auto_ranks_an_open_request_by_the_fine_tuned_ranker_and_a_stated_need_by_the_request(store, search):
    from assistant.recommend.recommender import Recommender, RecommendError

    rec = Recommender(store, search, fine_tuned=FakeFineTuned())
    out = rec.recommend("what should I buy next?", "mei_kovacs_8020", k=10)
    line = rec.describe(len(out))
    assert rec.last_method == "ranker" and "fine-tuned ranker (fake)" in line and "candidate order" not in line
    assert [r.score for r in out] == sorted((r.score for r in out), reverse=True)
    for r in out:
        assert "ranker" in r.sources and 0.0 < float(r.facts["ranker P(Yes)"]) < 1.0
        text = r.reason
        for value in r.facts.values():
            text = text.replace(value, "")
        assert not re.search(r"\d", text), f"a number the facts do not hold: {r.reason}"
    need = rec.recommend("something for the outdoors", "mei_kovacs_8020", k=5)  # a stated need: the request
    assert rec.last_method == "none" and "ranks open-ended requests" in rec.describe(5)
    assert [r.item_id for r in need] == [r.item_id for r in rec.recommend("something for the outdoors", None, k=5)]
    rec.recommend("something for the outdoors", "mei_kovacs_8020", 5, "ranker")  # asked for: ranker + request
    assert rec.last_method == "ranker" and "+ candidate order" in rec.describe(5)
    assert not any("search" in r.sources for r in out)  # an open request gives search nothing to look for
    sellers = rec.recommend("surprise me under $100", None, k=5)  # no customer: best sellers within the bound
    assert rec.last_method == "none" and len(sellers) == 5
    assert all(r.sources == ["popular"] and r.price <= 100 for r in sellers)
    with pytest.raises(RecommendError, match="ranks by a customer's purchases"):
        rec.recommend("boots", None, 5, "ranker")
    with pytest.raises(RecommendError, match="not installed here"):
        Recommender(store, search).recommend("boots", "mei_kovacs_8020", 5, "ranker")


def test_a_ranker_that_cannot_load_falls_back_to_the_candidate_order(store, search, tmp_path, capsys):
    from assistant.recommend.recommender import FineTunedRanker, Recommender

    (tmp_path / "adapter_config.json").write_text("{not json")
    rec = Recommender(store, search, fine_tuned=FineTunedRanker(tmp_path))
    out = rec.recommend("surprise me", "mei_kovacs_8020", k=3)
    assert len(out) == 3 and rec.last_method == "none" and not rec.fine_tuned.available
    assert "the fine-tuned ranker did not load" in capsys.readouterr().err


def test_the_method_line_names_only_the_sources_used_and_an_empty_list_says_why(store, search):
    from assistant.recommend.recommender import Recommender

    rec = Recommender(store, search)
    out = rec.recommend("a t-shirt, under $60", None, k=3)
    assert all(r.facts.get("matched") == "t-shirt" for r in out if "search" in r.sources)  # the need, no comma
    assert "the customer's purchases" not in rec.describe(len(out), "none")  # no customer was given
    rec.recommend("something nice", "mei_kovacs_8020", k=20)
    assert "the customer's purchases" in rec.describe(20, "none")
    assert rec.recommend("a backpack under $100", None, k=3) == []  # the cheapest backpack is $193.38
    assert rec.why_empty("a backpack under $100") == (
        "no Backpack is under $100.00; the nearest is Backpack at $193.38 (item 9851293632)"
    )
    assert "no product type of this store" in rec.why_empty("snacks for a movie night under $10")


def test_bad_requests_get_clear_errors(store, search):
    from assistant.recommend.recommender import Recommender, RecommendError

    rec = Recommender(store, search)
    for args, message in [
        (("",), "request is empty"),
        (("x" * 2000,), "2000 characters"),
        (("boots", "nobody_123"), "unknown customer 'nobody_123'"),
        (("boots", None, 0), "k must be between 1 and 50"),
        (("boots", None, 5, "magic"), "unknown method 'magic'"),
    ]:
        with pytest.raises(RecommendError, match=message):
            rec.recommend(*args)


def test_mmr_trades_relevance_for_diversity():
    from assistant.recommend.recommender import intra_list_diversity, mmr

    vectors = np.array([[1, 0], [0.99, 0.01], [0.98, 0.02], [0, 1], [0.1, 0.9]], dtype=np.float32)
    relevance = np.array([1.0, 0.95, 0.9, 0.5, 0.4])
    assert mmr(relevance, vectors, 3, 0.0) == [0, 1, 2]
    diverse = mmr(relevance, vectors, 3, 0.7)
    assert diverse[0] == 0 and 3 in diverse
    assert intra_list_diversity(vectors[diverse]) > intra_list_diversity(vectors[[0, 1, 2]])


def test_recommend_cli_without_a_model(tau_state, tau_collection, monkeypatch, capsys):
    from ui.cli import main

    monkeypatch.setenv("SHOPASSIST_STATE_DIR", str(tau_state))
    assert main(["recommend", "a tent for camping under $300", "--method", "none", "--k", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["price"] <= 300 and r["reason"] for r in rows)
    assert main(["recommend", "   ", "--method", "none"]) == 2
    assert "request is empty" in capsys.readouterr().err


def test_prefix_cache_matches_a_full_forward(llm):
    import torch

    prefix, suffix = llm._split_prompt("rank_pointwise.v1", "item", context="Request: tea")
    cached = llm.next_token_logits(prefix, ["green tea, 20 bags", "milk"], suffix)
    for row, middle in zip(cached, ["green tea, 20 bags", "milk"], strict=True):
        encode = llm.tok.encode
        ids = encode(prefix, add_special_tokens=False) + encode(middle + suffix, add_special_tokens=False)
        with torch.inference_mode():
            full = llm.net(input_ids=torch.tensor([ids])).logits[0, -1].float()
        assert torch.allclose(row, full, atol=1e-4)


def test_the_full_table_on_the_tiny_fixture(tiny, llm):
    """Every method of `eval zeroshot` runs on the same candidates and reports metrics with diversity."""
    from assistant.recommend import zeroshot_eval as z

    report = z.run(tiny, [("garbage", llm)], users=6, shuffles=2, progress=False)
    methods = report["methods"]
    assert set(methods) == {
        "random", "popularity", "embedding", "embedding + MMR 0.3", "garbage pointwise", "garbage listwise",
        "garbage hybrid (pointwise + embedding)", "garbage hybrid + MMR 0.3", "garbage hybrid (pointwise + popularity)",
    }  # fmt: skip
    for m in methods.values():
        assert 0 <= m["ndcg@10"]["mean"] <= 1 and 0 <= m["diversity@10"]["mean"] <= 2
        assert m["ndcg@10"]["ci95"][0] <= m["ndcg@10"]["mean"] <= m["ndcg@10"]["ci95"][1]
    assert set(report["position_bias_listwise_ndcg@10"]["garbage"]) == {"first", "last"}
    assert report["users"]["garbage pointwise"] == 6


def test_a_pointwise_only_table_leaves_out_listwise_and_its_bias_check(tiny, llm):
    from assistant.recommend import zeroshot_eval as z

    report = z.run(tiny, [("ranker", llm)], users=4, progress=False, listwise=False)
    assert not any("listwise" in m for m in report["methods"]) and report["position_bias_listwise_ndcg@10"] == {}
    assert report["users"]["ranker hybrid (pointwise + popularity)"] == 4
