import re

from assistant.requests import parse_request
from ui.chat import SearchChat


def test_parse_request_reads_price_bounds():
    assert parse_request("red t-shirt under $50") == parse_request("red t-shirt under 50")
    req = parse_request("a backpack over $150 but below 210.50 please")
    assert (req.min_price, req.max_price) == (150.0, 210.5)
    assert "150" not in req.query and "backpack" in req.query
    assert parse_request("hiking boots").max_price is None
    chair = parse_request("I need a new office chair, nothing over $400")
    assert (chair.max_price, chair.min_price, chair.query) == (400, None, "I need a new office chair")
    assert parse_request("a desk, no more than $200").max_price == 200


def test_budgets_ranges_and_rough_prices_are_bounds_too():
    """ "budget around $100" was searched as words, and $200 backpacks listed for it."""
    gift = parse_request("I need a gift for my sister who loves hiking, budget around $100")
    assert (gift.query, gift.min_price, gift.max_price) == ("I need a gift for my sister who loves hiking", None, 100)
    for text in ("my budget is $80", "$80 budget", "I can spend 80 dollars", "$80 or less", "budget: 80"):
        assert (parse_request(text).min_price, parse_request(text).max_price) == (None, 80), text
    for text in ("a lamp between $20 and $40", "a lamp $20-$40", "a lamp between 20 and 40 dollars"):
        assert (parse_request(text).query, parse_request(text).min_price, parse_request(text).max_price) == (
            "a lamp",
            20,
            40,
        ), text
    around = parse_request("running shoes in size 10 for about 80 dollars")
    assert (around.query, around.min_price, around.max_price) == ("running shoes in size 10 for", 64, 96)
    for text in ("size 10 boots, about 3 pairs", "around size 9", "a tent for about 4 people"):  # no money said
        assert (parse_request(text).min_price, parse_request(text).max_price) == (None, None), text
    assert parse_request("a tent, my budget is about 150 dollars").query == "a tent"
    assert parse_request("something around $50 maybe?").refines


def test_a_price_cut_out_of_a_request_leaves_no_stray_punctuation():
    assert parse_request("any snacks for a movie night under $10?").query == "any snacks for a movie night?"
    assert parse_request("a gift for a hiker, under $100").query == "a gift for a hiker"
    assert parse_request("boots under $50, waterproof").query == "boots, waterproof"
    # a greeting is neither searched nor quoted back; said alone it is the message
    assert parse_request("hi! a gift for my dad who loves camping").query == "a gift for my dad who loves camping"
    assert parse_request("Hiking boots").query == "Hiking boots" and parse_request("hello").query == "hello"


def test_bounds_and_hedges_alone_refine_the_request_before():
    assert parse_request("something under $150 maybe?").refines and parse_request("any cheaper ones?").refines
    assert not parse_request("what about a backpack?").refines and not parse_request("hiking boots").refines


def test_the_need_a_reason_quotes_is_the_requests_content_words():
    assert parse_request("a gift for someone who likes hiking, under $100").need == "hiking gift"
    assert parse_request("pet hair is all over the carpet").need == "pet hair carpet"
    assert parse_request("a t-shirt").need == "t-shirt"
    assert parse_request("for the").need == "for the"  # nothing but filler: the request as typed


def test_a_request_that_states_no_need_is_open_ended():
    for text in ("what should household 1234 buy next?", "surprise me under $50", "any gift ideas?", "something nice"):
        assert parse_request(text).open_ended, text
    for text in ("a gift for someone who likes hiking", "something for the outdoors", "boots", "my kitchen is tiny"):
        assert not parse_request(text).open_ended, text


def test_reply_lists_real_items_within_the_bound(search, tau_items):
    prices = {i.item_id: i.price for i in tau_items}
    reply = SearchChat(search, k=4).reply("hiking boots under $245")
    ids = re.findall(r"\[item (\d+)\]", reply)
    assert len(ids) == 4 and all(prices[i] <= 245 for i in ids)


def test_reply_to_bad_input_is_a_message(search):
    assert SearchChat(search).reply("x" * 5000).startswith("Sorry, I can't search for that")
    assert "found nothing" in SearchChat(search).reply("laptop under $1")
