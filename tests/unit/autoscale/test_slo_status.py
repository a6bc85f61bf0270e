"""One tick of the SLO path as the status shows it: serviceLevel, capacityCurve, ServiceLevelMet, plain data."""

from __future__ import annotations

import math

import pytest

from neuronfleet.api.status import CapacityCurveStatus, ServiceLevelStatus
from neuronfleet.autoscale import slo_policy, slo_status, slo_targets
from neuronfleet.autoscale.prometheus import QueryResult, Sample
from neuronfleet.neuron import capacity

SLO = slo_targets.ServiceLevel(per_user_tokens_per_second=10.0, ttft_seconds=1.0)
PRIOR = capacity.Prior(capacity.LLAMA_8B_TRN2_TP4, "calibrated", capacity.CALIBRATED_UNCERTAINTY)
INF = math.inf
AT = "2026-01-01T00:05:00Z"


def vector(buckets: dict[float, float]) -> QueryResult:
    return QueryResult(
        "vector", tuple(Sample({"le": "+Inf" if math.isinf(le) else str(le)}, v, 0.0) for le, v in buckets.items())
    )


def answers(within: float, requests: float = 400.0) -> dict[str, QueryResult]:
    """A window of `requests` whose TTFT is within 1 s for a share `within`, all at the per-user rate."""
    return {
        "ttft": vector({0.5: requests * within, 1.0: requests * within, INF: requests}),
        "tpot": vector({0.05: requests, 0.1: requests, INF: requests}),
        "itl": vector({0.05: 1000.0, 0.1: 2000.0, INF: 2000.0}),
    }


def tick(state: slo_policy.FleetState, results: dict[str, QueryResult], now: float = 1000.0):
    state = slo_policy.observe(
        state, slo=SLO, service_level_results=results, fit_results={}, now=now, goal=0.99, startup_seconds=180.0
    )
    derivation = slo_policy.derive(SLO, state.curve(), goal=0.99, traffic=state.traffic, scale=state.feedback.scale)
    return state, slo_status.report(state, derivation, slo=SLO, goal=0.99, sampled_at=AT)


@pytest.mark.parametrize(
    ("within", "condition", "reason"),
    [
        pytest.param(1.0, "True", "AttainmentMet", id="every request within the SLO meets the goal"),
        pytest.param(0.9, "False", "AttainmentBelowGoal", id="a tenth late misses a 99 % goal"),
    ],
)
def test_a_measured_window_shows_its_attainment_and_judges_the_goal(within, condition, reason):
    _, report = tick(slo_policy.start(PRIOR), answers(within))
    level = report.service_level
    assert level["attainment"] == pytest.approx(within)
    assert (level["source"], level["reason"], level["samples"], level["sampledAt"]) == (
        "histograms",
        "Measured",
        400,
        AT,
    )
    assert level["itlP50Seconds"] == pytest.approx(0.05)
    assert 0 < level["utilization"] == report.planned_utilization <= 1
    assert report.condition[:2] == (condition, reason)
    assert report.met is (condition == "True")
    ServiceLevelStatus.model_validate(level)  # the CRD's shape: names, ranges, enums


def test_too_few_requests_are_not_judged_and_say_how_many_the_goal_needs():
    _, report = tick(slo_policy.start(PRIOR), answers(0.5, requests=20.0))
    assert report.condition[:2] == ("Unknown", "TooFewSamples")
    assert "needs 99" in report.condition[2]
    assert report.met is None
    assert report.service_level["source"] == "model"
    assert "attainment" not in report.service_level


def test_prometheus_answering_nothing_keeps_what_was_learned_and_says_metrics_unavailable():
    state, _ = tick(slo_policy.start(PRIOR), answers(1.0))
    report = slo_status.report(
        state, None, slo=SLO, goal=0.99, sampled_at=AT, unavailable="every Prometheus query failed"
    )
    assert report.condition[:2] == ("Unknown", "MetricsUnavailable")
    assert report.service_level["reason"] == "MetricsUnavailable"
    assert "every Prometheus query failed" in report.service_level["message"]
    assert report.service_level["windowSeconds"] == 300.0
    assert "attainment" not in report.service_level  # the last window is not shown as if it were current
    ServiceLevelStatus.model_validate(report.service_level)


def test_the_capacity_curve_is_the_prior_until_the_fleet_has_been_fitted():
    _, report = tick(slo_policy.start(PRIOR), answers(1.0))
    curve = report.capacity_curve
    profile = PRIOR.profile
    assert (curve["alphaSeconds"], curve["betaSeconds"], curve["gammaSeconds"]) == pytest.approx(
        (profile.alpha, profile.beta, profile.gamma)
    )
    assert curve["source"] == "calibrated" and curve["samples"] == 0
    assert curve["sloBatch"] == slo_targets.slo_batch(profile, 10.0)
    CapacityCurveStatus.model_validate(curve)


def test_an_unreachable_slo_still_reports_the_curve_and_says_why():
    state, _ = tick(slo_policy.start(PRIOR), answers(1.0))
    fast = slo_targets.ServiceLevel(per_user_tokens_per_second=500.0, ttft_seconds=1.0)
    report = slo_status.report(state, None, slo=fast, goal=0.99, sampled_at=AT, unreachable="one user gets 60 tok/s")
    assert report.unreachable == "one user gets 60 tok/s"
    assert report.planned_utilization is None and "utilization" not in report.service_level
    assert report.capacity_curve["sloBatch"] == 1


def test_non_finite_figures_are_left_out_so_the_status_compares_equal_to_itself():
    _, report = tick(slo_policy.start(PRIOR), answers(1.0))
    broken = slo_status._finite({**report.service_level, "ttftP99Seconds": math.nan, "itlP99Seconds": math.inf})
    assert "ttftP99Seconds" not in broken and "itlP99Seconds" not in broken
    assert broken == slo_status._finite(broken)


def test_the_same_tick_gives_the_same_report():
    state, first = tick(slo_policy.start(PRIOR), answers(0.995))
    derivation = slo_policy.derive(SLO, state.curve(), goal=0.99, traffic=state.traffic, scale=state.feedback.scale)
    again = slo_status.report(state, derivation, slo=SLO, goal=0.99, sampled_at=AT)
    assert again == first


def test_the_feedback_says_when_the_utilization_was_planned_on_the_routers_pooling():
    state, _ = tick(slo_policy.start(PRIOR), answers(1.0))
    traffic = slo_policy.Traffic(8656.0, 8656.0**2 * 1.16)  # long prompts, short answers: pooling pays
    load = slo_policy.FleetLoad(running=20.0, prompt_tokens_per_second=40000.0)
    pooled = slo_policy.derive(SLO, state.curve(), goal=0.99, traffic=traffic, load=load, rise=1.25)
    alone = slo_policy.derive(SLO, state.curve(), goal=0.99, traffic=traffic, load=load)
    shown = slo_status.report(state, pooled, slo=SLO, goal=0.99, sampled_at=AT).service_level["feedback"]
    assert shown.endswith("utilization planned on the router's pooling, for a rise of x1.25")
    assert "pooling" not in slo_status.report(state, alone, slo=SLO, goal=0.99, sampled_at=AT).service_level["feedback"]
