"""Every autoscaling policy on both Azure traces and every startup scenario, in one table.

For each (trace, startup) the table shows each policy at its default target (attainment, attainment
after a 5-minute warm-up, worst 5-minute window, NeuronCore-hours, ratio to the oracle bound LB_L,
flaps/hour) and, because a policy can always buy attainment with cores, the cost at equal attainment:
the cheapest run of its target sweep that reaches 99 % (overall, and after the warm-up) and 95 %, in
NeuronCore-hours and x LB_L; a static fleet swept over its size is the "static-best" reference.

neuronfleet runs in three variants of the same decision function (sim/adapter.py `VARIANTS`), so what
each change buys is measured in the same run: `neuronfleet` (targets derived from the SLO),
`neuronfleet-v0` (the explicit concurrency + prompt-token targets used before), `neuronfleet-hold`
(SLO targets with a one-hour scale-down window: a burst floor).

The warm-up column follows reference/autoscaling.md section 3.5 (first 5 minutes excluded): every
policy starts from the oracle's fleet at t=0 with no history, and the Azure code trace opens with a
burst after two silent minutes that no reactive policy can have seen coming.

Engines: each policy runs on the engine its deployment would have. neuronfleet's planner cuts the
chunked-prefill budget from the SLO (`--max-num-batched-tokens`, 608 tokens on the 8B profile), so
`neuronfleet` and `neuronfleet-hold` (whose specs carry the SLO) run with it; `neuronfleet-v0` (explicit
targets, no SLO) and the baselines keep the profile's 2048, the vllm-neuron default a hand-written
deployment runs. `--max-num-batched-tokens N` puts every policy on one engine with that budget, to
compare the autoscalers alone.

Prints figures; asserts nothing. Two worker processes; `--quick` runs a smaller grid.

Usage: python bench/autoscaler.py [--quick] [--profile NAME] [--max-num-batched-tokens N] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path

from neuronfleet.sim import adapter
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.oracle import OraclePlan, plan_oracle
from neuronfleet.sim.policies import BASELINES, sweep_targets
from neuronfleet.sim.profiles import EngineProfile, get_profile
from neuronfleet.sim.report import summarize
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest, read_trace

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "traces"
TRACE_FILES = {"code": "AzureLLMInferenceTrace_code.csv", "conv": "AzureLLMInferenceTrace_conv.csv"}
STARTUPS = (60.0, 180.0, 420.0, 1200.0)  # warm, AIBrix 2-3 min, WVA 2-7 min, cold compile
GOALS = (0.99, 0.95)
WARMUP_SECONDS = 300.0
NEURONFLEET = ("neuronfleet", "neuronfleet-v0", "neuronfleet-hold")
SLO_SPECS = ("neuronfleet", "neuronfleet-hold")  # variants whose spec carries autoscaling.slo
# Target scales for the neuronfleet variants: finer than the baselines' sweep where 99 % is decided,
# so variants are compared on their frontier rather than on where a coarse grid happens to fall.
NEURONFLEET_SWEEP = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.75, 0.9, 1.15, 1.3)


@functools.lru_cache(maxsize=8)
def _trace(path: str) -> tuple[TraceRequest, ...]:
    return read_trace(path)


def _profile(name: str, chunk: int | None, policy: str = "") -> EngineProfile:
    """The engine `policy` runs on: `chunk` for all when given, else what its deployment plans."""
    profile = get_profile(name)
    if chunk is not None:
        return dataclasses.replace(profile, max_num_batched_tokens=chunk)
    return adapter.deployed_profile(profile, Slo() if policy in SLO_SPECS else None)


@functools.lru_cache(maxsize=32)
def _plan(path: str, profile: str, startup: float, chunk: int | None) -> OraclePlan:
    return plan_oracle(_trace(path), _profile(profile, chunk), Slo(), startup)


Job = tuple[str, str, str, float, str, "float | None", "int | None"]


def _warm_attainment(requests: list, slo: Slo) -> float:
    """Attainment of the requests arriving after the warm-up."""
    late = [r for r in requests if r.arrival >= WARMUP_SECONDS]
    met = sum(
        slo.met(r.prompt_tokens, r.output_tokens, r.first_token - r.arrival, r.finish - r.first_token) for r in late
    )
    return met / len(late) if late else 1.0


def _job(job: Job) -> dict[str, object]:
    trace_name, path, profile_name, startup, policy, target, chunk = job
    profile = _profile(profile_name, chunk, policy)
    plan = _plan(path, profile_name, startup, chunk)
    slo = Slo()
    if policy in NEURONFLEET[1:]:
        # The same decide() with another target set; run like run_policy runs "neuronfleet".
        variant = policy.removeprefix("neuronfleet-")
        fleet_policy = adapter.NeuronfleetPolicy(
            profile, slo, startup_seconds=startup, target_scale=target, variant=variant
        )
        result = simulate(
            _trace(path), profile, fleet_policy, startup_seconds=startup, initial_replicas=max(1, plan.replicas_at(0.0))
        )
        report = summarize(result, slo, oracle_core_hours=plan.lbl_core_hours)
    else:
        run = run_policy(
            _trace(path), profile, policy, startup_seconds=startup, target=target, plan=plan, planned_engine=False
        )
        result, report = run.result, run.report
    row = report.as_dict()
    row.update(
        trace=trace_name,
        kind=policy,
        target=target,
        lb0=plan.lb0_core_hours,
        warm_attainment=_warm_attainment(result.requests, slo),
    )
    return row


def _jobs(args: argparse.Namespace) -> list[Job]:
    slo = Slo()
    profile = get_profile(args.profile)
    chunk = args.max_num_batched_tokens
    startups = (60.0, 420.0) if args.quick else STARTUPS
    jobs: list[Job] = []
    for trace_name, file_name in TRACE_FILES.items():
        path = str(Path(args.traces) / file_name)
        for startup in startups:
            jobs.append((trace_name, path, args.profile, startup, "oracle", None, chunk))
            for name in (*NEURONFLEET, *BASELINES, "static"):
                if name != "static":
                    jobs.append((trace_name, path, args.profile, startup, name, None, chunk))
                targets = NEURONFLEET_SWEEP if name in NEURONFLEET else sweep_targets(name, profile, slo)
                if args.quick:
                    targets = targets[::2]
                jobs += [(trace_name, path, args.profile, startup, name, t, chunk) for t in targets]
    return jobs


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def _cheapest(runs: list[dict[str, object]], goal: float, key: str = "attainment") -> dict[str, object] | None:
    meeting = [r for r in runs if float(r[key]) >= goal]
    return min(meeting, key=lambda r: float(r["core_hours"])) if meeting else None


def _cost(run: dict[str, object] | None, *, target: bool = False) -> str:
    """NC-h and x LB_L of the cheapest run meeting a goal (and its swept target: "dflt" for the default)."""
    if run is None:
        return f"{'-':>8s} {'-':>5s}" + (f" {'-':>6s}" if target else "")
    text = f"{float(run['core_hours']):8.1f} {_fmt(run['ratio_to_oracle'], '5.2f'):>5s}"
    if target:
        text += f" {'dflt' if run['target'] is None else format(run['target'], '6g'):>6s}"
    return text


def _table(rows: list[dict[str, object]]) -> str:
    lines = []
    header = (
        f"{'trace':5s} {'start':>5s} {'policy':16s} {'attain':>7s} {'att>5m':>7s} {'worst5m':>7s} {'NC-h':>6s} "
        f"{'xLB_L':>5s} {'flap/h':>6s} | {'@99 NC-h':>8s} {'xLB_L':>5s} {'target':>6s} | {'@99>5m':>8s} "
        f"{'xLB_L':>5s} | {'@95 NC-h':>8s} {'xLB_L':>5s} | {'best':>6s}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    groups: dict[tuple[str, float], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((str(row["trace"]), float(row["startup_seconds"])), []).append(row)
    for (trace_name, startup), group in sorted(groups.items()):
        lbl = group[0]["oracle_core_hours"]
        lb0 = group[0]["lb0"]
        for kind in ("oracle", *NEURONFLEET, *BASELINES, "static"):
            runs = [r for r in group if r["kind"] == kind]
            if not runs:
                continue
            default = next((r for r in runs if r["target"] is None), None)
            if default is None:
                left = f"{'-':>7s} {'-':>7s} {'-':>7s} {'-':>6s} {'-':>5s} {'-':>6s}"
            else:
                left = (
                    f"{float(default['attainment']):7.4f} {float(default['warm_attainment']):7.4f} "
                    f"{float(default['worst_window_attainment']):7.3f} "
                    f"{float(default['core_hours']):6.1f} {_fmt(default['ratio_to_oracle'], '5.2f')} "
                    f"{float(default['flaps_per_hour']):6.1f}"
                )
            lines.append(
                f"{trace_name:5s} {startup:5.0f} {kind:16s} {left} | "
                f"{_cost(_cheapest(runs, GOALS[0]), target=True)} | "
                f"{_cost(_cheapest(runs, GOALS[0], 'warm_attainment'))} | "
                f"{_cost(_cheapest(runs, GOALS[1]))} | "
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
    parser.add_argument("--max-num-batched-tokens", type=int, help="replace the profile's chunked-prefill token budget")
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
    if args.max_num_batched_tokens:
        engines = f"every policy with chunked-prefill budget {args.max_num_batched_tokens} tokens"
    else:
        planned = _profile(args.profile, None, "neuronfleet").max_num_batched_tokens
        default = get_profile(args.profile).max_num_batched_tokens
        engines = (
            f"chunked-prefill budget {planned} tokens for {', '.join(SLO_SPECS)} (planned), {default} for the rest"
        )
    print(
        f"profile {args.profile}, {engines}; SLO: TTFT <= {slo.ttft_base:g} s + "
        f"prompt/{slo.ttft_tokens_per_second:g} tok/s, >= {slo.min_tokens_per_second:g} tok/s per user. Default "
        f"target: attain, attain after {WARMUP_SECONDS:g} s warm-up, worst 5-min window, NC-h, x LB_L, flaps/h. "
        f"@99/@95: cheapest swept target reaching 99 % / 95 % attainment (@99>5m: after the warm-up); best: "
        f"highest attainment of the sweep. {len(jobs)} runs in {time.monotonic() - started:.0f} s"
    )
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
