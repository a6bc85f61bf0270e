"""`status.capacity`, the CapacityAvailable condition, ScalingLimited's capacity wording and the events.

Pure: from the planned variants, what was observed and the allocation, produce plain data the
controller writes. Every message is what a user reads in ``kubectl describe md``, so each one says
how many replicas, of which instance type, for how long, and quotes the scheduler.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from neuronfleet.api.conditions import ConditionStatus, Reason
from neuronfleet.placement.fallback import Allocation
from neuronfleet.placement.replicas import ReplicaPlacement, VariantObservation

__all__ = [
    "CapacityCondition",
    "CapacityEvent",
    "VariantInfo",
    "capacity_condition",
    "capacity_events",
    "capacity_status",
    "in_use",
    "scaling_limited",
]


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    """What status shows of a variant: its name, instance type, TP and weight."""

    name: str
    instance_type: str
    tensor_parallel_size: int
    units_per_replica: float


@dataclasses.dataclass(frozen=True)
class CapacityCondition:
    status: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class CapacityEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _oldest(observed: Mapping[str, VariantObservation], now: datetime.datetime) -> ReplicaPlacement | None:
    waiting = [p for o in observed.values() for p in o.unschedulable]
    return max(waiting, key=lambda p: p.waited_seconds(now), default=None)


def in_use(variants: Sequence[VariantInfo], allocation: Allocation, observed: Mapping[str, VariantObservation]) -> str:
    """`trn2.48xlarge=3,trn1.32xlarge=2`: variants asked for or still holding pods, with their pods."""
    parts = []
    for variant in variants:
        seen = observed.get(variant.name) or VariantObservation(variant.name)
        pods = seen.ready + seen.starting + len(seen.unschedulable) + seen.waiting
        if allocation.replicas.get(variant.name, 0) or pods:
            parts.append(f"{variant.instance_type}={max(pods, allocation.replicas.get(variant.name, 0))}")
    return ",".join(parts)


def capacity_status(
    variants: Sequence[VariantInfo],
    allocation: Allocation,
    observed: Mapping[str, VariantObservation],
    *,
    now: datetime.datetime,
) -> dict[str, Any]:
    """`status.capacity` (camelCase, as api/status.py CapacityStatus declares it)."""
    rows = []
    for variant in variants:
        seen = observed.get(variant.name) or VariantObservation(variant.name)
        rows.append(
            {
                "name": variant.name,
                "instanceType": variant.instance_type,
                "tensorParallelSize": variant.tensor_parallel_size,
                "capacityUnitsPerReplica": variant.units_per_replica,
                "desiredReplicas": allocation.replicas.get(variant.name, 0),
                "replicas": seen.ready + seen.starting + len(seen.unschedulable) + seen.waiting,
                "readyReplicas": seen.ready,
                "unschedulableReplicas": len(seen.unschedulable),
            }
        )
    oldest = _oldest(observed, now)
    return {
        "inUse": in_use(variants, allocation, observed),
        "variants": rows,
        "unschedulableMessage": oldest.message if oldest is not None else None,
        "capacityUnits": allocation.current_units,
    }


def capacity_condition(
    variants: Sequence[VariantInfo],
    allocation: Allocation,
    observed: Mapping[str, VariantObservation],
    *,
    now: datetime.datetime,
) -> CapacityCondition:
    """CapacityAvailable: False with the scheduler's reason when demand cannot be placed anywhere."""
    by_name = {v.name: v for v in variants}
    oldest = _oldest(observed, now)
    if allocation.unplaced_units > 0:
        stale = [(name, pods) for name, pods in allocation.stale.items() if pods]
        name, pods = stale[-1] if stale else (variants[-1].name, ())
        instance = by_name[name].instance_type
        waited = max((p.waited_seconds(now) for p in pods), default=0.0)
        reason = (pods[0].message if pods else "") or (oldest.message if oldest else "")
        message = (
            f"{_plural(len(pods), 'replica')} of {instance} cannot be placed (unschedulable for {_minutes(waited)}): "
            f"{reason or 'no node fits'}; {allocation.unplaced_units:g} of the replicas asked for have no variant "
            "that can place them. The pods are kept and take the first node that fits."
        )
        return CapacityCondition(ConditionStatus.FALSE, Reason.INSUFFICIENT_NEURON_CAPACITY, message)
    if allocation.fallback_in_use:
        primary = variants[0]
        seen = observed.get(primary.name) or VariantObservation(primary.name)
        fallbacks = ", ".join(
            f"{_plural(allocation.replicas[v.name], 'replica')} of {v.instance_type} ({v.units_per_replica:g} each)"
            for v in variants[1:]
            if allocation.replicas[v.name]
        )
        cause = f": {oldest.message}" if oldest is not None and oldest.message else ""
        message = (
            f"{_plural(len(seen.unschedulable), 'replica')} of {primary.instance_type} cannot be placed{cause}; "
            f"serving from {fallbacks}"
        )
        return CapacityCondition(ConditionStatus.TRUE, Reason.FALLBACK_IN_USE, message)
    if oldest is not None:
        instance = by_name.get(oldest.variant, variants[0]).instance_type
        count = sum(len(o.unschedulable) for o in observed.values())
        message = (
            f"{_plural(count, 'replica')} of {instance} waiting for a node for {_minutes(oldest.waited_seconds(now))}: "
            f"{oldest.message}"
        )
        return CapacityCondition(ConditionStatus.TRUE, Reason.WAITING_FOR_NODES, message)
    return CapacityCondition(ConditionStatus.TRUE, Reason.ALL_REPLICAS_PLACED, "every replica asked for has a node")


def scaling_limited(desired_units: int, allocation: Allocation) -> CapacityCondition | None:
    """ScalingLimited=True/LimitedByCapacity when replicas the autoscaler asked for cannot be placed.

    None when capacity does not limit the decision (the min/max wording then stands).
    """
    if allocation.unplaced_units <= 0:
        return None
    placed = max(0.0, desired_units - allocation.unplaced_units)
    return CapacityCondition(
        ConditionStatus.TRUE,
        Reason.LIMITED_BY_CAPACITY,
        f"asked for {desired_units} replicas; {allocation.unplaced_units:g} cannot be placed on any variant, "
        f"so {placed:g} serve (see CapacityAvailable)",
    )


def capacity_events(
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    previous_condition: Mapping[str, Any] | None,
    condition: CapacityCondition,
) -> list[CapacityEvent]:
    """Events on transitions only: a fallback variant gets replicas / is drained; capacity runs out."""
    before = {v.get("name"): int(v.get("desiredReplicas") or 0) for v in (previous or {}).get("variants") or ()}
    events: list[CapacityEvent] = []
    for row in list(new.get("variants") or ())[1:]:
        was, now = before.get(row["name"], 0), int(row["desiredReplicas"])
        if was == 0 and now > 0:
            events.append(
                CapacityEvent(
                    "Normal",
                    Reason.FALLBACK_ACTIVATED,
                    f"Scaled fallback {row['instanceType']} to {now}: the primary cannot place replicas",
                )
            )
        elif was > 0 and now == 0:
            events.append(
                CapacityEvent(
                    "Normal",
                    Reason.FALLBACK_DRAINED,
                    f"Drained fallback {row['instanceType']}: the primary serves again",
                )
            )
    was_false = (previous_condition or {}).get("status") == ConditionStatus.FALSE
    if condition.status == ConditionStatus.FALSE and not was_false:
        events.append(CapacityEvent("Warning", Reason.REPLICAS_UNSCHEDULABLE, condition.message))
    return events
