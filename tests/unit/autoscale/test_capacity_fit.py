"""The online step-time fit: starts at the prior, learns the fleet's own curve, forgets, says how sure it is."""

from __future__ import annotations

import dataclasses

import pytest

from neuronfleet.api.status import CapacityCurveStatus
from neuronfleet.autoscale import capacity_fit, promql
from neuronfleet.autoscale.prometheus import QueryResult, Sample
from neuronfleet.neuron import capacity

TRUE = capacity.LLAMA_8B_TRN2_TP4  # alpha 21.7 ms, beta 0.28 ms, gamma 0.117 ms
WRONG = dataclasses.replace(TRUE, alpha=2 * TRUE.alpha, beta=0.5 * TRUE.beta, gamma=2 * TRUE.gamma)


def windows(profile: capacity.CapacityProfile, count: int, *, wobble: float = 0.0) -> list[capacity_fit.Observation]:
    """Observations of `profile` over batches 2..32 and prefills 0..300, with a deterministic +-wobble."""
    out = []
    for k in range(count):
        batch = 2 + (k * 7) % 31
        prefill = (k * 53) % 300
        noise = wobble * (1 if k % 2 else -1)
        out.append(capacity_fit.step_observation(batch, prefill, profile.step_seconds(batch, prefill) * (1 + noise)))
    return out


