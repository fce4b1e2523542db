from assistant.agent import STEP_LIMIT_REPLY, Agent
from assistant.messages import ChatMessage, ToolCall
from assistant.policy import PolicySession
from assistant.scripted_models import ReplayModel
from assistant.tools import ToolContext, ToolRegistry


def replay(*replies):
    return ReplayModel(*replies, expect_tools={"search_products", "cancel_pending_order"})


def call(name, **arguments):
    return ChatMessage("assistant", tool_call=ToolCall(name, arguments))


def say(text):
    return ChatMessage("assistant", text)


def make_agent(store, model, max_steps=8):
    return Agent(model, PolicySession(ToolRegistry(), ToolContext(store)), "policy", max_steps=max_steps)


def test_a_tool_call_then_a_reply(store):
    email = store.user("ethan_lopez_6291")["email"]
    agent = make_agent(store, replay(call("find_user_id_by_email", email=email), say("Hi Ethan")))
    turn = agent.respond(f"I'm {email}")
    assert (turn.reply, turn.steps, turn.tool_calls, turn.transferred) == ("Hi Ethan", 2, 1, False)
    assert [m.role for m in agent.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert agent.messages[3].content == "ethan_lopez_6291" and agent.messages[3].name == "find_user_id_by_email"


def test_mistakes_go_back_to_the_model_as_observations(store):
    model = replay(call("fly_to_moon"), call("get_order_details", order="#W1"), say("sorry"))
    agent = make_agent(store, model)
    turn = agent.respond("hello")
    assert turn.reply == "sorry" and turn.tool_calls == 2
    observations = [m.content for m in agent.messages if m.role == "tool"]
    assert observations[0].startswith("Error: unknown tool 'fly_to_moon'")
    assert "unexpected argument(s) order" in observations[1]
    assert [r.outcome for r in agent.session.trace] == ["invalid", "invalid"]


def test_the_step_bound_ends_a_runaway_turn(store):
    agent = make_agent(store, replay(*[call("think", thought=f"hmm {i}") for i in range(3)]), max_steps=3)
    turn = agent.respond("hello")
    assert turn.hit_step_limit and turn.reply == STEP_LIMIT_REPLY and turn.tool_calls == 3


def test_a_call_repeated_twice_makes_the_next_step_a_reply(store):
    model = replay(call("get_order_details", order_id="#W1"), call("get_order_details", order_id="#W1"), say("ok"))
    turn = make_agent(store, model).respond("hello")
    assert model.offered == [True, True, False] and turn.reply == "ok" and turn.tool_calls == 2


def test_a_call_alternating_with_another_still_counts_as_a_repeat(store):
    a, b = call("get_order_details", order_id="#W1"), call("think", thought="cancel it")
    model = replay(a, b, a, say("ok"))
    turn = make_agent(store, model).respond("hello")
    assert model.offered == [True, True, True, False] and turn.reply == "ok" and turn.tool_calls == 3


def test_in_context_examples_are_shown_to_the_model_but_not_kept(store):
    model = replay(say("hi"))
    agent = Agent(model, PolicySession(ToolRegistry(), ToolContext(store)), "policy", examples=[say("example")])
    agent.respond("hello")
    assert [m.content for m in model.seen[0]] == ["policy", "example", "hello"]
    assert [m.content for m in agent.messages] == ["policy", "hello", "hi"]


def test_transfer_ends_the_conversation(store):
    model = replay(call("transfer_to_human_agents", summary="wants a person"))
    agent = make_agent(store, model)
    assert agent.respond("a human please").transferred
    assert agent.respond("hello?").transferred and model.replies == []  # the model is not asked again


def test_confirmation_reaches_the_model_as_an_observation(store):
    email = store.user("ethan_lopez_6291")["email"]
    model = replay(
        call("find_user_id_by_email", email=email),
        call("cancel_pending_order", order_id="#W6779827", reason="no longer needed"),
        say("Shall I cancel it?"),
        say("It is cancelled."),
    )
    agent = make_agent(store, model)
    assert agent.respond(f"{email}: cancel #W6779827").reply == "Shall I cancel it?"
    assert store.order("#W6779827")["status"] == "pending"
    assert agent.respond("yes").reply == "It is cancelled."
    assert store.order("#W6779827")["status"] == "cancelled"
    shown = model.seen[-1]
    assert shown[-2].role == "user" and shown[-1].role == "tool" and '"status": "cancelled"' in shown[-1].content


def test_conversations_do_not_share_state(store):
    email = store.user("ethan_lopez_6291")["email"]
    a = make_agent(store, replay(call("find_user_id_by_email", email=email), say("ok")))
    b = make_agent(store, replay(call("get_order_details", order_id="#W6779827"), say("who are you?")))
    a.respond("hi")
    b.respond("show me #W6779827")
    assert a.session.user_id == "ethan_lopez_6291" and b.session.user_id is None
    assert b.session.trace[0].outcome == "refused" and len(a.messages) == 5 and len(b.messages) == 5


def test_a_guided_model_reads_earlier_turns_without_their_searches():
    from assistant.agent import without_earlier_searches

    search = call("search_products", query="t-shirt")
    results = ChatMessage("tool", '[{"item_id": "1176194968"}]', name="search_products")
    order = call("get_order_details", order_id="#W2611340")
    details = ChatMessage("tool", '{"order_id": "#W2611340"}', name="get_order_details")
    listed = say("Here is what I found: T-Shirt, item 1176194968")
    system, first, second = ChatMessage("system", "policy"), ChatMessage("user", "t-shirts?"), ChatMessage("user", "ok")
    now = [system, first, search, results]
    assert without_earlier_searches(now) == now  # this turn's own search is read whole
    later = [system, first, order, details, search, results, listed, second, search, results]
    # the earlier turn keeps its reply (which lists the items) and its other tools' results
    assert without_earlier_searches(later) == [system, first, order, details, listed, second, search, results]


def test_reading_ahead_reads_the_start_of_the_next_turns_prompt(store):
    class Guided(ReplayModel):
        guided = True
        read: list = []

        def read_ahead(self, messages, idle):
            self.read.append(messages)
            return 1

    model = Guided(call("search_products", query="t-shirt"), say("Here they are"), say("You're welcome"))
    model.expect_tools = {"search_products"}
    agent = Agent(model, PolicySession(ToolRegistry(), ToolContext(store)), "policy", guided=False)
    agent.respond("any t-shirts?")  # replayed unguided; read as a guided model reads it
    agent.guided = True
    assert agent.read_ahead(lambda: True) == 1
    ahead = model.read[-1]
    next_prompt = agent._view([*agent.messages, ChatMessage("user", "thanks")])
    assert next_prompt[: len(ahead)] == ahead and ahead[-1].content == "Here they are"
    assert all(m.role != "tool" for m in ahead)  # the finished turn's search is not read again
