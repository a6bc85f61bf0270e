"""`neuronfleet render -f FILE`: print a ModelDeployment's child manifests, like `helm template`.

For GitOps previews and `kubectl diff`: the output is exactly what the controller applies, minus
the ownerReferences it adds on the cluster (they need the owner's uid). Replicas for the preview
are spec.replicas, or autoscaling.minReplicas when built-in autoscaling is on (on a cluster the
autoscaler owns the count). Invalid input exits 2 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

__all__ = ["register", "render_documents"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the child manifests of ModelDeployments (YAML, like helm template)",
        description="Plan every ModelDeployment in FILE and print the children the operator would apply "
        "(Deployment or LeaderWorkerSet, Service, PodDisruptionBudget, ResourceClaimTemplate with DRA, PodMonitor; "
        "without ownerReferences), for reviews and `kubectl diff`.",
    )
    parser.add_argument("-f", "--filename", required=True, help="YAML file with ModelDeployments ('-' for stdin)")
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format")
    parser.add_argument(
        "--neuron-allocation",
        choices=("devicePlugin", "dra"),
        default="devicePlugin",
        help="the operator default for ModelDeployments without spec.neuron.allocation (devicePlugin)",
    )
    parser.set_defaults(func=_run)


def render_documents(docs: list[Any], *, default_allocation: str = "devicePlugin") -> list[dict[str, Any]]:
    """Children of every ModelDeployment in `docs`; raises ValueError/PlanError naming the document."""
    from neuronfleet.api import constants, convert, resource
    from neuronfleet.errors import PlanError
    from neuronfleet.neuron import planner
    from neuronfleet.render import children
    from neuronfleet.render.options import RenderOptions

    options = RenderOptions(default_allocation=default_allocation)
    out: list[dict[str, Any]] = []
    found = 0
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"document {index}: expected a mapping, got {type(doc).__name__}")
        if doc.get("kind") != constants.KIND:
            continue
        found += 1
        name = (doc.get("metadata") or {}).get("name") or f"document {index}"
        try:
            md = resource.load(doc)
            plan = planner.plan(convert.plan_request(md, default_allocation=options.default_allocation))
            out.extend(children.desired(md, plan, replicas=children.preview_replicas(md), options=options))
        except PlanError as exc:
            raise PlanError(f"ModelDeployment {name}: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"ModelDeployment {name}: {exc}") from exc
    if not found:
        raise ValueError(f"no {constants.KIND} found in the input")
    return out


def _read(filename: str, stdin: TextIO) -> str:
    if filename == "-":
        return stdin.read()
    with open(filename, encoding="utf-8") as fh:
        return fh.read()


def _run(args: argparse.Namespace) -> int:
    import yaml

    from neuronfleet.errors import PlanError

    try:
        docs = list(yaml.safe_load_all(_read(args.filename, sys.stdin)))
        objects = render_documents(docs, default_allocation=args.neuron_allocation)
    except OSError as exc:
        print(f"error: cannot read {args.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"error: {args.filename} is not valid YAML: {exc}", file=sys.stderr)
        return 2
    except (PlanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True))
    return 0
