"""From a stated SLO to the autoscaling Policy, with no hand-set constant: the whole SLO path in one place.

Why: `spec.autoscaling.slo` says what users are promised; everything between that promise and
`decide`'s targets is derived here, per fleet, from what the operator knows and measures:

1. The capacity curve: the plan's prior (`neuron/capacity.prior`), corrected online by the fleet's own
   series (`capacity_fit`). It gives the SLO batch B*, the prefill speed and the engine-time weights
   (`slo_targets.derive`).
2. The planned utilization, from a queueing bound instead of a constant. A prompt waits for the engine
   ahead of it, and must be done within its TTFT budget: with prefill service times S (prompt tokens over
   the prefill speed, plus a step), the M/G/1 waiting time must exceed the slack t the budget leaves
   (T0 + p/kappa - S at the mean prompt) for at most the allowed miss rate (1 - goal). The largest such
   rho is the utilization (`queue_utilization`). The tail is computed from the Pollaczek-Khinchine
   formula (`queueing.mg1_waiting_tail`), not Kingman's heavy-traffic form, which overstates it 2.2-2.4x
   for prompts of similar length two service times out. Long prompts get more headroom than chat: on the
   8B profile as planned for a 10 tokens/s SLO (608-token chunks), about 0.43 for the Azure chat mix,
   0.22 for the code mix and 0.11 for 4-16k prompts (Kingman: 0.41, 0.21, 0.09).
3. The slot share: requests hold one of B* decode slots for their whole answer, so concurrency is sized
   like servers of an M/M/c queue: the largest load per slot whose Erlang-C probability of waiting is
   within 1 - goal at c = B* (`slot_share`): 0.63 at B* = 32 for a 99 % goal. The feedback may raise it
   up to the same bound over the whole fleet's N x B* slots (no router does better than one pool), never
   to every slot full.
4. The measured correction: `feedback.State.scale` multiplies both, as the measured attainment asks.

Both bounds start from one replica (c = B*, one M/G/1 server); a fleet of N replicas behind one router
queues less. Full pooling (M/G/N for the prefill queue) was measured and is far too optimistic: the
router picks the replica with the fewest outstanding requests, a count that decoding requests dominate
and a prefill hardly moves (the default then missed 99 % on 32 of 36 benchmark rows, steady Poisson
traffic included). What it does pool is modelled (`queueing.routed_wait_probability`: a replica busy with
a prefill counts one more than its decodes, decode counts spread like a Poisson law), which lifts long
prompts with short answers from 0.06 to about 0.2 and leaves chat, dozens of decodes per replica, where
it was. That holds for Poisson arrivals at the rate the fleet is sized for; the fleet grows only a
startup after a rise, so the pooled utilization is divided by the largest rise of the engine demand
within one reaction time over the last hour (`FleetState.rise`: a burst's height, a ramp's climb, a
steady fleet's few percent of noise), and never falls below one replica's own bound. Until one reaction
time has been seen the bound is one replica's. The prompt mix comes from the last
measured window (`service_level.Measurement.prompt_tokens_mean`/`_mean_square`); before any, a nominal
mix (`NOMINAL_TRAFFIC`).

The controller keeps one `FleetState` per fleet and calls `observe(...)` each interval with the answers
to `service_level.queries` and `capacity_fit.queries`, then `policy(...)` for the targets `decide` takes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neuronfleet.autoscale import capacity_fit, defaults, feedback, queueing, service_level, slo_targets, types
from neuronfleet.neuron.capacity import CapacityProfile, Prior

if TYPE_CHECKING:  # a type only: the pure core does not import the HTTP client
    from neuronfleet.autoscale.prometheus import QueryResult

__all__ = [
    "MAX_UTILIZATION",
    "MIN_UTILIZATION",
    "NOMINAL_TRAFFIC",
    "TRAFFIC_SECONDS",
    "Derivation",
    "FleetLoad",
    "FleetState",
    "Traffic",
    "derive",
    "effective_scales",
    "engine_replicas",
    "fleet_load",
    "observe",
    "policy",
    "queue_utilization",
    "slot_share",
    "start",
]

MIN_UTILIZATION = 0.05
"""Floor of the planned utilization: 20x headroom is the most the targets ever ask for."""

MAX_UTILIZATION = 0.9
"""Ceiling: a replica planned at its whole engine time has no room for the next request."""

TRAFFIC_SECONDS = 3600.0
"""Time constant over which measured windows update the prompt mix: a five-minute window between two
bursts holds a handful of prompts, and the headroom must not follow their sampling noise."""


@dataclass(frozen=True)
class Traffic:
    """The prompt mix the queueing bound is computed for: E[p] and E[p^2] in tokens."""

    prompt_tokens_mean: float
    prompt_tokens_mean_square: float
    requests: float = 0.0  # requests behind the estimate (decayed): how much it has seen


NOMINAL_TRAFFIC = Traffic(2048.0, 2.0 * 2048.0**2)
"""Before any measurement: 2048-token prompts with a squared coefficient of variation of 1 (as spread as
an exponential distribution), the capacity prior's nominal context (`capacity.NOMINAL_CONTEXT_TOKENS`)."""


