"""SLO-derived targets: hand-checkable numbers on a round profile, refusals, and the shared capacity data."""

from __future__ import annotations

import dataclasses
import math

import pytest

from neuronfleet.autoscale import decide as decide_module
from neuronfleet.autoscale import defaults, slo_targets, types
from neuronfleet.neuron import capacity
from neuronfleet.sim import profiles

# A step costs 10 ms + 1 ms per decoding sequence + 0.1 ms per prefill token.
ROUND = capacity.CapacityProfile(
    name="round",
    model="test/model",
    instance_type="trn2.48xlarge",
    tensor_parallel_size=4,
    cores=4,
    alpha=0.010,
    beta=0.001,
    gamma=0.0001,
    max_num_seqs=64,
    max_num_batched_tokens=1000,
    kv_cache_tokens=100_000,
)


def level(rate: float, ttft: float = 1.0, kappa: float | None = None) -> slo_targets.ServiceLevel:
    return slo_targets.ServiceLevel(
        per_user_tokens_per_second=rate, ttft_seconds=ttft, ttft_prompt_tokens_per_second=kappa
    )


@pytest.mark.parametrize(
    ("rate", "max_num_seqs", "batch", "limit"),
    [
        (20.0, 64, 40, "slo"),  # (1/20 - 0.010) / 0.001 = 40
        (25.0, 64, 30, "slo"),  # (0.04 - 0.010) / 0.001 = 30
        (10.0, 64, 64, "maxNumSeqs"),  # 90 fits the step, 64 slots
        (20.0, 16, 16, "maxNumSeqs"),
    ],
    ids=["20 tok/s fits 40 users", "25 tok/s fits 30", "10 tok/s is slot-bound", "a small max_num_seqs binds"],
)
def test_the_batch_is_the_largest_that_keeps_each_user_at_the_slo_rate(rate, max_num_seqs, batch, limit):
    derived = slo_targets.derive(level(rate), dataclasses.replace(ROUND, max_num_seqs=max_num_seqs))
    assert (derived.batch, derived.batch_limit) == (batch, limit)
    assert ROUND.step_seconds(derived.batch, 0) <= 1 / rate + 1e-12
    assert derived.targets.concurrency == slo_targets.SLOT_SHARE * batch
    assert derived.decode_tokens_per_second == pytest.approx(rate * batch)


def test_faster_users_mean_fewer_users_per_replica():
    rows = slo_targets.tradeoff(ROUND, (5.0, 10.0, 20.0, 40.0, 80.0))
    batches = [batch for _, batch, _ in rows]
    assert batches == sorted(batches, reverse=True)
    assert rows[2] == (20.0, 40, 800.0)


def test_the_kv_cache_bounds_the_batch_over_the_mean_context():
    derived = slo_targets.derive(level(20.0), ROUND, mean_context_tokens=5000.0)
    assert (derived.batch, derived.batch_limit) == (20, "kvCache")


def test_the_load_model_prices_concurrency_and_prompt_tokens_at_the_slo_pace():
    model = slo_targets.derive(level(20.0), ROUND, utilization=0.6).load_model
    assert model == types.LoadModel(
        per_request=pytest.approx(0.02), per_prompt_token=0.0001, available=pytest.approx(0.8)
    )


def test_the_engine_load_target_sizes_the_fleet_on_concurrency_and_prompts_together():
    derived = slo_targets.derive(level(20.0), ROUND, utilization=0.5)
    policy = types.Policy(
        min_replicas=1,
        max_replicas=50,
        targets=dataclasses.replace(derived.targets, concurrency=None),
        scale_up=defaults.HPA_SCALE_UP,
        scale_down=defaults.HPA_SCALE_DOWN,
        load_model=derived.load_model,
    )
    # 20 requests cost 0.4 s/s, 4000 prompt tok/s 0.4 s/s: (0.8 / 0.8) = 1 replica of engine time at 100 %,
    # 2 at the planned 50 %.
    seen = types.Observation(
        tokens_per_second=None,
        concurrency=20.0,
        prompt_tokens_per_second=4000.0,
        sampled_at=0.0,
        current_replicas=1,
        ready_replicas=1,
    )
    decision = decide_module.decide(seen, policy, (), 0.0)
    assert decision.per_signal == {"engine_load": 2.0}
    assert decision.replicas == 2


