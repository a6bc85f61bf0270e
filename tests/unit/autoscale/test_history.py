"""Building and trimming the decision history (pure)."""

from __future__ import annotations

import pytest

from neuronfleet.autoscale import decide, defaults, history, step, types


def at(*times: float) -> tuple[types.HistoryEntry, ...]:
    return tuple(types.HistoryEntry(t, 3, 3, 3) for t in times)


def test_horizon_is_the_longest_window_or_policy_period() -> None:
    policy = types.Policy(1, 5, types.Targets(concurrency=8.0), defaults.SCALE_UP, defaults.SCALE_DOWN)
    assert history.horizon(policy) == 600.0
    longer_period = types.ScalingRules(60, (types.ScalingPolicy("Pods", 1, 900),))
    assert history.horizon(types.Policy(1, 5, types.Targets(), longer_period, longer_period)) == 900.0


@pytest.mark.parametrize(
    ("times", "kept"),
    [
        ((), ()),
        ((100.0, 200.0, 950.0, 990.0), (200.0, 950.0, 990.0)),
        ((100.0, 200.0), (200.0,)),
        ((500.0, 600.0), (500.0, 600.0)),
    ],
    ids=[
        "empty stays empty",
        "old entries go except the newest old one",
        "all old keeps the newest as anchor",
        "all recent are kept",
    ],
)
def test_trim_keeps_the_window_plus_one_anchor(times: tuple[float, ...], kept: tuple[float, ...]) -> None:
    trimmed = history.trim(at(*times), now=1000.0, keep_seconds=600.0)
    assert tuple(e.at for e in trimmed) == kept


def test_a_trimmed_history_still_covers_the_scale_down_window() -> None:
    # Decisions every 15 s for 20 minutes, trimmed as the operator would: scale-down stays possible.
    policy = types.Policy(1, 5, types.Targets(concurrency=8.0), defaults.SCALE_UP, defaults.SCALE_DOWN)
    past: tuple[types.HistoryEntry, ...] = ()
    for i in range(80):
        past = history.append(past, types.HistoryEntry(i * 15.0, 1, 5, 5), keep_seconds=history.horizon(policy))
    now = 80 * 15.0
    assert past[0].at <= now - defaults.SCALE_DOWN.stabilization_seconds
    observation = types.Observation(None, 1.0, sampled_at=now, current_replicas=5, ready_replicas=5)
    assert decide.decide(observation, policy, past, now).replicas < 5


def test_entry_records_the_change_only_when_it_was_applied() -> None:
    observation = types.Observation(None, 80.0, sampled_at=0.0, current_replicas=2, ready_replicas=2)
    decision = types.Decision(replicas=4, reason=types.Reason.SCALED_UP, message="", recommended=4)
    assert history.entry(observation, decision, at=5.0) == types.HistoryEntry(5.0, 4, 2, 4)
    assert history.entry(observation, decision, at=5.0, applied=False) == types.HistoryEntry(5.0, 4, 2, 2)


def test_append_refuses_an_entry_older_than_the_last() -> None:
    with pytest.raises(ValueError, match="older"):
        history.append(at(10.0), types.HistoryEntry(5.0, 1, 1, 1), keep_seconds=60)


def test_a_step_records_its_decision_and_trims_the_history_to_the_policy_horizon():
    policy = types.Policy(1, 10, types.Targets(concurrency=10.0), defaults.SCALE_UP, defaults.SCALE_DOWN)
    keep = history.horizon(policy)
    past = tuple(types.HistoryEntry(float(t), 2, 2, 2) for t in range(0, int(2 * keep), 15))
    seen = types.Observation(None, 45.0, sampled_at=2 * keep, current_replicas=2, ready_replicas=2)
    decision, after = step.step(seen, policy, past, 2 * keep)
    assert decision.replicas == 5
    assert after[-1] == types.HistoryEntry(2 * keep, decision.recommended, 2, 5)
    assert after[0].at <= keep < after[1].at  # one anchor older than the horizon, nothing older


def test_a_step_not_applied_records_no_change():
    policy = types.Policy(1, 10, types.Targets(concurrency=10.0), defaults.SCALE_UP, defaults.SCALE_DOWN)
    seen = types.Observation(None, 45.0, sampled_at=0.0, current_replicas=2, ready_replicas=2)
    decision, after = step.step(seen, policy, (), 0.0, applied=False)
    assert decision.replicas == 5 and after[-1].replicas_after == 2
