"""The measured service level: PromQL per fleet, and the share within the SLO from histogram increases."""

from __future__ import annotations

import math

import pytest

from neuronfleet.api import conditions
from neuronfleet.api.status import ServiceLevelStatus
from neuronfleet.autoscale import promql, service_level, slo_targets
from neuronfleet.autoscale.prometheus import QueryResult, Sample

SLO = slo_targets.ServiceLevel(per_user_tokens_per_second=10.0, ttft_seconds=1.0)
SLO_KAPPA = slo_targets.ServiceLevel(
    per_user_tokens_per_second=10.0, ttft_seconds=1.0, ttft_prompt_tokens_per_second=1000.0
)
INF = math.inf


def vector(buckets: dict[float, float]) -> QueryResult:
    """A `sum by (le)` answer from cumulative counts per bound."""
    return QueryResult(
        "vector", tuple(Sample({"le": "+Inf" if math.isinf(le) else str(le)}, v, 0.0) for le, v in buckets.items())
    )


def scalar(value: float) -> QueryResult:
    return QueryResult("vector", (Sample({}, value, 0.0),))


def results(**families: dict[float, float] | float) -> dict[str, QueryResult]:
    return {key: scalar(v) if isinstance(v, float) else vector(v) for key, v in families.items()}


def test_queries_select_the_fleet_like_the_autoscaler_and_tolerate_both_name_spellings():
    queries = service_level.queries("ml", "llama", window_seconds=300.0)
    assert set(queries) == {*service_level.HISTOGRAMS, "ttft_sum", "queue_sum", "prefill_sum", "prompt_tokens_sum"}
    assert queries["ttft"] == (
        'sum by (le) (increase({__name__=~"vllm[:_]time_to_first_token_seconds_bucket",'
        'namespace="ml",app_kubernetes_io_instance="llama"}[300s]))'
    )
    assert queries["queue_sum"].startswith('sum(increase({__name__=~"vllm[:_]request_queue_time_seconds_sum"')
    custom = service_level.queries("ml", "llama", promql.QueryConfig(selector='job="vllm"'), window_seconds=120.0)
    assert all('{__name__=~"vllm[:_]' in q and ',job="vllm"}[120s]' in q for q in custom.values())


def test_the_cdf_and_quantile_interpolate_inside_buckets_like_histogram_quantile():
    h = service_level.Histogram(((0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (INF, 50.0)))
    assert h.count == 50.0
    assert h.cdf(0.05) == pytest.approx(5 / 50)  # half of the first bucket, from 0
    assert h.cdf(0.3) == pytest.approx((10 + 20 * 0.5) / 50)
    assert h.cdf(1.0) == pytest.approx(40 / 50)
    assert h.cdf(100.0) == pytest.approx(40 / 50), "the +Inf bucket counts as above every finite value"
    assert h.quantile(0.5) == pytest.approx(0.1 + 0.4 * (25 - 10) / 20)
    assert h.quantile(0.99) == 1.0, "a quantile in the +Inf bucket is the highest finite bound"
    assert math.isnan(service_level.Histogram(((1.0, 0.0), (INF, 0.0))).cdf(1.0))


def test_parsed_histograms_are_sorted_monotone_and_need_an_inf_bucket():
    parsed = service_level.histograms(
        {
            "ttft": vector({INF: 10.0, 1.0: 9.0, 0.5: 9.2}),  # extrapolated increases can dip
            "tpot": vector({0.1: 3.0}),  # no +Inf: not a histogram answer
            "queue": QueryResult("vector", ()),
        }
    )
    assert set(parsed) == {"ttft"}
    assert parsed["ttft"].buckets == ((0.5, 9.2), (1.0, 9.2), (INF, 10.0))


def test_a_flat_budget_reads_the_ttft_cdf_and_the_rate_reads_the_per_request_tpot_cdf():
    m = service_level.measure(
        results(ttft={0.5: 150.0, 1.0: 190.0, INF: 200.0}, tpot={0.05: 180.0, 0.1: 196.0, INF: 200.0}), SLO
    )
    assert m.measured
    assert m.ttft_attainment == pytest.approx(0.95)
    assert m.tpot_attainment == pytest.approx(0.98)
    assert m.attainment == pytest.approx(0.93), "misses of the two halves add up (Frechet lower bound)"
    assert m.samples == 200
    assert m.ttft_p50 == pytest.approx(0.5 * 100 / 150)


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        ({0.3: 200.0, INF: 200.0}, 1.0),
        ({0.3: 0.0, 2.5: 0.0, 5.0: 200.0, INF: 200.0}, 0.0),
    ],
    ids=["no queueing leaves every budget met", "queueing past every slack misses all"],
)
def test_a_prompt_dependent_budget_pairs_prompts_with_prefills_and_leaves_the_slack_to_queueing(queue, expected):
    # Prompts 1000-2000 tokens (budgets 2-3 s), prefills 0.5-0.8 s: slack 1.5-2.2 s for queueing.
    m = service_level.measure(
        results(
            ttft={1.0: 100.0, 2.5: 200.0, INF: 200.0},
            tpot={0.1: 200.0, INF: 200.0},
            prompt_tokens={1000.0: 0.0, 2000.0: 200.0, INF: 200.0},
            prefill={0.5: 0.0, 0.8: 200.0, INF: 200.0},
            queue=queue,
        ),
        SLO_KAPPA,
    )
    assert m.ttft_attainment == pytest.approx(expected)


