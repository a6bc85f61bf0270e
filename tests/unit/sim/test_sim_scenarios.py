"""The three capacity scenarios: which pool each changes, and how."""

from __future__ import annotations

import dataclasses

import pytest
from sim_builders import ROUND

from neuronfleet.sim.scenarios import NAMES, scenarios
from neuronfleet.sim.shapes import ReplicaShape

PRIMARY = ReplicaShape("primary", ROUND, 60.0, replicas_per_node=4)
FALLBACK = ReplicaShape("fb", dataclasses.replace(ROUND, instance_type="other"), 60.0, units_per_replica=0.5)


def by_name(**kwargs):
    return {s.name: s for s in scenarios([PRIMARY, FALLBACK], 3600.0, primary_cap_nodes=2, **kwargs)}


def test_every_scenario_launches_every_types_nodes_after_the_provisioning_delay():
    built = by_name(provisioning_seconds=90.0)
    assert tuple(built) == NAMES
    for scenario in built.values():
        assert {t: p.provisioning_seconds for t, p in scenario.pools.items()} == {"test": 90.0, "other": 90.0}


def test_the_cap_and_the_outage_touch_only_the_primary_type():
    built = by_name()
    assert built["pool-cap"].pools["test"].max_nodes == 2
    assert built["pool-cap"].pools["other"].max_nodes is None
    assert built["outage"].pools["test"].outages == ((1200.0, 2400.0),)  # 20 minutes in the middle
    assert built["outage"].pools["other"].outages == ()
    assert built["provisioning"].pools["test"].max_nodes is None and not built["provisioning"].pools["test"].outages


def test_a_fleet_without_fallback_sees_only_its_primarys_pool():
    assert set(by_name()["outage"].for_shapes([PRIMARY])) == {"test"}


def test_an_outage_longer_than_the_trace_is_refused():
    with pytest.raises(ValueError, match="outage"):
        scenarios([PRIMARY], 600.0, primary_cap_nodes=1)
