"""`neuronfleet crd`: print the ModelDeployment CRD generated from the API models."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "crd",
        help="print the ModelDeployment CRD (YAML)",
        description="Print the ModelDeployment CustomResourceDefinition generated from the API models. "
        "crds/neuronfleet.io_modeldeployments.yaml is this output.",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from neuronfleet.api import crd

    sys.stdout.write(crd.crd_yaml())
    return 0
