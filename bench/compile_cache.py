"""What a compiled-artifact cache hit is worth: the same traces and policies, startup hit vs miss.

Per (trace, profile) the replica startup comes from the planner for the profile's own plan, once
as a cache hit (policy precompile/require: download + load of cached NEFFs) and once as a miss
(compileOnStart on a fresh key: download + cold compile + load). Each policy then runs on the
trace with that startup; the table shows SLO attainment, the worst 5-minute window, NeuronCore-
hours (and the share burnt while replicas start), the oracle's bound LB_L at that startup, and
the difference miss - hit. Prints figures; asserts nothing. One process per job, two workers.

Usage: python bench/compile_cache.py [--quick] [--traces DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from pathlib import Path

from neuronfleet.neuron import capacity, planner
from neuronfleet.sim.oracle import OraclePlan, plan_oracle
from neuronfleet.sim.policies import sweep_targets
from neuronfleet.sim.profiles import EngineProfile, get_profile
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest, read_trace

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"
TRACE_FILES = {"code": "AzureLLMInferenceTrace_code.csv", "conv": "AzureLLMInferenceTrace_conv.csv"}
PROFILES = ("llama-3.1-8b-trn2-tp4", "llama-3.3-70b-trn2-tp64")
POLICIES = ("neuronfleet", "hpa", "keda-tokens", "kpa")


def startup_seconds(profile: EngineProfile, *, cache_hit: bool) -> int:
    """The planner's time-to-ready of one replica of the profile's shape (per-key expectation)."""
    request = capacity.plan_request(
        profile,
        max_num_batched_tokens=profile.max_num_batched_tokens,
        max_model_len=4096,
        compiled_cache_hit=cache_hit,
    )
    return planner.plan(request).expected_startup_seconds


@functools.lru_cache(maxsize=4)
def _trace(path: str) -> tuple[TraceRequest, ...]:
    return read_trace(path)


@functools.lru_cache(maxsize=16)
def _plan(path: str, profile: str, startup: float) -> OraclePlan:
    return plan_oracle(_trace(path), get_profile(profile), Slo(), startup)


def _job(job: tuple[str, str, str, str, float, str, float | None]) -> dict[str, object]:
    trace_name, path, profile, cache, startup, policy, target = job
    run = run_policy(
        _trace(path),
        get_profile(profile),
        policy,
        startup_seconds=startup,
        target=target,
        plan=_plan(path, profile, startup),
    )
    row = run.report.as_dict()
    row.update(trace=trace_name, cache=cache, kind=policy, target=target, lbl=run.plan.lbl_core_hours)
    return row


def _cheapest(runs: list[dict[str, object]], goal: float) -> dict[str, object] | None:
    meeting = [r for r in runs if float(r["attainment"]) >= goal]
    return min(meeting, key=lambda r: float(r["core_hours"])) if meeting else None


def _hours(row: dict[str, object] | None) -> str:
    return f"{float(row['core_hours']):8.1f}" if row else f"{'-':>8s}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=str(TRACES))
    parser.add_argument("--quick", action="store_true", help="one trace, one profile, two policies, half the sweep")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    traces = dict(list(TRACE_FILES.items())[:1]) if args.quick else TRACE_FILES
    profiles = PROFILES[:1] if args.quick else PROFILES
    policies = POLICIES[:2] if args.quick else POLICIES
    slo = Slo()
    startups = {
        (profile, cache): startup_seconds(get_profile(profile), cache_hit=cache == "hit")
        for profile in profiles
        for cache in ("hit", "miss")
    }
    jobs = []
    for trace_name, file_name in traces.items():
        path = str(Path(args.traces) / file_name)
        for profile in profiles:
            for cache in ("hit", "miss"):
                startup = float(startups[(profile, cache)])
                for policy in policies:
                    targets = sweep_targets(policy, get_profile(profile), slo)
                    targets = targets[::2] if args.quick else targets
                    jobs += [(trace_name, path, profile, cache, startup, policy, t) for t in (None, *targets)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        rows = pool.map(_job, jobs)
    elapsed = time.perf_counter() - started

    print("Replica startup from the planner (download + cold compile, or cached NEFFs; load; warm-up):")
    for (profile, cache), seconds in startups.items():
        print(f"  {profile:26s} cache {cache:4s}: {seconds:5d} s")
    print()
    header = (
        f"{'trace':5s} {'profile':26s} {'policy':12s} {'cache':5s} {'start s':>7s} | {'attain':>7s} "
        f"{'worst5m':>7s} {'NC-h':>8s} {'start NC-h':>10s} | {'@95 NC-h':>8s} {'@99 NC-h':>8s} | {'LB_L NC-h':>9s}"
    )
    print(header)
    print("-" * len(header))
    for trace_name in traces:
        for profile in profiles:
            for policy in policies:
                for cache in ("hit", "miss"):
                    runs = [
                        r
                        for r in rows
                        if (r["trace"], r["profile"], r["kind"], r["cache"]) == (trace_name, profile, policy, cache)
                    ]
                    default = next(r for r in runs if r["target"] is None)
                    print(
                        f"{trace_name:5s} {profile:26s} {policy:12s} {cache:5s} {default['startup_seconds']:7.0f} | "
                        f"{default['attainment']:7.2%} {default['worst_window_attainment']:7.2%} "
                        f"{default['core_hours']:8.1f} {default['startup_core_hours']:10.1f} | "
                        f"{_hours(_cheapest(runs, 0.95))} {_hours(_cheapest(runs, 0.99))} | {default['lbl']:9.1f}"
                    )
    print(
        "\nattain/worst5m/NC-h: the policy at its default target; @95/@99: the cheapest run of its target "
        "sweep reaching that attainment ('-': none did); LB_L: the startup-aware oracle's lower bound."
    )
    print(f"{len(jobs)} runs in {elapsed:.1f} s on 2 workers")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
