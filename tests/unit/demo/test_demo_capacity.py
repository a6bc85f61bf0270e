"""`neuronfleet demo --nodes TYPE=N[,...] --provisioning-delay`: parsing, defaults, and the pool it starts."""

from __future__ import annotations

import asyncio

import pytest

from neuronfleet.demo import capacity
from neuronfleet.kube_emulator import nodes
from neuronfleet.kube_emulator.store import Store
from plan_builders import TRN2_TP4, make_plan


def test_types_and_counts_parse():
    assert capacity.parse_nodes("trn2.48xlarge=2, trn1.32xlarge=1") == {"trn2.48xlarge": 2, "trn1.32xlarge": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trn2.48xlarge", "is not TYPE=N"),
        ("trn2.48xlarge=two", "is not TYPE=N"),
        ("p5.48xlarge=1", "unknown instance type 'p5.48xlarge'"),
        ("trn2.48xlarge=1,trn2.48xlarge=2", "given twice"),
        ("", "at least one"),
    ],
    ids=["no count", "a count that is not a number", "not a Neuron type", "a type twice", "nothing"],
)
def test_bad_pools_are_refused_with_the_reason(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        capacity.parse_nodes(text)


def test_the_default_pool_holds_max_replicas_of_the_plan():
    assert capacity.default_nodes(make_plan(TRN2_TP4, replicas_per_node=16), 20) == {"trn2.48xlarge": 2}
    assert capacity.default_nodes(make_plan(TRN2_TP4, replicas_per_node=1), 3) == {"trn2.48xlarge": 3}


async def test_without_a_delay_every_node_exists_from_the_start():
    store = Store()
    started = capacity.start_capacity(store, {"trn2.48xlarge": 2, "trn1.32xlarge": 1}, delay_wall_seconds=0)
    try:
        names = sorted(n["metadata"]["name"] for n in store.objects(nodes.serve_nodes(store)))
        assert names == ["trn1-32xlarge-0", "trn2-48xlarge-0", "trn2-48xlarge-1"]
        assert started.provisioner is None
    finally:
        started.stop()


async def test_with_a_delay_the_pool_starts_empty_and_is_capped():
    store = Store()
    started = capacity.start_capacity(store, {"trn2.48xlarge": 2}, delay_wall_seconds=0.05)
    try:
        await asyncio.sleep(0)
        assert store.objects(nodes.serve_nodes(store)) == []
        assert started.provisioner is not None
        assert [p.max_nodes for p in started.provisioner.pools] == [2]
    finally:
        started.stop()


def test_the_banner_says_what_the_pool_is():
    assert capacity.describe({"trn2.48xlarge": 2}, 0) == "2 x trn2.48xlarge"
    assert "launched on demand 90 s" in capacity.describe({"trn2.48xlarge": 2}, 90)
