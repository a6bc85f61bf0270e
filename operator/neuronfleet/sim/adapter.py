"""Runs neuronfleet's own decision step, `neuronfleet.autoscale.step.step`, in the simulator.

The point of the simulator is to measure what production runs, so this adapter only does what
the operator's loop does around the pure functions: build an `Observation` from the newest Prometheus
samples (fleet sums over ready replicas, tokens/s as `sum(rate(...[1m]))`), keep the history
tuple with `neuronfleet.autoscale.history`, and apply the Decision's replica count.

With an SLO (the default variant "slo") it also runs the measured SLO path the controller runs
(`neuronfleet.autoscale.slo_policy`): every sync it asks the simulator's Prometheus
(`sim.answers`) the service-level and capacity-fit queries, hands the answers to
`slo_policy.observe` (service level, online fit, feedback loop) and derives the targets with
`slo_policy.derive` and `slo_policy.policy` before `step`: the same functions, on the same kind of
answers, in the same order.
"""

from __future__ import annotations

import dataclasses

from neuronfleet.autoscale import defaults, history, slo_policy, slo_targets, types
from neuronfleet.autoscale import service_level as measured
from neuronfleet.autoscale import step as step_module
from neuronfleet.neuron import capacity, planner
from neuronfleet.sim import answers, profiles
from neuronfleet.sim.observe import FleetView, last_sum, sum_rate, sum_slope
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.slo import Slo

__all__ = [
    "HOLD_SECONDS",
    "MEASURED",
    "RATE_WINDOW_SECONDS",
    "SLO_GOAL",
    "VARIANTS",
    "NeuronfleetPolicy",
    "deployed_profile",
    "observation",
    "service_level",
    "simulated_policy",
]

RATE_WINDOW_SECONDS = 60.0

VARIANTS = ("slo", "open-loop", "v0", "hold", "roofline")
"""Target sets the benchmark compares, each a spec a user could write:
- "slo": `spec.autoscaling.slo` with the benchmark's SLO and nothing else, as the operator runs it now:
  targets from the capacity curve (prior + online fit), a queueing bound for the utilization, Erlang C for
  the slot share, corrected by the measured attainment (`neuronfleet.autoscale.slo_policy`).
- "open-loop": the SLO path before measurement: targets derived on the profile at the fixed default
  utilization 0.5 and slot share 0.75 (`slo_targets.derive`), never corrected.
- "v0": the explicit targets used before SLO derivation: concurrency 3/4 of the SLO batch and prompt
  tokens/s a third of the pure prefill speed (`metrics.concurrencyPerReplica`, `promptTokensPerSecondPerReplica`).
- "hold": "slo" with a scale-down window of `HOLD_SECONDS`: a burst floor. A replica stays while any
  recommendation of the last hour wanted it, so capacity sized for a burst is there for the next one
  (bursts shorter than a startup cannot be met by reacting).
- "roofline": "slo" starting from the roofline prior of the profile's plan instead of its calibration,
  as an uncalibrated shape would: what the online fit has to make up.
"""

MEASURED = ("slo", "hold", "roofline")
"""Variants that run the measured SLO path (service level, fit, feedback)."""

SLO_GOAL = measured.DEFAULT_GOAL
"""Attainment goal of the simulated spec (spec.autoscaling.slo.attainment left at its default)."""

HOLD_SECONDS = 3600
"""Scale-down window of the "hold" variant (`behavior.scaleDown.stabilizationWindowSeconds`)."""


