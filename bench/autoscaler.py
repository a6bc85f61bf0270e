"""neuronfleet against OPT, the best static fleet, LB_L and the best baseline, on every trace and family.

For each trace (the two Azure 2023 traces and the workload families of `neuronfleet.sim.workloads`, one
or more seeds each) and each startup scenario (60/180/420/1200 s), one row:

- LB_L: the fluid, startup-aware lower bound (`sim.oracle`); a floor, not a schedule anyone can run;
- static: the smallest fixed fleet whose simulated attainment reaches the goal (99 %), and its cost;
- OPT: the cheapest window schedule the search finds that reaches the goal in the simulator
  (`sim.opt`: windows of a minute, startup included, future known; never above the static fleet);
- neuronfleet: the default spec (an SLO and no hand-set target: `sim.adapter` variant "slo", the whole
  measured path), its attainment, attainment after a 5-minute warm-up, NeuronCore-hours and x OPT;
- best baseline: among HPA, KEDA (tokens/s and waiting), Knative KPA and AIBrix APA, each swept over its
  own target, the cheapest run reaching the goal (or, when none does, the highest attainment, marked *).

A second table compares neuronfleet's variants at their defaults (open loop: the SLO targets before
measurement; hold: a one-hour scale-down window; roofline: the measured path from the roofline prior)
with the default. Each policy runs on the engine its deployment would have (neuronfleet's planner cuts
the prefill chunk for the SLO; the baselines keep vllm-neuron's default 2048). Every policy starts the hour
from OPT's fleet at t=0, warm, as OPT itself does (LB_L's where no OPT was found): a smaller start, such as
LB_L's fluid count, decides the first startup's attainment before any policy acts (long answers hold a
slot for minutes, and LB_L's t=0 count leaves them a third of the replicas they need).

Prints figures; asserts nothing. Two worker processes. `--quick`: two startups, half the sweeps, seed 1.

`--profile` runs another engine. `llama-3.1-405b-trn1-tp128-derived` is Llama-3.1-405B as
examples/llama31-405b-trn1-lws.yaml plans it: every replica a group of 4 trn1.32xlarge (128 NeuronCores,
billed whole from requested to gone), scaled by whole groups, its engine the roofline prior of that plan
(`sim.profiles`: derived, not calibrated). A group serves 8 sequences, so its traces are thinned to
`--share` of their requests (default 0.25 for it: a few groups, where whole-group steps cost the most),
and its startups are 420 s and 1200 s (ai-on-eks: "up to 20 minutes to compile and load" a 405B group,
reference/anchors.md; the planner's own cache-hit estimate, about 66 minutes, is longer than the traces).

Usage: python bench/autoscaler.py [--quick] [--seeds 1,2] [--traces DIR] [--json FILE]
       python bench/autoscaler.py --profile llama-3.1-405b-trn1-tp128-derived [--share 0.25]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import sys
import time
from pathlib import Path

from neuronfleet.sim import adapter, opt, workloads
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.oracle import plan_oracle
from neuronfleet.sim.policies import BASELINES, sweep_targets
from neuronfleet.sim.profiles import EngineProfile, derived, get_profile
from neuronfleet.sim.report import summarize
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.shapes import single
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest, read_trace, thin

_HERE = Path(__file__).resolve().parents[1]
# The shared traces sit beside the main checkout (../shared) or beside the worktrees' parent (../../shared).
TRACES = next(
    (p for p in (_HERE.parent / "shared/data/traces", _HERE.parent.parent / "shared/data/traces") if p.is_dir()),
    _HERE.parent / "shared/data/traces",
)
AZURE = {"code": "AzureLLMInferenceTrace_code.csv", "conv": "AzureLLMInferenceTrace_conv.csv"}
STARTUPS = (60.0, 180.0, 420.0, 1200.0)  # warm, AIBrix 2-3 min, WVA 2-7 min, cold compile
GOAL = 0.99
WARMUP_SECONDS = 300.0
VARIANTS = ("slo", "open-loop", "hold", "roofline")
PROFILE = "llama-3.1-8b-trn2-tp4"
GROUP_PROFILE = "llama-3.1-405b-trn1-tp128-derived"
STARTUPS_BY_PROFILE = {GROUP_PROFILE: (420.0, 1200.0)}
SHARE_BY_PROFILE = {GROUP_PROFILE: 0.25}
THIN_SEED = 1

# Which engine and how much of each trace: (profile name, share of requests kept); every job carries it.
Setup = tuple[str, float]


@functools.lru_cache(maxsize=16)
def _trace(key: str, traces: str, share: float = 1.0) -> tuple[TraceRequest, ...]:
    """An Azure trace by name, or a generated family as 'family:seed', thinned to `share` of its requests."""
    if key in AZURE:
        full = read_trace(Path(traces) / AZURE[key])
    else:
        family, _, seed = key.partition(":")
        full = workloads.generate(family, int(seed))
    return full if share >= 1.0 else thin(full, share, seed=THIN_SEED)


def _profile(planned: bool, name: str = PROFILE) -> EngineProfile:
    profile = get_profile(name)
    return adapter.deployed_profile(profile, Slo()) if planned else profile


def _warm(requests: list, slo: Slo) -> float:
    late = [r for r in requests if r.arrival >= WARMUP_SECONDS]
    met = sum(
        slo.met(r.prompt_tokens, r.output_tokens, r.first_token - r.arrival, r.finish - r.first_token) for r in late
    )
    return met / len(late) if late else 1.0


PolicyJob = tuple[str, str, float, str, float | None, Setup, int | None]
"""(trace key, traces dir, startup, policy kind, target, setup, replicas at t=0 or None for LB_L's)."""


def _policy_job(job: PolicyJob) -> dict[str, object]:
    key, traces, startup, kind, target, (name, share), initial = job
    trace = _trace(key, traces, share)
    slo = Slo()
    if kind in VARIANTS:
        profile = _profile(True, name)
        plan = plan_oracle(trace, profile, slo, startup)
        policy = adapter.NeuronfleetPolicy(profile, slo, startup_seconds=startup, target_scale=target, variant=kind)
        start = initial or max(1, plan.replicas_at(0.0))
        result = simulate(trace, profile, policy, startup_seconds=startup, initial_replicas=start)
        report = summarize(result, slo, oracle_core_hours=plan.lbl_core_hours)
    else:
        profile = _profile(False, name)
        run = run_policy(
            trace, profile, kind, startup_seconds=startup, target=target, planned_engine=False, initial_replicas=initial
        )
        result, report = run.result, run.report
        plan = run.plan
    return {
        "trace": key,
        "startup": startup,
        "kind": kind,
        "target": target,
        "attainment": report.attainment,
        "warm": _warm(result.requests, slo),
        "core_hours": report.core_hours,
        "lbl": plan.lbl_core_hours,
    }


def _static_job(job: tuple[str, str, Setup]) -> tuple[str, list[opt.StaticRun]]:
    key, traces, (name, share) = job
    return key, opt.static_runs(_trace(key, traces, share), _profile(True, name), Slo(), goal=GOAL)


def _opt_job(job: tuple[str, str, tuple[float, ...], list[opt.StaticRun], Setup]) -> list[dict[str, object]]:
    """OPT for every startup of one trace, longest first: each answer is a candidate for the shorter ones."""
    key, traces, startups, runs, (name, share) = job
    found: list[tuple[int, ...]] = []
    rows = []
    for startup in sorted(startups, reverse=True):
        try:
            best = opt.search(
                _trace(key, traces, share),
                _profile(True, name),
                Slo(),
                startup_seconds=startup,
                goal=GOAL,
                runs=runs,
                candidates=found,
            )
        except RuntimeError:  # no schedule in the sweep reaches the goal (an engine too slow for the SLO)
            rows.append({"trace": key, "startup": startup, "opt": None, "opt_attainment": None})
            continue
        found.append(best.schedule)
        static = best.static_best
        rows.append(
            {
                "trace": key,
                "startup": startup,
                "opt": best.report.core_hours,
                "opt_attainment": best.report.attainment,
                "initial": best.schedule[0] if best.schedule else None,
                "static_replicas": static.replicas if static else None,
                "static": static.report.core_hours if static else None,
                "static_attainment": static.report.attainment if static else None,
            }
        )
    return rows


def _shape_line(profile: EngineProfile, share: float) -> str:
    """What one replica is and bills, and where its engine comes from."""
    shape = single(profile, 0.0)
    found = derived(profile.name)
    where = f"engine derived: {found.source}" if found else "engine calibrated"
    if shape.is_group:
        per_node = profile.cores // shape.nodes_per_replica
        unit = (
            f"a replica is a group of {shape.nodes_per_replica} {profile.instance_type} ({profile.cores} NeuronCores, "
            f"{per_node} per node: node-hours = NC-h / {per_node})"
        )
    else:
        packing = f"{shape.replicas_per_node} per node"
        unit = f"a replica is {profile.cores} NeuronCores of a {profile.instance_type} ({packing})"
    thinned = f"; traces thinned to {share:.0%} of their requests" if share < 1.0 else ""
    return f"{unit}; {where}{thinned}"


def _keys(args: argparse.Namespace) -> list[str]:
    seeds = [1] if args.quick else [int(s) for s in args.seeds.split(",")]
    return [*AZURE, *(f"{name}:{seed}" for name in workloads.names() for seed in seeds)]


def _fmt(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _best_baseline(rows: list[dict[str, object]]) -> tuple[dict[str, object] | None, bool]:
    base = [r for r in rows if r["kind"] in BASELINES]
    meeting = [r for r in base if float(r["attainment"]) >= GOAL]
    if meeting:
        return min(meeting, key=lambda r: float(r["core_hours"])), True
    return (max(base, key=lambda r: float(r["attainment"])) if base else None), False


def _ratio(row: dict[str, object] | None, reference: object) -> str:
    """A run's NeuronCore-hours over OPT's."""
    return _fmt(float(row["core_hours"]) / float(reference), "5.2f") if row and reference else "-"


def _tables(rows: list[dict[str, object]], opts: list[dict[str, object]]) -> str:
    lines = [
        f"{'trace':17s} {'start':>5s} | {'LB_L':>6s} | {'static':>3s} {'NC-h':>6s} | {'OPT NC-h':>8s} {'att':>6s} | "
        f"{'neuronfleet att':>15s} {'>5m':>6s} {'NC-h':>6s} {'xOPT':>5s} | {'best baseline':>20s} {'att':>6s} "
        f"{'NC-h':>6s} {'xOPT':>5s}"
    ]
    lines.append("-" * len(lines[0]))
    by_key: dict[tuple[str, float], list[dict[str, object]]] = {}
    for row in rows:
        by_key.setdefault((str(row["trace"]), float(row["startup"])), []).append(row)
    optimum = {(str(o["trace"]), float(o["startup"])): o for o in opts}
    for (key, startup), group in sorted(by_key.items(), key=lambda kv: (kv[0][0] not in AZURE, kv[0])):
        o = optimum.get((key, startup), {})
        best_opt = o.get("opt")
        nf = next((r for r in group if r["kind"] == "slo" and r["target"] is None), None)
        baseline, meets = _best_baseline(group)

        name = "-"
        if baseline:
            name = f"{baseline['kind']}@{float(baseline['target']):g}" + ("" if meets else "*")
        lines.append(
            f"{key:17s} {startup:5.0f} | {float(group[0]['lbl']):6.1f} | {_fmt(o.get('static_replicas'), '3d')} "
            f"{_fmt(o.get('static'), '6.1f')} | {_fmt(best_opt, '8.1f')} {_fmt(o.get('opt_attainment'), '6.4f')} | "
            f"{_fmt(nf and nf['attainment'], '15.4f')} {_fmt(nf and nf['warm'], '6.4f')} "
            f"{_fmt(nf and nf['core_hours'], '6.1f')} {_ratio(nf, best_opt):>5s} | {name:>20s} "
            f"{_fmt(baseline and baseline['attainment'], '6.4f')} {_fmt(baseline and baseline['core_hours'], '6.1f')} "
            f"{_ratio(baseline, best_opt):>5s}"
        )
    lines.append("")
    lines.append("neuronfleet variants at their defaults: attainment / NC-h")
    header = f"{'trace':17s} {'start':>5s} | " + " | ".join(f"{v:>16s}" for v in VARIANTS)
    lines.append(header)
    for (key, startup), group in sorted(by_key.items(), key=lambda kv: (kv[0][0] not in AZURE, kv[0])):
        cells = []
        for variant in VARIANTS:
            r = next((r for r in group if r["kind"] == variant and r["target"] is None), None)
            cells.append(f"{float(r['attainment']):7.4f} {float(r['core_hours']):7.1f}" if r else f"{'-':>16s}")
        lines.append(f"{key:17s} {startup:5.0f} | " + " | ".join(f"{c:>16s}" for c in cells))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s and 420 s startups, half the sweeps, seed 1")
    parser.add_argument("--seeds", default="1", help="family seeds, comma-separated (default 1)")
    parser.add_argument("--traces", default=str(TRACES), help="directory holding the Azure CSV traces")
    parser.add_argument("--only", help="comma-separated trace keys (code, conv, family:seed) to run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write every run to this file")
    parser.add_argument("--profile", default=PROFILE, help=f"engine profile (default {PROFILE}; or {GROUP_PROFILE})")
    parser.add_argument("--share", type=float, help="keep this share of each trace's requests (default: per profile)")
    args = parser.parse_args()
    keys = _keys(args)
    if args.only:
        keys = [k for k in keys if k in set(args.only.split(","))]
    full = STARTUPS_BY_PROFILE.get(args.profile, STARTUPS)
    startups = (full[0], full[-1]) if args.quick and len(full) > 2 else full
    if args.quick and args.profile not in STARTUPS_BY_PROFILE:
        startups = (60.0, 420.0)
    slo, profile = Slo(), get_profile(args.profile)
    setup: Setup = (args.profile, args.share if args.share is not None else SHARE_BY_PROFILE.get(args.profile, 1.0))
    started = time.monotonic()
    with multiprocessing.Pool(args.workers) as pool:
        statics = dict(pool.imap_unordered(_static_job, [(k, args.traces, setup) for k in keys]))
        print(f"static sweeps done, {time.monotonic() - started:.0f} s", file=sys.stderr)
        opt_jobs = [(k, args.traces, startups, statics[k], setup) for k in keys]
        opts = [row for rows in pool.imap_unordered(_opt_job, opt_jobs) for row in rows]
        print(f"OPT done, {time.monotonic() - started:.0f} s", file=sys.stderr)
        # Every policy starts from OPT's fleet at t=0 (LB_L's where no OPT was found).
        start = {(str(o["trace"]), float(o["startup"])): o.get("initial") for o in opts}
        jobs: list[PolicyJob] = []
        for key in keys:
            for startup in startups:
                initial = start.get((key, startup))
                jobs += [(key, args.traces, startup, variant, None, setup, initial) for variant in VARIANTS]
                for name in BASELINES:
                    targets = sweep_targets(name, profile, slo)
                    chosen = targets[::2] if args.quick else targets
                    jobs += [(key, args.traces, startup, name, t, setup, initial) for t in chosen]
        rows = []
        for done, row in enumerate(pool.imap_unordered(_policy_job, jobs, chunksize=2), 1):
            rows.append(row)
            if done % 50 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} runs, {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(
        f"profile {args.profile}; SLO: TTFT <= {slo.ttft_base:g} s + prompt/{slo.ttft_tokens_per_second:g} tok/s, "
        f">= {slo.min_tokens_per_second:g} tok/s per user; goal {GOAL:.0%} attainment. NC-h: NeuronCore-hours. "
        f"{len(jobs)} policy runs in {time.monotonic() - started:.0f} s"
    )
    print(_shape_line(profile, setup[1]))
    print(_tables(rows, opts))
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, "opt": opts}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