def learned(prior_profile: capacity.CapacityProfile, samples: list[capacity_fit.Observation], *, every: float = 15.0):
    fit = capacity_fit.start(capacity.Prior(prior_profile, "roofline", capacity.ROOFLINE_UNCERTAINTY))
    for i in range(0, len(samples), 4):
        fit = capacity_fit.update(fit, samples[i : i + 4], now=(i // 4 + 1) * every)
    return fit


def test_a_new_fit_is_the_prior_and_as_unsure_as_the_prior_says():
    fit = capacity_fit.start(capacity.Prior(TRUE, "calibrated", 0.25))
    assert capacity_fit.estimate(fit) == pytest.approx((TRUE.alpha, TRUE.beta, TRUE.gamma))
    mean, std = capacity_fit.predict(fit, 32)
    assert mean == pytest.approx(TRUE.step_seconds(32, 0))
    # Independent 25 % on alpha and beta: the step's spread is their root sum of squares.
    assert std == pytest.approx(0.25 * (TRUE.alpha**2 + (32 * TRUE.beta) ** 2) ** 0.5)
    assert capacity_fit.confidence(fit, 32) == pytest.approx(1 - std / mean)


def test_clean_windows_pull_a_wrong_prior_onto_the_true_curve():
    fit = learned(WRONG, windows(TRUE, 80))
    alpha, beta, gamma = capacity_fit.estimate(fit)
    assert alpha == pytest.approx(TRUE.alpha, rel=0.02)
    assert beta == pytest.approx(TRUE.beta, rel=0.05)
    assert gamma == pytest.approx(TRUE.gamma, rel=0.05)
    # The 10 % guess counts as ten windows; eighty exact windows bring the measured noise near 10 % x sqrt(10/87).
    assert fit.noise < 0.4 * capacity_fit.NOISE, "a curve that fits measures its own noise as small"
    assert capacity_fit.confidence(fit, 32) > 1 - capacity_fit.CONVERGED_UNCERTAINTY


def test_noisy_windows_still_land_near_the_curve_but_the_fit_says_it_is_less_sure():
    clean = learned(WRONG, windows(TRUE, 80))
    noisy = learned(WRONG, windows(TRUE, 80, wobble=0.1))
    assert noisy.noise == pytest.approx(0.1, rel=0.3)
    mean, _ = capacity_fit.predict(noisy, 16)
    assert mean == pytest.approx(TRUE.step_seconds(16, 0), rel=0.05)
    assert capacity_fit.confidence(noisy, 32) < capacity_fit.confidence(clean, 32)


def test_without_new_evidence_the_fit_relaxes_back_to_the_prior_over_hours():
    fit = learned(WRONG, windows(TRUE, 80))
    later = capacity_fit.update(fit, [], now=fit.updated_at + capacity_fit.FORGET_SECONDS)
    assert capacity_fit.estimate(later)[0] == pytest.approx(TRUE.alpha, rel=0.05), "an hour on, it still holds"
    gone = capacity_fit.update(fit, [], now=fit.updated_at + 20 * capacity_fit.FORGET_SECONDS)
    assert capacity_fit.estimate(gone) == pytest.approx((WRONG.alpha, WRONG.beta, WRONG.gamma), rel=0.05)
    assert gone.observations == fit.observations


@pytest.mark.parametrize(
    "bad",
    [
        capacity_fit.step_observation(4, 0, 0.0),
        capacity_fit.step_observation(4, 0, float("nan")),
        capacity_fit.step_observation(-1, 0, 0.02),
        capacity_fit.step_observation(4, 0, 0.02, weight=0.0),
    ],
    ids=["zero step time", "nan step time", "negative batch", "zero weight"],
)
def test_unusable_windows_are_skipped(bad):
    fit = capacity_fit.start(capacity.Prior(TRUE, "calibrated", 0.25))
    after = capacity_fit.update(fit, [bad], now=15.0)
    assert after.observations == 0
    assert capacity_fit.estimate(after) == pytest.approx(capacity_fit.estimate(fit))


def test_a_window_worth_a_quarter_counts_a_quarter():
    one = capacity_fit.step_observation(16, 100, 0.05)
    quarter = dataclasses.replace(one, weight=0.25)
    fit = capacity_fit.start(capacity.Prior(TRUE, "calibrated", 0.25))
    four = capacity_fit.update(fit, [quarter] * 4, now=15.0)
    single = capacity_fit.update(fit, [one], now=15.0)
    assert [v for row in four.data for v in row] == pytest.approx([v for row in single.data for v in row])


def test_the_curve_keeps_the_plans_limits_and_takes_the_fitted_constants():
    fit = learned(WRONG, windows(TRUE, 80))
    fitted = capacity_fit.curve(fit, WRONG)
    assert (fitted.max_num_seqs, fitted.kv_cache_tokens, fitted.name) == (
        WRONG.max_num_seqs,
        WRONG.kv_cache_tokens,
        WRONG.name,
    )
    assert fitted.alpha == pytest.approx(TRUE.alpha, rel=0.02)


def vector(values: dict[str, float]) -> QueryResult:
    return QueryResult("vector", tuple(Sample({"instance": k}, v, 0.0) for k, v in values.items()))


def test_observations_are_per_replica_equations_of_one_window():
    results = {
        "steps": vector({"a:8000": 1000.0, "b:8000": 5.0}),
        "generation_tokens": vector({"a:8000": 16000.0, "b:8000": 10.0}),
        "prompt_tokens": vector({"a:8000": 16000.0, "b:8000": 0.0}),
        "itl_sum": vector({"a:8000": 640.0, "b:8000": 0.2}),
        "itl_count": vector({"a:8000": 16000.0, "b:8000": 10.0}),
        "prefill_sum": vector({"a:8000": 20.0}),
        "prefill_count": vector({"a:8000": 10.0}),
        "prefill_prompt_tokens": vector({"a:8000": 16000.0}),
    }
    seen = capacity_fit.observations(results, window_seconds=60.0, interval_seconds=15.0, chunk=416)
    step, prefill = seen  # b ran fewer than MIN_STEPS steps: nothing from it
    # Half the window's tokens were decodes: the step equation counts half of a quarter window.
    assert step == capacity_fit.step_observation(16.0, 16.0, 0.04, 0.25 * 0.5)
    # 16000 prompt tokens in chunks of 416 - 16 decodes = 40 steps, plus half a step per request.
    assert prefill.coefficients == pytest.approx((45 / 16000, 16 * 45 / 16000, 1.0))
    assert prefill.value == pytest.approx(20.0 / 16000)
    del results["itl_sum"], results["prefill_sum"]
    assert capacity_fit.observations(results, window_seconds=60.0, interval_seconds=15.0, chunk=416) == []


def test_a_prefill_equation_pins_gamma_where_step_times_cannot():
    # Only prefill equations, at one decode batch: with prompts of different lengths per request the step share
    # varies, and gamma comes out of them.
    fit = capacity_fit.start(capacity.Prior(WRONG, "roofline", 1.0))
    samples = []
    for prompts in (2000.0, 8000.0, 30000.0):
        requests = 5.0
        steps = prompts / (TRUE.max_num_batched_tokens - 4) + requests / 2
        seconds = steps * TRUE.step_seconds(4, 0) + TRUE.gamma * prompts
        samples.append(
            capacity_fit.prefill_observation(
                seconds, prompts, requests, decode_batch=4, chunk=TRUE.max_num_batched_tokens
            )
        )
    for k in range(20):
        fit = capacity_fit.update(fit, samples, now=15.0 * (k + 1))
    assert capacity_fit.estimate(fit)[2] == pytest.approx(TRUE.gamma, rel=0.1)


def test_queries_read_per_instance_increases_of_the_fleets_series():
    queries = capacity_fit.queries("ml", "llama", promql.QueryConfig(), window="1m")
    assert set(queries) == {
        "steps",
        "generation_tokens",
        "prompt_tokens",
        "itl_sum",
        "itl_count",
        "prefill_sum",
        "prefill_count",
        "prefill_prompt_tokens",
    }
    assert queries["steps"] == (
        'sum by (instance) (increase({__name__=~"vllm[:_]iteration_tokens_total_count",'
        'namespace="ml",app_kubernetes_io_instance="llama"}[1m]))'
    )


def test_the_status_fragment_names_its_source_and_confidence():
    fresh = capacity_fit.start(capacity.Prior(WRONG, "roofline", 1.0))
    assert capacity_fit.status(fresh, WRONG, slo_batch=32)["source"] == "roofline"
    fit = learned(WRONG, windows(TRUE, 80))
    fragment = capacity_fit.status(fit, WRONG, slo_batch=32)
    assert fragment["source"] == "fitted" and fragment["samples"] == 80
    assert fragment["alphaSeconds"] == pytest.approx(TRUE.alpha, rel=0.02)
    assert CapacityCurveStatus.model_validate(fragment).model_dump(by_alias=True, exclude_none=True) == fragment
