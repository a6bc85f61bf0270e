"""`neuronfleet simulate`: replay a request trace against a simulated fleet under one policy."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay a trace against a simulated Neuron fleet under an autoscaling policy",
        description="Replay an LLM request trace (Azure CSV: TIMESTAMP,ContextTokens,GeneratedTokens; or "
        "JSON Lines: timestamp in ms, input_length, output_length) against a simulated vLLM fleet, "
        "scaled by one policy, and report SLO attainment, NeuronCore-hours and the ratio to the "
        "startup-aware oracle lower bound LB_L. Instead of a file, --workload generates a trace of one "
        "workload family from --seed (neuronfleet.sim.workloads).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--trace", help="trace file (.csv or .jsonl)")
    source.add_argument(
        "--workload",
        help="generate a trace instead: steady, long-prompts, long-outputs, diurnal, flash-crowd, bursts, mix",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated workload (default 1)")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of generated workload (default 3600)")
    parser.add_argument(
        "--profile",
        default="llama-3.1-8b-trn2-tp4",
        help="engine profile: llama-3.1-8b-trn2-tp4 (default), llama-3.3-70b-trn2-tp64, or a roofline-derived "
        "one: llama-3.1-405b-trn1-tp128-derived (a group of 4 trn1.32xlarge), llama-3.1-8b-trn1-tp8-derived, "
        "llama-3.1-8b-inf2-tp4-derived",
    )
    parser.add_argument(
        "--policy",
        default="neuronfleet",
        help="neuronfleet, hpa, keda-tokens, keda-waiting, kpa, apa, oracle, static",
    )
    parser.add_argument("--target", type=float, help="the policy's target (default: documented default)")
    parser.add_argument("--startup", type=float, default=180.0, help="seconds from requested to ready")
    parser.add_argument("--rate-scale", type=float, default=1.0, help="multiply the arrival rate by K")
    parser.add_argument("--ttft-base", type=float, help="SLO: TTFT budget base, seconds")
    parser.add_argument("--ttft-rate", type=float, help="SLO: prompt tokens/s added to the budget (0: flat)")
    parser.add_argument("--min-tps", type=float, help="SLO: minimum per-user tokens/s")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--plot", metavar="FILE.png", help="write a plot of demand and replicas")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=_run)


def _progress(quiet: bool):
    started = time.monotonic()
    shown = [started]

    def report(now: float, end: float) -> None:
        clock = time.monotonic()
        if quiet or clock - started < 2.0 or clock - shown[0] < 1.0:
            return
        shown[0] = clock
        print(f"simulated {now:,.0f} of {end:,.0f} s", file=sys.stderr)

    return report


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from neuronfleet.sim import workloads
    from neuronfleet.sim.policies import POLICY_NAMES
    from neuronfleet.sim.profiles import get_profile
    from neuronfleet.sim.runner import run_policy
    from neuronfleet.sim.slo import Slo
    from neuronfleet.sim.trace import read_trace, scale_rate

    if args.policy not in POLICY_NAMES:
        print(f"error: unknown policy {args.policy!r}; known: {', '.join(POLICY_NAMES)}", file=sys.stderr)
        return 2
    try:
        profile = get_profile(args.profile)
        if args.workload:
            trace = workloads.generate(args.workload, args.seed, duration=args.duration)
        else:
            trace = read_trace(args.trace)
        if args.rate_scale != 1.0:
            trace = scale_rate(trace, args.rate_scale)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not trace:
        print(f"error: {args.trace or args.workload}: no requests", file=sys.stderr)
        return 2
    slo = Slo()
    if args.ttft_base is not None:
        slo = replace(slo, ttft_base=args.ttft_base)
    if args.ttft_rate is not None:
        slo = replace(slo, ttft_tokens_per_second=args.ttft_rate)
    if args.min_tps is not None:
        slo = replace(slo, min_tokens_per_second=args.min_tps)
    run = run_policy(
        trace,
        profile,
        args.policy,
        startup_seconds=args.startup,
        slo=slo,
        target=args.target,
        progress=_progress(args.quiet),
    )
    if args.plot:
        from neuronfleet.sim.plot import plot_run

        plot_run(run, args.plot)
    report = run.report.as_dict()
    report["node_hours"] = {name: round(hours, 2) for name, hours in run.report.node_hours}
    report["lb0_core_hours"] = run.plan.lb0_core_hours
    report["trace"] = f"{args.workload} (seed {args.seed})" if args.workload else args.trace
    report["slo"] = {
        "ttft_base": slo.ttft_base,
        "ttft_tokens_per_second": slo.ttft_tokens_per_second,
        "min_tokens_per_second": slo.min_tokens_per_second,
    }
    if args.output == "json":
        print(json.dumps(report, indent=2, allow_nan=False, default=_finite))
    else:
        for key, value in report.items():
            print(f"{key:26s} {_fmt(value)}")
    return 0


def _finite(value: object) -> object:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:g}" for k, v in value.items())
    return str(value)
