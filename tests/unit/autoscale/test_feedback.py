"""The feedback loop: slow, bounded, with hysteresis and anti-windup, and a model fallback that says so."""

from __future__ import annotations

import dataclasses

import pytest

from neuronfleet.autoscale import feedback, service_level

GOAL = 0.99
STARTUP = 180.0
WINDOW = 300.0
DEAD = STARTUP + WINDOW


def window(attainment: float | None, reason=service_level.Reason.MEASURED) -> service_level.Measurement:
    return service_level.Measurement(reason, "test", WINDOW, 1000, attainment=attainment)


def run(state: feedback.State, attainment: float, now: float, **kw) -> feedback.State:
    return feedback.update(state, window(attainment), now=now, goal=GOAL, startup_seconds=STARTUP, **kw)


def test_a_new_fleet_is_sized_by_the_model_alone():
    state = feedback.initial()
    assert (state.scale, state.source) == (1.0, "model")


def test_a_shortfall_takes_headroom_at_once_then_waits_out_the_dead_time():
    state = run(feedback.initial(), 0.95, now=300.0)
    assert state.scale == pytest.approx(feedback.DECREASE) and state.reason == "BelowGoal"
    held = run(state, 0.95, now=300.0 + DEAD - 1)
    assert held.scale == state.scale and held.reason == "Settling", "its effect cannot be measured yet"
    again = run(held, 0.95, now=300.0 + DEAD)
    assert again.scale == pytest.approx(feedback.DECREASE**2)


def test_the_scale_never_drops_below_its_floor():
    state = feedback.initial()
    for k in range(20):
        state = run(state, 0.5, now=300.0 + k * DEAD)
    assert state.scale == pytest.approx(feedback.MIN_SCALE)
    assert state.reason == "AtMinScale"


def test_at_max_replicas_the_loop_does_not_wind_up():
    state = run(feedback.initial(), 0.9, now=300.0, at_max_replicas=True)
    assert state.scale == 1.0 and state.reason == "AtMaxReplicas"


@pytest.mark.parametrize(
    ("attainment", "expected"),
    [(0.9999, feedback.PROBE), (0.997, 1 / feedback.INCREASE), (0.993, 1.0)],
    ids=[
        "misses under a tenth of the allowed rate step up by half",
        "under half the allowed rate step up a little",
        "within the hysteresis band nothing moves",
    ],
)
def test_headroom_is_given_back_only_after_a_whole_horizon_above_the_goal(attainment, expected):
    horizon = max(feedback.RELAX_WINDOWS * WINDOW, DEAD)
    state = feedback.initial()
    for t in range(300, int(horizon), 60):
        state = run(state, attainment, now=float(t))
        assert state.scale == 1.0, "not before the horizon"
    state = run(state, attainment, now=horizon)
    assert state.scale == pytest.approx(expected)


def test_one_bad_window_in_the_horizon_keeps_the_headroom_a_burst_needs():
    horizon = max(feedback.RELAX_WINDOWS * WINDOW, DEAD)
    state = feedback.initial()
    for t in range(300, int(horizon) + 1, 60):
        attainment = 0.993 if t == 600 else 0.9999  # a burst: within the band, not below the goal
        state = run(state, attainment, now=float(t))
    assert state.scale == 1.0 and state.reason == "NearGoal"


def test_a_scale_a_step_up_reached_before_a_miss_caps_later_steps_back_up():
    horizon = max(feedback.RELAX_WINDOWS * WINDOW, DEAD)
    state = run(feedback.initial(), 0.9999, now=horizon)  # stepped up to PROBE
    assert state.scale == pytest.approx(feedback.PROBE)
    state = run(state, 0.95, now=horizon + DEAD)  # ... and that was too hot: ceiling at PROBE
    t = horizon + DEAD
    for _ in range(5):  # 40 minutes: within the ceiling's hour
        t += DEAD
        state = run(state, 0.9999, now=t)
    assert state.scale == pytest.approx(feedback.PROBE * feedback.INCREASE), "one step under the level that missed"
    later = run(state, 0.9999, now=horizon + DEAD + feedback.CEILING_SECONDS + 1)
    assert later.scale > state.scale, "the ceiling expires"