@dataclass(frozen=True)
class FleetLoad:
    """The fleet's load (fleet sums), for what one pool of the fleet's slots can take (`derive`)."""

    running: float  # requests holding a decode slot
    prompt_tokens_per_second: float


def fleet_load(observation: types.Observation) -> FleetLoad | None:
    """The fleet's running requests and prompt tokens/s from an observation; None while either is unknown."""
    if observation.concurrency is None or observation.prompt_tokens_per_second is None:
        return None
    running = max(0.0, observation.concurrency - (observation.waiting or 0.0))
    return FleetLoad(running, max(0.0, observation.prompt_tokens_per_second))


def engine_replicas(load: FleetLoad | None, weights: types.LoadModel) -> float:
    """The fleet's engine time in replicas at full use (`decide`'s engine load, summed); 0 without a load."""
    if load is None or weights.available <= 0:
        return 0.0
    return max(0.0, weights.replicas(load.running, load.prompt_tokens_per_second))


def queue_utilization(
    *,
    slack_seconds: float,
    service_mean: float,
    service_mean_square: float,
    goal: float,
    engine_demand: float = 0.0,
    decoding: float = 0.0,
) -> float:
    """Largest rho whose waiting tail at the slack is within 1 - goal.

    The tail is one replica's M/G/1 (`queueing.mg1_waiting_tail`), thinned by the chance that the
    least-outstanding router sends the arrival to a busy replica at all (`queueing.routed_wait_probability`)
    instead of rho. At utilization rho the fleet has engine_demand / rho replicas (`engine_demand`: the
    fleet's engine time in replicas at full use) sharing `decoding` decoding requests; 0: one replica.
    """
    if service_mean <= 0 or service_mean_square <= 0:
        return MAX_UTILIZATION
    allowed = 1.0 - goal

    def tail(rho: float) -> float:
        waiting = queueing.mg1_waiting_tail(
            rho, wait_seconds=slack_seconds, service_mean=service_mean, service_mean_square=service_mean_square
        )
        if engine_demand <= 0:
            return waiting
        replicas = max(1.0, engine_demand / rho)
        routed = queueing.routed_wait_probability(rho, decoding_per_replica=decoding / replicas, replicas=replicas)
        return waiting * routed / rho

    lo, hi = 0.0, 1.0
    if tail(MAX_UTILIZATION) <= allowed:
        return MAX_UTILIZATION
    for _ in range(40):
        mid = (lo + hi) / 2
        if tail(mid) <= allowed:
            lo = mid
        else:
            hi = mid
    return max(MIN_UTILIZATION, lo)


def _pool_slots(slots: float) -> int:
    """`slots` rounded down to 6 significant bits (at most 3 % fewer: a lower cap, the safe side), so that
    `slot_share`'s cache answers a fleet whose load moves a little every tick."""
    whole = max(1, int(slots))
    drop = max(0, whole.bit_length() - 6)
    return (whole >> drop) << drop


