"""The ``autalk`` command line. Each subcommand lives in ``autalk.commands.<name>`` and calls the
same package functions the notebooks call."""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand name -> module exposing ``add_parser(subparsers)`` that sets ``func`` on its parser.
COMMANDS = {
    "corpus": "autalk.commands.corpus",
    "preprocess": "autalk.commands.preprocess",
    "download": "autalk.commands.download",
    "train": "autalk.commands.train",
    "evaluate": "autalk.commands.evaluate",
    "generate": "autalk.commands.generate",
}


def build_parser() -> argparse.ArgumentParser:
    from autalk import __version__

    parser = argparse.ArgumentParser(
        prog="autalk",
        description="autalk: companion to 'Talking Head Generation with Audio and Speech Related Facial "
                    "Action Units' (BMVC 2021). Every command calls the same functions as the notebooks.")
    parser.add_argument("--version", action="version", version=f"autalk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:  # a subcommand not written yet: leave it out
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        print(f"autalk {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
