"""One autoscaling step: decide, then remember the decision. The only way callers run `decide`.

The operator's loop, the simulator and the tests all need the same three moves: decide on an
observation, turn the decision into a history entry, and trim the history to what the windows can
still see. Doing them in one pure function keeps those callers from drifting apart (a caller that
forgot to trim, or recorded the wrong `replicas_before`, would stabilize on a different past).
"""

from __future__ import annotations

from neuronfleet.autoscale import decide, history, types

__all__ = ["step"]


def step(
    observation: types.Observation,
    policy: types.Policy,
    past: tuple[types.HistoryEntry, ...],
    now: float,
    *,
    applied: bool = True,
) -> tuple[types.Decision, tuple[types.HistoryEntry, ...]]:
    """The decision for `now` and the history that includes it.

    `applied=False` records the decision as not carried out (writing the replicas failed), so rate
    limits do not count a change that never happened.
    """
    decision = decide.decide(observation, policy, past, now)
    entry = history.entry(observation, decision, at=now, applied=applied)
    return decision, history.append(past, entry, keep_seconds=history.horizon(policy))