def test_the_chunk_budget_keeps_a_prefill_step_within_the_per_user_token_time():
    profile = dataclasses.replace(ROUND, max_num_seqs=16)
    derived = slo_targets.derive(level(20.0), profile)
    chunk = derived.max_prefill_chunk_tokens
    assert chunk == 240  # (0.05 - 0.010 - 0.016) / 0.0001
    assert profile.step_seconds(16, chunk) <= 1 / 20.0 + 1e-12
    assert profile.step_seconds(16, chunk + 1) > 1 / 20.0


def test_the_prefill_speed_counts_the_fixed_step_cost():
    derived = slo_targets.derive(level(20.0), ROUND)
    assert derived.prefill_tokens_per_second == pytest.approx(1000 / 0.11)


@pytest.mark.parametrize(
    ("kappa", "longest"),
    [(None, (1.0 - 0.010) / 0.00011), (20_000.0, (1.0 - 0.010) / (0.00011 - 0.00005)), (5000.0, math.inf)],
    ids=["a flat budget", "a budget growing slower than prefill", "a budget growing faster than prefill"],
)
def test_the_longest_prompt_an_idle_replica_serves_in_budget(kappa, longest):
    derived = slo_targets.derive(level(20.0, 1.0, kappa), ROUND)
    assert derived.longest_prompt_tokens == pytest.approx(longest)


@pytest.mark.parametrize(
    ("slo", "words"),
    [(level(100.0), "one user alone gets 90.9 tokens/s"), (level(20.0, ttft=0.005), "first token takes at least")],
    ids=["a per-user rate above a single user's", "a TTFT below one step"],
)
def test_an_slo_no_fleet_can_meet_is_refused_with_the_numbers(slo, words):
    with pytest.raises(slo_targets.SloUnreachable, match=words):
        slo_targets.derive(slo, ROUND)


def test_status_targets_are_keyed_like_the_spec_metrics_and_skip_unset_ones():
    targets = types.Targets(concurrency=32.0, prompt_tokens_per_second=2000.0, engine_load=0.5)
    assert slo_targets.status_targets(targets) == {
        "concurrencyPerReplica": 32.0,
        "promptTokensPerSecondPerReplica": 2000.0,
        "engineLoad": 0.5,
    }


@pytest.mark.parametrize(
    ("model", "instance", "tp", "found"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "trn2.48xlarge", 4, "llama-3.1-8b-trn2-tp4"),
        ("META-LLAMA/llama-3.1-8b-instruct", "trn2.48xlarge", 4, "llama-3.1-8b-trn2-tp4"),
        ("meta-llama/Llama-3.1-8B-Instruct", "trn2.48xlarge", 8, None),
        ("meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 4, None),
        ("meta-llama/Llama-3.3-70B-Instruct", "trn2.48xlarge", 64, "llama-3.3-70b-trn2-tp64"),
    ],
    ids=["the calibrated 8B shape", "model ids compare case-insensitively", "another TP", "another instance", "70B"],
)
def test_a_capacity_profile_matches_only_its_exact_shape(model, instance, tp, found):
    profile = capacity.find(model, instance, tp)
    assert (profile.name if profile else None) == found


def test_the_simulator_and_the_operator_share_one_calibration():
    assert profiles.PROFILES is capacity.PROFILES
    assert profiles.get_profile("llama-3.1-8b-trn2-tp4") is capacity.LLAMA_8B_TRN2_TP4


def test_the_default_slo_targets_on_the_8b_profile():
    derived = slo_targets.derive(level(10.0, 1.0, 4000.0), capacity.LLAMA_8B_TRN2_TP4)
    assert (derived.batch, derived.batch_limit) == (32, "maxNumSeqs")
    # A 2048-token chunk stalls a step with 32 decodes to 270 ms; (0.1 - 0.0217 - 32 * 0.00028) / 0.000117
    # = 592.6 tokens keep it within the 100 ms per token.
    assert derived.max_prefill_chunk_tokens == 592
    assert derived.targets.engine_load == slo_targets.DEFAULT_UTILIZATION
