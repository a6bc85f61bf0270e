"""The `neuronfleet` command line: one sub-command per module in `neuronfleet.commands`.

Each command module exposes `register(subparsers)`, which adds its parser and sets
`func(args) -> int` as the parser default. Keeping commands in their own modules keeps start-up
fast (`neuronfleet crd` never imports kopf) and lets each command be tested on its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from neuronfleet import __version__

__all__ = ["COMMANDS", "build_parser", "main"]

# Order is the order shown in --help.
COMMANDS: tuple[str, ...] = (
    "run",
    "plan",
    "render",
    "crd",
    "simulate",
    "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuronfleet",
        description="Kubernetes operator for vLLM inference fleets on AWS Trainium and Inferentia.",
    )
    parser.add_argument("--version", action="version", version=f"neuronfleet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"neuronfleet.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"neuronfleet.commands.{name}":
                raise
            continue  # a command whose module is not part of this build
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