def test_the_pairing_counts_requests_whose_queueing_eats_their_slack():
    # Half the requests queue 3-5 s; slack is 1.5-2.2 s, so those miss whatever their prompt: 50 %.
    m = service_level.measure(
        results(
            ttft={2.5: 100.0, 10.0: 200.0, INF: 200.0},
            tpot={0.1: 200.0, INF: 200.0},
            prompt_tokens={1000.0: 0.0, 2000.0: 200.0, INF: 200.0},
            prefill={0.5: 0.0, 0.8: 200.0, INF: 200.0},
            queue={0.3: 100.0, 1.5: 100.0, 3.0: 100.0, 5.0: 200.0, INF: 200.0},
        ),
        SLO_KAPPA,
    )
    assert m.ttft_attainment == pytest.approx(0.5)


def test_without_queue_and_prefill_histograms_the_prompt_budget_falls_back_to_the_flat_lower_bound():
    m = service_level.measure(
        results(ttft={1.0: 150.0, 3.0: 200.0, INF: 200.0}, tpot={0.1: 200.0, INF: 200.0}), SLO_KAPPA
    )
    assert m.ttft_attainment == pytest.approx(0.75)
    assert "lower bound" in m.message


def test_the_front_end_share_of_ttft_comes_out_of_the_slack():
    common = dict(
        tpot={0.1: 200.0, INF: 200.0},
        prompt_tokens={1000.0: 200.0, INF: 200.0},
        prefill={0.3: 200.0, INF: 200.0},
        queue={0.3: 0.0, 1.0: 200.0, INF: 200.0},
        queue_sum=130.0,
        prefill_sum=30.0,
    )
    # Slack without overhead: 1 + 1 - prefill(<=0.3) >= 1.7 s, so queueing up to 1 s always fits.
    quick = service_level.measure(results(ttft={2.0: 200.0, INF: 200.0}, ttft_sum=160.0, **common), SLO_KAPPA)
    # The same queue and prefill, but TTFT means 1.5 s more each: that front-end time leaves no slack.
    slow = service_level.measure(results(ttft={5.0: 200.0, INF: 200.0}, ttft_sum=460.0, **common), SLO_KAPPA)
    assert quick.ttft_attainment == pytest.approx(1.0)
    assert slow.ttft_attainment < 0.5


def test_fewer_requests_than_the_goal_needs_are_reported_not_judged():
    m = service_level.measure(results(ttft={1.0: 50.0, INF: 50.0}, tpot={0.1: 50.0, INF: 50.0}), SLO, goal=0.99)
    assert m.reason is service_level.Reason.TOO_FEW_SAMPLES and not m.measured
    assert m.attainment is None and m.samples == 50
    assert "needs 99" in m.message
    assert service_level.measure(
        results(ttft={1.0: 50.0, INF: 50.0}, tpot={0.1: 50.0, INF: 50.0}), SLO, goal=0.95
    ).measured


@pytest.mark.parametrize(("goal", "needed"), [(0.9, 9), (0.99, 99), (0.999, 999)])
def test_the_sample_floor_is_where_the_standard_error_equals_the_allowed_miss_rate(goal, needed):
    assert service_level.min_samples(goal) == needed
    assert math.sqrt(goal * (1 - goal) / needed) == pytest.approx(1 - goal, rel=0.01)


def test_missing_histograms_fall_back_to_the_model_and_say_which():
    m = service_level.measure({"ttft": vector({1.0: 300.0, INF: 300.0}), "tpot": None}, SLO)
    assert m.reason is service_level.Reason.HISTOGRAMS_MISSING
    assert "vllm:request_time_per_output_token_seconds" in m.message
    assert service_level.status(m)["source"] == "model"


def test_the_status_fragment_is_camel_case_and_leaves_out_what_was_not_measured():
    m = service_level.measure(
        results(ttft={1.0: 200.0, INF: 200.0}, tpot={0.1: 200.0, INF: 200.0}), SLO, window_seconds=300.0
    )
    fragment = service_level.status(m)
    assert fragment["attainment"] == 1.0 and fragment["source"] == "histograms"
    assert fragment["windowSeconds"] == 300.0 and fragment["samples"] == 200
    assert fragment["reason"] == "Measured"
    assert "itlP50Seconds" not in fragment


@pytest.mark.parametrize(
    ("met", "total", "expected"),
    [
        (200.0, 200.0, ("True", "AttainmentMet")),
        (190.0, 200.0, ("False", "AttainmentBelowGoal")),
        (50.0, 50.0, ("Unknown", "TooFewSamples")),
    ],
    ids=["at the goal the condition is met", "under the goal it is not", "too few requests cannot be judged"],
)
def test_the_condition_follows_the_measurement_and_its_reasons_are_declared_once(met, total, expected):
    m = service_level.measure(results(ttft={1.0: met, INF: total}, tpot={0.1: total, INF: total}), SLO)
    status, reason, message = service_level.condition(m, 0.99)
    assert (status, reason) == expected
    assert reason in set(conditions.Reason)
    assert message


def test_the_status_fragment_is_what_the_crd_declares():
    m = service_level.measure(
        results(ttft={1.0: 200.0, INF: 200.0}, tpot={0.1: 200.0, INF: 200.0}, itl={0.05: 900.0, INF: 1000.0}), SLO
    )
    fragment = service_level.status(m)
    parsed = ServiceLevelStatus.model_validate(fragment)
    assert parsed.model_dump(by_alias=True, exclude_none=True) == fragment
