"""status.capacity, CapacityAvailable, ScalingLimited and the events, as a user reads them in kubectl describe md."""

from __future__ import annotations

import datetime

from neuronfleet.placement import capacity_status, fallback
from neuronfleet.placement.replicas import Placement, ReplicaPlacement, VariantObservation

NOW = datetime.datetime(2026, 1, 1, 1, 0, tzinfo=datetime.UTC)
MESSAGE = "0/8 nodes are available: 8 Insufficient aws.amazon.com/neuron."
INFO = [
    capacity_status.VariantInfo("primary", "trn2.48xlarge", 4, 1.0),
    capacity_status.VariantInfo("trn1-32xlarge", "trn1.32xlarge", 8, 0.69),
]
UNITS = [fallback.VariantUnits(v.name, v.units_per_replica) for v in INFO]


def stuck(minutes: float, count: int, variant: str = "primary") -> tuple[ReplicaPlacement, ...]:
    since = NOW - datetime.timedelta(minutes=minutes)
    return tuple(
        ReplicaPlacement(f"{variant}-{i}", variant, Placement.UNSCHEDULABLE, since, MESSAGE) for i in range(count)
    )


def run(desired, *observed, info=INFO):
    seen = {o.name: o for o in observed}
    units = [fallback.VariantUnits(v.name, v.units_per_replica) for v in info]
    allocation = fallback.allocate(desired, units, seen, now=NOW, fallback_after_seconds=300, deadline_seconds=600)
    return allocation, seen


def test_a_fleet_with_every_replica_placed():
    allocation, seen = run(3, VariantObservation("primary", asked=3, ready=3))
    condition = capacity_status.capacity_condition(INFO, allocation, seen, now=NOW)
    assert (condition.status, condition.reason) == ("True", "AllReplicasPlaced")
    status = capacity_status.capacity_status(INFO, allocation, seen, now=NOW)
    assert status["inUse"] == "trn2.48xlarge=3"
    assert status["variants"][0]["readyReplicas"] == 3
    assert capacity_status.scaling_limited(3, allocation) is None


def test_replicas_waiting_for_a_node_say_so_with_the_schedulers_words():
    allocation, seen = run(4, VariantObservation("primary", asked=4, ready=3, unschedulable=stuck(2, 1)))
    condition = capacity_status.capacity_condition(INFO, allocation, seen, now=NOW)
    assert (condition.status, condition.reason) == ("True", "WaitingForNodes")
    assert condition.message == f"1 replica of trn2.48xlarge waiting for a node for 2 min: {MESSAGE}"


def test_a_fallback_in_use_names_both_instance_types():
    allocation, seen = run(4, VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(6, 2)))
    condition = capacity_status.capacity_condition(INFO, allocation, seen, now=NOW)
    assert (condition.status, condition.reason) == ("True", "FallbackInUse")
    assert condition.message == (
        f"2 replicas of trn2.48xlarge cannot be placed: {MESSAGE}; serving from 3 replicas of trn1.32xlarge (0.69 each)"
    )
    status = capacity_status.capacity_status(INFO, allocation, seen, now=NOW)
    assert status["inUse"] == "trn2.48xlarge=4,trn1.32xlarge=3"
    assert status["unschedulableMessage"] == MESSAGE


def test_demand_no_variant_can_place_is_insufficient_capacity_and_limits_scaling():
    allocation, seen = run(
        4,
        VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(30, 2)),
        VariantObservation("trn1-32xlarge", asked=3, ready=1, unschedulable=stuck(11, 2, "trn1-32xlarge")),
    )
    condition = capacity_status.capacity_condition(INFO, allocation, seen, now=NOW)
    assert (condition.status, condition.reason) == ("False", "InsufficientNeuronCapacity")
    assert condition.message.startswith(
        f"2 replicas of trn1.32xlarge cannot be placed (unschedulable for 11 min): {MESSAGE}"
    )
    assert "The pods are kept" in condition.message
    limited = capacity_status.scaling_limited(4, allocation)
    assert limited is not None
    assert (limited.reason, limited.message) == (
        "LimitedByCapacity",
        "asked for 4 replicas; 1.31 cannot be placed on any variant, so 2.69 serve (see CapacityAvailable)",
    )


def test_events_fire_on_transitions_only():
    allocation, seen = run(4, VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(6, 2)))
    new = capacity_status.capacity_status(INFO, allocation, seen, now=NOW)
    condition = capacity_status.capacity_condition(INFO, allocation, seen, now=NOW)
    events = capacity_status.capacity_events(None, new, None, condition)
    assert [(e.type, e.reason) for e in events] == [("Normal", "FallbackActivated")]
    assert events[0].message == "Scaled fallback trn1.32xlarge to 3: the primary cannot place replicas"
    assert capacity_status.capacity_events(new, new, {"status": "True"}, condition) == []
    drained = {**new, "variants": [new["variants"][0], {**new["variants"][1], "desiredReplicas": 0}]}
    assert [e.reason for e in capacity_status.capacity_events(new, drained, None, condition)] == ["FallbackDrained"]
    out = capacity_status.CapacityCondition("False", "InsufficientNeuronCapacity", "no room")
    warned = capacity_status.capacity_events(new, new, {"status": "True"}, out)
    assert [(e.type, e.reason, e.message) for e in warned] == [("Warning", "ReplicasUnschedulable", "no room")]
