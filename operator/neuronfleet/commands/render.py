"""`neuronfleet render -f FILE`: print a ModelDeployment's child manifests, like `helm template`.

For GitOps previews and `kubectl diff`: the output is exactly what the controller applies, minus
the ownerReferences it adds on the cluster (they need the owner's uid). Replicas for the preview
are spec.replicas, or autoscaling.minReplicas when built-in autoscaling is on (on a cluster the
autoscaler owns the count). Invalid input exits 2 with the reason on stderr.

`--variants` adds the Deployment of every fallback variant (`spec.neuron.fallback`) at 0 replicas,
as the operator creates them when the primary cannot place replicas. `--nodepool` prints instead a
Karpenter v1 NodePool and EC2NodeClass for the plan and its variants (render/karpenter.py), with
the capacity types of `--capacity-type` (repeatable).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["register", "render_documents", "render_nodepools"]


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
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also print each fallback variant's Deployment (spec.neuron.fallback), at 0 replicas",
    )
    parser.add_argument(
        "--nodepool",
        action="store_true",
        help="print a Karpenter v1 NodePool and EC2NodeClass for the plan and its fallback variants instead",
    )
    parser.add_argument(
        "--capacity-type",
        action="append",
        choices=("on-demand", "spot", "reserved"),
        metavar="TYPE",
        help="with --nodepool: on-demand, spot or reserved (capacity reservations and Capacity Blocks); "
        "repeat for several (default: on-demand)",
    )
    parser.add_argument(
        "--cluster", default="my-cluster", help="with --nodepool: the karpenter.sh/discovery tag of subnets and SGs"
    )
    parser.add_argument(
        "--node-role", default="KarpenterNodeRole-my-cluster", help="with --nodepool: the IAM role of the nodes"
    )
    parser.set_defaults(func=_run)


def _variants(md: Any) -> Any:
    from neuronfleet.api import convert
    from neuronfleet.neuron import variants

    fallback = [
        variants.VariantRequest(v.instance_type, v.tensor_parallel_size, v.runtime) for v in md.spec.neuron.fallback
    ]
    return variants.plan_variants(convert.plan_request(md), fallback)


def render_nodepools(
    docs: list[Any], *, capacity_types: list[str], cluster: str, node_role: str
) -> list[dict[str, Any]]:
    """A NodePool and an EC2NodeClass per ModelDeployment in `docs` (plan and fallback variants)."""
    from neuronfleet.render import karpenter
    from neuronfleet.render.options import RenderOptions

    out: list[dict[str, Any]] = []
    for md in _models(docs):
        planned = _planned_variants(md)
        node_class = karpenter.node_pool_name(md)
        out.append(karpenter.node_pool(md, planned, capacity_types=capacity_types, node_class=node_class))
        out.append(
            karpenter.ec2_node_class(
                md,
                planned,
                name=node_class,
                cluster=cluster,
                role=node_role,
                capacity_types=capacity_types,
                options=RenderOptions(),
            )
        )
    return out


def _models(docs: list[Any]) -> list[Any]:
    from neuronfleet.api import constants, resource
    from neuronfleet.errors import PlanError

    found = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"document {index}: expected a mapping, got {type(doc).__name__}")
        if doc.get("kind") != constants.KIND:
            continue
        name = (doc.get("metadata") or {}).get("name") or f"document {index}"
        try:
            found.append(resource.load(doc))
        except PlanError as exc:
            raise PlanError(f"ModelDeployment {name}: {exc}") from exc
        except ValueError as exc:
            raise ValueError(f"ModelDeployment {name}: {exc}") from exc
    if not found:
        raise ValueError(f"no {constants.KIND} found in the input")
    return found


@contextlib.contextmanager
def _naming(md: Any) -> Iterator[None]:
    """Errors raised inside name the ModelDeployment, as a user reads them on stderr."""
    from neuronfleet.errors import PlanError

    try:
        yield
    except PlanError as exc:
        raise PlanError(f"ModelDeployment {md.name}: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"ModelDeployment {md.name}: {exc}") from exc


def _planned_variants(md: Any) -> Any:
    """The plan and its fallback variants; errors name the ModelDeployment."""
    with _naming(md):
        return _variants(md)


def render_variant_deployments(docs: list[Any]) -> list[dict[str, Any]]:
    """Each fallback variant's Deployment at 0 replicas (the primary's is in `render_documents`)."""
    from neuronfleet.render import variants as render_variants
    from neuronfleet.render.options import RenderOptions

    options = RenderOptions()
    out: list[dict[str, Any]] = []
    for md in _models(docs):
        planned = _planned_variants(md)
        for variant in planned[1:]:
            out.append(render_variants.expected(md, planned, variant, replicas=0, options=options))
    return out


def render_documents(docs: list[Any], *, default_allocation: str = "devicePlugin") -> list[dict[str, Any]]:
    """Children of every ModelDeployment in `docs`; raises ValueError/PlanError naming the document."""
    from neuronfleet.api import convert
    from neuronfleet.neuron import planner
    from neuronfleet.render import children
    from neuronfleet.render.options import RenderOptions

    options = RenderOptions(default_allocation=default_allocation)
    out: list[dict[str, Any]] = []
    for md in _models(docs):
        with _naming(md):
            plan = planner.plan(convert.plan_request(md, default_allocation=options.default_allocation))
            out.extend(children.desired(md, plan, replicas=children.preview_replicas(md), options=options))
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
        if args.nodepool:
            objects = render_nodepools(
                docs,
                capacity_types=args.capacity_type or ["on-demand"],
                cluster=args.cluster,
                node_role=args.node_role,
            )
        else:
            objects = render_documents(docs, default_allocation=args.neuron_allocation)
            if args.variants:
                objects += render_variant_deployments(docs)
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
