"""Derived profiles (the roofline of the planner's plan) and the replica shapes the simulator runs them in."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from neuronfleet.api import convert, resource
from neuronfleet.neuron import capacity, catalog, planner
from neuronfleet.neuron.types import PlanRequest
from neuronfleet.neuron.variants import VariantRequest, plan_variants
from neuronfleet.sim import adapter, profiles
from neuronfleet.sim.shapes import cache_hit_startup_seconds, shape_of
from neuronfleet.sim.slo import Slo

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "llama31-405b-trn1-lws.yaml"
GROUP = "llama-3.1-405b-trn1-tp128-derived"


def example_plan():
    (doc,) = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    return planner.plan(convert.plan_request(resource.load(doc)))


def test_the_405b_profile_is_the_roofline_of_the_examples_plan():
    plan = example_plan()
    roof = capacity.roofline(plan)
    derived = profiles.get_profile(GROUP)
    assert dataclasses.replace(roof, name=GROUP) == derived
    assert profiles.is_derived(derived)
    assert "examples/llama31-405b-trn1-lws.yaml" in profiles.derived(GROUP).source


def test_a_405b_group_bills_all_four_nodes_neuroncores():
    plan = profiles.derived(GROUP).plan
    node = catalog.lookup(plan.instance_type)
    node_cores = node.chips * node.logical_cores_per_chip(plan.logical_core_size)
    assert plan.nodes_per_replica == 4
    assert profiles.get_profile(GROUP).cores == plan.nodes_per_replica * node_cores


def test_the_405b_roofline_lands_near_the_one_published_405b_step_on_neuron():
    # reference/neuron-vllm.md section 5: Llama-3.1-405B BF16 on one trn2.48xlarge at TP 64, BS1: TPOT 37.9 ms.
    model = "meta-llama/Llama-3.1-405B-Instruct"
    request = PlanRequest(
        model=model,
        source=model,
        served_name="t",
        instance_type="trn2.48xlarge",
        tensor_parallel_size=64,
        max_num_seqs=8,
    )
    roof = capacity.roofline(planner.plan(request))
    assert roof.step_seconds(1, 0) == pytest.approx(0.0379, rel=0.10)


@pytest.mark.parametrize("name", profiles.derived_names())
def test_every_derived_profile_is_named_derived_and_found_by_name(name):
    profile = profiles.get_profile(name)
    assert profile.name == name and profiles.is_derived(profile)
    assert not profiles.is_derived(profiles.LLAMA_8B_TRN2_TP4)


def test_an_unknown_profile_names_the_derived_ones_too():
    with pytest.raises(ValueError, match=GROUP):
        profiles.get_profile("llama-9t")


def test_the_fallback_profiles_are_the_planners_fallback_plans():
    primary = capacity.plan_request(profiles.LLAMA_8B_TRN2_TP4)
    planned = plan_variants(primary, [VariantRequest("trn1.32xlarge"), VariantRequest("inf2.48xlarge")])
    for variant in planned[1:]:
        shape = shape_of(variant)
        assert shape.derived
        assert shape.profile == profiles.get_profile(shape.profile.name)
        assert shape.profile.tensor_parallel_size == variant.plan.tensor_parallel_size


def test_a_variant_shape_carries_the_plans_packing_units_and_cache_hit_startup():
    primary = capacity.plan_request(profiles.LLAMA_8B_TRN2_TP4)
    trn2, trn1 = plan_variants(primary, [VariantRequest("trn1.32xlarge")])
    first, second = shape_of(trn2), shape_of(trn1)
    assert first.profile.name == profiles.LLAMA_8B_TRN2_TP4.name and not first.derived
    assert (first.replicas_per_node, first.nodes_per_replica) == (trn2.plan.replicas_per_node, 1)
    assert second.units_per_replica == trn1.units_per_replica < 1
    assert second.startup_seconds == cache_hit_startup_seconds(trn1.plan)


def test_a_group_shape_takes_whole_nodes():
    plan = profiles.derived(GROUP).plan
    from neuronfleet.neuron.variants import PlannedVariant

    shape = shape_of(PlannedVariant("primary", 0, plan, 1.0, ""), startup_seconds=1200.0)
    assert (shape.nodes_per_replica, shape.replicas_per_node, shape.node_share) == (4, 1, 4.0)
    assert shape.startup_seconds == 1200.0


def test_the_operator_starts_a_derived_shape_from_a_roofline_prior():
    policy = adapter.NeuronfleetPolicy(profiles.get_profile(GROUP), Slo(), startup_seconds=1200.0)
    assert policy.state is not None
    assert policy.state.prior.source == "roofline"
    assert policy.state.prior.relative_uncertainty == capacity.ROOFLINE_UNCERTAINTY


def test_a_group_fleet_bills_every_node_of_every_group():
    from neuronfleet.sim.fleet import simulate
    from neuronfleet.sim.policies import StaticPolicy
    from neuronfleet.sim.report import summarize
    from neuronfleet.sim.trace import TraceRequest

    profile = profiles.get_profile(GROUP)
    trace = [TraceRequest(float(t), 500, 20) for t in range(0, 120, 4)]
    result = simulate(trace, profile, StaticPolicy(2), startup_seconds=1200.0, initial_replicas=2)
    report = summarize(result, Slo())
    group_hours = 2 * result.horizon / 3600.0
    assert report.core_hours == pytest.approx(group_hours * profile.cores)
    assert dict(report.node_hours) == {"trn1.32xlarge": pytest.approx(group_hours * 4)}
