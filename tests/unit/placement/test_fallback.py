"""The fallback allocation: replicas per variant, capacity on its way, draining back, what cannot be placed.

Fleets are described as counts (what `replicas.observe` produces from pods); times are minutes
after an arbitrary start. The primary is trn2 (1 unit per replica), the first fallback trn1 (0.69,
the published 8B figures) and the second inf2 (0.35).
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronfleet.placement import fallback
from neuronfleet.placement.replicas import Placement, ReplicaPlacement, VariantObservation

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NOW = T0 + datetime.timedelta(minutes=30)
VARIANTS = [
    fallback.VariantUnits("primary", 1.0),
    fallback.VariantUnits("trn1-32xlarge", 0.69),
    fallback.VariantUnits("inf2-48xlarge", 0.35),
]


def waiting_since(minutes_ago: float, count: int, variant: str = "primary") -> tuple[ReplicaPlacement, ...]:
    since = NOW - datetime.timedelta(minutes=minutes_ago)
    return tuple(
        ReplicaPlacement(f"{variant}-{i}", variant, Placement.UNSCHEDULABLE, since, "0/8 nodes are available: x.")
        for i in range(count)
    )


def obs(name: str = "primary", *, asked: int = 0, ready: int = 0, starting: int = 0, waiting: int = 0, stuck=()):
    return VariantObservation(name, asked=asked, ready=ready, starting=starting, waiting=waiting, unschedulable=stuck)


def allocate(desired: int, *observations: VariantObservation, variants=VARIANTS, deadline: float = 600):
    return fallback.allocate(
        desired,
        variants,
        {o.name: o for o in observations},
        now=NOW,
        fallback_after_seconds=300,
        deadline_seconds=deadline,
    )


def test_a_placeable_fleet_uses_the_primary_alone():
    result = allocate(4, obs(asked=4, ready=3, starting=1))
    assert result.replicas == {"primary": 4, "trn1-32xlarge": 0, "inf2-48xlarge": 0}
    assert (result.current_units, result.unplaced_units) == (4.0, 0.0)
    assert result.delete == ("trn1-32xlarge", "inf2-48xlarge"), "absent fallbacks have nothing to keep"


def test_replicas_waiting_less_than_fallback_after_still_count_and_add_no_fallback():
    result = allocate(4, obs(asked=4, ready=2, stuck=waiting_since(2, 2)))
    assert result.replicas["trn1-32xlarge"] == 0
    assert result.current_replicas == 4


def test_replicas_unschedulable_past_fallback_after_are_served_by_the_next_variant_in_its_units():
    result = allocate(4, obs(asked=4, ready=2, stuck=waiting_since(6, 2)))
    assert result.replicas == {"primary": 4, "trn1-32xlarge": 3, "inf2-48xlarge": 0}, "ceil(2 / 0.69) = 3"
    assert result.current_units == 2 + 3 * 0.69, "stale primary pods left out, the trn1 replicas in: no double count"
    assert result.current_replicas == 4
    assert [p.pod for p in result.stale["primary"]] == ["primary-0", "primary-1"]
    assert result.unplaced_units == 0


def test_a_fallback_that_cannot_place_either_hands_on_to_the_next():
    result = allocate(
        4,
        obs(asked=4, ready=2, stuck=waiting_since(20, 2)),
        obs("trn1-32xlarge", asked=3, stuck=waiting_since(6, 3, "trn1-32xlarge")),
    )
    assert result.replicas["trn1-32xlarge"] == 3
    assert result.replicas["inf2-48xlarge"] == 6, "the 2.07 units trn1 cannot place, at 0.35 each"


def test_the_last_variant_past_the_deadline_leaves_demand_unplaced():
    alone = [fallback.VariantUnits("primary", 1.0)]
    early = allocate(5, obs(asked=5, ready=3, stuck=waiting_since(6, 2)), variants=alone)
    assert early.unplaced_units == 0, "without a fallback the cutoff is the deadline (10 min), not 5 min"
    late = allocate(5, obs(asked=5, ready=3, stuck=waiting_since(11, 2)), variants=alone)
    assert late.replicas == {"primary": 5}, "the unschedulable pods are kept, not deleted"
    assert late.unplaced_units == 2
    assert late.current_replicas == 3, "the stale pods stop counting as capacity on its way"


def test_draining_back_keeps_the_fallback_until_the_primary_is_ready():
    fb = obs("trn1-32xlarge", asked=3, ready=3)
    starting = allocate(4, obs(asked=4, ready=2, starting=2), fb)
    assert starting.replicas["trn1-32xlarge"] == 3, "the primary's new replicas are not serving yet"
    partly = allocate(4, obs(asked=4, ready=3, starting=1), fb)
    assert partly.replicas["trn1-32xlarge"] == 2, "one unit short: ceil(1 / 0.69) trn1 replicas stay"
    done = allocate(4, obs(asked=4, ready=4), fb)
    assert done.replicas["trn1-32xlarge"] == 0
    assert "trn1-32xlarge" not in done.delete, "still has pods: scaled to 0 first"
    gone = allocate(4, obs(asked=4, ready=4), obs("trn1-32xlarge"))
    assert "trn1-32xlarge" in gone.delete


def test_draining_back_counts_the_primarys_starting_replicas_not_the_fallback_kept_for_them():
    # After an outage the primary's 4 replicas start while trn1's 6 (4.14 units) still serve: the
    # autoscaler's current capacity is the demand, not the demand twice.
    result = allocate(4, obs(asked=4, starting=4), obs("trn1-32xlarge", asked=6, ready=6))
    assert result.replicas["trn1-32xlarge"] == 6, "kept until the primary is ready"
    assert result.current_replicas == 4
    assert result.ready_units == pytest.approx(6 * 0.69)
    half = allocate(4, obs(asked=4, ready=2, starting=2), obs("trn1-32xlarge", asked=6, ready=6))
    assert half.replicas["trn1-32xlarge"] == 3
    assert half.current_replicas == 4


def test_a_falling_demand_drops_the_stale_primary_pods_before_adding_fallback():
    result = allocate(2, obs(asked=4, ready=2, stuck=waiting_since(20, 2)), obs("trn1-32xlarge", asked=3, ready=3))
    assert result.replicas == {"primary": 2, "trn1-32xlarge": 0, "inf2-48xlarge": 0}


def test_the_fallback_never_grows_to_keep_replicas_it_does_not_have():
    result = allocate(4, obs(asked=4, ready=0, starting=4), obs("trn1-32xlarge", asked=1, ready=1))
    assert result.replicas["trn1-32xlarge"] == 1, "keeps what it has while the primary starts, adds none"


@given(
    desired=st.integers(0, 20),
    ready=st.integers(0, 20),
    starting=st.integers(0, 5),
    stuck=st.integers(0, 10),
    minutes=st.floats(0, 60),
    fb_ready=st.integers(0, 20),
    fb_stuck=st.integers(0, 10),
)
def test_the_allocation_always_asks_for_at_least_the_demand(
    desired, ready, starting, stuck, minutes, fb_ready, fb_stuck
):
    primary = obs(asked=ready + starting + stuck, ready=ready, starting=starting, stuck=waiting_since(minutes, stuck))
    trn1 = obs(
        "trn1-32xlarge",
        asked=fb_ready + fb_stuck,
        ready=fb_ready,
        stuck=waiting_since(minutes, fb_stuck, "trn1-32xlarge"),
    )
    result = allocate(desired, primary, trn1)
    by_name = {v.name: v.units_per_replica for v in VARIANTS}
    placed = sum(by_name[n] * (r - len(result.stale[n])) for n, r in result.replicas.items())
    assert placed + result.unplaced_units >= desired - 1e-6
    assert result.replicas["primary"] == desired


@pytest.mark.parametrize(("index", "expected"), [(0, 300), (1, 300), (2, 600)], ids=["primary", "middle", "last"])
def test_cutoffs(index: int, expected: float):
    assert fallback.cutoff_seconds(index, 3, fallback_after_seconds=300, deadline_seconds=600) == expected
