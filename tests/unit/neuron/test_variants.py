"""Fallback variants planned on their own, and what one of their replicas is worth in primary replicas."""

from __future__ import annotations

import pytest

from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner, variants
from neuronfleet.neuron.types import PlanRequest

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def request(**overrides) -> PlanRequest:
    fields = {"model": LLAMA_8B, "source": LLAMA_8B, "served_name": "x", "instance_type": "trn2.48xlarge"}
    fields["tensor_parallel_size"] = 4
    return PlanRequest(**{**fields, **overrides})


def test_each_fallback_is_planned_on_its_own_instance_type_and_runtime():
    planned = variants.plan_variants(request(), [variants.VariantRequest("trn1.32xlarge")])
    primary, trn1 = planned
    assert (primary.name, primary.plan.runtime, primary.units_per_replica) == ("primary", "vllm-neuron", 1.0)
    assert (trn1.name, trn1.index) == ("trn1-32xlarge", 1)
    assert (trn1.plan.instance_type, trn1.plan.runtime) == ("trn1.32xlarge", "nxdi"), "the family's default"
    assert (
        trn1.plan.tensor_parallel_size
        == planner.plan(request(instance_type="trn1.32xlarge", tensor_parallel_size=None)).tensor_parallel_size
    )


def test_published_throughput_weighs_a_trn1_replica_at_its_measured_share():
    _, trn1 = variants.plan_variants(request(), [variants.VariantRequest("trn1.32xlarge", tensor_parallel_size=8)])
    assert trn1.units_per_replica == round(400 / 579, 2)
    assert "published" in trn1.units_reason


def test_an_unmeasured_shape_is_weighed_by_bandwidth_and_the_family_calibration():
    _, inf2 = variants.plan_variants(request(), [variants.VariantRequest("inf2.48xlarge", tensor_parallel_size=4)])
    # 2 Inferentia2 chips x 820 GiB/s x 0.125 tok/s per GiB/s = 204 tok/s, against 579.
    assert inf2.units_per_replica == pytest.approx(0.35, abs=0.01)
    assert "estimated from HBM bandwidth" in inf2.units_reason


def test_a_fallback_that_cannot_serve_the_model_is_refused_by_position():
    with pytest.raises(PlanError, match=r"spec.neuron.fallback\[0\] \(trn1.2xlarge\): .*needs .* GiB"):
        variants.plan_variants(request(), [variants.VariantRequest("trn1.2xlarge")])


def test_a_fallback_never_inherits_the_primarys_runtime():
    planned = variants.plan_variants(request(runtime="vllm-neuron"), [variants.VariantRequest("trn1.32xlarge")])
    assert planned[1].plan.runtime == "nxdi"


def test_variant_names_are_dns_labels():
    assert variants.variant_name("trn1n.32xlarge") == "trn1n-32xlarge"
