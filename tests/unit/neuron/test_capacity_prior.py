"""The roofline capacity prior: any plan gets a step-time curve, checked against the calibrated ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuronfleet.api import convert, resource
from neuronfleet.autoscale import slo_targets
from neuronfleet.neuron import capacity, planner
from neuronfleet.neuron.types import PlanRequest

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.yaml"))
SLO = slo_targets.ServiceLevel(per_user_tokens_per_second=10.0, ttft_seconds=1.0, ttft_prompt_tokens_per_second=4000.0)


def planned(model: str, instance: str, tp: int, **overrides) -> object:
    request = PlanRequest(
        model=model, source=model, served_name="t", instance_type=instance, tensor_parallel_size=tp, **overrides
    )
    return planner.plan(request)


@pytest.mark.parametrize("profile", list(capacity.PROFILES.values()), ids=list(capacity.PROFILES))
def test_the_roofline_lands_on_each_calibrated_batch_one_step_and_prefill(profile):
    roof = capacity.roofline(planner.plan(capacity.plan_request(profile)))
    # alpha: the two efficiencies solve these two points, so only rounding separates them.
    assert roof.alpha == pytest.approx(profile.alpha, rel=0.02)
    # gamma: the roofline uses the lower of the two calibrated prefill efficiencies: within 25 %, never faster
    # than 2 % of the calibration.
    assert roof.gamma == pytest.approx(profile.gamma, rel=0.25)
    assert roof.gamma >= 0.98 * profile.gamma


def test_the_roofline_decode_slope_matches_the_8b_calibration_and_is_4x_under_the_70b_one():
    # 8B: KV reads at the nominal context + matmul FLOPs per sequence land within 15 % of the fit.
    small = capacity.roofline(planner.plan(capacity.plan_request(capacity.LLAMA_8B_TRN2_TP4)))
    assert small.beta == pytest.approx(capacity.LLAMA_8B_TRN2_TP4.beta, rel=0.15)
    # 70B TP64: the calibrated beta is itself inferred from trn1 TP32 legacy figures (see capacity.py);
    # the roofline puts it about 4x lower. Stated, not hidden: the online fit is what settles it.
    large = capacity.roofline(planner.plan(capacity.plan_request(capacity.LLAMA_70B_TRN2_TP64)))
    assert 3.0 < capacity.LLAMA_70B_TRN2_TP64.beta / large.beta < 5.0


@pytest.mark.parametrize(
    "figure",
    capacity.PUBLISHED,
    ids=[f"{f.model} {f.instance_type} TP{f.tensor_parallel_size}" for f in capacity.PUBLISHED],
)
def test_every_published_decode_step_is_within_the_priors_stated_band(figure):
    # Band stated in capacity.ROOFLINE_UNCERTAINTY: 0.77-2.8x of the published ITL (software stacks differ).
    roof = capacity.roofline(
        planned(figure.model, figure.instance_type, figure.tensor_parallel_size, max_num_seqs=4, max_model_len=4096)
    )
    ratio = roof.step_seconds(figure.concurrency, 0) / figure.step_seconds
    assert 0.75 <= ratio <= 3.0


def test_a_moe_model_reads_its_active_weights_per_token_and_pays_for_other_experts_per_sequence():
    moe = planned("openai/gpt-oss-120b", "trn2.48xlarge", 16, max_num_seqs=16)
    roof = capacity.roofline(moe)
    assert moe.active_weights_bytes < moe.weights_bytes / 20
    assert moe.flops_per_token == pytest.approx(2 * 5.1e9)
    # Per extra sequence: at least one token's active weights at the effective bandwidth (4 chips).
    bandwidth = 4 * 2.9e12 * capacity.HBM_EFFICIENCY
    assert roof.beta >= moe.active_weights_bytes / bandwidth


def test_more_chips_mean_a_faster_step_and_the_same_model_on_trn1_is_slower_than_on_trn2():
    tp16 = capacity.roofline(planned("meta-llama/Llama-3.3-70B-Instruct", "trn2.48xlarge", 16, max_num_seqs=4))
    tp64 = capacity.roofline(planned("meta-llama/Llama-3.3-70B-Instruct", "trn2.48xlarge", 64, max_num_seqs=4))
    assert tp64.alpha < tp16.alpha and tp64.gamma < tp16.gamma
    trn1 = capacity.roofline(planned("meta-llama/Llama-3.1-8B-Instruct", "trn1.32xlarge", 8))
    trn2 = capacity.roofline(planned("meta-llama/Llama-3.1-8B-Instruct", "trn2.48xlarge", 8))
    assert trn1.step_seconds(8, 0) > trn2.step_seconds(8, 0)


def test_the_prior_is_the_calibration_where_there_is_one_and_the_roofline_elsewhere():
    calibrated = capacity.prior(planner.plan(capacity.plan_request(capacity.LLAMA_8B_TRN2_TP4)))
    assert calibrated.source == "calibrated" and calibrated.profile.alpha == capacity.LLAMA_8B_TRN2_TP4.alpha
    elsewhere = capacity.prior(planned("meta-llama/Llama-3.3-70B-Instruct", "trn2.48xlarge", 32, max_num_seqs=8))
    assert elsewhere.source == "roofline"
    assert elsewhere.relative_uncertainty > calibrated.relative_uncertainty


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_an_slo_derives_targets_for_every_example(path):
    md = resource.load(yaml.safe_load(path.read_text()))
    prior = capacity.prior(planner.plan(convert.plan_request(md)))
    derived = slo_targets.derive(SLO, prior.profile)
    assert 1 <= derived.batch <= prior.profile.max_num_seqs
    assert derived.targets.engine_load is not None and derived.targets.concurrency is not None
    assert derived.prefill_tokens_per_second > 0
