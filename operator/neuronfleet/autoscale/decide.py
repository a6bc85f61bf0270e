"""The autoscaling decision: observation + policy + recent history -> desired replicas and why.

One pure function, shared by the operator's timer and the fleet simulator, so the simulator measures
exactly what production runs. It never reads a clock: `now` and sample times come in as arguments.

How a decision is made (HPA's algorithm, adapted to fleet-wide vLLM signals and Neuron cold starts):

1. Availability. No enabled signal, samples older than `policy.max_metric_age_seconds`, or every
   enabled signal missing -> hold the count in force (`Reason.METRICS_UNAVAILABLE`): the count asked
   for, which may exceed the capacity when pods wait for a node past their deadline. Prometheus being
   down must never shrink the fleet to `minReplicas`, nor delete pods that wait for a node.
2. Per-signal size. Sum signals (generated and prompt tokens/s, concurrency = running + waiting,
   waiting) are fleet totals
   scraped from the *ready* replicas only, so a signal needs `total / per-replica target` replicas.
   KV-cache usage is a mean over ready replicas: it needs `ready * usage / target` replicas. The derived
   `engine_load` signal prices concurrency and prompt tokens/s in engine seconds with
   `policy.load_model` (both compete for the same steps, so their needs add up rather than the larger
   winning) and needs `load / target utilization` replicas; it is missing when either input is. Each size
   is compared with `current_replicas`, which *includes* replicas still starting: capacity that is
   coming counts, so demand those replicas will absorb does not buy more of them (the starting-replicas
   guard, `Reason.WAITING_FOR_STARTING`). A signal inside the tolerance band keeps the current count.
   The largest size wins.
3. Partial data. If an enabled signal is missing while another is present, the present ones may scale
   up but never down (HPA's rule). Likewise while some replicas' scrapes fail (`failing_scrapes`):
   scrapes that time out under load make the fleet totals undercount exactly when the fleet is busiest.
4. Stabilization (HPA semantics over `history`): scale up to the *lowest* recommendation in the
   scale-up window, down to the *highest* in the scale-down window. After an operator restart the
   history is empty and says nothing about the window: scale-down is held until the history covers
   the whole scale-down window. Scale-up is never held for that reason.
5. Rate limits: HPA `Pods`/`Percent` policies per period, combined by `selectPolicy`, counted from the
   changes recorded in `history`.
6. Bounds: `minReplicas` / `maxReplicas` always win, even while metrics are unavailable.

Arrivals, not gauges (`_arrival_demand`): running + waiting counts a backlog as if it were steady load,
so a queue that builds while replicas start (and drains in seconds once they are ready) used to buy
replicas for it. With the completions and growth series (`Observation.completions_per_second`,
`concurrency_growth`), concurrency is what the arrival rate holds in the slots plus the backlog drained
within one startup, and prompt tokens/s is scaled to the arrivals likewise. Measured in the simulator
(`bench/autoscaler.py`): a flash crowd's cost fell 64-146 -> 39-42 NC-h and a diurnal ramp at 1200 s
startups 144 -> 74 NC-h, at the same attainment but for the flash crowd at 180 s (71.9 -> 65.6 %).
`Policy.hold_scale_up_while_starting` is the other answer (llm-d WVA, Dynamo): no scale-up while
replicas start, until the last scale-up is older than `expected_startup_seconds` (they may be stuck).

`history` must be in time order (oldest first); `neuronfleet.autoscale.history` builds and trims it.
"""

from __future__ import annotations

import dataclasses
import math

from neuronfleet.autoscale import types

__all__ = ["GROWTH_NOISE_SIGMAS", "SIGNALS", "decide"]

SIGNALS = (
    "tokens_per_second",
    "concurrency",
    "waiting",
    "kv_cache_usage",
    "prompt_tokens_per_second",
    "engine_load",
)
"""Signal names, as fields of `Targets` (and of `Observation`, except the derived `engine_load`)."""

GROWTH_NOISE_SIGMAS = 2.0
"""Growth of running + waiting within this many standard deviations of its counting noise is read as none."""

# ceil(3.0000000000000004) must be 3: float noise from rate() must not buy a replica.
_EPSILON = 1e-9