@functools.lru_cache(maxsize=1024)
def slot_share(batch: int, goal: float) -> float:
    """Largest load per slot a / c with Erlang-C probability of waiting <= 1 - goal, c = `batch` slots."""
    c = max(1, batch)
    allowed = 1.0 - goal

    def waiting(a: float) -> float:
        erlang_b = 1.0
        for k in range(1, c + 1):
            erlang_b = a * erlang_b / (k + a * erlang_b)
        return c * erlang_b / (c - a * (1.0 - erlang_b))

    lo, hi = 0.0, float(c) * (1 - 1e-9)
    for _ in range(60):
        mid = (lo + hi) / 2
        if waiting(mid) <= allowed:
            lo = mid
        else:
            hi = mid
    return max(1.0 / c, lo / c)


@dataclass(frozen=True)
class Derivation:
    """The targets one SLO implies now, and every number behind them (for status and `neuronfleet plan`)."""

    derived: slo_targets.DerivedTargets
    curve: CapacityProfile
    model_utilization: float  # from the queueing bound
    model_slot_share: float  # from Erlang C
    scale: float  # the feedback's factor
    utilization: float  # engine-load target in force
    concurrency_share: float  # concurrency target / B* in force
    slot_cap: float = 1.0  # highest concurrency share: Erlang C over the whole fleet's slots
    pooled_rise: float | None = None  # the rise allowance the router's pooling was planned for (None: one replica)

    @property
    def targets(self) -> types.Targets:
        return self.derived.targets


def derive(
    slo: slo_targets.ServiceLevel,
    curve: CapacityProfile,
    *,
    goal: float = service_level.DEFAULT_GOAL,
    traffic: Traffic | None = None,
    scale: float = 1.0,
    utilization: float | None = None,
    load: FleetLoad | None = None,
    rise: float | None = None,
) -> Derivation:
    """Targets for `decide` on this curve; an explicit `utilization` (spec) is used as given, not scaled.

    `load` (the fleet's load) and `rise` (`FleetState.rise`: how far the load rose within one reaction
    time lately) let the router's pooling raise the utilization; without either, one replica's queue sizes it.

    Raises `slo_targets.SloUnreachable` when no fleet meets the SLO on this curve.
    """
    traffic = traffic or NOMINAL_TRAFFIC
    base = slo_targets.derive(slo, curve)  # validates the SLO and gives B* and the prefill speed
    speed = base.prefill_tokens_per_second
    step = curve.alpha
    mean = step + traffic.prompt_tokens_mean / speed
    mean_square = (
        step * step + 2.0 * step * traffic.prompt_tokens_mean / speed + traffic.prompt_tokens_mean_square / speed**2
    )
    kappa = slo.ttft_prompt_tokens_per_second
    slack = slo.ttft_seconds + (traffic.prompt_tokens_mean / kappa if kappa else 0.0) - mean
    slack = max(0.1 * slo.ttft_seconds, slack)
    demand = engine_replicas(load, base.load_model)
    pooled_rise = None
    queue = functools.partial(
        queue_utilization, slack_seconds=slack, service_mean=mean, service_mean_square=mean_square, goal=goal
    )
    model_u = queue()
    if demand > 0 and rise is not None:
        # The router pools the replicas' prefill queues (for Poisson arrivals at the rate now), but the
        # fleet cannot grow faster than a startup: plan the pooled utilization for the largest rise the
        # last hour showed within one, never with less headroom than one replica's queue alone.
        pooled = queue(engine_demand=demand, decoding=load.running if load is not None else 0.0)
        if pooled / rise > model_u:
            model_u, pooled_rise = pooled / rise, rise
    model_share = slot_share(base.batch, goal)
    if utilization is not None:
        planned_u, share, applied = utilization, model_share, 1.0
    else:
        applied = scale
        planned_u = min(MAX_UTILIZATION, max(MIN_UTILIZATION, model_u * scale))
        share = max(1.0 / max(1, base.batch), model_share * scale)
    # However the router spreads requests, N replicas' slots queue no less than one pool of N x B* slots,
    # so Erlang C over all of them caps the share the feedback may raise it to (1 without a load).
    replicas = demand / planned_u
    slot_cap = slot_share(_pool_slots(replicas * base.batch), goal) if replicas >= 1 else 1.0
    share = min(slot_cap, share)
    derived = slo_targets.derive(slo, curve, utilization=planned_u, slot_share=share)
    return Derivation(derived, curve, model_u, model_share, applied, planned_u, share, slot_cap, pooled_rise)


