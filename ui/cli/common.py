"""Options and helpers shared by several command groups: the model flags, opening search and the model."""

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1 (argparse then prints one line and exits 2 for anything else)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as color=blue, got {text!r}")
    return key.strip(), value.strip()


def store_argument(p: argparse.ArgumentParser, help: str | None = None) -> None:
    from assistant.config import DEFAULT_STORE

    p.add_argument("--store", default=DEFAULT_STORE, help=help or "store pack (default %(default)s)")


def model_arguments(p: argparse.ArgumentParser, agent: bool = True) -> None:
    p.add_argument("--model", help="packaged base model (smollm2, gemma3) or checkpoint folder; env SHOPASSIST_MODEL")
    p.add_argument("--adapter", type=Path, help="LoRA adapter folder; env SHOPASSIST_ADAPTER")
    p.add_argument("--threads", type=int, help="CPU threads for the model; env SHOPASSIST_THREADS")
    if not agent:
        return
    p.add_argument(
        "--examples",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the model in-context examples (default: as the model's prompt profile says; on for base models)",
    )
    p.add_argument("--max-steps", type=int, default=8, help="tool calls allowed per customer message")
    p.add_argument(
        "--unguided",
        action="store_true",
        help="let the model choose any tool and write free replies (for comparison; default: guided)",
    )


def load_model(args: argparse.Namespace, backend: str | None = None):
    """The chat model the arguments name; `backend="transformers"` where its network is read directly."""
    from assistant.llm import load_chat_model

    if args.threads is not None and args.threads < 1:
        raise SystemExit("--threads must be ≥ 1")
    return load_chat_model(args.model, args.adapter, args.threads, backend=backend)


def agent_settings(args: argparse.Namespace):
    from assistant.runtime import AgentSettings

    return AgentSettings(few_shot=args.examples, max_steps=args.max_steps, guided=not args.unguided)


def open_search(store: str):
    from assistant.runtime import open_search

    return open_search(store)
