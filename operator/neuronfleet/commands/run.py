"""`neuronfleet run`: the operator itself (kopf embedded), configured by flags.

The Helm chart passes exactly these flags; keep their names stable. kopf is imported only when
the command runs, so the other commands start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable

from neuronfleet.controller.settings import DEFAULT_PEERING, OperatorConfig

__all__ = ["config_from_args", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the operator against a cluster",
        description="Run the neuronfleet operator: reconcile ModelDeployments into vLLM Neuron fleets. "
        "Connects with --kubeconfig, else the in-cluster service account, else $KUBECONFIG or ~/.kube/config.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="serve only this namespace (repeatable)",
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="serve every namespace (the default)")
    parser.add_argument("--health-port", type=int, default=8080, help="liveness endpoint port (/healthz); 0 = off")
    parser.add_argument("--metrics-port", type=int, default=8081, help="Prometheus metrics port (/metrics); 0 = off")
    parser.add_argument(
        "--bind-address", default="0.0.0.0", help="address of the health and metrics endpoints (default 0.0.0.0)"
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help=f"kopf peering object, so only one of several replicas acts (default: {DEFAULT_PEERING}, "
        "used if it exists; naming one makes it required)",
    )
    peering.add_argument("--standalone", action="store_true", help="no peering: the only replica")
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority (default: random per start, so exactly one of several replicas acts)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=_lifetime,
        default=60,
        metavar="SECONDS",
        help="how long this replica's peering entry counts as alive without a heartbeat: a standby takes over "
        "this long after the acting replica dies without leaving (SIGKILL, node loss) (default: 60, kopf's)",
    )
    parser.add_argument("--prometheus-url", default=None, help="default Prometheus for autoscaling")
    parser.add_argument(
        "--service-level-window",
        type=_window,
        default=300.0,
        metavar="SECONDS",
        help="window over which the service level of a fleet with spec.autoscaling.slo is measured from "
        "vLLM's histograms (status.serviceLevel, ServiceLevelMet) (default: 300)",
    )
    parser.add_argument("--image-vllm-neuron", default=None, help="default image of the vllm-neuron runtime")
    parser.add_argument("--image-nxdi", default=None, help="default image of the nxdi runtime")
    parser.add_argument(
        "--neuron-allocation",
        choices=("devicePlugin", "dra"),
        default="devicePlugin",
        help="how pods get Neuron devices when spec.neuron.allocation is empty: the device plugin's extended "
        "resources, or a DRA ResourceClaimTemplate (Kubernetes 1.34+, the Neuron DRA driver) (default: devicePlugin)",
    )
    parser.add_argument("--kubeconfig", default=None, metavar="PATH", help="kubeconfig file")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.set_defaults(func=_run)


def config_from_args(args: argparse.Namespace) -> OperatorConfig:
    """The flags as one OperatorConfig (tests build it from the real parser)."""
    return OperatorConfig(
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        health_port=args.health_port or None,
        metrics_port=args.metrics_port or None,
        bind_address=args.bind_address,
        log_format=args.log_format,
        peering=None if args.standalone else (args.peering or DEFAULT_PEERING),
        peering_explicit=args.peering is not None,
        standalone=args.standalone,
        priority=args.priority,
        peering_lifetime=args.peering_lifetime,
        prometheus_url=args.prometheus_url,
        service_level_window=args.service_level_window,
        image_vllm_neuron=args.image_vllm_neuron,
        image_nxdi=args.image_nxdi,
        neuron_allocation=args.neuron_allocation,
        kubeconfig=args.kubeconfig,
        verbose=args.verbose,
    )


def _seconds(kind: type[int] | type[float], low: int, high: int) -> Callable[[str], float]:
    """An argparse type for a number of seconds in [low, high], with argparse's wording on errors."""
    noun = "whole number" if kind is int else "number"

    def parse(text: str) -> float:
        try:
            seconds = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {noun} of seconds: {text!r}") from None
        if not low <= seconds <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high} seconds, got {text}")
        return seconds

    return parse


# At least 10 s: kopf heartbeats 5-10 s before a peering entry expires.
_lifetime = _seconds(int, 10, 3600)
# At least 10 s: a window of a few scrapes holds too few points for increase().
_window = _seconds(float, 10, 86400)


def _run(args: argparse.Namespace) -> int:
    import kopf

    from neuronfleet.controller import runner

    config = config_from_args(args)
    log_format = kopf.LogFormat.JSON if config.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(verbose=config.verbose, log_format=log_format)
    # kopf logs every handler call at INFO ("Handler 'cache-pods' succeeded."): one line per watch
    # event of every child. The operator's own logs say what it did; kopf's stay for --verbose.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if config.verbose else logging.WARNING)
    asyncio.run(runner.run_operator(config))
    return 0
