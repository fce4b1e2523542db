"""Ranking candidate items for a customer: everything serving needs, in one package.

- `features`: past-only features and their encoders (`UserState` is shared by training and serving);
- `model`: the DCN-v2 + DIN network; `folder`: the model folder's save and load;
- `impressions`: the impression-log schema and reader (the app's interaction log follows it);
- `ctr`: `CTRRanker` over a trained folder; `popularity`: the labelled fallback;
- `history`: a customer's purchases (cancelled orders are not purchases); `checks`: shared refusals.

Training lives in `finetune.ctr` and writes folders with `folder.save_ranker_files`.
"""

from assistant.ranking.checks import MAX_ITEMS, RankingError, check_items, check_request
from assistant.ranking.ctr import CTRRanker, Prediction, ScoredItem, model_dir_for_store, ranker_for_store
from assistant.ranking.history import History, is_purchase, purchased_orders, store_history
from assistant.ranking.popularity import PopularityRanker

__all__ = [
    "MAX_ITEMS",
    "CTRRanker",
    "History",
    "PopularityRanker",
    "Prediction",
    "RankingError",
    "ScoredItem",
    "check_items",
    "check_request",
    "is_purchase",
    "model_dir_for_store",
    "purchased_orders",
    "ranker_for_store",
    "store_history",
]