def decide(
    observation: types.Observation,
    policy: types.Policy,
    history: tuple[types.HistoryEntry, ...],
    now: float,
) -> types.Decision:
    """Desired replicas for the fleet now; store `Decision.recommended` in the history afterwards."""
    current = observation.current_replicas
    held = observation.replicas_in_force
    targets = policy.targets
    up_rules = policy.scale_up
    down_rules = policy.scale_down

    # 1. Availability.
    sampled_at = observation.sampled_at
    if sampled_at is None:
        return _hold(held, policy, "no metric sample at all")
    age = now - sampled_at
    if age > policy.max_metric_age_seconds:
        return _hold(held, policy, f"newest sample is {age:.0f}s old (max {policy.max_metric_age_seconds:.0f}s)")

    # 2. Per-signal sizes.
    per_signal: dict[str, float] = {}
    missing: list[str] = []
    demand = 0.0  # largest need, in replicas, before tolerance (for the starting-replicas guard)
    ready = observation.ready_replicas
    gauges = observation.concurrency
    observation = _arrival_demand(observation, policy.expected_startup_seconds)
    for name in SIGNALS:
        target = getattr(targets, name)
        if target is None:
            continue
        if target <= 0:
            raise ValueError(f"target {name} must be > 0, got {target}")
        value = _engine_load(observation, policy.load_model) if name == "engine_load" else getattr(observation, name)
        if value is None or value != value:  # None or NaN
            missing.append(name)
            continue
        # KV usage is a mean over ready replicas; if the API server has not seen them ready yet, use the
        # count asked. The other signals are fleet totals.
        need = (ready or current) * value / target if name == "kv_cache_usage" else value / target
        demand = max(demand, need)
        if current > 0 and current * (1.0 - down_rules.tolerance) <= need <= current * (1.0 + up_rules.tolerance):
            size = current
        else:
            size = max(0, math.ceil(need - _EPSILON))
        per_signal[name] = float(size)
    if not per_signal:
        if not missing:
            return _hold(held, policy, "no autoscaling signal is enabled")
        return _hold(held, policy, f"no sample for {', '.join(missing)}")
    recommended = int(max(per_signal.values()))

    # 3. Partial data never scales down.
    if observation.failing_scrapes:
        missing.append(f"{observation.failing_scrapes} replica(s) whose scrapes fail")
    partial_hold = bool(missing) and recommended < current
    if partial_hold:
        recommended = current
    starting_hold = (
        policy.hold_scale_up_while_starting
        and observation.starting_replicas > 0
        and recommended > current
        and _in_flight_for(history, now) < policy.expected_startup_seconds
    )

    # 4. Stabilization over the recorded recommendations.
    up_cutoff = now - up_rules.stabilization_seconds
    down_cutoff = now - down_rules.stabilization_seconds
    up_rec = down_rec = recommended
    oldest = math.inf
    for entry in history:
        at = entry.at
        if at < oldest:
            oldest = at
        if at > up_cutoff and entry.recommended < up_rec:
            up_rec = entry.recommended
        if at > down_cutoff and entry.recommended > down_rec:
            down_rec = entry.recommended
    if current > down_rec:
        stabilized = down_rec
    elif current < up_rec:
        stabilized = up_rec
    else:
        stabilized = current
    uncovered = False
    if stabilized < current and down_rules.stabilization_seconds > 0 and oldest > down_cutoff:
        # Restarted (or new): the part of the window before our oldest entry is unknown.
        stabilized = current
        uncovered = True

    if starting_hold and stabilized > current:
        stabilized = current

    # 5. Rate limits.
    target_replicas = stabilized
    rate_clamped = False
    if stabilized > current:
        limit = max(current, _up_limit(current, history, now, up_rules))
        if stabilized > limit:
            target_replicas, rate_clamped = limit, True
    elif stabilized < current:
        limit = min(current, _down_limit(current, history, now, down_rules))
        if stabilized < limit:
            target_replicas, rate_clamped = limit, True

    # 6. Bounds.
    lo, hi = policy.min_replicas, policy.max_replicas
    final = min(max(target_replicas, lo), hi)
    limited = final != target_replicas or (final == hi and recommended > hi) or (final == lo and recommended < lo)

    reason, why = _explain(
        current=current,
        final=final,
        target_replicas=target_replicas,
        recommended=recommended,
        stabilized=stabilized,
        limited=limited,
        rate_clamped=rate_clamped,
        partial_hold=partial_hold,
        uncovered=uncovered,
        starting_hold=starting_hold,
        absorbing=observation.starting_replicas > 0 and demand > ready * (1.0 + up_rules.tolerance),
        missing=missing,
        lo=lo,
        hi=hi,
    )
    sizes = ", ".join(f"{name} needs {int(size)}" for name, size in per_signal.items())
    if gauges is not None and observation.concurrency is not None and observation.concurrency != gauges:
        sizes += f"; concurrency {observation.concurrency:.1f} on arrivals, {gauges:.0f} running + waiting"
    return types.Decision(
        replicas=final,
        reason=reason,
        message=f"{current} -> {final} replicas: {why} ({sizes}; recommended {recommended})",
        recommended=recommended,
        limited=limited,
        per_signal=per_signal,
    )