def deployed_profile(profile: EngineProfile, slo: Slo | None) -> EngineProfile:
    """The engine the operator deploys for this shape: the planner's serving options on the profile.

    With an SLO in the spec the planner cuts the chunked-prefill budget (`--max-num-batched-tokens`)
    so prefill chunks cannot stall decodes past the per-user rate; the simulated replicas then run
    with that budget, exactly as the rendered pods would. A derived profile (`sim.profiles`) is the
    roofline of its plan re-planned for the SLO. Without an SLO, or for a profile that is neither
    (a test's hand-made engine), the profile is unchanged.
    """
    if slo is not None and (found := profiles.derived(profile.name)) is not None:
        return found.deployed(slo.min_tokens_per_second)  # a derived shape: its plan re-planned for the SLO
    if slo is None or capacity.find(profile.model, profile.instance_type, profile.tensor_parallel_size) is None:
        return profile
    request = capacity.plan_request(profile, slo_tokens_per_second=slo.min_tokens_per_second)
    planned = capacity.for_plan(planner.plan(request))
    if planned is None or planned.name != profile.name:
        return profile
    return planned


def service_level(slo: Slo) -> slo_targets.ServiceLevel:
    """The simulator's scoring SLO as the service level a user would put in spec.autoscaling.slo."""
    kappa = slo.ttft_tokens_per_second
    return slo_targets.ServiceLevel(
        per_user_tokens_per_second=slo.min_tokens_per_second,
        ttft_seconds=slo.ttft_base,
        ttft_prompt_tokens_per_second=kappa if 0 < kappa < float("inf") else None,
    )


def simulated_policy(
    profile: EngineProfile,
    slo: Slo,
    *,
    startup_seconds: float,
    target_scale: float = 1.0,
    min_replicas: int = 1,
    max_replicas: int = 64,
    variant: str = "slo",
) -> types.Policy:
    """The Policy the operator would run for a spec of this variant, with every target times `target_scale`.

    `target_scale` is the benchmark's sweep knob: below 1 buys headroom, above 1 runs replicas hotter.
    """
    if variant in MEASURED:
        derived = slo_policy.derive(service_level(slo), profile).derived
    else:
        derived = slo_targets.derive(service_level(slo), profile)
    scale_down = defaults.SCALE_DOWN
    load_model: types.LoadModel | None = derived.load_model
    if variant in ("slo", "open-loop", "hold", "roofline"):
        targets = derived.targets
        if variant == "hold":
            scale_down = dataclasses.replace(scale_down, stabilization_seconds=HOLD_SECONDS)
    elif variant == "v0":
        targets = types.Targets(concurrency=0.75 * derived.batch, prompt_tokens_per_second=1.0 / profile.gamma / 3.0)
        load_model = None
    else:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    scaled = {f.name: v * target_scale for f in dataclasses.fields(targets) if (v := getattr(targets, f.name))}
    return types.Policy(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        targets=types.Targets(**scaled),
        scale_up=defaults.SCALE_UP,
        scale_down=scale_down,
        max_metric_age_seconds=defaults.MAX_METRIC_AGE_SECONDS,
        expected_startup_seconds=startup_seconds,
        load_model=load_model,
    )


def observation(view: FleetView, now: float) -> types.Observation:
    """The Observation the operator would build from Prometheus and the API server now."""
    newest = view.scrapes[-1] if view.scrapes else None
    kv = None
    if newest is not None and newest.replicas:
        kv = sum(s.kv_cache_usage for s in newest.replicas.values()) / len(newest.replicas)
    return types.Observation(
        prompt_tokens_per_second=sum_rate(view.scrapes, now, RATE_WINDOW_SECONDS, "prompt_tokens"),
        tokens_per_second=sum_rate(view.scrapes, now, RATE_WINDOW_SECONDS, "generation_tokens"),
        concurrency=last_sum(view.scrapes, ("running", "waiting")),
        waiting=last_sum(view.scrapes, ("waiting",)),
        completions_per_second=sum_rate(view.scrapes, now, RATE_WINDOW_SECONDS, "requests_finished"),
        concurrency_growth=sum_slope(view.scrapes, now, RATE_WINDOW_SECONDS, ("running", "waiting")),
        rate_window_seconds=RATE_WINDOW_SECONDS,
        kv_cache_usage=kv,
        sampled_at=None if newest is None else newest.at,
        current_replicas=view.current_replicas,
        ready_replicas=view.ready_replicas,
        starting_replicas=view.starting_replicas,
    )