def effective_scales(
    slo: slo_targets.ServiceLevel,
    curve: CapacityProfile,
    *,
    goal: float,
    traffic: Traffic | None,
    load: FleetLoad | None = None,
) -> tuple[float, float] | None:
    """The feedback scales between which some target moves: below the low end the utilization and the
    slot share both sit at their floors, above the high end both at their caps. None if the SLO is
    unreachable on this curve (nothing is derived then)."""
    try:
        model = derive(slo, curve, goal=goal, traffic=traffic, load=load)
    except slo_targets.SloUnreachable:
        return None
    return _effective(model)


def _effective(model: Derivation) -> tuple[float, float]:
    u, share, batch = model.model_utilization, model.model_slot_share, max(1, model.derived.batch)
    low = min(MIN_UTILIZATION / u, (1.0 / batch) / share)
    high = max(MAX_UTILIZATION / u, model.slot_cap / share)
    return low, high


def policy(base: types.Policy, derivation: Derivation, *, explicit: types.Targets | None = None) -> types.Policy:
    """`base` (the spec's behaviour and bounds) with the derived targets; explicit spec targets win."""
    targets = derivation.targets
    if explicit is not None:
        targets = dataclasses.replace(
            targets,
            **{f.name: v for f in dataclasses.fields(explicit) if (v := getattr(explicit, f.name)) is not None},
        )
    return dataclasses.replace(base, targets=targets, load_model=derivation.derived.load_model)


@dataclass(frozen=True)
class FleetState:
    """Everything the SLO path remembers per fleet between ticks: the fit, the loop, the last measurement."""

    prior: Prior
    fit: capacity_fit.Fit
    feedback: feedback.State = dataclasses.field(default_factory=feedback.initial)
    traffic: Traffic | None = None
    measurement: service_level.Measurement | None = None
    load: FleetLoad | None = None  # the fleet's load at the last tick
    load_average: FleetLoad | None = None  # its average over `TRAFFIC_SECONDS`
    demand: tuple[tuple[float, float], ...] = ()  # (time, engine time in replicas) of recent ticks
    rises: tuple[tuple[float, float], ...] = ()  # (time, rise within one reaction time) over `TRAFFIC_SECONDS`

    @property
    def rise(self) -> float | None:
        """The largest rise of the fleet's engine demand within one reaction time over the last hour, as a
        factor over the level the fleet was held at; None until a reaction time has passed."""
        return max((r for _, r in self.rises), default=None)

    @property
    def pool_load(self) -> FleetLoad | None:
        """The load the fleet's slot pool is sized for: the lower of now and the average, so that a burst
        (more replicas, a larger pool) never raises the slot cap above the traffic's usual level."""
        if self.load is None or self.load_average is None:
            return None
        now, usual = self.load, self.load_average
        return FleetLoad(
            min(now.running, usual.running), min(now.prompt_tokens_per_second, usual.prompt_tokens_per_second)
        )

    def curve(self) -> CapacityProfile:
        """The capacity curve in force: the prior's limits with the fitted constants."""
        return capacity_fit.curve(self.fit, self.prior.profile)


def _traffic(
    known: Traffic | None, measured: service_level.Measurement, *, interval_seconds: float, window_seconds: float
) -> Traffic | None:
    """The prompt mix after this tick: a request-weighted average that forgets over `TRAFFIC_SECONDS`.

    Consecutive windows overlap, so a tick adds its window's requests times interval / window.
    """
    mean, square = measured.prompt_tokens_mean, measured.prompt_tokens_mean_square
    if not mean or not square or not measured.samples:
        return known
    added = measured.samples * min(1.0, interval_seconds / window_seconds)
    if known is None:
        return Traffic(mean, square, added)
    kept = known.requests * math.exp(-interval_seconds / TRAFFIC_SECONDS)
    total = kept + added
    return Traffic(
        (kept * known.prompt_tokens_mean + added * mean) / total,
        (kept * known.prompt_tokens_mean_square + added * square) / total,
        total,
    )


