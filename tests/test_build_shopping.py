"""Shopping and no-tool training dialogues: real search results, exact constraints, valid format."""

import json

from conftest import TAU_TASKS

from assistant.dialogues import append_dialogues, load_dialogues
from assistant.tools import ToolRegistry
from finetune.build_shopping import build_shopping_dialogues


def test_shopping_dialogues_use_real_results_and_mix_in_no_tool_replies(search, tau_items, tmp_path):
    bitext = TAU_TASKS.parent / "bitext" / "customer_support_requests.csv"
    dialogues = build_shopping_dialogues(search, tau_items, "tau-retail", n=40, bitext_path=bitext)
    by_id = {i.item_id: i for i in tau_items}
    shopping = [d for d in dialogues if d.id.startswith("shopping-")]
    assert len(shopping) >= 30
    search_tool = ToolRegistry().get("search_products")
    for d in shopping:
        call, result, reply = d.messages[2].tool_call, d.messages[3].content, d.messages[4].content
        search_tool.validate(call.arguments)
        hits = json.loads(result)
        for hit in hits:  # every hit obeys the call's constraints
            item = by_id[hit["item_id"]]
            assert item.price <= call.arguments.get("max_price", float("inf"))
            assert all(item.options.get(k) == v for k, v in call.arguments.get("options", {}).items())
        if hits:
            assert f"${by_id[hits[0]['item_id']].price:.2f}" in reply  # the reply quotes the real price
    kinds = {d.id.split("-")[0] for d in dialogues}
    assert kinds == {"shopping", "cannot", "human", "greeting"}
    no_tool = [d for d in dialogues if all(m.tool_call is None for m in d.messages)]
    assert len(no_tool) >= 10
    path = tmp_path / "shop.jsonl"
    append_dialogues(path, dialogues)
    assert len(load_dialogues(path)) == len(dialogues)
