"""The outer loop: adapt the planned headroom so that the measured attainment holds the goal.

Why: the targets come from a model (`slo_policy`: the capacity curve and a queueing bound on the
traffic's prompt mix). The model leaves out what it cannot know: how bursty arrivals are beyond Poisson,
how much one router pooling N replicas helps, how far the engine departs from its curve. The
measured service level (`service_level.measure`) says how it turned out, and this loop scales every
target by one factor `scale` (below 1: more headroom) until the attainment holds the goal.

The loop is pure: `update(state, measured, now=..., ...)` returns the next `State`. Its rules, and why:

- Dead time. New capacity is useful a startup after it is asked for, and a window later the
  measurement shows its effect. So after a change the loop waits `startup + window` before it judges
  again (anti-windup: it never piles corrections onto one it cannot have seen work yet).
- Asymmetric steps. Below the goal it takes headroom at once: `scale x DECREASE` (0.8). It gives some
  back only when every window of the last `RELAX_WINDOWS` windows (or the dead time, if longer), all
  after the last change, stayed above the goal by a margin (misses under half the allowed rate):
  a step of 1 / INCREASE, or PROBE when the worst of those windows missed under a tenth of the
  allowed rate (the model's bounds are per replica and conservative, so a pooled fleet is usually far
  above its goal at first). A step multiplies u / (1 - u), the modelled M/G/1 queueing delay at the
  planned utilization u, not u itself: at u = 0.05-0.3 that is +11 % or +50 % of u, but from u = 0.6 a
  PROBE reaches 0.69, not 0.9 (in the benchmark, steady fleets stepped from 0.76-0.79 to 0.87-0.9
  with every slot planned full, and lost a window: to 27 % within the SLO at worst). Judging the worst window of
  the horizon, not the last one, keeps calm minutes between recurring bursts from talking the loop
  out of the headroom the bursts need. Between goal and margin it holds (hysteresis), so a fleet
  right at its goal does not oscillate. A miss costs users; a surplus costs only cores.
- A ceiling. When a step up was followed by a shortfall, the scale it had reached is remembered for
  `CEILING_SECONDS`, and later steps up stop one `INCREASE` under it: the loop does not probe a level it
  has seen fail. (A shortfall at a level the loop did not raise, a startup transient or a first burst,
  sets no ceiling.)
- Bounds and anti-windup. `scale` stays in [MIN_SCALE, MAX_SCALE], and within the range where it still
  moves a target: the utilization is capped (`slo_policy.MAX_UTILIZATION`) and so is the slot share, so a
  scale past both caps changes nothing, and a correction from there would change nothing either (a fleet
  once sat at 0.9 utilization through two windows below its goal that way). The caller passes that range
  (`slo_policy.effective_scales`) and the scale is clamped into it before each decision.
- It does not fight `decide`'s stabilization and rate limits: it only moves the targets, slowly (at most
  one step per dead time), and `decide` turns the targets into replicas with its own windows and limits.
  While the decision is clamped at maxReplicas it does not take more headroom (more cannot be bought;
  the condition says so instead), and while replicas are starting it does not give headroom back.
- Fallback. Without histograms the model's targets apply unchanged (scale 1) and the state says so;
  with too few requests in the window to judge (`service_level.min_samples`), the last scale is kept.

Time constants (startup L, window W = 300 s): a shortfall is answered within one sync, the next
correction at the earliest after L + W (8 minutes at L = 180 s); giving headroom back needs the dead
time and then a whole window of good service per step of 11-25 % (at least 8 minutes at L = 180 s, 25
at L = 1200 s), so doubling the utilization takes half an hour to hours: slow by design.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from neuronfleet.autoscale import service_level

__all__ = [
    "CEILING_SECONDS",
    "DECREASE",
    "INCREASE",
    "MAX_SCALE",
    "MIN_SCALE",
    "PROBE",
    "RELAX_WINDOWS",
    "State",
    "initial",
    "update",
]

DECREASE = 0.8
"""Scale factor of one correction below the goal (20 % more headroom)."""

INCREASE = 0.9
"""One step back above the goal divides the scale by this (11 % less headroom)."""

MIN_SCALE = 0.25
"""Most headroom the loop may add: a quarter of the model's utilization."""

MAX_SCALE = 4.0
"""Least headroom: four times the model's utilization (still capped by `slo_policy.MAX_UTILIZATION`); the
model's per-replica queueing bounds can be that conservative for a large pooled fleet."""

RELAX_WINDOWS = 2
"""Windows (15 minutes) all comfortably above the goal, and at least the dead time, before headroom is
given back: longer than the recurrence of minute-scale bursts (4-8 minutes on the Azure code trace)."""

PROBE = 1.5
"""Step up when the worst window of the horizon missed under a tenth of the allowed rate: the model's
per-replica bounds can be 2-3x conservative for a pooled fleet, and the ceiling and the next window's
measurement catch an overshoot within a dead time."""

CEILING_SECONDS = 3600.0
"""How long the scale that missed the goal caps later steps back up."""


@dataclass(frozen=True)
class State:
    """What the loop remembers per fleet between ticks (plain data: the controller keeps it in memory)."""

    scale: float = 1.0  # factor on every derived target: below 1 more headroom, above 1 less
    source: str = "model"  # "model": scale untouched by measurements; "histograms": measured and adapted
    reason: str = "NoMeasurement"  # why the scale is what it is (status.serviceLevel.feedback)
    message: str = "no service level measured yet: the capacity model alone sizes the fleet"
    changed_at: float | None = None  # last change of `scale`
    recent: tuple[tuple[float, float], ...] = ()  # (time, attainment) of the windows measured lately
    ceiling: float | None = None  # scale a step up reached before the goal was missed
    ceiling_at: float | None = None  # when
    raised: bool = False  # the last change was a step up (a shortfall after it sets the ceiling)


