"""The Recommend tab: a request in, product cards with grounded reasons out.

In the shoppers' app it is personalised only by the customer signed in to that shopper's own chat (their
token); only the staff app has a customer-id field, so no shopper can see another customer's history."""

import sys

import gradio as gr

from assistant.recommend.recommender import FineTunedRanker, Recommender, RecommendError, llm_ranker_for
from assistant.requests import clean_message
from ui.cards import ProductCard, render_cards
from ui.conversations import ConversationHub


def build_recommend_tab(hub: ConversationHub, shopper_token: gr.State | None = None) -> None:
    """The tab inside the caller's `gr.Blocks`: for the shopper holding `shopper_token`, else (staff) for
    any customer id typed in."""
    recommender = Recommender(
        hub.ctx.store, hub.ctx.search, hub.ctx.ranker, llm_ranker_for(hub.model), fine_tuned=FineTunedRanker()
    )

    def for_shopper(request: str, token: str | None, k: float, method: str = "auto"):
        conversation = hub.for_shopper(token)
        return recommend(request, (conversation.customer if conversation else None) or "", k, method)

    def recommend(request: str, customer: str, k: float, method: str = "auto"):
        message, problem = clean_message(request)
        if problem:
            return "", problem
        if recommender.llm is None and method in ("pointwise", "listwise"):
            method = "auto"  # a remote or scripted chat model gives no logits to rank with
        try:
            recs = recommender.recommend(message, (customer or "").strip() or None, int(k), method)
        except RecommendError as exc:
            return "", f"Cannot recommend that: {exc}"
        except Exception as exc:  # the model or the index failed: say so, keep the server up
            print(f"shopassist ui: recommend failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return "", "Recommendations are not available right now; nothing was changed."
        if not recs:
            return "", f"Nothing to recommend: {recommender.why_empty(message)}."
        cards = [
            ProductCard(r.item_id, r.name, r.options, r.price, True, r.reason, i, message)
            for i, r in enumerate(recs, 1)
        ]
        return render_cards(cards), recommender.describe(len(cards))

    with gr.Tab("Recommend", id="recommend"):
        with gr.Row():
            request = gr.Textbox(label="What are you looking for?", scale=4, elem_id="rec-request")
            if shopper_token is None:
                customer = gr.Textbox(label="Customer id (optional)", scale=2, elem_id="rec-customer")
            k = gr.Slider(1, 20, value=5, step=1, label="How many")
            choices = [
                ("Best for the request (the fine-tuned ranker for an open-ended one)", "auto"),
                ("Candidate order", "none"),
            ]
            if recommender.llm is not None:
                # zero-shot ranking reads the chat network's logits: offered only when the chat model has them
                # (not llama.cpp, an endpoint or a scripted model), rather than a choice that does nothing
                choices += [("Chat LLM zero-shot: yes/no", "pointwise"), ("Chat LLM: lettered lists", "listwise")]
            rec_rank = gr.Radio(choices, value="auto", label="Ranking", elem_id="rec-ranking")
        rec_btn = gr.Button("Recommend", variant="primary", elem_id="rec-go")
        rec_method = gr.Markdown(elem_id="rec-method")
        rec_cards = gr.HTML(elem_id="rec-cards")
        if shopper_token is None:
            rec_btn.click(recommend, [request, customer, k, rec_rank], [rec_cards, rec_method], api_name="recommend")
        else:
            inputs = [request, shopper_token, k, rec_rank]
            rec_btn.click(for_shopper, inputs, [rec_cards, rec_method], api_name="recommend")
