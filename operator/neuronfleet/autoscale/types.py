"""Plain data of the autoscaling decision: what it observes, what it is told, what it answers.

The decision `neuronfleet.autoscale.decide.decide(observation, policy, history, now)` is a pure
function over these types. The operator's timer and the fleet simulator both call it, so it
never reads a clock or does I/O: `now` and every sample time are passed in (unix seconds in the
operator, simulated seconds in the simulator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Decision",
    "HistoryEntry",
    "LoadModel",
    "Observation",
    "Policy",
    "Reason",
    "ScalingPolicy",
    "ScalingRules",
    "Targets",
]


@dataclass(frozen=True)
class Observation:
    """The fleet as Prometheus and the API server see it at one instant. None: not available."""

    tokens_per_second: float | None  # fleet sum of rate(vllm:generation_tokens_total[w])
    concurrency: float | None  # fleet sum of running + waiting requests
    waiting: float | None = None  # fleet sum of vllm:num_requests_waiting
    kv_cache_usage: float | None = None  # fleet mean of vllm:kv_cache_usage_perc, 0..1
    sampled_at: float | None = None  # time of the newest sample; None with no sample at all
    current_replicas: int = 0  # replicas asked of the child Deployment so far
    ready_replicas: int = 0  # serving: counted in the metrics above
    starting_replicas: int = 0  # requested, not ready yet (Neuron cold start: minutes)
    # Fleet targets whose last scrape failed (None: not measured). Then the fleet totals miss some
    # replicas, typically the busiest (scrapes time out under load): never scale down on that.
    failing_scrapes: int | None = None
    prompt_tokens_per_second: float | None = None  # fleet sum of rate(vllm:prompt_tokens_total[w])
    # The count asked for (the decision in force). It exceeds current_replicas when pods waited past
    # their placement deadline: not capacity, yet still asked for. None: current_replicas.
    asked_replicas: int | None = None
    # Fleet sum of rate(vllm:request_prompt_tokens_count[w]): requests finished per second (vLLM observes
    # that histogram once per finished request).
    completions_per_second: float | None = None
    # Fleet sum of deriv(running[w]) + deriv(waiting[w]): how fast requests pile up (arrivals - completions).
    concurrency_growth: float | None = None
    rate_window_seconds: float = 60.0  # the w of the two series above (their counting noise depends on it)

    @property
    def replicas_in_force(self) -> int:
        """What a hold keeps and a change starts from, so missing or stale metrics never delete a pod."""
        return self.current_replicas if self.asked_replicas is None else self.asked_replicas


@dataclass(frozen=True)
class Targets:
    """Per-replica targets; None disables that signal. Desired = max over enabled signals."""

    tokens_per_second: float | None = None
    concurrency: float | None = None
    waiting: float | None = None
    kv_cache_usage: float | None = None
    prompt_tokens_per_second: float | None = None  # prefill load: what prompt-heavy traffic saturates
    # Share of a replica's engine time the fleet's requests may use at the SLO's pace (0..1]; needs
    # `Policy.load_model`. Sizes on concurrency and prompt tokens/s together, as they share the steps.
    engine_load: float | None = None


@dataclass(frozen=True)
class LoadModel:
    """Engine seconds per second that one unit of demand costs a replica serving at the SLO's pace.

    From the step model `alpha + beta*batch + gamma*prefill_tokens`: a replica whose users get R tok/s
    runs R steps a second, so each concurrent request costs `R*beta`, each prompt token/s `gamma`, and
    the fixed step cost leaves `1 - R*alpha` of every second. One replica carries load `L` with
    `per_request*concurrency + per_prompt_token*prompt_tps <= available * L`
    (`neuronfleet.autoscale.slo_targets` derives it from an SLO and a capacity profile).
    """

    per_request: float  # R * beta
    per_prompt_token: float  # gamma
    available: float  # 1 - R * alpha

    def replicas(self, concurrency: float, prompt_tokens_per_second: float) -> float:
        """Replicas' worth of engine time this concurrency and prompt tokens/s need at the SLO's pace."""
        return (self.per_request * concurrency + self.per_prompt_token * prompt_tokens_per_second) / self.available


@dataclass(frozen=True)
class ScalingPolicy:
    """One HPA-style rate limit: at most `value` pods (or percent) per `period_seconds`."""

    type: str  # "Pods" | "Percent"
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction's behaviour, shaped like HPA's `behavior.scaleUp` / `behavior.scaleDown`."""

    stabilization_seconds: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: str = "Max"  # "Max" | "Min" | "Disabled"
    tolerance: float = 0.1


@dataclass(frozen=True)
class Policy:
    """The ModelDeployment's autoscaling spec, after defaulting, as plain data."""

    min_replicas: int
    max_replicas: int
    targets: Targets
    scale_up: ScalingRules
    scale_down: ScalingRules
    max_metric_age_seconds: float = 60.0  # older samples count as missing: hold
    expected_startup_seconds: float = 600.0  # time-to-ready of a new replica (cold start)
    # True: no further scale-up while replicas start (llm-d WVA, Dynamo), until the last scale-up is
    # older than expected_startup_seconds. False: only demand beyond the starting capacity scales up.
    hold_scale_up_while_starting: bool = False
    load_model: LoadModel | None = None  # weights of the `engine_load` signal


@dataclass(frozen=True)
class HistoryEntry:
    """One past decision: its raw recommendation (for stabilization) and the change it made."""

    at: float
    recommended: int  # the unstabilized recommendation at that time
    replicas_before: int
    replicas_after: int


class Reason(StrEnum):
    """Why a decision came out as it did (also the event reason on the ModelDeployment)."""

    # Scaled up because a signal is above target beyond the tolerance.
    SCALED_UP = "ScaledUp"
    # Scaled down after the scale-down stabilization window.
    SCALED_DOWN = "ScaledDown"
    # Signals inside the tolerance band: no change.
    WITHIN_TOLERANCE = "WithinTolerance"
    # A change was recommended but a stabilization window holds it back.
    STABILIZING = "Stabilizing"
    # Capacity already starting will absorb the demand: no further scale-up.
    WAITING_FOR_STARTING = "WaitingForStartingReplicas"
    # Metrics missing or stale: hold the current count, never fall to the minimum.
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    # Clamped to minReplicas / maxReplicas.
    LIMITED_MIN = "LimitedByMinReplicas"
    LIMITED_MAX = "LimitedByMaxReplicas"
    # Clamped by a scale-up or scale-down rate policy.
    RATE_LIMITED = "RateLimited"


@dataclass(frozen=True)
class Decision:
    """The answer: desired replicas, why, and the per-signal numbers behind it."""

    replicas: int
    reason: Reason
    message: str
    recommended: int  # before stabilization and rate limits (store it in HistoryEntry)
    limited: bool = False  # clamped at min/max
    per_signal: dict[str, float] = field(default_factory=dict)  # signal -> desired replicas