def _arrival_demand(observation: types.Observation, horizon_seconds: float) -> types.Observation:
    """The observation with concurrency and prompt tokens/s as the arrivals and the backlog need them.

    Why: running + waiting counts a backlog as if it were steady load. Arrivals are what finishes plus
    what piles up (lambda = completions + d(running + waiting)/dt); at that rate the slots hold
    `lambda * hold` requests, `hold` being how long one holds a slot (Little's law over the running
    ones: running / completions). A backlog of W requests needs `W * hold / H` slots to be gone within H,
    and never more than W: H is one startup, because replicas ordered now only help with work still
    there when they are ready. The growth is a difference of two counts, each with Poisson noise
    (variance ~ completions * window each): only what exceeds `GROWTH_NOISE_SIGMAS` standard deviations
    of that noise counts, so a steady fleet's jitter buys no replica. Without a completions or growth
    series (or before anything finished) the observation is used as it is.
    """
    q, w = observation.concurrency, observation.waiting
    mu, growth = observation.completions_per_second, observation.concurrency_growth
    if q is None or w is None or mu is None or growth is None or not mu > 0 or growth != growth:
        return observation
    running = max(0.0, q - w)
    hold = running / mu
    noise = GROWTH_NOISE_SIGMAS * math.sqrt(2.0 * mu / observation.rate_window_seconds)
    growth = math.copysign(max(0.0, abs(growth) - noise), growth)
    horizon = max(horizon_seconds, observation.rate_window_seconds)
    concurrency = max(0.0, running + hold * growth + w * min(1.0, hold / horizon))
    prompt = observation.prompt_tokens_per_second
    if prompt is not None:
        # Prompt tokens/s counts what was prefilled: scale it to the arrivals, plus the backlog's prompts.
        prompt = max(0.0, prompt * (mu + growth + w / horizon) / mu)
    return dataclasses.replace(observation, concurrency=concurrency, prompt_tokens_per_second=prompt)


def _engine_load(observation: types.Observation, model: types.LoadModel | None) -> float | None:
    """Replicas' worth of engine time the fleet's concurrency and prompt tokens/s need at the SLO's pace."""
    if model is None:
        raise ValueError("the engine_load target needs Policy.load_model")
    concurrency = observation.concurrency
    prompt = observation.prompt_tokens_per_second
    if concurrency is None or prompt is None:
        return None
    return model.replicas(concurrency, prompt)


def _in_flight_for(history: tuple[types.HistoryEntry, ...], now: float) -> float:
    """Seconds since the last scale-up (or, without one in the history, since the history began)."""
    since = now
    for entry in history:
        if entry.replicas_after > entry.replicas_before or entry is history[0]:
            since = entry.at
    return now - since


def _hold(current: int, policy: types.Policy, why: str) -> types.Decision:
    """Keep the count in force without usable metrics; only the bounds may still move it."""
    final = min(max(current, policy.min_replicas), policy.max_replicas)
    if final > current:
        reason = types.Reason.LIMITED_MIN
    elif final < current:
        reason = types.Reason.LIMITED_MAX
    else:
        reason = types.Reason.METRICS_UNAVAILABLE
    return types.Decision(
        replicas=final,
        reason=reason,
        message=f"{current} -> {final} replicas: metrics unavailable, holding: {why}",
        recommended=current,
        limited=final != current,
    )


