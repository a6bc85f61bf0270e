"""`neuronfleet demo`: the whole fleet on 127.0.0.1 (API emulator, operator, simulated Neuron replicas, Prometheus).

Everything heavy is imported when the command runs, so `neuronfleet --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the local end-to-end demo: a whole Trainium fleet on this machine, no cluster needed",
        description="Start an emulated Kubernetes API server with the CRD, the real operator, a simulated "
        "Neuron node pool whose replicas behave like vLLM on Neuron (timing from the simulator's engine "
        "model), a real Prometheus scraping them, and replay a request trace against the fleet's Service, "
        "time-compressed. Shows the fleet live and ends with a summary (and a plot). Everything listens on "
        "127.0.0.1 and is stopped at the end, on --duration or on Ctrl-C.",
    )
    parser.add_argument(
        "-f",
        "--filename",
        type=Path,
        metavar="FILE",
        help="the ModelDeployment to apply (default: examples/demo/llama3-8b-trn2.yaml of the source tree)",
    )
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="request trace, Azure CSV or JSON Lines (default: a 15-minute excerpt of Azure's conversation trace)",
    )
    parser.add_argument("--trace-start", type=float, default=0.0, metavar="S", help="skip the first S trace seconds")
    parser.add_argument("--trace-seconds", type=float, metavar="S", help="replay only S trace seconds")
    parser.add_argument(
        "--compression",
        type=float,
        default=10.0,
        metavar="K",
        help="time compression: K simulated seconds per wall second (default 10)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this many wall seconds of load and cool-down (default: the trace, then until the "
        "fleet is back at minReplicas, at most --cooldown seconds)",
    )
    parser.add_argument("--cooldown", type=float, default=90.0, metavar="SECONDS", help="see --duration (default 90)")
    parser.add_argument(
        "--startup",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="simulated replica startup time, compressed like the rest (default 120: cached Neuron artifacts)",
    )
    parser.add_argument(
        "--nodes",
        metavar="TYPE=N[,...]",
        help="the Neuron node pool, e.g. trn2.48xlarge=2,trn1.32xlarge=1: at most N nodes of each type; the "
        "emulator's kube-scheduler places each replica's pod where its Neuron devices fit, the rest stay Pending "
        "with the scheduler's reason (default: the plan's instance type, enough nodes for maxReplicas)",
    )
    parser.add_argument(
        "--provisioning-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="simulated seconds a node takes to appear: the pool starts empty and a Karpenter stand-in adds a node "
        "of a type when a pod cannot be placed, up to --nodes (default 0: every node exists from the start)",
    )
    parser.add_argument("--kubeconfig-out", type=Path, metavar="PATH", help="write the kubeconfig here (kept)")
    plot = parser.add_mutually_exclusive_group()
    plot.add_argument(
        "--plot",
        type=Path,
        default=Path("neuronfleet-demo.png"),
        metavar="FILE.png",
        help="where to write the plot of load vs replicas (default: neuronfleet-demo.png)",
    )
    plot.add_argument("--no-plot", action="store_true", help="no plot (matplotlib is then never imported)")
    parser.add_argument("--summary-json", type=Path, metavar="FILE", help="write the summary as JSON")
    parser.add_argument(
        "--real-vllm",
        action="store_true",
        help="also run one real vLLM server (CPU, tiny model) beside the simulated replicas, if scripts/real-vllm.sh "
        "installed it; it needs spare CPU (try --compression 5)",
    )
    parser.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="live view refresh (default 2)")
    parser.add_argument("--workdir", type=Path, metavar="DIR", help="keep logs and Prometheus data here")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from neuronfleet.demo.app import DEFAULT_TRACE, DemoConfig, DemoError, find_manifest, run_demo
    from neuronfleet.demo.capacity import parse_nodes

    try:
        node_counts = parse_nodes(args.nodes) if args.nodes else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    manifest = args.filename or find_manifest()
    if manifest is None:
        print("error: no ModelDeployment given and examples/demo/ not found; pass -f FILE", file=sys.stderr)
        return 2
    config = DemoConfig(
        manifest=manifest,
        trace=args.trace or DEFAULT_TRACE,
        trace_start=args.trace_start,
        trace_seconds=args.trace_seconds,
        compression=args.compression,
        duration=args.duration,
        cooldown=args.cooldown,
        startup_seconds=args.startup,
        kubeconfig_out=args.kubeconfig_out,
        plot=None if args.no_plot else args.plot,
        summary_json=args.summary_json,
        real_vllm=args.real_vllm,
        view_interval=args.interval,
        workdir=args.workdir,
        nodes=node_counts,
        provisioning_delay=args.provisioning_delay,
    )
    try:
        asyncio.run(run_demo(config))
    except DemoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
