"""How many replicas each variant gets, and what counts as capacity on its way, in capacity units.

The autoscaler (or spec.replicas) asks for `desired_units`: replicas of the primary. This turns
that into replicas per variant Deployment, level-based, from what the pods show now:

1. The primary is always asked for the whole demand (ceil(desired / 1)). Its unschedulable pods are
   never deleted for lack of capacity: they keep Karpenter provisioning and take the first node that
   frees up.
2. A pod that has waited unschedulable longer than its variant's cutoff is **stale**: it no longer
   counts as capacity on its way. The cutoff is `fallback_after_seconds` for a variant that has a next
   variant to hand its share to, and `deadline_seconds` for the last one (or the primary alone).
3. Each fallback variant, in order, is asked for the units its predecessors leave uncovered:
   `ceil(uncovered / units_per_replica)`, where uncovered = desired less what earlier variants have
   ready, starting or still (not stale) on their way. A stale pod's units are what it hands on. So
   the next variant starts only for replicas the primary could not place for fallbackAfterSeconds,
   and only as many as needed; if it cannot place them either, they cascade to the one after.
4. Draining back without dropping below demand: a fallback variant keeps (at most) the replicas it
   already has while the units earlier variants have *ready* fall short of the demand. When the
   primary places its pods again they start, become ready, and only then does the fallback shrink,
   by what the primary's ready replicas now cover. A fallback at 0 replicas with no pod left is
   deleted; one still draining is kept at 0 until its pods are gone.
5. What the autoscaler counts as current capacity: the replicas each variant holds once scaled to
   its target, stale pods left out, weighted by units; ready, starting, waiting and not-yet-stale
   unschedulable replicas all count as capacity that is or will be there, as the starting-replicas
   guard expects. Fallback replicas kept only while the primary's replacements start (step 4) are
   left out: those replacements count already. Because each variant covers the units left uncovered,
   the allocation always asks for at least the demand, and the count never double counts a primary
   replica and the fallback replacing it. The controller calls `allocate` with the count it asked
   for last to get the autoscaler's `current_replicas`, decides, then calls it again with the new
   decision.

Units left unplaced after the last variant are the capacity the fleet lacks
(`CapacityAvailable=False/InsufficientNeuronCapacity`, ScalingLimited `LimitedByCapacity`).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Mapping, Sequence

from neuronfleet.placement.replicas import ReplicaPlacement, VariantObservation

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "Allocation",
    "VariantUnits",
    "allocate",
    "cutoff_seconds",
]

DEFAULT_DEADLINE_SECONDS = 600
"""How long a replica of the last variant may wait for a node before it stops counting as capacity on
its way. Twice the fallbackAfterSeconds default: long enough for Karpenter to launch and register a
Neuron node after one insufficient-capacity retry (it caches an unavailable offering for 3 minutes,
karpenter.sh docs v1.6 concepts/nodepools), short enough that the autoscaler and status stop waiting
for a node that is not coming [INFERRED design choice]. The pod is not deleted: it still takes the
first node that appears."""

_EPSILON = 1e-9


@dataclasses.dataclass(frozen=True)
class VariantUnits:
    """A variant as the allocation needs it: name (primary first) and what one replica is worth."""

    name: str
    units_per_replica: float


@dataclasses.dataclass(frozen=True)
class Allocation:
    """Replicas per variant, capacity on its way, and what cannot be placed."""

    replicas: dict[str, int]  # each variant's Deployment spec.replicas, primary first
    delete: tuple[str, ...]  # fallback Deployments to delete now (drained: 0 asked, no pod left)
    current_units: float  # what the variants will hold once scaled (targets), stale pods left out, in units
    ready_units: float
    unplaced_units: float  # demand no variant can place now (stale on the last variant)
    stale: dict[str, tuple[ReplicaPlacement, ...]]  # per variant, pods past their cutoff

    @property
    def current_replicas(self) -> int:
        """current_units for the autoscaler's integer count (never rounded up: unreal capacity)."""
        return math.floor(self.current_units + _EPSILON)

    @property
    def ready_replicas(self) -> int:
        return math.floor(self.ready_units + _EPSILON)

    @property
    def fallback_in_use(self) -> bool:
        return any(count > 0 for count in list(self.replicas.values())[1:])


def cutoff_seconds(index: int, count: int, *, fallback_after_seconds: float, deadline_seconds: float) -> float:
    """How long a pod of the `index`-th of `count` variants may wait unschedulable before it is stale."""
    return fallback_after_seconds if index < count - 1 else deadline_seconds


def _ceil(value: float) -> int:
    return max(0, math.ceil(value - _EPSILON))


def allocate(
    desired_units: int,
    variants: Sequence[VariantUnits],
    observed: Mapping[str, VariantObservation],
    *,
    now: datetime.datetime,
    fallback_after_seconds: float,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> Allocation:
    """Replicas per variant for `desired_units` primary replicas (see the module docstring)."""
    if not variants:
        raise ValueError("at least the primary variant is needed")
    if desired_units < 0:
        raise ValueError(f"desired_units must be >= 0, got {desired_units}")
    uncovered = float(desired_units)  # units still without a place (for scaling variants up)
    unready = float(desired_units)  # units not yet served by ready replicas (for keeping variants)
    replicas: dict[str, int] = {}
    stale: dict[str, tuple[ReplicaPlacement, ...]] = {}
    current = ready = 0.0
    count = len(variants)
    for index, variant in enumerate(variants):
        seen = observed.get(variant.name) or VariantObservation(variant.name)
        units = variant.units_per_replica
        if units <= 0:
            raise ValueError(f"variant {variant.name}: units_per_replica must be > 0, got {units}")
        cutoff = cutoff_seconds(
            index, count, fallback_after_seconds=fallback_after_seconds, deadline_seconds=deadline_seconds
        )
        old = tuple(p for p in seen.unschedulable if p.waited_seconds(now) >= cutoff)
        if index == 0:
            target = up = _ceil(desired_units / units)
        else:
            up = _ceil(uncovered / units)
            keep = min(seen.asked, _ceil(unready / units))
            target = max(up, keep)
        # Scaling a Deployment down removes unscheduled pods first (the ReplicaSet's order), so of the
        # stale pods only those the target keeps beside the scheduled ones still stand.
        stale_count = min(len(old), max(0, target - seen.ready - seen.starting))
        stale[variant.name] = old[:stale_count]
        replicas[variant.name] = target
        uncovered -= units * (target - stale_count)
        unready -= units * min(seen.ready, target)
        # Replicas kept only while earlier variants' replicas start (draining back) are not capacity on its
        # way: the replicas replacing them already count, and they go once those are ready.
        current += units * max(0, min(target, up) - stale_count)
        ready += units * seen.ready
    delete = tuple(
        v.name
        for v in variants[1:]
        if replicas[v.name] == 0 and (observed.get(v.name) or VariantObservation(v.name)).pods == 0
    )
    return Allocation(
        replicas=replicas,
        delete=delete,
        current_units=round(current, 6),
        ready_units=round(ready, 6),
        unplaced_units=round(max(0.0, uncovered), 6),
        stale=stale,
    )