def test_a_miss_at_a_level_the_loop_never_raised_sets_no_ceiling():
    state = run(feedback.initial(), 0.5, now=300.0)  # a startup transient at the model's level
    t = 300.0
    for _ in range(5):
        t += DEAD
        state = run(state, 0.9999, now=t)
    assert state.scale > 1.0


def test_no_headroom_is_given_back_while_replicas_start():
    horizon = max(feedback.RELAX_WINDOWS * WINDOW, DEAD)
    state = run(feedback.initial(), 0.9999, now=horizon, starting_replicas=2)
    assert state.scale == 1.0


def test_without_histograms_the_model_rules_and_the_state_says_why():
    state = run(feedback.initial(), 0.9, now=300.0)
    missing = feedback.update(
        state,
        window(None, service_level.Reason.HISTOGRAMS_MISSING),
        now=400.0,
        goal=GOAL,
        startup_seconds=STARTUP,
    )
    assert (missing.scale, missing.source, missing.reason) == (1.0, "model", "HistogramsMissing")
    assert "model" in missing.message


def test_too_few_requests_keep_the_last_scale():
    state = run(feedback.initial(), 0.9, now=300.0)
    sparse = feedback.update(
        state, window(None, service_level.Reason.TOO_FEW_SAMPLES), now=400.0, goal=GOAL, startup_seconds=STARTUP
    )
    assert sparse.scale == state.scale and sparse.reason == "TooFewSamples"


def test_the_state_is_plain_frozen_data():
    state = feedback.initial()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.scale = 2.0  # type: ignore[misc]


def test_the_scale_stays_where_it_moves_a_target_so_a_correction_always_bites():
    """Anti-windup at the utilization cap: with the model at 0.31 and utilization capped at 0.9, any scale
    above 2.9 gives the same targets; a step back from 3.75 to 3.0 changed nothing (seen in the
    simulator: a steady fleet sat at 0.9 through two windows below its goal)."""
    effective = (0.05 / 0.31, 0.9 / 0.31)
    wound = dataclasses.replace(feedback.initial(), scale=3.75, source="histograms")
    below = run(wound, 0.95, now=1000.0, effective=effective)
    assert below.reason == "BelowGoal"
    assert below.scale == pytest.approx(effective[1] * feedback.DECREASE), "the step starts from the cap"
    assert 0.31 * below.scale < 0.9, "and moves the utilization"
    # Stepping up never passes the cap either.
    probe = feedback.State(scale=effective[1] * 0.9, source="histograms", changed_at=0.0)
    up = run(probe, 1.0, now=10_000.0, effective=effective)
    assert up.reason == "AboveGoal" and up.scale == pytest.approx(effective[1])
    # At the floor end, more headroom cannot be bought: the loop says so instead of winding down.
    floor = dataclasses.replace(feedback.initial(), scale=0.1, source="histograms")
    held = run(floor, 0.95, now=1000.0, effective=(0.5, 3.0))
    assert held.reason == "AtMinScale" and held.scale == pytest.approx(0.5)


def test_a_step_up_grows_the_modelled_queueing_delay_by_the_step_not_the_utilization():
    """Near a full engine, +50 % of the utilization overloads it (0.6 -> 0.9): the step moves u / (1 - u),
    the M/G/1 delay in service times, by PROBE instead; far below, the two are nearly the same."""
    horizon = max(feedback.RELAX_WINDOWS * WINDOW, DEAD)
    busy = feedback.State(scale=2.0, source="histograms", changed_at=0.0)
    stepped = run(busy, 0.9999, now=horizon, model_utilization=0.3)
    u = stepped.scale * 0.3
    assert u / (1 - u) == pytest.approx(feedback.PROBE * 0.6 / 0.4)
    assert 0.6 < u < 0.7
    assert run(busy, 0.9999, now=horizon).scale == pytest.approx(2.0 * feedback.PROBE), "no model: the plain step"
    idle = feedback.State(scale=1.0, source="histograms", changed_at=0.0)
    light = run(idle, 0.9999, now=horizon, model_utilization=0.05).scale
    assert 0.97 * feedback.PROBE < light < feedback.PROBE
