"""neuronfleet on scarce Neuron capacity, with and without fallback variants, against the oracle on the same capacity.

The fleet: Llama-3.1-8B with an SLO (the default spec), primary trn2.48xlarge TP4 (the calibrated engine, 16
replicas per node), and as `spec.neuron.fallback` trn1.32xlarge then inf2.48xlarge, planned by the planner
(`neuron.variants.plan_variants`: TP8 on trn1, 4 per node, 0.69 capacity units; TP4 on inf2, 6 per node,
0.35 units) with engines derived from the roofline prior of those plans (`sim.profiles`, marked derived).
Every variant starts in its plan's cache-hit estimate (its artifacts precompiled).

The traffic: workload families at `--rate` times their rate (that many seeds superposed), so the fleet
spans several trn2 nodes and a cap in nodes can bind. The scenarios (`sim.scenarios`): nodes launched on
demand with a provisioning delay; plus a trn2 cap of half the nodes the clairvoyant schedule needs at its
peak (at least 1); plus a 20-minute trn2 outage in the middle of the trace.

Rows per trace and scenario:
- neuronfleet: the simulated operator (`sim.capacity_adapter`: `placement.fallback.allocate` before and
  after `autoscale.step.step`, as the controller calls them) without `spec.neuron.fallback`;
- neuronfleet+fb: the same with the two fallback variants, fallbackAfterSeconds at its default (300 s),
  and at each other `--fallback-after` value (`neuronfleet+fb@60s`);
- oracle / oracle+fb: the clairvoyant schedule on the same capacity (`sim.capacity_oracle`), replayed in
  the simulator with the least uniform headroom (0, 10, 20, 30, 50 %) that reaches the goal; `*` when
  none does (then the best attainment reached). LB_L is the fluid bound itself (headroom 0), unreplayed.

Columns: attainment; NeuronCore-hours (each replica at its own cores, from bound to gone); x the
oracle+fb run's NC-h; node-hours by instance type (every node from launch to removal, idle and launching
ones included: types cost differently); requests dropped (no ready replica for 60 s: every run shares that
router timeout, so a capacity gap fails requests instead of piling up a backlog no client waits for).

Prints tables; asserts nothing. Two worker processes.

Usage: python bench/capacity.py [--quick] [--traces diurnal,steady] [--rate 4] [--provisioning 120]
       [--fallback-after 300,60] [--json FILE]
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

from neuronfleet.api.spec import DEFAULT_FALLBACK_AFTER_SECONDS
from neuronfleet.neuron import capacity
from neuronfleet.neuron.variants import VariantRequest, plan_variants
from neuronfleet.sim import adapter, scenarios, workloads
from neuronfleet.sim.capacity_adapter import CapacityAwarePolicy
from neuronfleet.sim.capacity_oracle import CapacityOraclePolicy, plan_capacity_oracle
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.report import summarize
from neuronfleet.sim.shapes import ReplicaShape, shape_of
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest, merge

GOAL = 0.99
FALLBACK = ("trn1.32xlarge", "inf2.48xlarge")
HEADROOMS = (0.0, 0.1, 0.2, 0.3, 0.5)
ROUTER_TIMEOUT_SECONDS = 60.0
SLO = Slo()


@functools.lru_cache(maxsize=1)
def _shapes() -> tuple[ReplicaShape, ...]:
    request = capacity.plan_request(capacity.LLAMA_8B_TRN2_TP4, slo_tokens_per_second=SLO.min_tokens_per_second)
    return tuple(shape_of(v) for v in plan_variants(request, [VariantRequest(t) for t in FALLBACK]))


@functools.lru_cache(maxsize=4)
def _trace(family: str, rate: int) -> tuple[TraceRequest, ...]:
    return merge(*(workloads.generate(family, seed) for seed in range(1, rate + 1)))


@functools.lru_cache(maxsize=4)
def _scenarios(family: str, rate: int, provisioning: float) -> dict[str, scenarios.Scenario]:
    shapes = _shapes()
    primary = shapes[0]
    free = plan_capacity_oracle(_trace(family, rate), shapes[:1], None, SLO)
    peak_nodes = math.ceil(max(free.plans[primary.name].needed) / primary.replicas_per_node)
    built = scenarios.scenarios(
        shapes,
        workloads.DEFAULT_DURATION_SECONDS,
        primary_cap_nodes=max(1, peak_nodes // 2),
        provisioning_seconds=provisioning,
    )
    return {s.name: s for s in built}


Job = tuple[str, int, float, str, bool, str, float]


def _run(job: Job) -> dict[str, object]:
    """One simulation: neuronfleet at a fallbackAfterSeconds, or the oracle's replay at a headroom."""
    family, rate, provisioning, scenario_name, with_fallback, kind, value = job
    headroom = value if kind == "oracle" else None
    shapes = _shapes() if with_fallback else _shapes()[:1]
    scenario = _scenarios(family, rate, provisioning)[scenario_name]
    pools = scenario.for_shapes(shapes)
    trace = _trace(family, rate)
    bound = plan_capacity_oracle(trace, shapes, pools, SLO)
    if headroom is None:
        primary = shapes[0]
        inner = adapter.NeuronfleetPolicy(primary.profile, SLO, startup_seconds=primary.startup_seconds)
        policy: object = CapacityAwarePolicy(inner, shapes, fallback_after_seconds=value)
        initial = bound.initial_replicas()
    else:
        plan = bound if headroom == 0 else plan_capacity_oracle(trace, shapes, pools, SLO, headroom=headroom)
        policy = CapacityOraclePolicy(plan)
        initial = plan.initial_replicas()
    result = simulate(
        trace,
        shapes[0].profile,
        policy,  # type: ignore[arg-type]
        startup_seconds=shapes[0].startup_seconds,
        initial_replicas=initial,
        shapes=shapes,
        pools=pools,
        router_timeout_seconds=ROUTER_TIMEOUT_SECONDS,
    )
    report = summarize(result, SLO)
    return {
        "trace": f"{family}x{rate}",
        "scenario": scenario_name,
        "fallback": with_fallback,
        "kind": kind,
        "headroom": headroom,
        "fallback_after": value if kind == "neuronfleet" else None,
        "attainment": report.attainment,
        "core_hours": report.core_hours,
        "node_hours": dict(report.node_hours),
        "dropped": report.dropped,
        "retried": report.retried,
        "lbl": bound.lbl_core_hours,
        "unserved_seconds": bound.unserved_seconds,
        "peak_replicas": report.peak_replicas,
    }


