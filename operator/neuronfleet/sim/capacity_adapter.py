"""neuronfleet on finite capacity: the autoscaler's tick and the reconcile pass around it, with fallback variants.

What the operator does every tick (controller/autoscaling.py `tick`, controller/reconciler.py `place`,
controller/workloads.py `placement`), and this policy does every sync with the same pure functions:

1. Allocate the count decided last (`controller/desired.py units`: the last decision, or what the live
   workloads hold before the first one, clamped to min/max) over the variants from what the pods show
   (`placement.fallback.allocate`). The autoscaler's current replicas are the allocation's current units
   (pods waiting for a node past their cutoff no longer count as capacity on its way), its ready replicas
   the units ready, and starting the difference (`autoscale.observe.observe` with no starting count).
2. Decide (`NeuronfleetPolicy`: the measured SLO path and `autoscale.step.step`) on that observation.
3. The pass allocates the new decision over the variants: each variant's Deployment gets
   `Allocation.replicas[variant]`.

The operator's pass also runs on pod events and when a waiting pod crosses its cutoff; here it runs every
sync (15 s), so a fallback can start up to a sync later than on a cluster [simplification].

Without fallback variants (one shape) this is the operator of a spec with no `spec.neuron.fallback`: the
primary is asked for the whole demand and its waiting pods stop counting after the deadline.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

from neuronfleet.api.spec import DEFAULT_FALLBACK_AFTER_SECONDS
from neuronfleet.placement import fallback
from neuronfleet.sim.adapter import NeuronfleetPolicy
from neuronfleet.sim.observe import EPOCH, FleetView
from neuronfleet.sim.shapes import ReplicaShape

__all__ = ["CapacityAwarePolicy", "Tick"]

_EPSILON = 1e-9


@dataclasses.dataclass(frozen=True, slots=True)
class Tick:
    """One sync's allocation round trip, kept for tests and reports."""

    at: float
    before: fallback.Allocation  # the last decision over the variants, as the pods stand now
    observed_current: int  # what the autoscaler saw as current replicas (capacity units)
    observed_ready: int
    decided: int
    after: fallback.Allocation  # the new decision over the variants: each Deployment's replicas


class CapacityAwarePolicy:
    """The operator's allocate -> step -> allocate loop over `shapes` (primary first)."""

    wants_placement = True

    def __init__(
        self,
        inner: NeuronfleetPolicy,
        shapes: Sequence[ReplicaShape],
        *,
        fallback_after_seconds: float = DEFAULT_FALLBACK_AFTER_SECONDS,
        deadline_seconds: float = fallback.DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.inner = inner
        self.name = inner.name if len(shapes) == 1 else f"{inner.name}+fallback"
        self.sync_seconds = inner.sync_seconds
        self.scrape_seconds = inner.scrape_seconds
        self.scrape_kv = inner.scrape_kv
        self.scrape_histograms = inner.scrape_histograms
        self.units = [fallback.VariantUnits(s.name, s.units_per_replica) for s in shapes]
        self.fallback_after_seconds = fallback_after_seconds
        self.deadline_seconds = deadline_seconds
        self.decided: int | None = None  # the operator's last decision (Runtime.decisions)
        self.ticks: list[Tick] = []

    def _wanted(self, view: FleetView) -> int:
        """`controller.desired.units` with autoscaling on: the last decision, else what the live workloads hold."""
        assert view.placement is not None
        live = int(sum(view.placement[u.name].asked * u.units_per_replica for u in self.units) + _EPSILON)
        current = self.decided if self.decided is not None else live
        policy = self.inner.policy
        return max(policy.min_replicas, min(policy.max_replicas, current))

    def _allocate(self, desired_units: int, view: FleetView, now: float) -> fallback.Allocation:
        assert view.placement is not None
        return fallback.allocate(
            desired_units,
            self.units,
            view.placement,
            now=EPOCH + datetime.timedelta(seconds=now),
            fallback_after_seconds=self.fallback_after_seconds,
            deadline_seconds=self.deadline_seconds,
        )

    def desired(self, view: FleetView, now: float) -> dict[str, int]:
        """One tick and one pass: replicas per variant."""
        if view.placement is None:
            raise ValueError("CapacityAwarePolicy needs the fleet's placement view")
        before = self._allocate(self._wanted(view), view, now)
        current = before.current_replicas
        ready = min(current, before.ready_replicas)
        seen = FleetView(view.scrapes, current, ready, max(0, current - ready), view.placement)
        decided = self.inner.desired(seen, now)
        self.decided = decided
        after = self._allocate(decided, view, now)
        self.ticks.append(Tick(now, before, current, ready, decided, after))
        return dict(after.replicas)
