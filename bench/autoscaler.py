"""Every autoscaling policy on both Azure traces and every startup scenario, in one table.

For each (trace, startup) the table shows each policy at its default target (attainment, worst
5-minute window, NeuronCore-hours, ratio to the oracle bound LB_L, flaps/hour) and, because a
policy can always buy attainment with cores, the cost at equal attainment: the cheapest run of its
target sweep that reaches 99 % (and 95 %), in NeuronCore-hours and x LB_L; a static fleet swept
over its size is the "static-best" reference. Prints figures; asserts
nothing. Two worker processes; `--quick` runs a smaller grid.

Usage: python bench/autoscaler.py [--quick] [--profile NAME] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path

from neuronfleet.sim.oracle import OraclePlan, plan_oracle
from neuronfleet.sim.policies import BASELINES, sweep_targets
from neuronfleet.sim.profiles import get_profile
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest, read_trace

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"
TRACE_FILES = {"code": "AzureLLMInferenceTrace_code.csv", "conv": "AzureLLMInferenceTrace_conv.csv"}
STARTUPS = (60.0, 180.0, 420.0, 1200.0)  # warm, AIBrix 2-3 min, WVA 2-7 min, cold compile
GOALS = (0.99, 0.95)


@functools.lru_cache(maxsize=8)
def _trace(path: str) -> tuple[TraceRequest, ...]:
    return read_trace(path)


@functools.lru_cache(maxsize=32)
def _plan(path: str, profile: str, startup: float) -> OraclePlan:
    return plan_oracle(_trace(path), get_profile(profile), Slo(), startup)


def _job(job: tuple[str, str, str, float, str, float | None]) -> dict[str, object]:
    trace_name, path, profile, startup, policy, target = job
    run = run_policy(
        _trace(path),
        get_profile(profile),
        policy,
        startup_seconds=startup,
        target=target,
        plan=_plan(path, profile, startup),
    )
    row = run.report.as_dict()
    row.update(trace=trace_name, kind=policy, target=target, lb0=run.plan.lb0_core_hours)
    return row


def _jobs(args: argparse.Namespace) -> list[tuple[str, str, str, float, str, float | None]]:
    slo = Slo()
    profile = get_profile(args.profile)
    startups = (60.0, 420.0) if args.quick else STARTUPS
    jobs = []
    for trace_name, file_name in TRACE_FILES.items():
        path = str(Path(args.traces) / file_name)
        for startup in startups:
            jobs.append((trace_name, path, args.profile, startup, "oracle", None))
            jobs.append((trace_name, path, args.profile, startup, "neuronfleet", None))
            for name in ("neuronfleet", *BASELINES, "static"):
                if name in BASELINES:
                    jobs.append((trace_name, path, args.profile, startup, name, None))
                targets = sweep_targets(name, profile, slo)
                if args.quick:
                    targets = targets[::2]
                jobs += [(trace_name, path, args.profile, startup, name, t) for t in targets]
    return jobs


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _cheapest(runs: list[dict[str, object]], goal: float) -> dict[str, object] | None:
    meeting = [r for r in runs if float(r["attainment"]) >= goal]
    return min(meeting, key=lambda r: float(r["core_hours"])) if meeting else None


def _table(rows: list[dict[str, object]]) -> str:
    lines = []
    header = (
        f"{'trace':5s} {'start':>5s} {'policy':12s} {'attain':>7s} {'worst5m':>7s} {'NC-h':>6s} {'xLB_L':>5s} "
        f"{'flap/h':>6s} | {'@99 NC-h':>8s} {'xLB_L':>5s} {'target':>6s} | {'@95 NC-h':>8s} {'xLB_L':>5s} "
        f"| {'best':>6s}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    groups: dict[tuple[str, float], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["trace"]), float(row["startup_seconds"])), []).append(row)
    for (trace_name, startup), group in sorted(groups.items()):
        lbl = group[0]["oracle_core_hours"]
        lb0 = group[0]["lb0"]
        for kind in ("oracle", "neuronfleet", *BASELINES, "static"):
            runs = [r for r in group if r["kind"] == kind]
            if not runs:
                continue
            default = next((r for r in runs if r["target"] is None), None)
            at99 = _cheapest(runs, GOALS[0])
            at95 = _cheapest(runs, GOALS[1])
            if default is None:
                left = f"{'-':>7s} {'-':>7s} {'-':>6s} {'-':>5s} {'-':>6s}"
            else:
                left = (
                    f"{float(default['attainment']):7.4f} {float(default['worst_window_attainment']):7.3f} "
                    f"{float(default['core_hours']):6.1f} {_fmt(default['ratio_to_oracle'], '5.2f')} "
                    f"{float(default['flaps_per_hour']):6.1f}"
                )
            lines.append(
                f"{trace_name:5s} {startup:5.0f} {kind:12s} {left} | "
                f"{_fmt(at99['core_hours'] if at99 else None, '8.1f'):>8s} "
                f"{_fmt(at99['ratio_to_oracle'] if at99 else None, '5.2f'):>5s} "
                f"{_fmt(at99['target'] if at99 and at99['target'] is not None else None, '6g'):>6s} | "
                f"{_fmt(at95['core_hours'] if at95 else None, '8.1f'):>8s} "
                f"{_fmt(at95['ratio_to_oracle'] if at95 else None, '5.2f'):>5s} | "
                f"{max(float(r['attainment']) for r in runs):6.4f}"
            )
        lines.append(f"{'':5s} {'':5s} LB_L {lbl:.1f} NC-h, LB0 {lb0:.1f} NC-h")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two startup scenarios, half the sweep")
    parser.add_argument("--profile", default="llama-3.1-8b-trn2-tp4")
    parser.add_argument("--traces", default=str(TRACES), help="directory holding the Azure CSV traces")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write every run's report to this file")
    args = parser.parse_args()
    jobs = _jobs(args)
    started = time.monotonic()
    rows = []
    with multiprocessing.Pool(args.workers) as pool:
        for done, row in enumerate(pool.imap_unordered(_job, jobs, chunksize=1), 1):
            rows.append(row)
            if done % 10 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} runs, {time.monotonic() - started:.0f} s", file=sys.stderr)
    slo = Slo()
    print(
        f"profile {args.profile}; SLO: TTFT <= {slo.ttft_base:g} s + prompt/{slo.ttft_tokens_per_second:g} tok/s, "
        f">= {slo.min_tokens_per_second:g} tok/s per user. Default target: attain, worst 5-min window, NC-h, "
        f"x LB_L, flaps/h. @99/@95: cheapest swept target reaching 99 % / 95 % attainment; best: highest "
        f"attainment of the sweep. {len(jobs)} runs in {time.monotonic() - started:.0f} s"
    )
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
