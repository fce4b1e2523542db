"""The agent loop: one customer message in, one reply out, with at most `max_steps` tool calls between.

Each step the model either calls one tool or writes to the customer (a terminal action); the
hand-over tool `transfer_to_human_agents` ends the conversation. Tool calls go through the
conversation's `PolicySession`, so refusals, unknown tools and bad arguments come back to the model as
observations. All state lives in the `Agent` instance: one per conversation, nothing global.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from assistant.messages import ChatMessage, ToolCall
from assistant.policy import AUTH_TOOLS, PolicySession, ToolCallRecord
from retrieval.errors import ShopassistError

if TYPE_CHECKING:
    from assistant.intents import Intent, IntentReader
    from assistant.references import ListingQuestion

CATALOG_FIRST = ("search_products", "list_all_product_types")  # what a product question may start with
SEARCHES = ("search_products",)  # calls whose results the reply lists: left out of later turns' prompts
LISTING_ACTS = ("about_listing", "compare")  # replies answering a question about a listing from its results
STEP_LIMIT_REPLY = "I'm sorry, I couldn't finish that on my own. Could you rephrase, or ask for a human agent?"
TRANSFER_REPLY = "I've passed your request to a human colleague, who will continue from here."


def without_earlier_searches(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The conversation as a guided model reads it: the searches of earlier customer turns are left out,
    call and results, while the replies that listed their items stay. Each search leaves ~450 tokens of
    JSON whose items its reply already names, and every later step attends over them: a shopper's sixth
    search read 3,500 tokens with them, 1,600 without. The current turn keeps its own searches; a model
    trained on one search per conversation (finetune/build_shopping.py) reads the same either way."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)

    def earlier_search(i: int, m: ChatMessage) -> bool:
        if i > last:
            return False
        return (m.tool_call is not None and m.tool_call.name in SEARCHES) or (m.role == "tool" and m.name in SEARCHES)

    return [m for i, m in enumerate(messages) if not earlier_search(i, m)]


def _words(text: str) -> str:
    """A message as compared with another: case and spacing aside."""
    return " ".join(text.lower().split())


def _say(text: str, on_text: Callable[[str], None] | None, **meta) -> ChatMessage:
    """A reply the agent settled on without the model: streamed like the model's, with why in its meta."""
    if on_text is not None:
        on_text(text)
    return ChatMessage("assistant", text, meta=meta)


class Model(Protocol):
    def generate(self, messages: list[ChatMessage], tools: list[dict] | None = None, **kwargs) -> ChatMessage: ...


@dataclass
class Turn:
    reply: str
    steps: int  # model calls in this turn
    tool_calls: int
    transferred: bool = False
    hit_step_limit: bool = False