def start(prior: Prior) -> FleetState:
    """The state of a fleet the operator has just started to watch (or after a restart, or a new plan)."""
    return FleetState(prior=prior, fit=capacity_fit.start(prior))


def observe(
    state: FleetState,
    *,
    slo: slo_targets.ServiceLevel,
    service_level_results: Mapping[str, QueryResult | None],
    fit_results: Mapping[str, QueryResult | None],
    now: float,
    goal: float = service_level.DEFAULT_GOAL,
    startup_seconds: float,
    fit_window_seconds: float = 60.0,
    interval_seconds: float = 15.0,
    window_seconds: float = service_level.WINDOW_SECONDS,
    at_max_replicas: bool = False,
    starting_replicas: int = 0,
    load: FleetLoad | None = None,
    hold_seconds: float = defaults.SCALE_DOWN.stabilization_seconds,
) -> FleetState:
    """One tick: measure the service level, learn the curve, remember the load, run the feedback loop.

    `hold_seconds`: the scale-down stabilization window, over which `decide` holds the largest count it
    recommended (the level a rise is measured from, `_remember_demand`).
    """
    measured = service_level.measure(service_level_results, slo, goal=goal, window_seconds=window_seconds)
    samples = capacity_fit.observations(
        fit_results,
        window_seconds=fit_window_seconds,
        interval_seconds=interval_seconds,
        chunk=state.prior.profile.max_num_batched_tokens,
    )
    fit = capacity_fit.update(state.fit, samples, now=now)
    traffic = _traffic(state.traffic, measured, interval_seconds=interval_seconds, window_seconds=window_seconds)
    average = state.load_average
    if load is not None and average is None:
        average = load
    elif load is not None and average is not None:
        kept = math.exp(-interval_seconds / TRAFFIC_SECONDS)
        average = FleetLoad(
            kept * average.running + (1.0 - kept) * load.running,
            kept * average.prompt_tokens_per_second + (1.0 - kept) * load.prompt_tokens_per_second,
        )
    state = dataclasses.replace(
        state, fit=fit, traffic=traffic, measurement=measured, load=load or state.load, load_average=average
    )
    try:
        if load is not None:
            weights = slo_targets.derive(slo, state.curve()).load_model
            reaction = startup_seconds + interval_seconds
            state = _remember_demand(
                state, engine_replicas(load, weights), now=now, reaction_seconds=reaction, hold_seconds=hold_seconds
            )
        model = derive(slo, state.curve(), goal=goal, traffic=traffic, load=state.pool_load, rise=state.rise)
    except slo_targets.SloUnreachable:
        model = None
    loop = feedback.update(
        state.feedback,
        measured,
        now=now,
        goal=goal,
        startup_seconds=startup_seconds,
        at_max_replicas=at_max_replicas,
        starting_replicas=starting_replicas,
        effective=_effective(model) if model is not None else None,
        model_utilization=model.model_utilization if model is not None else None,
    )
    return dataclasses.replace(state, feedback=loop)


def _remember_demand(
    state: FleetState, demand: float, *, now: float, reaction_seconds: float, hold_seconds: float
) -> FleetState:
    """Record this tick's engine demand and the rise it shows: now over the most the fleet was sized for
    one reaction time ago (`decide` holds the largest recommendation of its scale-down window).

    Why: the pooled utilization holds Poisson arrivals at the rate the fleet was sized for; replicas
    asked for now serve a startup later. A rise within that time (a burst, a ramp, a drift) meets the
    fleet at its old size, so the pooled utilization is divided by the largest rise seen lately. Steady
    traffic rises by its counting noise only (a few percent over the maximum of ten minutes); recurring
    bursts and ramps by their height.
    """
    samples = (*((at, d) for at, d in state.demand if at >= now - reaction_seconds - hold_seconds), (now, demand))
    reference = [d for at, d in samples if at <= now - reaction_seconds]
    rises = tuple((at, r) for at, r in state.rises if at > now - TRAFFIC_SECONDS)
    if reference and max(reference) > 0:
        rises = (*rises, (now, max(1.0, demand / max(reference))))
    return dataclasses.replace(state, demand=samples, rises=rises)
