"""Parse `vllm serve` command lines with vLLM's own CLI parser, inside the vLLM virtualenv.

Why it exists: the renderer writes `vllm serve ...` into every pod; a flag vLLM does not know
(misspelled, renamed, removed) only shows when the pod starts on expensive Neuron hardware.
This script builds the parser exactly as the `vllm` CLI does (the `serve` subcommand's
`subparser_init`, which calls `make_arg_parser`, then the subcommand's `validate`) and
converts the result to `AsyncEngineArgs`, without loading any model: the model positional is
parsed and reported as given, then swapped for an empty local directory before the engine
arguments are built (offline, `AsyncEngineArgs` would otherwise look the id up in the hub cache).

Run with the vLLM venv's python; reads a JSON list of {"id": str, "argv": [...]} on stdin,
where argv starts at "serve"; writes a JSON list of {"id", "ok", "error", "values"} to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from typing import Any

__all__ = ["main", "parse_one"]


def _parser() -> Any:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    command = ServeSubcommand()
    command.subparser_init(subparsers)
    return parser, command


def parse_one(argv: list[str], *, stand_in_model: str) -> dict[str, Any]:
    """Parse, validate and build engine args for one command line; never raises."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    parser, command = _parser()
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args: argparse.Namespace = parser.parse_args(argv)
        command.validate(args)
        values = json.loads(json.dumps(vars(args), default=repr))
        # What `vllm serve` does with the positional before building the engine arguments.
        args.model = stand_in_model
        AsyncEngineArgs.from_cli_args(args)
    except SystemExit:  # argparse reports bad flags on stderr, then exits
        return {"ok": False, "error": stderr.getvalue().strip().splitlines()[-1:], "values": {}}
    except Exception as error:  # validate() and from_cli_args raise ValueError/TypeError
        return {"ok": False, "error": [f"{type(error).__name__}: {error}"], "values": {}}
    return {"ok": True, "error": [], "values": values}


def main() -> int:
    cases = json.load(sys.stdin)
    with tempfile.TemporaryDirectory(prefix="stand-in-model-") as stand_in:
        results = [{"id": case["id"], **parse_one(list(case["argv"]), stand_in_model=stand_in)} for case in cases]
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
