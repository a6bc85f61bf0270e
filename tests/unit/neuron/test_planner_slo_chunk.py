"""The planner sizes the chunked-prefill budget from spec.autoscaling.slo.

vLLM puts prefill chunks into the same steps as the running decodes, so a step's length is what
each user's token time is. These cases are worked out by hand from the calibrated 8B and 70B trn2
profiles (neuron/capacity.py); the property test checks the bound over the rates and batch sizes
where it can hold.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronfleet.neuron import capacity, planner
from neuronfleet.neuron.types import PlanRequest

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
LLAMA_70B = "meta-llama/Llama-3.3-70B-Instruct"


def plan_8b(**overrides):
    fields = {"instance_type": "trn2.48xlarge", "tensor_parallel_size": 4, **overrides}
    return planner.plan(PlanRequest(model=LLAMA_8B, source=LLAMA_8B, served_name="chat", **fields))


def flag(plan, name: str) -> str:
    return plan.args[plan.args.index(name) + 1]


def test_without_an_slo_the_budget_is_the_vllm_neuron_default():
    plan = plan_8b()
    assert plan.max_num_batched_tokens == 2048
    assert flag(plan, "--max-num-batched-tokens") == "2048"


def test_a_10_tokens_per_second_slo_cuts_the_8b_budget_to_608():
    # B* = min(32, (0.1 - 0.0217) / 0.00028) = 32 decodes take 30.66 ms; the other 69.34 ms hold
    # 69.34 / 0.117 = 592 prompt tokens; 32 + 592 = 624 -> 608 in whole 32-token blocks.
    plan = plan_8b(slo_tokens_per_second=10)
    assert plan.max_num_batched_tokens == 608
    assert flag(plan, "--max-num-batched-tokens") == "608"
    reason = next(r for r in plan.reasons if r.startswith("maxNumBatchedTokens 608"))
    assert "32 decodes and 576 prompt tokens takes 98 ms" in reason
    assert "stall those decodes to 267 ms" in reason


def test_the_compiled_prefill_buckets_end_at_the_slo_budget():
    plan = plan_8b(slo_tokens_per_second=10)
    assert "prefill chunks [128, 256, 512, 608]" in " ".join(plan.reasons)


def test_the_slo_budget_changes_the_compiled_artifact_inputs_and_an_explicit_budget_wins():
    explicit = plan_8b(slo_tokens_per_second=10, max_num_batched_tokens=1024)
    assert explicit.max_num_batched_tokens == 1024
    assert not any(r.startswith("maxNumBatchedTokens") and "spec.autoscaling.slo" in r for r in explicit.reasons)
    assert plan_8b(slo_tokens_per_second=10).args != plan_8b().args


def test_a_loose_slo_keeps_the_default():
    # 2 tok/s: 500 ms a token; even 2048 tokens beside 32 decodes take 267 ms.
    plan = plan_8b(slo_tokens_per_second=2)
    assert plan.max_num_batched_tokens == 2048
    assert any("(the default) already keeps a step with 32 decodes within 1/2 s" in r for r in plan.reasons)


def test_a_tight_slo_keeps_a_minimum_chunk_and_warns_that_prefill_steps_run_long():
    # 70B at 20 tok/s: 32 decodes take 48.46 ms of 50, leaving 19 prompt tokens; the floor is 128.
    plan = planner.plan(
        PlanRequest(
            model=LLAMA_70B,
            source=LLAMA_70B,
            served_name="big",
            instance_type="trn2.48xlarge",
            tensor_parallel_size=64,
            slo_tokens_per_second=20,
        )
    )
    assert plan.max_num_batched_tokens == 160  # 32 + 128 -> whole blocks
    warning = next(r for r in plan.reasons if "warning" in r and "spec.autoscaling.slo" in r)
    assert "room for 19 prompt tokens" in warning and "59 ms" in warning


def test_a_shape_without_a_calibrated_profile_keeps_the_default_and_says_why():
    plan = plan_8b(tensor_parallel_size=8, slo_tokens_per_second=10)
    assert plan.max_num_batched_tokens == 2048
    assert any("no calibrated capacity profile" in r for r in plan.reasons)


def test_nxdi_cannot_bound_prefill_stalls_and_says_so():
    plan = plan_8b(runtime="nxdi", slo_tokens_per_second=10)
    assert plan.max_num_batched_tokens == plan_8b(runtime="nxdi").max_num_batched_tokens
    assert any("cannot bound prefill stalls on nxdi" in r for r in plan.reasons)


def test_the_plan_hands_its_budget_and_batch_to_the_capacity_profile():
    plan = plan_8b(slo_tokens_per_second=10, max_num_seqs=16)
    profile = capacity.for_plan(plan)
    assert profile is not None
    assert (profile.max_num_seqs, profile.max_num_batched_tokens) == (16, plan.max_num_batched_tokens)
    assert profile.alpha == capacity.LLAMA_8B_TRN2_TP4.alpha


@given(rate=st.floats(min_value=2.5, max_value=40), seqs=st.sampled_from([8, 16, 32, 64]))
def test_a_step_with_the_slo_batch_and_a_full_chunk_keeps_the_rate_whenever_a_real_chunk_fits(rate, seqs):
    plan = plan_8b(slo_tokens_per_second=rate, max_num_seqs=seqs)
    profile = capacity.for_plan(plan)
    assert profile is not None
    budget = plan.max_num_batched_tokens
    assert seqs <= budget <= max(2048, seqs)
    batch = capacity.slo_batch(profile, rate)
    fits = capacity.slo_prefill_chunk(profile, rate, batch) >= planner.MIN_PREFILL_CHUNK
    if fits and budget < 2048:
        assert profile.step_seconds(batch, budget - batch) <= 1.0 / rate + 1e-9
        assert budget % 32 == 0
    if not fits:
        assert budget - batch >= planner.MIN_PREFILL_CHUNK


@pytest.mark.parametrize("rate", [5.0, 10.0, 20.0])
def test_faster_users_never_get_a_larger_budget(rate):
    assert (
        plan_8b(slo_tokens_per_second=rate * 1.5).max_num_batched_tokens
        <= plan_8b(slo_tokens_per_second=rate).max_num_batched_tokens
    )
