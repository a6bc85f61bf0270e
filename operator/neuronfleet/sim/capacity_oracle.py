"""LB_L on a capacity timeline: the clairvoyant, startup-aware bound when nodes are capped, slow or gone.

`sim.oracle` prices the cheapest schedule of one replica shape with unlimited nodes. With finite
capacity the oracle must live with the same timeline as the policies it judges: a pool cap, a node
provisioning delay, an outage of the primary type. It still knows the future, traffic and capacity
alike, so it starts what it needs early enough and on whichever variant can hold it.

How, per one-second bin:

1. The fluid need of the trace on each variant's engine, N*_v(t) (`oracle.fluid_demand`: fractional
   replicas of that variant, startup ignored).
2. What each variant can hold at t, A_v(t) (`Pool.replica_cap`): its node cap times replicas per node
   (whole groups for a group), zero during an outage of its type and, after the outage ends, until a
   node launched then could be registered and a replica on it started (`provisioning + startup`).
3. The demand is split in shares: the variants in order of NeuronCore cost per unit of work (each
   variant's cores x its total fluid need over the trace; cheapest first), each taking the share
   s_v = min(left, A_v / N*_v) and holding ceil(s_v x N*_v) replicas. A variant serving a share s of the
   traffic needs s x N*_v replicas in the fluid model (both of its limits, time and slots, are linear in
   the traffic it carries), so the split is exact before rounding. Bins that no variant can hold in full
   are counted (`unserved_seconds`): there, nothing can meet every SLO.
4. Each variant's counts become a layered schedule priced at its own startup and cores
   (`oracle.layered_plan`): LB_L is the sum. A replay requests each variant's replicas `startup +
   provisioning` before they are needed (the node may have to be launched first).

Like LB_L it is a floor of the fluid model, not a schedule anyone can run (reference/autoscaling.md
section 3.4); the replay (`CapacityOraclePolicy`) shows how attainable it is. It does not see the requests
that an outage cuts short: they restart on another replica in the replay and may miss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neuronfleet.sim.observe import FleetView
from neuronfleet.sim.oracle import BIN_SECONDS, OraclePlan, fluid_demand, layered_plan
from neuronfleet.sim.shapes import Pool, ReplicaShape
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest

__all__ = ["CapacityOraclePlan", "CapacityOraclePolicy", "availability", "plan_capacity_oracle"]


@dataclass(frozen=True)
class CapacityOraclePlan:
    """Per-variant layered schedules on one capacity timeline, and their bound."""

    plans: dict[str, OraclePlan]  # by variant, primary first
    leads: dict[str, float]  # seconds a replay requests a replica of the variant before it is needed
    lbl_core_hours: float
    lb0_core_hours: float
    unserved_seconds: float  # seconds with demand no variant could hold

    def replicas_at(self, t: float) -> dict[str, int]:
        """Replicas per variant the replay keeps requested at t."""
        return {name: plan.replicas_at(t, lead=self.leads[name]) for name, plan in self.plans.items()}

    def initial_replicas(self) -> dict[str, int]:
        """The warm fleet at t=0, per variant."""
        return {name: plan.replicas_at(0.0) for name, plan in self.plans.items()}


def availability(shape: ReplicaShape, pool: Pool | None, bins: int) -> list[float]:
    """Replicas of `shape` its pool can hold in each bin (inf: no cap), with the restart after an outage."""
    if pool is None:
        return [math.inf] * bins
    out = [pool.replica_cap(shape, i * BIN_SECONDS) for i in range(bins)]
    recovery = pool.provisioning_seconds + shape.startup_seconds
    for _, end in pool.outages:
        for i in range(int(end / BIN_SECONDS), min(bins, math.ceil((end + recovery) / BIN_SECONDS))):
            out[i] = 0.0
    return out


def plan_capacity_oracle(
    trace: Sequence[TraceRequest],
    shapes: Sequence[ReplicaShape],
    pools: Mapping[str, Pool] | None,
    slo: Slo,
    *,
    headroom: float = 0.0,
) -> CapacityOraclePlan:
    """LB_L for `shapes` (primary first) on the capacity of `pools` (see the module docstring).

    `headroom` scales every bin's fluid need by 1 + headroom before the split: the bound itself at 0,
    a schedule with uniform slack above (what a replay needs to reach a goal the fluid bound misses).
    """
    if headroom < 0:
        raise ValueError(f"headroom must be >= 0, got {headroom}")
    pools = pools or {}
    fluid = {s.name: [v * (1.0 + headroom) for v in fluid_demand(trace, s.profile, slo)] for s in shapes}
    bins = max((len(f) for f in fluid.values()), default=0)
    for values in fluid.values():
        values.extend([0.0] * (bins - len(values)))
    cap = {s.name: availability(s, pools.get(s.instance_type), bins) for s in shapes}
    order = sorted(shapes, key=lambda s: (s.cores * sum(fluid[s.name]), shapes.index(s)))
    needed = {s.name: [0] * bins for s in shapes}
    unserved = 0
    for i in range(bins):
        left = 1.0
        for shape in order:
            need = fluid[shape.name][i]
            if need <= 0 or left <= 1e-12:
                continue
            share = min(left, cap[shape.name][i] / need)
            needed[shape.name][i] = math.ceil(share * need - 1e-9)
            left -= share
        if left > 1e-9 and any(f[i] > 0 for f in fluid.values()):
            unserved += 1
    plans = {s.name: layered_plan(needed[s.name], s.startup_seconds, s.cores) for s in shapes}
    leads = {
        s.name: s.startup_seconds + (pools[s.instance_type].provisioning_seconds if s.instance_type in pools else 0.0)
        for s in shapes
    }
    return CapacityOraclePlan(
        plans=plans,
        leads=leads,
        lbl_core_hours=sum(p.lbl_core_hours for p in plans.values()),
        lb0_core_hours=sum(p.lb0_core_hours for p in plans.values()),
        unserved_seconds=unserved * BIN_SECONDS,
    )


class CapacityOraclePolicy:
    """Replays a capacity oracle's schedules, each variant's replicas requested its lead before needed."""

    scrape_seconds = 15.0
    scrape_kv = False
    sync_seconds = 1.0

    def __init__(self, plan: CapacityOraclePlan, *, name: str = "oracle") -> None:
        self.name = name
        self.plan = plan

    def desired(self, view: FleetView, now: float) -> dict[str, int]:
        """The schedules' counts at `now`; the fleet's own state is ignored (clairvoyance)."""
        del view
        return self.plan.replicas_at(now)
