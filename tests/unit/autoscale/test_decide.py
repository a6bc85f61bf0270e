"""The autoscaling decision over hand-built observations and sequences (pure: no server, no clock)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronfleet.autoscale import decide as decide_module
from neuronfleet.autoscale import defaults, step, types

decide = decide_module.decide
Reason = types.Reason
NOW = 10_000.0
TICK = 15.0


def make_policy(**overrides: object) -> types.Policy:
    """A policy with concurrency 24/replica, HPA behaviour and bounds 1..10; override any field."""
    fields: dict[str, object] = {
        "min_replicas": 1,
        "max_replicas": 10,
        "targets": types.Targets(concurrency=24.0),
        "scale_up": defaults.HPA_SCALE_UP,
        "scale_down": defaults.HPA_SCALE_DOWN,
    }
    fields.update(overrides)
    return types.Policy(**fields)  # type: ignore[arg-type]


def observe(
    current: int, *, starting: int = 0, sampled_at: float | None = NOW, **signals: float | None
) -> types.Observation:
    """An observation of `current` replicas of which `starting` are not ready yet."""
    values = {"tokens_per_second": None, "concurrency": None} | signals
    return types.Observation(
        **values,  # type: ignore[arg-type]
        sampled_at=sampled_at,
        current_replicas=current,
        ready_replicas=current - starting,
        starting_replicas=starting,
    )


def steady(recommended: int, replicas: int, *, since: float, until: float = NOW) -> tuple[types.HistoryEntry, ...]:
    """A history of unchanged decisions every tick in [since, until)."""
    count = int((until - since) // TICK)
    return tuple(types.HistoryEntry(since + i * TICK, recommended, replicas, replicas) for i in range(count))


def run(
    policy: types.Policy, loads: list[float], *, replicas: int, history_seconds: float = 3600.0
) -> list[types.Decision]:
    """Decide every tick on fleet concurrency `loads`, replicas ready at once; the loop the operator runs."""
    past = steady(replicas, replicas, since=-history_seconds, until=0.0)
    decisions = []
    for i, load in enumerate(loads):
        now = i * TICK
        observation = observe(replicas, concurrency=load, sampled_at=now)
        decision, past = step.step(observation, policy, past, now)
        replicas = decision.replicas
        decisions.append(decision)
    return decisions


@pytest.mark.parametrize(
    ("concurrency", "expected"),
    [(96.0, 4), (97.0, 5), (240.0, 10)],
    ids=["96 requests over 24 per replica needs 4", "one request more needs 5", "240 requests need 10"],
)
def test_step_up_sizes_the_fleet_from_fleet_demand_over_the_per_replica_target(
    concurrency: float, expected: int
) -> None:
    decision = decide(observe(2, concurrency=concurrency), make_policy(scale_up=_unlimited_up()), (), NOW)
    assert decision.replicas == expected
    assert decision.reason == Reason.SCALED_UP
    assert decision.recommended == expected
    assert decision.per_signal == {"concurrency": float(expected)}


@pytest.mark.parametrize(
    ("signals", "winner", "expected"),
    [
        ({"concurrency": 48.0, "tokens_per_second": 4000.0}, "tokens_per_second", 4),
        ({"concurrency": 120.0, "tokens_per_second": 1000.0}, "concurrency", 5),
        ({"concurrency": 24.0, "tokens_per_second": 1000.0, "waiting": 12.0}, "waiting", 6),
    ],
    ids=["tokens per second wins", "concurrency wins", "waiting queue wins"],
)
def test_the_signal_needing_most_replicas_wins(signals: dict[str, float], winner: str, expected: int) -> None:
    targets = types.Targets(tokens_per_second=1000.0, concurrency=24.0, waiting=2.0)
    decision = decide(observe(2, **signals), make_policy(targets=targets, scale_up=_unlimited_up()), (), NOW)
    assert decision.replicas == expected
    assert decision.per_signal[winner] == expected
    assert all(size <= expected for size in decision.per_signal.values())


def test_kv_cache_usage_is_a_mean_over_ready_replicas() -> None:
    targets = types.Targets(kv_cache_usage=0.5)
    decision = decide(observe(4, kv_cache_usage=0.9), make_policy(targets=targets), (), NOW)
    assert decision.replicas == math.ceil(4 * 0.9 / 0.5)
    assert decision.reason == Reason.SCALED_UP


def test_prompt_tokens_per_second_sizes_prefill_heavy_load() -> None:
    targets = types.Targets(tokens_per_second=1000.0, prompt_tokens_per_second=8000.0)
    seen = observe(2, tokens_per_second=300.0, prompt_tokens_per_second=30000.0)
    decision = decide(seen, make_policy(targets=targets, scale_up=_unlimited_up()), (), NOW)
    assert decision.replicas == math.ceil(30000 / 8000)
    assert decision.per_signal == {"tokens_per_second": 1.0, "prompt_tokens_per_second": 4.0}


def test_scale_down_waits_for_the_whole_stabilization_window() -> None:
    policy = make_policy(scale_down=defaults.HPA_SCALE_DOWN)
    high, low = 4 * 24.0, 24.0
    loads = [high] * 20 + [low] * 40
    decisions = run(policy, loads, replicas=4)
    replicas = [d.replicas for d in decisions]
    last_high_at = 19 * TICK
    first_down = next(i for i, r in enumerate(replicas) if r < 4)
    # The last high recommendation leaves the window when now - window >= its time.
    assert first_down * TICK == last_high_at + policy.scale_down.stabilization_seconds
    assert all(d.reason == Reason.STABILIZING for d in decisions[20:first_down])
    assert decisions[first_down].reason == Reason.SCALED_DOWN
    assert replicas[-1] == 1


def test_neuron_default_scale_down_waits_600s_then_sheds_in_steps_one_minute_apart() -> None:
    policy = make_policy(scale_down=defaults.SCALE_DOWN)
    loads = [8 * 24.0] * 4 + [24.0] * 80
    replicas = [d.replicas for d in run(policy, loads, replicas=8)]
    first_down = next(i for i, r in enumerate(replicas) if r < 8)
    assert first_down * TICK == 3 * TICK + defaults.SCALE_DOWN.stabilization_seconds
    steps = [(i, r) for i, r in enumerate(replicas) if i > 0 and r != replicas[i - 1]]
    # Each minute: the larger of "one pod" and "20 %" (HPA truncates the percent proposal down).
    expected, count = [], 8
    while count > 1:
        count = min(count - 1, math.floor(count * 0.8))
        expected.append(count)
    assert [r for _, r in steps] == expected
    assert all((b - a) * TICK == 60 for (a, _), (b, _) in itertools.pairwise(steps))


def test_flapping_load_inside_the_tolerance_band_never_changes_the_count() -> None:
    loads = [4 * 24.0 * f for f in (0.95, 1.08, 0.92, 1.1, 0.91, 1.05) * 20]
    decisions = run(make_policy(), loads, replicas=4)
    assert {d.replicas for d in decisions} == {4}
    assert {d.reason for d in decisions} == {Reason.WITHIN_TOLERANCE}


def test_load_just_outside_the_band_does_change_the_count() -> None:
    decision = decide(observe(4, concurrency=4 * 24.0 * 1.11), make_policy(), steady(4, 4, since=NOW - 900), NOW)
    assert decision.replicas == 5


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (defaults.HPA_SCALE_UP, 6),  # max(2 + 100 %, 2 + 4 pods)
        (dataclasses.replace(defaults.HPA_SCALE_UP, select_policy="Min"), 4),  # min(4, 6)
        (types.ScalingRules(0, (types.ScalingPolicy("Pods", 1, 60),)), 3),
        (types.ScalingRules(0, (types.ScalingPolicy("Percent", 50, 60),)), 3),
        (dataclasses.replace(defaults.HPA_SCALE_UP, select_policy="Disabled"), 2),
    ],
    ids=[
        "hpa default allows max of doubling and four pods",
        "min select takes the smaller step",
        "one pod per minute",
        "fifty percent rounds up",
        "disabled scale-up holds",
    ],
)
def test_scale_up_is_rate_limited_by_the_policies(rules: types.ScalingRules, expected: int) -> None:
    decision = decide(observe(2, concurrency=20 * 24.0), make_policy(scale_up=rules, max_replicas=50), (), NOW)
    assert decision.replicas == expected
    assert decision.reason == Reason.RATE_LIMITED
    assert decision.recommended == 20


def test_a_rate_limit_period_counts_the_replicas_already_added_in_it() -> None:
    rules = types.ScalingRules(0, (types.ScalingPolicy("Pods", 2, 60),))
    policy = make_policy(scale_up=rules, max_replicas=50)
    past = (types.HistoryEntry(NOW - 30, 20, 2, 4),)
    held = decide(observe(4, concurrency=20 * 24.0), policy, past, NOW)
    assert held.replicas == 4
    assert held.reason == Reason.RATE_LIMITED
    later = decide(observe(4, concurrency=20 * 24.0), policy, past, NOW + 31)
    assert later.replicas == 6


def test_scale_down_is_rate_limited_by_the_policies() -> None:
    rules = types.ScalingRules(0, (types.ScalingPolicy("Pods", 1, 60),))
    decision = decide(observe(6, concurrency=24.0), make_policy(scale_down=rules), steady(6, 6, since=NOW - 120), NOW)
    assert decision.replicas == 5
    assert decision.reason == Reason.RATE_LIMITED


@pytest.mark.parametrize(
    ("current", "concurrency", "expected", "reason"),
    [
        (4, 20 * 24.0, 6, Reason.LIMITED_MAX),
        (6, 20 * 24.0, 6, Reason.LIMITED_MAX),
        (3, 1.0, 2, Reason.LIMITED_MIN),
        (2, 0.0, 2, Reason.LIMITED_MIN),
        (9, 9 * 24.0, 6, Reason.LIMITED_MAX),
        (1, 24.0, 2, Reason.LIMITED_MIN),
    ],
    ids=[
        "scale-up clamped to max",
        "at max with more demand",
        "scale-down clamped to min",
        "at min with no demand",
        "above max after a spec change",
        "below min after a spec change",
    ],
)
def test_bounds_clamp_the_result_and_say_so(current: int, concurrency: float, expected: int, reason: Reason) -> None:
    policy = make_policy(min_replicas=2, max_replicas=6, scale_up=_unlimited_up(), scale_down=_unlimited_down())
    decision = decide(observe(current, concurrency=concurrency), policy, steady(current, current, since=0), NOW)
    assert decision.replicas == expected
    assert decision.reason == reason
    assert decision.limited


def test_replicas_still_starting_absorb_the_demand_they_were_asked_for() -> None:
    # 2 ready + 2 starting; the ready two carry 90 requests. A ratio over ready pods (HPA's
    # current * metric/target with current=4) would ask for ceil(4 * 45/24) = 8.
    decision = decide(observe(4, starting=2, concurrency=90.0), make_policy(), steady(4, 4, since=0), NOW)
    assert decision.replicas == 4
    assert decision.reason == Reason.WAITING_FOR_STARTING


def test_demand_beyond_the_starting_capacity_still_scales_up() -> None:
    decision = decide(observe(4, starting=2, concurrency=150.0), make_policy(), steady(4, 4, since=0), NOW)
    assert decision.replicas == math.ceil(150 / 24)
    assert decision.reason == Reason.SCALED_UP


def test_a_ramp_during_a_cold_start_buys_replicas_once_not_every_tick() -> None:
    # Replicas never become ready here (a cold start longer than the test): the demand stays
    # 100 requests, so after the first scale-up every tick must wait for the starting ones.
    policy = make_policy()
    past: tuple[types.HistoryEntry, ...] = ()
    replicas, ready = 2, 2
    counts = []
    for i in range(20):
        now = NOW + i * TICK
        observation = observe(replicas, starting=replicas - ready, concurrency=100.0, sampled_at=now)
        decision, past = step.step(observation, policy, past, now)
        replicas = decision.replicas
        counts.append(replicas)
    assert counts == [5] * 20


def test_holding_while_starting_stops_a_second_scale_up_until_the_startup_time_passes() -> None:
    rules = make_policy(hold_scale_up_while_starting=True, expected_startup_seconds=300.0)
    scaled_up = (types.HistoryEntry(NOW - 60, 5, 2, 5),)
    seen = observe(5, starting=3, concurrency=200.0)  # backlog on the two ready replicas
    held = decide(seen, rules, scaled_up, NOW)
    assert (held.replicas, held.reason) == (5, Reason.WAITING_FOR_STARTING)
    assert held.recommended == math.ceil(200 / 24)
    later = dataclasses.replace(seen, sampled_at=NOW + 241)
    late = decide(later, rules, scaled_up, NOW + 241)  # the starting replicas are overdue: act again
    assert late.replicas > 5
    default = decide(seen, make_policy(), scaled_up, NOW)  # without the hold, demand beyond 5 buys more
    assert default.replicas > 5


def test_holding_while_starting_never_blocks_a_scale_up_without_starting_replicas() -> None:
    rules = make_policy(hold_scale_up_while_starting=True)
    decision = decide(observe(2, concurrency=96.0), rules, (types.HistoryEntry(NOW - 15, 2, 1, 2),), NOW)
    assert (decision.replicas, decision.reason) == (4, Reason.SCALED_UP)


@pytest.mark.parametrize(
    "observation",
    [
        observe(5, concurrency=24.0, sampled_at=None),
        observe(5, concurrency=24.0, sampled_at=NOW - 61),
        observe(5, concurrency=None),
        observe(5, concurrency=float("nan")),
    ],
    ids=["no sample at all", "sample older than max age", "every enabled signal missing", "nan counts as missing"],
)
def test_missing_or_stale_metrics_hold_the_current_count_instead_of_falling_to_min(
    observation: types.Observation,
) -> None:
    decision = decide(observation, make_policy(scale_down=_unlimited_down()), steady(1, 5, since=0), NOW)
    assert decision.replicas == 5
    assert decision.reason == Reason.METRICS_UNAVAILABLE
    assert decision.recommended == 5


def test_a_hold_keeps_replicas_asked_for_that_no_node_could_place() -> None:
    """Five asked, two of them unschedulable past their deadline (so three count as capacity): stale
    metrics hold the five; holding the three would delete the two pods that still wait for a node."""
    stale = dataclasses.replace(observe(3, concurrency=100.0, sampled_at=NOW - 600), asked_replicas=5)
    decision, history = step.step(stale, make_policy(scale_down=_unlimited_down()), steady(5, 5, since=0), NOW)
    assert (decision.replicas, decision.reason, decision.recommended) == (5, Reason.METRICS_UNAVAILABLE, 5)
    assert "5 -> 5 replicas" in decision.message
    assert (history[-1].replicas_before, history[-1].replicas_after) == (5, 5)  # no change recorded


def test_fresh_metrics_size_from_the_capacity_not_from_the_count_asked() -> None:
    fresh = dataclasses.replace(observe(3, concurrency=24.0 * 5), asked_replicas=5)
    decision = decide(fresh, make_policy(), steady(5, 5, since=0), NOW)
    assert (decision.replicas, decision.reason) == (5, Reason.SCALED_UP)


def test_a_fresh_sample_just_inside_the_max_age_is_used() -> None:
    decision = decide(observe(2, concurrency=96.0, sampled_at=NOW - 60), make_policy(), (), NOW)
    assert decision.replicas == 4


def test_no_enabled_signal_holds() -> None:
    decision = decide(observe(3, concurrency=240.0), make_policy(targets=types.Targets()), (), NOW)
    assert (decision.replicas, decision.reason) == (3, Reason.METRICS_UNAVAILABLE)


def test_one_signal_missing_still_allows_scale_up_on_the_other() -> None:
    targets = types.Targets(tokens_per_second=1000.0, concurrency=24.0)
    decision = decide(observe(2, tokens_per_second=None, concurrency=120.0), make_policy(targets=targets), (), NOW)
    assert decision.replicas == 5
    assert decision.reason == Reason.SCALED_UP


def test_one_signal_missing_never_scales_down_on_the_other() -> None:
    targets = types.Targets(tokens_per_second=1000.0, concurrency=24.0)
    policy = make_policy(targets=targets, scale_down=_unlimited_down())
    decision = decide(observe(6, tokens_per_second=None, concurrency=10.0), policy, steady(6, 6, since=0), NOW)
    assert decision.replicas == 6
    assert decision.reason == Reason.METRICS_UNAVAILABLE
    assert decision.recommended == 6


def test_empty_history_after_a_restart_holds_scale_down() -> None:
    decision = decide(observe(6, concurrency=10.0), make_policy(), (), NOW)
    assert decision.replicas == 6
    assert decision.reason == Reason.STABILIZING


def test_history_shorter_than_the_window_holds_scale_down_but_not_scale_up() -> None:
    short = steady(1, 6, since=NOW - 120)
    down = decide(observe(6, concurrency=10.0), make_policy(), short, NOW)
    assert (down.replicas, down.reason) == (6, Reason.STABILIZING)
    up = decide(observe(6, concurrency=200.0), make_policy(), short, NOW)
    assert (up.replicas, up.reason) == (9, Reason.SCALED_UP)


def test_history_covering_the_window_allows_scale_down() -> None:
    decision = decide(observe(6, concurrency=10.0), make_policy(), steady(1, 6, since=NOW - 400), NOW)
    assert (decision.replicas, decision.reason) == (1, Reason.SCALED_DOWN)


def test_a_scale_up_stabilization_window_takes_the_lowest_recent_recommendation() -> None:
    rules = dataclasses.replace(defaults.HPA_SCALE_UP, stabilization_seconds=60)
    past = (types.HistoryEntry(NOW - 45, 3, 2, 2), types.HistoryEntry(NOW - 30, 6, 2, 2))
    decision = decide(observe(2, concurrency=8 * 24.0), make_policy(scale_up=rules), past, NOW)
    assert decision.replicas == 3
    assert decision.recommended == 8


def test_a_non_positive_target_is_refused() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        decide(observe(2, concurrency=10.0), make_policy(targets=types.Targets(concurrency=0.0)), (), NOW)


def test_the_message_names_the_counts_and_the_signal_sizes() -> None:
    decision = decide(observe(2, concurrency=96.0), make_policy(), (), NOW)
    assert "2 -> 4" in decision.message
    assert "concurrency needs 4" in decision.message


# Property tests: invariants over arbitrary observations, policies and histories.

_counts = st.integers(min_value=0, max_value=40)
_maybe_load = st.one_of(st.none(), st.floats(min_value=0, max_value=5000, allow_nan=False))
_histories = st.lists(
    st.tuples(st.floats(min_value=0, max_value=900), st.integers(0, 40), st.integers(0, 40), st.integers(0, 40)),
    max_size=30,
).map(lambda rows: tuple(types.HistoryEntry(NOW - age, rec, b, a) for age, rec, b, a in sorted(rows, reverse=True)))
_rules = st.builds(
    types.ScalingRules,
    stabilization_seconds=st.integers(0, 900),
    policies=st.lists(
        st.builds(types.ScalingPolicy, st.sampled_from(["Pods", "Percent"]), st.integers(1, 200), st.integers(1, 600)),
        max_size=3,
    ).map(tuple),
    select_policy=st.sampled_from(["Max", "Min", "Disabled"]),
    tolerance=st.floats(0, 0.5),
)


@st.composite
def _policies(draw: st.DrawFn) -> types.Policy:
    lo = draw(st.integers(1, 10))
    hi = draw(st.integers(lo, 30))
    targets = types.Targets(
        tokens_per_second=draw(st.one_of(st.none(), st.floats(1, 5000))),
        concurrency=draw(st.one_of(st.none(), st.floats(1, 64))),
    )
    return make_policy(
        min_replicas=lo, max_replicas=hi, targets=targets, scale_up=draw(_rules), scale_down=draw(_rules)
    )


@st.composite
def _observations(draw: st.DrawFn) -> types.Observation:
    current = draw(_counts)
    starting = draw(st.integers(0, current))
    return observe(
        current,
        starting=starting,
        sampled_at=draw(st.one_of(st.none(), st.floats(NOW - 300, NOW))),
        tokens_per_second=draw(_maybe_load),
        concurrency=draw(_maybe_load),
    )


@settings(max_examples=200, deadline=None)
@given(observation=_observations(), policy=_policies(), past=_histories)
def test_the_result_always_respects_the_bounds(
    observation: types.Observation, policy: types.Policy, past: tuple[types.HistoryEntry, ...]
) -> None:
    decision = decide(observation, policy, past, NOW)
    assert policy.min_replicas <= decision.replicas <= policy.max_replicas
    assert decision.limited or decision.reason not in (Reason.LIMITED_MIN, Reason.LIMITED_MAX)


@settings(max_examples=150, deadline=None)
@given(observation=_observations(), policy=_policies(), past=_histories, age=st.floats(60.001, 1e6))
def test_stale_metrics_only_ever_move_the_count_into_the_bounds(
    observation: types.Observation, policy: types.Policy, past: tuple[types.HistoryEntry, ...], age: float
) -> None:
    stale = dataclasses.replace(observation, sampled_at=NOW - age)
    decision = decide(stale, policy, past, NOW)
    assert decision.replicas == min(max(observation.current_replicas, policy.min_replicas), policy.max_replicas)


@settings(max_examples=150, deadline=None)
@given(observation=_observations(), policy=_policies(), past=_histories)
def test_partial_data_never_scales_below_the_current_count_unless_above_max(
    observation: types.Observation, policy: types.Policy, past: tuple[types.HistoryEntry, ...]
) -> None:
    both = dataclasses.replace(policy, targets=types.Targets(tokens_per_second=1000.0, concurrency=24.0))
    partial = dataclasses.replace(observation, tokens_per_second=None)
    decision = decide(partial, both, past, NOW)
    assert decision.replicas >= min(observation.current_replicas, policy.max_replicas)


@settings(max_examples=150, deadline=None)
@given(observation=_observations(), policy=_policies())
def test_an_empty_history_never_scales_down_inside_the_bounds(
    observation: types.Observation, policy: types.Policy
) -> None:
    decision = decide(observation, policy, (), NOW)
    if policy.scale_down.stabilization_seconds > 0:
        assert decision.replicas >= min(observation.current_replicas, policy.max_replicas)


def _unlimited_up() -> types.ScalingRules:
    return types.ScalingRules(0, ())


def _unlimited_down() -> types.ScalingRules:
    return types.ScalingRules(0, ())


LOAD = types.LoadModel(per_request=0.01, per_prompt_token=0.0001, available=0.8)


@pytest.mark.parametrize(
    ("concurrency", "prompt", "replicas"),
    [(40.0, 2000.0, 3), (80.0, 0.0, 4), (0.0, 4000.0, 2), (8.0, 400.0, 1)],
    ids=[
        "decodes and prompts add up: (0.4 + 0.2) / 0.8 / 0.25 = 3",
        "decodes alone: 0.8 / 0.8 / 0.25 = 4",
        "prompts alone: 0.4 / 0.8 / 0.25 = 2",
        "light load stays at one",
    ],
)
def test_engine_load_sizes_on_concurrency_and_prompt_tokens_sharing_the_steps(concurrency, prompt, replicas):
    policy = make_policy(targets=types.Targets(engine_load=0.25), load_model=LOAD)
    decision = decide(observe(1, concurrency=concurrency, prompt_tokens_per_second=prompt), policy, (), NOW)
    assert decision.replicas == replicas
    assert decision.per_signal["engine_load"] == replicas


def test_engine_load_without_a_prompt_rate_is_missing_and_never_scales_down():
    policy = make_policy(targets=types.Targets(engine_load=0.25, concurrency=24.0), load_model=LOAD)
    decision = decide(observe(5, concurrency=10.0), policy, steady(5, 5, since=NOW - 3600), NOW)
    assert decision.replicas == 5
    assert decision.reason == Reason.METRICS_UNAVAILABLE
    assert "engine_load" not in decision.per_signal


def test_an_engine_load_target_without_a_load_model_is_refused():
    policy = make_policy(targets=types.Targets(engine_load=0.5))
    with pytest.raises(ValueError, match="load_model"):
        decide(observe(1, concurrency=1.0, prompt_tokens_per_second=1.0), policy, (), NOW)


def test_failing_scrapes_never_scale_down() -> None:
    # Scrapes that time out under load make the fleet totals undercount exactly when the fleet is busy.
    policy = make_policy(scale_down=dataclasses.replace(defaults.HPA_SCALE_DOWN, stabilization_seconds=0))
    busy_but_half_scraped = dataclasses.replace(observe(8, concurrency=24.0 * 4), failing_scrapes=4)
    decision = decide(busy_but_half_scraped, policy, (), NOW)
    assert decision.replicas == 8
    assert "4 replica(s) whose scrapes fail" in decision.message
    every_scrape_fine = dataclasses.replace(busy_but_half_scraped, failing_scrapes=0)
    assert decide(every_scrape_fine, policy, (), NOW).replicas == 4


def test_failing_scrapes_still_allow_scaling_up() -> None:
    policy = make_policy(scale_up=_unlimited_up())
    overloaded = dataclasses.replace(observe(4, concurrency=24.0 * 6), failing_scrapes=1)
    assert decide(overloaded, policy, (), NOW).replicas == 6