def _changes_in_period(history: tuple[types.HistoryEntry, ...], now: float, period: float) -> tuple[int, int]:
    """Replicas added and removed by the decisions inside the last `period` seconds."""
    cutoff = now - period
    added = removed = 0
    for entry in history:
        if entry.at > cutoff:
            delta = entry.replicas_after - entry.replicas_before
            if delta > 0:
                added += delta
            else:
                removed -= delta
    return added, removed


def _up_limit(current: int, history: tuple[types.HistoryEntry, ...], now: float, rules: types.ScalingRules) -> int:
    """Most replicas the scale-up policies allow now; the period starts where its changes began."""
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return 2**31 - 1
    proposals = []
    for rule in rules.policies:
        added, removed = _changes_in_period(history, now, rule.period_seconds)
        start = current - added + removed
        if rule.type == "Pods":
            proposals.append(start + rule.value)
        elif rule.type == "Percent":
            # Rounded up, or a small fleet could never grow by a percentage.
            proposals.append(math.ceil(start * (1 + rule.value / 100) - _EPSILON))
        else:
            raise ValueError(f"unknown scaling policy type {rule.type!r}")
    return min(proposals) if rules.select_policy == "Min" else max(proposals)


def _down_limit(current: int, history: tuple[types.HistoryEntry, ...], now: float, rules: types.ScalingRules) -> int:
    """Fewest replicas the scale-down policies allow now."""
    if rules.select_policy == "Disabled":
        return current
    if not rules.policies:
        return 0
    proposals = []
    for rule in rules.policies:
        added, removed = _changes_in_period(history, now, rule.period_seconds)
        start = current - added + removed
        if rule.type == "Pods":
            proposals.append(start - rule.value)
        elif rule.type == "Percent":
            proposals.append(math.floor(start * (1 - rule.value / 100) + _EPSILON))
        else:
            raise ValueError(f"unknown scaling policy type {rule.type!r}")
    # "Max" selects the policy allowing the biggest change, which for scale-down is the lowest count.
    return max(proposals) if rules.select_policy == "Min" else min(proposals)


def _explain(
    *,
    current: int,
    final: int,
    target_replicas: int,
    recommended: int,
    stabilized: int,
    limited: bool,
    rate_clamped: bool,
    partial_hold: bool,
    uncovered: bool,
    starting_hold: bool,
    absorbing: bool,
    missing: list[str],
    lo: int,
    hi: int,
) -> tuple[types.Reason, str]:
    """The binding constraint, as a Reason plus a short human explanation."""
    reason = types.Reason
    if final != target_replicas:
        if final == hi:
            return reason.LIMITED_MAX, f"clamped to maxReplicas {hi}"
        return reason.LIMITED_MIN, f"clamped to minReplicas {lo}"
    if rate_clamped:
        direction = "scale-up" if stabilized > current else "scale-down"
        return reason.RATE_LIMITED, f"{direction} to {stabilized} limited by the {direction} policies"
    if final > current:
        return reason.SCALED_UP, "demand above target"
    if final < current:
        return reason.SCALED_DOWN, "demand below target for the whole stabilization window"
    if limited:
        if recommended > hi:
            return reason.LIMITED_MAX, f"at maxReplicas {hi}"
        return reason.LIMITED_MIN, f"at minReplicas {lo}"
    if starting_hold:
        return reason.WAITING_FOR_STARTING, "scale-up held while replicas start (holdScaleUpWhileStarting)"
    if absorbing and recommended == current:
        return reason.WAITING_FOR_STARTING, "replicas still starting will absorb the demand"
    if partial_hold:
        return reason.METRICS_UNAVAILABLE, f"no scale-down on partial data: no sample for {', '.join(missing)}"
    if uncovered:
        return reason.STABILIZING, "scale-down held: the decision history does not cover the window yet"
    if recommended != current:
        return reason.STABILIZING, "held by the stabilization window"
    return reason.WITHIN_TOLERANCE, "within tolerance"
