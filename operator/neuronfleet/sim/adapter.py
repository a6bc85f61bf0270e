"""Runs neuronfleet's own decision function, `neuronfleet.autoscale.decide.decide`, in the simulator.

The point of the simulator is to measure what production runs, so this adapter only does what
the operator's timer does around `decide`: build an `Observation` from the newest Prometheus
samples (fleet sums over ready replicas, tokens/s as `sum(rate(...[1m]))`), keep the history
tuple with `neuronfleet.autoscale.history`, and apply the Decision's replica count.
"""

from __future__ import annotations

import dataclasses

from neuronfleet.autoscale import decide as decide_module
from neuronfleet.autoscale import defaults, history, types
from neuronfleet.sim.observe import FleetView, last_sum, sum_rate
from neuronfleet.sim.policies import slo_batch
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.slo import Slo

__all__ = ["PROMPT_SIGNAL", "RATE_WINDOW_SECONDS", "NeuronfleetPolicy", "observation", "simulated_policy"]

RATE_WINDOW_SECONDS = 60.0

# The benchmark's main lesson for prefill-heavy traffic is a prompt-token signal
# (rate of vllm:prompt_tokens_total). Filled in as soon as the decision types carry it.
PROMPT_SIGNAL = "prompt_tokens_per_second"
_HAS_PROMPT_SIGNAL = PROMPT_SIGNAL in {f.name for f in dataclasses.fields(types.Observation)} and PROMPT_SIGNAL in {
    f.name for f in dataclasses.fields(types.Targets)
}


def simulated_policy(
    profile: EngineProfile,
    slo: Slo,
    *,
    startup_seconds: float,
    target_scale: float = 1.0,
    min_replicas: int = 1,
    max_replicas: int = 64,
) -> types.Policy:
    """The Policy a user of this profile would write, with neuronfleet's default behaviour.

    Concurrency target: three quarters of the largest batch that still gives each user the SLO's
    token rate (the profile's capacity curve), leaving room for requests that arrive while a
    replica starts.
    """
    batch = slo_batch(profile, slo)
    targets = types.Targets(concurrency=0.75 * batch * target_scale)
    if _HAS_PROMPT_SIGNAL:
        # A third of the replica's pure prefill speed: prefill shares the steps with decodes.
        targets = dataclasses.replace(targets, **{PROMPT_SIGNAL: target_scale / profile.gamma / 3.0})
    return types.Policy(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        targets=targets,
        scale_up=defaults.SCALE_UP,
        scale_down=defaults.SCALE_DOWN,
        max_metric_age_seconds=defaults.MAX_METRIC_AGE_SECONDS,
        expected_startup_seconds=startup_seconds,
    )


def observation(view: FleetView, now: float) -> types.Observation:
    """The Observation the operator would build from Prometheus and the API server now."""
    newest = view.scrapes[-1] if view.scrapes else None
    kv = None
    if newest is not None and newest.replicas:
        kv = sum(s.kv_cache_usage for s in newest.replicas.values()) / len(newest.replicas)
    extra = {}
    if _HAS_PROMPT_SIGNAL:
        extra[PROMPT_SIGNAL] = sum_rate(view.scrapes, now, RATE_WINDOW_SECONDS, "prompt_tokens")
    return types.Observation(
        **extra,
        tokens_per_second=sum_rate(view.scrapes, now, RATE_WINDOW_SECONDS, "generation_tokens"),
        concurrency=last_sum(view.scrapes, ("running", "waiting")),
        waiting=last_sum(view.scrapes, ("waiting",)),
        kv_cache_usage=kv,
        sampled_at=None if newest is None else newest.at,
        current_replicas=view.current_replicas,
        ready_replicas=view.ready_replicas,
        starting_replicas=view.starting_replicas,
    )


class NeuronfleetPolicy:
    """neuronfleet's autoscaler, synced every 15 s like the operator's timer."""

    sync_seconds = defaults.SYNC_PERIOD_SECONDS
    scrape_seconds = 15.0
    scrape_kv = True

    def __init__(
        self,
        profile: EngineProfile,
        slo: Slo,
        *,
        startup_seconds: float,
        target_scale: float | None = None,
        max_replicas: int = 64,
        policy: types.Policy | None = None,
    ) -> None:
        scale = 1.0 if target_scale is None else target_scale
        self.name = "neuronfleet" if target_scale is None else f"neuronfleet@{scale:g}"
        self.policy = policy or simulated_policy(
            profile, slo, startup_seconds=startup_seconds, target_scale=scale, max_replicas=max_replicas
        )
        self.keep_seconds = history.horizon(self.policy)
        self.history: tuple[types.HistoryEntry, ...] = ()
        self.last: types.Decision | None = None

    def desired(self, view: FleetView, now: float) -> int:
        """One operator sync: observe, decide, remember."""
        seen = observation(view, now)
        decision = decide_module.decide(seen, self.policy, self.history, now)
        self.history = history.append(
            self.history, history.entry(seen, decision, at=now), keep_seconds=self.keep_seconds
        )
        self.last = decision
        return decision.replicas
