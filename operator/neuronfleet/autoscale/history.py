"""Building and trimming the decision history that `decide` stabilizes and rate-limits over.

The history is the only state the autoscaler keeps between calls. It is a plain tuple, oldest first,
so the operator can keep it in memory per ModelDeployment and the simulator can keep it per run.
Trimming keeps what the longest window or rate-limit period can still see, plus one older entry:
that anchor proves the history covers the whole scale-down window, which `decide` requires before it
scales down (an empty history after a restart holds scale-down).
"""

from __future__ import annotations

from neuronfleet.autoscale import types

__all__ = ["append", "entry", "horizon", "trim"]


def horizon(policy: types.Policy) -> float:
    """Seconds of history `decide` can look at: the longest stabilization window or policy period."""
    longest = 0.0
    for rules in (policy.scale_up, policy.scale_down):
        longest = max(longest, float(rules.stabilization_seconds))
        for rule in rules.policies:
            longest = max(longest, float(rule.period_seconds))
    return longest


def entry(
    observation: types.Observation, decision: types.Decision, *, at: float, applied: bool = True
) -> types.HistoryEntry:
    """The record of one decision; `applied=False` when writing the replicas failed (no change made)."""
    # A decision that keeps pods asked for past their deadline changes nothing.
    before = observation.replicas_in_force
    return types.HistoryEntry(
        at=at,
        recommended=decision.recommended,
        replicas_before=before,
        replicas_after=decision.replicas if applied else before,
    )


def trim(history: tuple[types.HistoryEntry, ...], *, now: float, keep_seconds: float) -> tuple[types.HistoryEntry, ...]:
    """Drop entries older than `keep_seconds`, except the newest of them (the coverage anchor)."""
    cutoff = now - keep_seconds
    first_kept = 0
    for index, item in enumerate(history):
        if item.at > cutoff:
            break
        first_kept = index
    else:
        # Every entry is old: the newest alone still proves coverage.
        return history[-1:]
    return history[first_kept:]


def append(
    history: tuple[types.HistoryEntry, ...], item: types.HistoryEntry, *, keep_seconds: float
) -> tuple[types.HistoryEntry, ...]:
    """A new history with `item` at the end, trimmed at `item.at`; entries must arrive in time order."""
    if history and item.at < history[-1].at:
        raise ValueError(f"history entry at {item.at} is older than the last one at {history[-1].at}")
    return trim((*history, item), now=item.at, keep_seconds=keep_seconds)
