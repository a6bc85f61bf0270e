"""Each baseline's arithmetic on hand-built inputs, against the formulas its sources document."""

from __future__ import annotations

import pytest

from neuronfleet.sim.baselines import (
    HpaBehavior,
    KpaState,
    apa_replicas,
    hpa_external_average_replicas,
    hpa_pods_metric_replicas,
    kpa_replicas,
)


@pytest.mark.parametrize(
    ("values", "missing", "current", "expected"),
    [
        ([30, 30], 0, 2, 3),  # ratio 1.5 over 2 pods
        ([21, 21], 0, 2, 2),  # ratio 1.05: inside the 0.1 tolerance
        ([5, 5, 5, 5], 0, 4, 1),  # ratio 0.25
        ([40], 1, 2, 2),  # a starting pod counts 0 on scale-up: 40/2/20 = 1.0, no change
        ([60], 1, 2, 3),  # 60/2/20 = 1.5 -> 3
        ([0, 0], 2, 4, 2),  # starting pods count 100 % on scale-down: 40/4/20 = 0.5 -> 2
        ([5], 1, 2, 2),  # (5 + 20)/2/20 = 0.625 -> ceil(1.25) = 2 = current
    ],
    ids=[
        "above target scales proportionally",
        "inside tolerance holds",
        "below target scales down",
        "starting pod at zero cancels the scale-up",
        "starting pod at zero still lets a big excess scale up",
        "starting pods at target soften the scale-down",
        "starting pod at target can hold a scale-down",
    ],
)
def test_hpa_pods_metric_follows_the_replica_calculator(values, missing, current, expected):
    assert hpa_pods_metric_replicas(values, missing=missing, target=20.0, current=current) == expected


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [(20.0, 1, 4), (21.0, 4, 4), (0.0, 3, 0), (26.0, 4, 6)],
    ids=["KEDA's own example: queue 20, threshold 5", "inside tolerance", "zero", "above"],
)
def test_keda_average_value_is_independent_of_the_current_count(value, current, expected):
    assert hpa_external_average_replicas(value, target=5.0, current=current) == expected


def test_hpa_scale_down_waits_for_the_highest_recommendation_of_five_minutes():
    behavior = HpaBehavior(min_replicas=1, max_replicas=20)
    assert behavior.apply(5, 5, 0.0) == 5
    assert behavior.apply(2, 5, 15.0) == 5
    assert behavior.apply(2, 5, 299.0) == 5
    assert behavior.apply(2, 5, 301.0) == 2  # the recommendation of 5 left the window


def test_hpa_scale_up_is_limited_to_the_larger_of_four_pods_and_double_per_15_seconds():
    behavior = HpaBehavior(min_replicas=1, max_replicas=100)
    assert behavior.apply(30, 1, 0.0) == 5  # max(1 + 4, 2 * 1)
    assert behavior.apply(30, 5, 5.0) == 5  # the period's budget is spent
    assert behavior.apply(30, 5, 16.0) == 10  # max(5 + 4, 2 * 5)
    assert behavior.apply(30, 10, 31.0) == 20


def test_kpa_scales_on_the_stable_window_when_calm():
    state = KpaState()
    assert kpa_replicas(stable_value=44.8, panic_value=44.8, target=22.4, ready=2, now=0.0, state=state) == 2
    assert state.panic_since is None


def test_kpa_panics_at_200_percent_and_never_scales_down_until_a_calm_stable_window():
    state = KpaState()
    # ceil(100 / 22.4) = 5 >= 2 x 2 ready pods: panic, go to 5.
    assert kpa_replicas(stable_value=30, panic_value=100, target=22.4, ready=2, now=0.0, state=state) == 5
    # Calm again, but still inside 60 s of the last panic reading: hold 5.
    assert kpa_replicas(stable_value=10, panic_value=10, target=22.4, ready=5, now=30.0, state=state) == 5
    # A whole stable window later: back to the stable value, at most halved per tick.
    assert kpa_replicas(stable_value=10, panic_value=10, target=22.4, ready=5, now=61.0, state=state) == 2
    assert state.panic_since is None


def test_kpa_scales_down_at_most_by_the_max_scale_down_rate():
    assert kpa_replicas(stable_value=0, panic_value=0, target=10, ready=8, now=0.0, state=KpaState()) == 4


@pytest.mark.parametrize(
    ("metric", "current", "expected"),
    [(0.8, 2, 4), (2.0, 2, 4), (0.52, 2, 2), (0.1, 4, 2), (0.4, 10, 8)],
    ids=[
        "ratio 1.6 scales up to ceil(3.2)",
        "scale-up capped at twice the current count",
        "inside the fluctuation band holds",
        "scale-down capped at half",
        "ratio 0.8 scales down proportionally",
    ],
)
def test_apa_applies_the_fluctuation_band_and_rate_caps(metric, current, expected):
    assert apa_replicas(metric=metric, target=0.5, current=current) == expected
