"""`shopassist chat` (the terminal) and `shopassist ui` (the web app): the agent in front of people."""

import argparse

from ui.cli.common import agent_settings, load_model, model_arguments, open_search, store_argument


def register(sub) -> None:
    p = sub.add_parser("chat", help="chat with the assistant in the terminal")
    store_argument(p)
    p.add_argument("--trace", action="store_true", help="show each tool call, its arguments and result")
    p.add_argument("--search-only", action="store_true", help="no model: answer from product search only")
    model_arguments(p)
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("ui", help="the web app: shopper chat, agent console, recommendations (127.0.0.1)")
    store_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    model_arguments(p)
    p.set_defaults(func=cmd_ui)


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.ranking import ranker_for_store
    from assistant.store import Store
    from assistant.tools import ToolContext
    from ui.chat import AgentChat, SearchChat, run_repl

    search = open_search(args.store)
    if args.search_only:
        run_repl(SearchChat(search), args.store)
        return 0
    model = load_model(args)
    with Store.open(args.store) as store:
        ctx = ToolContext(store, search, ranker_for_store(args.store, store))
        run_repl(AgentChat(model, ctx, args.store, agent_settings(args), trace=args.trace), args.store)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from assistant.store import Store
    from ui.app import CONSOLE_PATH, serve
    from ui.serve import make_hub
    from ui.staff import staff_login

    search = open_search(args.store)
    model = load_model(args)
    staff = staff_login()
    with Store.open(args.store) as store:
        hub = make_hub(model, store, search, args.store, settings=agent_settings(args))
        url = f"http://{args.host}:{args.port}"
        print(f"shopassist ui: model {model.name}, store {args.store!r}, logs in {hub.log.path.parent}")
        print(f"  shoppers:      {url}/")
        print(f"  staff console: {url}{CONSOLE_PATH}/ — user {staff.user!r}, password in {staff.source}", flush=True)
        try:
            serve(hub, staff, host=args.host, port=args.port)
        except OSError as exc:  # e.g. the port is taken by another server
            raise SystemExit(f"shopassist ui: cannot serve on {args.host}:{args.port}: {exc}; try --port N") from None
    return 0