def initial() -> State:
    """The state of a fleet the loop has not measured yet."""
    return State()


def update(
    state: State,
    measured: service_level.Measurement,
    *,
    now: float,
    goal: float,
    startup_seconds: float,
    at_max_replicas: bool = False,
    starting_replicas: int = 0,
    effective: tuple[float, float] | None = None,
    model_utilization: float | None = None,
) -> State:
    """The loop's state after one tick with this measurement.

    `effective`: the scales between which some target still moves (outside it the targets sit at
    their utilization and slot bounds); the scale is kept inside it, so that a correction always bites.
    """
    window = measured.window_seconds
    if measured.reason is service_level.Reason.HISTOGRAMS_MISSING:
        return dataclasses.replace(
            state,
            scale=1.0,
            source="model",
            reason=str(measured.reason),
            message=f"{measured.message}; targets from the model unchanged",
        )
    if not measured.measured or measured.attainment is None:
        return dataclasses.replace(
            state, reason=str(measured.reason), message=f"{measured.message}; keeping target scale {state.scale:.2f}"
        )
    lowest, highest = MIN_SCALE, MAX_SCALE
    if effective is not None:
        lowest, highest = max(MIN_SCALE, min(effective[0], MAX_SCALE)), min(MAX_SCALE, max(effective[1], MIN_SCALE))
        # Anti-windup: a scale past the bounds changes no target, so a step back from there would not either.
        state = dataclasses.replace(state, scale=min(highest, max(lowest, state.scale)))
    attainment = measured.attainment
    allowed = 1.0 - goal
    misses = 1.0 - attainment
    dead_time = startup_seconds + window
    horizon = max(RELAX_WINDOWS * window, dead_time)
    recent = (*((at, a) for at, a in state.recent if at > now - horizon + window), (now, attainment))
    state = dataclasses.replace(state, recent=recent)
    since = now if state.changed_at is None else now - state.changed_at
    settled = state.changed_at is None or since >= dead_time
    if misses > allowed:
        if at_max_replicas:
            return _hold(
                state, "AtMaxReplicas", f"{attainment:.2%} < {goal:.2%} at maxReplicas: no more headroom to buy"
            )
        if state.scale <= lowest:
            return _hold(state, "AtMinScale", f"{attainment:.2%} < {goal:.2%} with the most headroom allowed")
        if not settled:
            return _hold(state, "Settling", f"{attainment:.2%} < {goal:.2%}; the last change is not measurable yet")
        scale = max(lowest, state.scale * DECREASE)
        return State(
            scale=scale,
            source="histograms",
            reason="BelowGoal",
            message=f"{attainment:.2%} < goal {goal:.2%} over {window:.0f}s: targets x{scale:.2f} (more headroom)",
            changed_at=now,
            # Only a level reached by stepping up is known to be too hot; a shortfall at the model's own
            # level (a startup transient, a first burst) says nothing about where the edge is.
            ceiling=state.scale if state.raised else state.ceiling,
            ceiling_at=now if state.raised else state.ceiling_at,
            recent=recent,
        )
    worst = min(a for _, a in recent)
    worst_misses = 1.0 - worst
    if worst_misses > allowed / 2:
        return _hold(
            state,
            "NearGoal",
            f"{attainment:.2%}; worst window of the last {horizon:.0f}s {worst:.2%}, within the hysteresis band "
            f"of goal {goal:.2%}",
        )
    # Every window of the horizon above the margin, and the horizon wholly after the last change.
    relaxed = since >= horizon
    ceiling = state.ceiling if state.ceiling_at is not None and now - state.ceiling_at < CEILING_SECONDS else None
    limit = highest if ceiling is None else min(highest, ceiling * INCREASE)
    if relaxed and starting_replicas == 0 and state.scale < limit:
        step = PROBE if worst_misses <= allowed / 10 else 1.0 / INCREASE
        scale = min(limit, _step_up(state.scale, step, model_utilization))
        return State(
            scale=scale,
            source="histograms",
            reason="AboveGoal",
            message=f"every window above goal {goal:.2%} (worst {worst:.2%}): targets x{scale:.2f}",
            changed_at=now,
            ceiling=ceiling,
            ceiling_at=state.ceiling_at if ceiling is not None else None,
            raised=True,
            recent=recent,
        )
    return _hold(state, "AboveGoal", f"{attainment:.2%} above goal {goal:.2%}; waiting before giving headroom back")


def _step_up(scale: float, step: float, model_utilization: float | None) -> float:
    """The scale one step up: the planned utilization u moves so that u / (1 - u), the M/G/1 queueing
    delay in service times, grows by `step`, not u itself (near a full engine, +50 % of u overloads it)."""
    if not model_utilization or scale * model_utilization >= 1.0:
        return scale * step
    u = scale * model_utilization
    delay = step * u / (1.0 - u)
    return delay / (1.0 + delay) / model_utilization


def _hold(state: State, reason: str, message: str) -> State:
    return dataclasses.replace(
        state, source="histograms", reason=reason, message=f"{message} (targets x{state.scale:.2f})"
    )
