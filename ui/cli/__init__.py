"""The `shopassist` command line: one module per command group, each registering only its own options.

Every command goes through `main`, which enforces offline mode, keeps the old spellings working (with a
line saying what to type now) and turns any `ShopassistError` into one line on stderr and exit code 2.
"""

import argparse
import os
import sys

from retrieval.errors import ShopassistError
from retrieval.offline import enforce_offline
from ui.cli import catalog, data, evaluate, logs, recommend, store, talk, train

GROUPS = (catalog, store, talk, recommend, evaluate, train, data, logs)

# old spelling -> the one verb scheme: `train X`, `eval X`, `data X`
ALIASES = {
    ("finetune", "build"): ("data", "dialogues"),
    ("finetune", "sft"): ("train", "sft"),
    ("finetune", "eval"): ("eval", "sft"),
    ("eval", "zeroshot-data"): ("data", "zeroshot"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopassist", description="Conversational shopping and customer-service assistant (offline)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def translate(argv: list[str]) -> list[str]:
    """An old spelling becomes the new one, with a note on stderr saying what to type from now on."""
    new = ALIASES.get(tuple(argv[:2]))
    if new is None:
        return argv
    print(
        f"shopassist: `{' '.join(argv[:2])}` is now `{' '.join(new)}`; running `shopassist {' '.join(new)}`",
        file=sys.stderr,
    )
    return [*new, *argv[2:]]


def main(argv: list[str] | None = None) -> int:
    enforce_offline()
    argv = translate(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ShopassistError, FileExistsError) as exc:
        return _fail(args.command, str(exc))
    except BrokenPipeError:  # `shopassist search ... | head -1`: the reader left; nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UnicodeDecodeError as exc:
        return _fail(args.command, f"a file is not valid UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:  # unwritable folder, missing file, full disk: say which, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(args.command, f"{exc.strerror or exc}{where}")


def _fail(command: str, message: str) -> int:
    print(f"shopassist {command}: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