def _prior(profile: EngineProfile, variant: str) -> capacity.Prior:
    """What the operator's SLO path starts from for this shape: its calibration, or (variant "roofline")
    the roofline of the plan a user would get for it; a derived shape's roofline in any case."""
    if variant == "roofline" and capacity.find(profile.model, profile.instance_type, profile.tensor_parallel_size):
        plan = planner.plan(capacity.plan_request(profile, max_num_batched_tokens=profile.max_num_batched_tokens))
        return capacity.Prior(capacity.roofline(plan), "roofline", capacity.ROOFLINE_UNCERTAINTY)
    if profiles.is_derived(profile):
        # The operator's prior for an uncalibrated plan is that plan's roofline, which is what the derived
        # engine is: the prior's curve is right, and the operator still holds it with a roofline's doubt.
        return capacity.Prior(profile, "roofline", capacity.ROOFLINE_UNCERTAINTY)
    return capacity.Prior(profile, "calibrated", capacity.CALIBRATED_UNCERTAINTY)


class NeuronfleetPolicy:
    """neuronfleet's autoscaler, synced every 15 s like the operator's timer."""

    sync_seconds = defaults.SYNC_PERIOD_SECONDS
    scrape_seconds = 15.0
    scrape_kv = True
    scrape_histograms = False

    def __init__(
        self,
        profile: EngineProfile,
        slo: Slo,
        *,
        startup_seconds: float,
        target_scale: float | None = None,
        max_replicas: int = 64,
        policy: types.Policy | None = None,
        variant: str = "slo",
    ) -> None:
        scale = 1.0 if target_scale is None else target_scale
        base = "neuronfleet" if variant == "slo" else f"neuronfleet-{variant}"
        self.name = base if target_scale is None else f"{base}@{scale:g}"
        self.policy = policy or simulated_policy(
            profile,
            slo,
            startup_seconds=startup_seconds,
            target_scale=scale,
            max_replicas=max_replicas,
            variant=variant,
        )
        self.keep_seconds = history.horizon(self.policy)
        self.history: tuple[types.HistoryEntry, ...] = ()
        self.last: types.Decision | None = None
        self.measured = policy is None and variant in MEASURED
        self.scrape_histograms = self.measured
        self.slo = service_level(slo)
        self.goal = SLO_GOAL
        self.startup_seconds = startup_seconds
        self.target_scale = scale
        self.state = slo_policy.start(_prior(profile, variant)) if self.measured else None
        self.trail: list[tuple[float, float, float, str]] = []  # (time, scale, utilization, feedback reason)

    def desired(self, view: FleetView, now: float) -> int:
        """One operator sync: (measure, fit, feed back, derive targets,) observe, decide, remember."""
        seen = observation(view, now)
        policy = self.policy
        if self.state is not None:
            self.state = slo_policy.observe(
                self.state,
                slo=self.slo,
                service_level_results=answers.service_level_results(view.scrapes, now),
                fit_results=answers.capacity_fit_results(view.scrapes, now, window_seconds=RATE_WINDOW_SECONDS),
                now=now,
                goal=self.goal,
                startup_seconds=self.startup_seconds,
                fit_window_seconds=RATE_WINDOW_SECONDS,
                interval_seconds=self.sync_seconds,
                at_max_replicas=self.last is not None and self.last.replicas >= self.policy.max_replicas,
                starting_replicas=view.starting_replicas,
                load=slo_policy.fleet_load(seen),
                hold_seconds=self.policy.scale_down.stabilization_seconds,
            )
            derivation = slo_policy.derive(
                self.slo,
                self.state.curve(),
                goal=self.goal,
                traffic=self.state.traffic,
                scale=self.state.feedback.scale * self.target_scale,
                load=self.state.pool_load,
                rise=self.state.rise,
            )
            policy = slo_policy.policy(self.policy, derivation)
            self.trail.append((now, derivation.scale, derivation.utilization, self.state.feedback.reason))
        decision, self.history = step_module.step(seen, policy, self.history, now)
        self.last = decision
        return decision.replicas