@dataclass
class Agent:
    model: Model
    session: PolicySession
    system_prompt: str
    max_steps: int = 8
    messages: list[ChatMessage] = field(default_factory=list)
    examples: list[ChatMessage] = field(default_factory=list)  # in-context examples, shown to the model only
    done: bool = False  # transferred to a human: the model no longer answers
    # Guided (default for models that support it): only legal tools with grounded identifiers, replies from
    # tool results or conversation acts (assistant.guidance, assistant.replies). False: the model's free text.
    guided: bool = True
    # reads what the customer's message asks for (assistant.intents); guided mode acts on it when sure
    intents: "IntentReader | None" = None
    _turn_start: int = 0  # trace position where the current customer turn began

    def __post_init__(self) -> None:
        if not self.messages:
            self.messages.append(ChatMessage("system", self.system_prompt))

    def respond(
        self,
        customer_message: str,
        on_text: Callable[[str], None] | None = None,
        on_recorded: Callable[[], None] | None = None,
    ) -> Turn:
        """One customer message in, one reply out; `on_text` receives the reply as it is generated,
        `on_recorded` is called once the message (and a write it confirmed) is recorded, before the model runs."""
        if self.done:
            return Turn(TRANSFER_REPLY, 0, 0, transferred=True)
        self.add_customer_message(customer_message)
        if on_recorded is not None:
            on_recorded()
        made: list[tuple[str, dict]] = []  # this turn's calls
        for step in range(1, self.max_steps + 1):
            # Within a turn the store does not change (writes wait for the customer's yes), so a call made
            # again gets the same observation again: make the model answer instead of looping.
            repeating = len(made) >= 2 and made[-1] in made[:-1]
            message = self.propose(on_text, tools=not repeating)
            action = message.meta.pop("action", None)  # a reply act that is an action: the hand-over
            self.apply(message)
            if message.tool_call is None and action is not None:
                self.apply(ChatMessage("assistant", tool_call=action))
                return Turn(message.content, step, len(made) + 1, transferred=self.done)
            if message.tool_call is None:
                return Turn(message.content, step, len(made))
            made.append((message.tool_call.name, message.tool_call.arguments))
            if self.done:  # the shopper is told, in the transcript too
                self.messages.append(ChatMessage("assistant", TRANSFER_REPLY))
                return Turn(TRANSFER_REPLY, step, len(made), transferred=True)
        self.messages.append(ChatMessage("assistant", STEP_LIMIT_REPLY))
        return Turn(STEP_LIMIT_REPLY, self.max_steps, len(made), hit_step_limit=True)

    # The steps `respond` is made of, also used one at a time by a human agent in copilot mode.

    def warm(self) -> None:
        """Let a local model read the start every conversation shares before the first customer waits on it."""
        warm = getattr(self.model, "warm", None)
        if warm is not None:
            warm(self.messages[:1] + self.examples)

    def read_ahead(self, idle: Callable[[], bool]) -> int:
        """While the customer reads the reply and no other turn waits (`idle()`), let a local model read the
        conversation so far, so their next message is all it reads then. Tokens read (0: nothing to do)."""
        read = getattr(self.model, "read_ahead", None)
        if read is None or self.done:
            return 0
        upcoming = ChatMessage("user", "")  # the prompt as the customer's next message will find it
        try:
            return read(self._view([*self.messages, upcoming])[:-1], idle)
        except ShopassistError:  # an optimisation only: the next turn reads whatever is missing itself
            return 0

    def close(self) -> None:
        """The conversation is over (a finished evaluation task): a local model lets go of its cache."""
        forget = getattr(self.model, "forget", None)
        if forget is not None:
            forget(self._view(self.messages), shared=1 + len(self.examples))

    def add_customer_message(self, text: str) -> None:
        """Record the customer's message; a yes/no to a pending write settles it through the policy layer."""
        self._turn_start = len(self.session.trace)
        self.messages.append(ChatMessage("user", text))
        settled = self.session.on_customer_message(text)
        if settled is not None:  # the customer confirmed or declined a pending write
            self.messages.append(ChatMessage("tool", settled, name=self.session.trace[-1].name))

    @property
    def this_turn(self) -> list[ToolCallRecord]:
        return self.session.trace[self._turn_start :]

    def propose(self, on_text: Callable[[str], None] | None = None, tools: bool = True) -> ChatMessage:
        """The model's next step (a tool call or a reply), not yet run or recorded."""
        view = self._view(self.messages)
        streaming = {"on_text": on_text} if on_text is not None else {}
        if not (self.guided and getattr(self.model, "guided", False)):
            return self.model.generate(view, tools=self.session.registry.schemas() if tools else None, **streaming)
        from assistant.guidance import (
            ITEM_WRITES,
            STATUS_FOR,
            address_missing,
            customer_texts,
            grounded_numbers,
            legal_tools,
            narrow_lookups,
            products_not_held,
            read_only,
            settle_families,
            shown_prices,
            sign_in_typed,
            stated_filters,
            thread_texts,
            unnamed_orders,
            write_step,
        )
        from assistant.policy_answers import policy_answer
        from assistant.references import compared_items, item_in_view, wants_to_buy
        from assistant.replies import (
            ACTS,
            ASK_ADDRESS,
            about_listing,
            already_done,
            asks_if_done,
            buy_elsewhere,
            compare_items,
            courtesy,
            not_held,
            reply_options,
            which_orders,
        )

        nearest = self._nearest_search()
        if nearest is not None:  # a search found nothing: the lowest-priced of its type, listed
            return ChatMessage("assistant", tool_call=ToolCall("search_products", nearest), meta={"act": "nearest"})
        direct = self._direct_reply()
        if direct is not None:
            return _say(direct, on_text, act="grounded", direct=True)
        legal = legal_tools(self.session, self.messages, self._legal_turn()) if tools else []
        if legal and not self._write_asked():  # a change nobody asked for is never proposed
            legal = read_only(legal, self.session, self._request_text())
        elif legal and not self._wanted_writes():  # a change asked for, which one unsure: only those it may be
            legal = narrow_lookups(self._plausible_only(legal), self.session, self._latest_customer())
        last = self.this_turn[-1] if self.this_turn else None
        # an order looked up for a change its status rules out: the reply says why, not only its items
        asked = self._wanted_writes() if last and last.name == "get_order_details" and last.outcome == "ok" else {}
        options = reply_options(self.session, self.this_turn, asked)
        intent = self._read_intent() if tools and not self.this_turn else None
        required = False
        if intent is not None and intent.label == "human":  # an explicit request for a person: at once
            act = next(o for o in ACTS if o.act == "handover")
            p = round(intent.probability, 3)
            return _say(act.text, on_text, act=act.act, action=act.action, intent=intent.label, intent_p=p)
        polite = courtesy(self._latest_customer()) if not self.this_turn else None
        if polite is not None:  # a message that only greets or thanks gets the act that answers it
            return _say(polite.text, on_text, act=polite.act)
        rules = policy_answer(self._latest_customer(), self.session.user_id is not None) if not self.this_turn else None
        if rules is not None:  # "what is your return policy?": the rules the agent itself follows
            return _say(rules, on_text, act="policy")
        handled = self._handled_repeat() if not self.this_turn else []
        if handled:  # said again word for word after its changes were made: what they did, not a re-read
            return _say(already_done(handled), on_text, act="already_done")
        done = self._last_write() if not self.this_turn and asks_if_done(self._latest_customer()) else None
        if done is not None and done.outcome == "confirmed":  # "did it go through?" after a change: what it did
            return _say(already_done([done], "Yes, it went through"), on_text, act="already_done")
        compared = compared_items(self.messages) if not self.this_turn and not self._wanted_writes() else []
        if compared:  # "compare the first two": the listing's own results side by side
            return _say(compare_items(compared), on_text, act=LISTING_ACTS[1])
        buying = wants_to_buy(self.messages) if not self.this_turn and not self._wanted_writes() else None
        if buying is not None:  # "I'll take the second one": no tool here places an order; say where
            return _say(buy_elsewhere(buying), on_text, act="buy_elsewhere")
        pointed = self._pointed_item(legal) if tools and not self.this_turn else None
        if pointed is not None:  # "what about the first one?" after a listing: that product's details
            call = ToolCall("get_product_details", {"product_id": pointed["product_id"]})
            return ChatMessage("assistant", tool_call=call, meta={"act": "pointed", "item_id": pointed["item_id"]})
        about = self._listing_question() if tools and not self.this_turn else None
        if about is not None:  # "which is the lightest?" after a listing: not the same listing again
            return _say(about_listing(about), on_text, act=LISTING_ACTS[0], asked=about.kind)
        listed = self._picked_from_listing() if tools and not self.this_turn else []
        lookup = [t for t in legal if t["function"]["name"] == "get_order_details"] if listed else []
        if lookup and not self._wanted_writes():  # "the tea kettle one" after their orders were listed: that
            legal, required = lookup, True  # order (`read_only` narrowed the look-up to it)
        elif self._shopping(intent) and not (listed or self._about_an_order_of_theirs()):
            # a product question starts with the catalog, signed in or not (after an order look-up, "do you
            # have hiking boots under $300?" read the order again); one naming an order may be choosing its
            # items: the model decides there. A write asked for still comes first (below); the model still
            # chooses the tool and writes its arguments
            catalog = [t for t in legal if t["function"]["name"] in CATALOG_FIRST]
            legal, required = catalog or legal, bool(catalog)
        elif legal and not self.this_turn and self.session.user_id is None and sign_in_typed(self._latest_customer()):
            # a customer who types their email, or their name and zip, wants to be found first: after a product
            # search the model searched the catalog for "order #W8770097" instead, and after two about running
            # shoes "I'm Yusuf Rossi, zip 19122. Where is my last order?" was handed to a person, or asked for
            # the details just given. It still writes which address or name
            typed = sign_in_typed(self._latest_customer())
            sign_in = [t for t in legal if t["function"]["name"] in typed]
            legal, required = sign_in or legal, bool(sign_in)
        wanted = self._wanted_writes() if legal else {}
        ask_address = False
        if wanted and self.session.user_id is None:  # a write asked for: sign in first (not a search)
            carried = [t for t in legal if t["function"]["name"] in AUTH_TOOLS]
        elif wanted:  # grounded in the request's own messages, not in what was said before it
            texts = thread_texts(self.messages, min(wanted.values()))
            wanted = settle_families(wanted, self.session, texts)
            statuses = {STATUS_FOR[w] for w in wanted} if all(w in ITEM_WRITES for w in wanted) else set()
            missing = products_not_held(self.session, texts, statuses)
            if missing:  # "return the laptop" from a customer with no laptop: said, not another item returned
                return _say(not_held(missing, statuses, self.session), on_text, act="not_held")
            unnamed = unnamed_orders(self.session, texts, wanted)
            if unnamed:  # "I want to return something", "cancel an order": which, not the model's pick
                return _say(which_orders(unnamed, wanted), on_text, act="ask_which")
            carried = write_step(
                legal_tools(self.session, self.messages, self._legal_turn(), texts),
                self.session,
                self.messages,
                set(wanted),
                texts,
            )
            # its orders are known, the address is not: asked for rather than filled by the model from other
            # words; the customer's next message holds it, and the write is proposed then
            ask_address = not carried and address_missing(wanted, texts)
        else:
            carried = []
        if ask_address:
            return _say(ASK_ADDRESS.text, on_text, act=ASK_ADDRESS.act)
        if carried:  # a write the customer asked for: find its order, then propose it
            legal, required = carried, True
        elif wanted and self.session.user_id is None and not self.this_turn and not required:
            # a change needs the account and nothing typed finds it yet: ask for it (the model handed "I want
            # to return the shoes I got last week" to a person, who would have asked the same). A product
            # question said with it is answered first (the catalog step above), the account asked after
            act = next(o for o in ACTS if o.act == "ask_account")
            return _say(act.text, on_text, act=act.act, wanted_writes=sorted(wanted))
        message = self.model.generate(
            view,
            tools=legal or None,
            replies=[o.text for o in options],
            **({"tool_choice": "required"} if required else {}),
            **streaming,
        )
        if intent is not None:
            message.meta.update(intent=intent.label, intent_p=round(intent.probability, 3))
        if carried:
            message.meta["wanted_writes"] = sorted(wanted)
        if message.tool_call is not None and message.tool_call.name == "search_products":
            call = message.tool_call
            texts = customer_texts(self.messages)
            arguments = grounded_numbers(call.arguments, texts)
            before = next((r for r in reversed(self.session.trace) if r.name == call.name), None)
            earlier = before.arguments if before is not None else None
            shown = shown_prices(before.output) if before is not None and before.outcome == "ok" else []
            viewed = item_in_view(self.messages)  # "a cheaper one" after an item's details: than that item
            low = float(viewed["price"]) if viewed and "price" in viewed else min(shown, default=None)
            said = texts[-1] if texts else ""
            arguments = stated_filters(arguments, said, self.session.ctx.store, earlier, low)
            message.tool_call = ToolCall(call.name, arguments, call.id)
        elif message.tool_call is None and "reply_index" in message.meta:
            chosen = options[message.meta["reply_index"]]
            message.meta["act"] = chosen.act
            if chosen.action is not None:
                message.meta["action"] = chosen.action
        return message

    def _nearest_search(self) -> dict | None:
        """The arguments of `replies.nearest_search` after this turn's search found nothing, once a turn and
        while no write is asked for."""
        from assistant.replies import nearest_search

        last = self.this_turn[-1] if self.this_turn else None
        if last is None or last.name != "search_products" or last.outcome != "ok" or self._wanted_writes():
            return None
        if any(r.name == "search_products" for r in self.this_turn[:-1]) or json.loads(last.output) != []:
            return None
        return nearest_search(last.arguments)

    def _direct_reply(self) -> str | None:
        """The reply that ends the turn without the model reading its tool's result (LangChain's
        `return_direct`), when no write is waiting to be proposed:
        - the listing of this turn's search. The shipped model chose this listing after every search of the
          conversation suite (23 of 23), and reading the ~450 tokens of results only to choose it was two
          thirds of a product question's time;
        - the item the shopper pointed at, from its product's details (see `_pointed_item`);
        - the account found for sign-in details given unasked, and the account's orders asked about (both
          list every order with its status)."""
        from assistant.guidance import asks_all_orders, asks_unnamed_order
        from assistant.references import pointed_item, priced_pick
        from assistant.replies import grounded_reply, item_details

        last = self.this_turn[-1] if self.this_turn else None
        if last is None or last.outcome != "ok":
            return None
        if last.name == "get_product_details":
            asked = self.messages[: self._latest_customer_index() + 1]
            pointed = pointed_item(asked)
            if pointed is None or pointed["product_id"] != last.arguments["product_id"] or self._wanted_writes():
                return None
            picked = priced_pick(asked)  # "which one is cheapest?": said which it is, not only its details
            lead = f"The {picked[0]} of those listed: " if picked and picked[1]["item_id"] == pointed["item_id"] else ""
            return item_details(last, pointed["item_id"], self._latest_customer(), lead)
        earlier = self.this_turn[-2] if len(self.this_turn) > 1 else None
        if last.name in SEARCHES and earlier is not None and earlier.name in SEARCHES:
            from assistant.replies import nearest_search, nothing_found

            if earlier.outcome == "ok" and nearest_search(earlier.arguments) == last.arguments:
                return nothing_found(earlier, last)
        text = self._request_text()
        answers = (
            last.name in SEARCHES
            # "I found your account. Your orders: ... How can I help?"
            or (last.name in AUTH_TOOLS and len(self.this_turn) == 1 and self._volunteered_sign_in())
            # every order with its status: the answer, or the question which one is meant
            or (last.name == "get_user_details" and (asks_all_orders(text) or asks_unnamed_order(text)))
        )
        return grounded_reply(last, self.session) if answers and not self._wanted_writes() else None

    def _handled_repeat(self) -> list[ToolCallRecord]:
        """The writes confirmed since the customer first sent their latest message, when they send it again
        word for word and nothing it asks for is left (`_wanted_writes`). A τ customer restates its whole
        request every turn: after the cancel it asked for, the model read the order again eight times."""
        latest = self._latest_customer_index()
        if latest < 0:
            return []
        text = _words(self.messages[latest].content)
        said = (i for i, m in enumerate(self.messages[:latest]) if m.role == "user" and _words(m.content) == text)
        first = next(said, None)
        if first is None or self._wanted_writes():
            return []
        # every record has its observation in the transcript, in order (`apply`, `add_customer_message`)
        results = [i for i, m in enumerate(self.messages) if m.role == "tool"]
        if len(results) != len(self.session.trace):
            return []
        return [r for i, r in zip(results, self.session.trace, strict=True) if i > first and r.outcome == "confirmed"]

    def _last_write(self) -> ToolCallRecord | None:
        """The conversation's latest write step, whatever came of it (proposed, confirmed, declined, failed)."""
        registry = self.session.registry
        writes = (r for r in reversed(self.session.trace) if r.name in registry and registry.get(r.name).writes)
        return next(writes, None)

    def _volunteered_sign_in(self) -> bool:
        """Whether the customer gave their sign-in details unasked and nothing else (see `only_signs_in`);
        asked for them (a request waiting on the account), the model goes on with that request."""
        from assistant.guidance import only_signs_in

        user = self.session.ctx.store.user(self.session.user_id) if self.session.user_id else None
        return self._waiting_request() is None and only_signs_in(self._latest_customer(), user)

    def _waiting_request(self) -> str | None:
        """The customer message that got the request for their account, when the latest message answers it."""
        from assistant.replies import ACTS

        latest = self._latest_customer_index()
        at = next((i for i in range(latest - 1, -1, -1) if self.messages[i].role == "assistant"), None)
        if at is None or self.messages[at].content != next(o.text for o in ACTS if o.act == "ask_account"):
            return None
        return next((m.content for m in reversed(self.messages[:at]) if m.role == "user"), None)

    def _request_text(self) -> str:
        """The latest customer message, after the one waiting on their account where it answers that request:
        "where is my order?", then an email, read one order the model picked, not the account's list."""
        waiting = self._waiting_request()
        return f"{waiting}\n{self._latest_customer()}" if waiting else self._latest_customer()

    def _pointed_item(self, legal: list[dict]) -> dict | None:
        """The listed item the latest message points at ("the second one", "item 8538875209"), when looking
        its product up is legal and no write is asked for. The model answered these with "that is not
        something I can help with": its prompt keeps the listing's words, not the results behind them."""
        from assistant.references import pointed_item

        if not any(t["function"]["name"] == "get_product_details" for t in legal) or self._wanted_writes():
            return None
        return pointed_item(self.messages)

    def _listing_question(self) -> "ListingQuestion | None":
        """`references.listing_question`, while no write is asked for."""
        from assistant.references import listing_question

        if self._wanted_writes():
            return None
        return listing_question(self.messages, list(self.session.ctx.store.products().values()))

    def _latest_customer_index(self) -> int:
        return max((i for i, m in enumerate(self.messages) if m.role == "user"), default=-1)

    def _view(self, messages: list[ChatMessage]) -> list[ChatMessage]:
        """What the model reads: the system prompt, the in-context examples, the conversation (guided:
        without earlier turns' searches, see `without_earlier_searches`)."""
        if self.guided and getattr(self.model, "guided", False):
            messages = without_earlier_searches(messages)
        return messages[:1] + self.examples + messages[1:]

    def _latest_customer(self) -> str:
        latest = self._latest_customer_index()
        return self.messages[latest].content if latest >= 0 else ""

    def _about_an_order_of_theirs(self) -> bool:
        """Whether a signed-in customer's latest message names an order (#W...) or, as theirs, a product one
        of their orders holds ("where's my office chair?")."""
        from assistant.guidance import ORDER_ID, names_own_product

        text = self._latest_customer()
        if self.session.user_id is None:
            return False
        return ORDER_ID.search(text) is not None or names_own_product(text, self.session)

    def _picked_from_listing(self) -> list[str]:
        """The customer's orders holding a product the latest message names, when the reply before it listed
        their orders (`replies`: "Your orders: ..."); a product question at any other time is one ("the tea
        kettle one" was searched for in the catalog)."""
        from assistant.guidance import orders_holding_named
        from assistant.replies import ORDERS_LISTED

        latest = self._latest_customer_index()
        before = next((m for m in reversed(self.messages[:latest]) if m.role == "assistant"), None)
        if self.session.user_id is None or before is None or ORDERS_LISTED not in before.content:
            return []
        return orders_holding_named(self.messages[latest].content, self.session)

    def _shopping(self, intent: "Intent | None") -> bool:
        """Whether the turn's first step answers a product question: the reader is sure it is one, or, unsure
        of anything, the message asks to see a kind of product the catalog has (`asks_for_products`)."""
        if not self.this_turn and self._refines_listing():
            return True
        if intent is not None or self.this_turn or self.intents is None:
            return intent is not None and intent.label == "shopping"
        from assistant.guidance import asks_for_products

        return asks_for_products(self._latest_customer(), self.session)

    def _refines_listing(self) -> bool:
        """Whether the latest message only refines the listing just shown ("which ones are navy?" after
        backpacks: the model asked for the account)."""
        from assistant.guidance import refines_search

        latest = self._latest_customer_index()
        tool = next((m for m in reversed(self.messages[:latest]) if m.role == "tool"), None)
        search = next((r for r in reversed(self.session.trace) if r.name == "search_products"), None)
        if tool is None or tool.name != "search_products" or search is None or search.outcome != "ok":
            return False
        products = list(self.session.ctx.store.products().values())
        return refines_search(self._latest_customer(), search.arguments, products)

    def _read_intent(self) -> "Intent | None":
        """What the customer's latest message asks for, when the reader is sure of it."""
        if self.intents is None:
            return None
        text = self._latest_customer()
        intent = self.intents.read(text) if text.strip() else None
        return intent if intent is not None and intent.sure else None

    def _write_asked(self) -> bool:
        """Whether a customer message may ask for a change. After a chair search, "is my order #W8770097
        shipped? my email is ..." got a proposed swap of the order's chair: the model's own idea.

        Messages an earlier turn's catalog search, or a reply from a listing's results (`LISTING_ACTS`), answered
        were shopping, and only a change the reader is sure of outlives one (`_wanted_writes`): the reader gives
        "which is the lightest?" a chance of being an item change, and two turns later "Where is my last order?"
        read one order the model picked, not the account."""
        if self.intents is None or not hasattr(self.intents, "asks_for_write"):
            return True
        from assistant.guidance import CATALOG_RESULTS

        latest = self._latest_customer_index()  # a search of this turn leaves the message it answers in
        catalog = (
            i
            for i, m in enumerate(self.messages[:latest])
            if (m.role == "tool" and m.name in CATALOG_RESULTS) or m.meta.get("act") in LISTING_ACTS
        )
        since = max(catalog, default=0)
        texts = [m.content for m in self.messages[since:] if m.role == "user"]
        return bool(self._wanted_writes()) or any(self.intents.asks_for_write(t) for t in texts)

    def _plausible_only(self, legal: list[dict]) -> list[dict]:
        """`legal` without the writes no customer message may ask for (`IntentReader.plausible_writes`);
        writes the reader has no head for stay."""
        plausible = getattr(self.intents, "plausible_writes", None)
        if plausible is None:
            return legal
        said = [plausible(m.content) for m in self.messages if m.role == "user"]
        if any(s is None for s in said):
            return legal
        may = set().union(*said)
        heads = set(self.intents.writes.labels)
        registry = self.session.registry
        return [t for t in legal if not registry.get(n := t["function"]["name"]).writes or n in may or n not in heads]

    def _wanted_writes(self) -> dict[str, int]:
        """Writes a customer message asked for (the reader sure of it) that no proposal has answered since,
        each with the index of the message that asked: a write proposed after the message, confirmed or
        declined, is settled until a new message asks for it again."""
        if self.intents is None or getattr(self.intents, "writes", None) is None:
            return {}
        from assistant.guidance import FAMILY_OF

        wanted: dict[str, int] = {}
        said: set[str] = set()
        for i, m in enumerate(self.messages):
            if m.role == "user":
                text = _words(m.content)
                if text not in said:  # a request said again word for word is not a new one
                    wanted |= dict.fromkeys(self.intents.wanted_writes(m.content), i)
                said.add(text)
            elif m.role == "assistant" and m.tool_call is not None:  # a member answers its family too
                wanted.pop(m.tool_call.name, None)
                wanted.pop(FAMILY_OF.get(m.tool_call.name, ""), None)
        corrected = self._corrected_write()
        if corrected is not None:  # "black please" to an exchange for white earbuds: the same write, again
            wanted[corrected.name] = self._latest_customer_index()
        return wanted

    def _corrected_write(self) -> ToolCallRecord | None:
        """The item change this turn's message declined by naming what the customer wants instead: an option
        value the proposed new items' products have and those items do not ("black please" to an exchange
        for white earbuds). It declined the proposal, and "yes" then got "not something I can help with"."""
        from assistant.guidance import ITEM_WRITES
        from assistant.references import asks_other_variant

        first = self.this_turn[0] if self.this_turn else None
        if first is None or first.outcome != "declined" or first.name not in ITEM_WRITES:
            return None
        products, text = self.session.ctx.store.products().values(), self._latest_customer()
        for item_id in first.arguments.get("new_item_ids") or []:
            product = next((p for p in products if item_id in p.get("variants", {})), None)
            if product is not None:
                variants = list(product["variants"].values())
                if asks_other_variant(text, product["variants"][item_id], variants):
                    return first
        return None

    def _legal_turn(self) -> list[ToolCallRecord]:
        """This turn's records as `legal_tools` reads them: a declined write rules writes out for the turn,
        unless the message corrected it (`_corrected_write`)."""
        corrected = self._corrected_write()
        return [r for r in self.this_turn if r is not corrected]

    def apply(self, message: ChatMessage) -> str | None:
        """Record a step; a tool call runs through the policy layer and its observation is returned."""
        self.messages.append(message)
        call = message.tool_call
        if call is None:
            return None
        observation = self.session.call(call.name, call.arguments)
        self.messages.append(ChatMessage("tool", observation, name=call.name))
        if call.name in self.session.registry and self.session.registry.get(call.name).terminal:
            self.done = True
        return observation