def _best_oracle(rows: list[dict[str, object]]) -> tuple[dict[str, object], bool]:
    meeting = [r for r in rows if float(r["attainment"]) >= GOAL]
    if meeting:
        return min(meeting, key=lambda r: float(r["core_hours"])), True
    return max(rows, key=lambda r: float(r["attainment"])), False


def _cell(value: float | None, width: int, decimals: int = 1) -> str:
    return f"{'-':>{width}s}" if value is None else f"{value:{width}.{decimals}f}"


def _table(rows: list[dict[str, object]], trace: str, types: list[str]) -> list[str]:
    head = (
        f"{'scenario':12s} {'run':20s} {'att':>7s} {'NC-h':>7s} {'xO+fb':>6s} "
        + " ".join(f"{t.split('.')[0] + ' node-h':>12s}" for t in types)
        + f" {'dropped':>8s} {'LB_L':>7s}"
    )
    lines = [head, "-" * len(head)]
    for scenario in scenarios.NAMES:
        mine = [r for r in rows if r["trace"] == trace and r["scenario"] == scenario]
        if not mine:
            continue
        picked: list[tuple[str, dict[str, object], bool]] = []
        for fb in (False, True):
            suffix = "+fb" if fb else ""
            runs = [r for r in mine if r["kind"] == "neuronfleet" and r["fallback"] == fb]
            runs.sort(key=lambda r: float(r["fallback_after"]) != DEFAULT_FALLBACK_AFTER_SECONDS)
            for nf in runs if fb else runs[:1]:
                after = float(nf["fallback_after"])
                at = "" if after == DEFAULT_FALLBACK_AFTER_SECONDS else f"@{after:g}s"
                picked.append((f"neuronfleet{suffix}{at}", nf, True))
            oracles = [r for r in mine if r["kind"] == "oracle" and r["fallback"] == fb]
            if oracles:
                best, meets = _best_oracle(oracles)
                picked.append((f"oracle{suffix}+{float(best['headroom']):.0%}" + ("" if meets else "*"), best, meets))
        reference = next((r for name, r, _ in picked if name.startswith("oracle+fb")), None)
        for name, row, _ in picked:
            ratio = float(row["core_hours"]) / float(reference["core_hours"]) if reference else None
            hours = row["node_hours"]
            assert isinstance(hours, dict)
            lines.append(
                f"{scenario:12s} {name:20s} {float(row['attainment']):7.4f} {float(row['core_hours']):7.1f} "
                f"{_cell(ratio, 6, 2)} "
                + " ".join(_cell(hours.get(t), 12) for t in types)
                + f" {int(row['dropped']):8d} {float(row['lbl']):7.1f}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one trace (diurnal), three headrooms")
    parser.add_argument("--traces", default="diurnal,steady", help="workload families (default diurnal,steady)")
    parser.add_argument("--rate", type=int, default=4, help="seeds superposed per family: the rate multiple")
    parser.add_argument("--provisioning", type=float, default=scenarios.PROVISIONING_SECONDS, help="node seconds")
    parser.add_argument(
        "--fallback-after",
        default=f"{DEFAULT_FALLBACK_AFTER_SECONDS},60",
        help="fallbackAfterSeconds values for the runs with fallback (default: the default, 300, and 60)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write every run to this file")
    args = parser.parse_args()
    families = ["diurnal"] if args.quick else [f for f in args.traces.split(",") if f]
    headrooms = HEADROOMS[:3] if args.quick else HEADROOMS
    afters = [float(a) for a in args.fallback_after.split(",") if a]
    if float(DEFAULT_FALLBACK_AFTER_SECONDS) not in afters:
        afters.insert(0, float(DEFAULT_FALLBACK_AFTER_SECONDS))
    jobs: list[Job] = []
    for family in families:
        for scenario in scenarios.NAMES:
            for fb in (False, True):
                base = (family, args.rate, args.provisioning, scenario, fb)
                jobs += [(*base, "neuronfleet", a) for a in (afters if fb else afters[:1])]
                jobs += [(*base, "oracle", h) for h in headrooms]
    started = time.monotonic()
    rows = []
    with multiprocessing.Pool(args.workers) as pool:
        for done, row in enumerate(pool.imap_unordered(_run, jobs), 1):
            rows.append(row)
            if done % 10 == 0 or done == len(jobs):
                print(f"{done}/{len(jobs)} runs, {time.monotonic() - started:.0f} s", file=sys.stderr)
    shapes = _shapes()
    types = [s.instance_type for s in shapes]
    print(
        f"Llama-3.1-8B, SLO: TTFT <= {SLO.ttft_base:g} s + prompt/{SLO.ttft_tokens_per_second:g} tok/s, "
        f">= {SLO.min_tokens_per_second:g} tok/s per user; goal {GOAL:.0%}. {len(jobs)} runs in "
        f"{time.monotonic() - started:.0f} s. NC-h: NeuronCore-hours; xO+fb: NC-h over the oracle+fb run's."
    )
    for s in shapes:
        print(
            f"  {s.name:14s} {s.instance_type} TP {s.profile.tensor_parallel_size}, {s.replicas_per_node} per node, "
            f"{s.units_per_replica:g} units, startup {s.startup_seconds:g} s"
            + (f" (engine derived: {s.derived})" if s.derived else " (engine calibrated)")
        )
    for family in families:
        key = f"{family}x{args.rate}"
        print()
        print(f"{key}: {len(_trace(family, args.rate))} requests, seeds 1-{args.rate} superposed")
        for scenario in _scenarios(family, args.rate, args.provisioning).values():
            print(f"  {scenario.name}: {scenario.description}")
        print("\n".join(_table(rows, key, types)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
