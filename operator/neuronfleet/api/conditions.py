"""The condition vocabulary of ModelDeployment status, declared once, and the pure upsert.

Condition types follow the Kubernetes shape (type, status, reason, message,
lastTransitionTime, observedGeneration). Each member documents when it is True, its False
reasons and who sets it, so the controller, the Argo CD health check and the alerts agree.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableSequence
from enum import StrEnum
from typing import Any

__all__ = ["ConditionStatus", "ConditionType", "Reason", "find_condition", "is_true", "set_condition"]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    """Condition types on `status.conditions` (a list keyed by `type`)."""

    # True when every desired replica is ready and updated for the current generation.
    # False reasons: RolloutInProgress, ReplicasNotReady, PlanFailed (nothing rendered yet).
    # Set by the reconcile handler and the child-Deployment watch. Argo CD's Healthy needs it.
    READY = "Ready"
    # True while the child Deployment rolls out a new template or changes its replica count.
    # Reasons: RolloutInProgress, Scaling; False: RolloutComplete.
    PROGRESSING = "Progressing"
    # True when the spec cannot be served as written (PlanFailed) or a child cannot be applied
    # (ApplyFailed). Running replicas are left untouched while Degraded. Cleared by a fixed spec.
    DEGRADED = "Degraded"
    # True when built-in autoscaling is on and computing decisions; False: AutoscalingDisabled
    # or MetricsUnavailable (holding the current count).
    SCALING_ACTIVE = "ScalingActive"
    # True when the decision was clamped at minReplicas or maxReplicas (LimitedByMinReplicas,
    # LimitedByMaxReplicas); False: WithinBounds.
    SCALING_LIMITED = "ScalingLimited"
    # True when Prometheus answered with fresh samples for the enabled signals.
    # False reasons: PrometheusUnreachable, NoSamples, StaleSamples.
    METRICS_AVAILABLE = "MetricsAvailable"
    # True when compiled Neuron artifacts for the current artifact key are present (ArtifactsReady):
    # the key's compile Job (policy precompile) or marker check (policy require) succeeded.
    # False reasons: Compiling, CompileFailed (also Degraded), WaitingForArtifacts. Absent with
    # policy compileOnStart (replicas compile themselves). Set by the reconcile pass
    # (controller/artifacts.py); while False, the Deployment keeps its previous template.
    COMPILED_ARTIFACTS_READY = "CompiledArtifactsReady"
    # True when the share of requests within spec.autoscaling.slo, measured from vLLM's latency
    # histograms over the last window (status.serviceLevel), reaches the goal (slo.attainment, default
    # 0.99): AttainmentMet. False: AttainmentBelowGoal. Unknown while it cannot be judged:
    # TooFewSamples (fewer requests in the window than the goal needs), HistogramsMissing (no
    # histogram series for the fleet), MetricsUnavailable (Prometheus did not answer). Absent without
    # an SLO. Set by the autoscaler's pass from `autoscale.service_level.condition`; informational: it
    # never gates Ready, and the autoscaler's feedback (autoscale/feedback.py) acts on the same
    # measurement. Events on each status flip: Normal ServiceLevelMet / Warning ServiceLevelMissed.
    SERVICE_LEVEL_MET = "ServiceLevelMet"


class Reason(StrEnum):
    """CamelCase reasons used in conditions and events."""

    PLANNED = "Planned"
    PLAN_FAILED = "PlanFailed"
    APPLY_FAILED = "ApplyFailed"
    RECONCILED = "Reconciled"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_COMPLETE = "RolloutComplete"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    ALL_REPLICAS_READY = "AllReplicasReady"
    SCALING = "Scaling"
    AUTOSCALING_DISABLED = "AutoscalingDisabled"
    AUTOSCALING_ACTIVE = "AutoscalingActive"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    METRICS_FRESH = "MetricsFresh"
    WITHIN_BOUNDS = "WithinBounds"
    LIMITED_BY_MIN = "LimitedByMinReplicas"
    LIMITED_BY_MAX = "LimitedByMaxReplicas"
    CHILD_REPAIRED = "ChildRepaired"
    AS_EXPECTED = "AsExpected"
    # Compiled artifacts (controller/artifacts.py): a compile Job runs, succeeded or failed; policy
    # require waits for another party's artifacts.
    COMPILING = "Compiling"
    ARTIFACTS_READY = "ArtifactsReady"
    COMPILE_FAILED = "CompileFailed"
    WAITING_FOR_ARTIFACTS = "WaitingForArtifacts"
    # Measured service level (ServiceLevelMet): at or above the goal, below it, or not judged yet
    # (TooFewSamples, HistogramsMissing; MetricsUnavailable when Prometheus did not answer).
    ATTAINMENT_MET = "AttainmentMet"
    ATTAINMENT_BELOW_GOAL = "AttainmentBelowGoal"
    TOO_FEW_SAMPLES = "TooFewSamples"
    HISTOGRAMS_MISSING = "HistogramsMissing"
    # Events on ServiceLevelMet flips.
    SERVICE_LEVEL_MET = "ServiceLevelMet"
    SERVICE_LEVEL_MISSED = "ServiceLevelMissed"


def find_condition(conditions: list[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    for cond in conditions or ():
        if cond.get("type") == type_:
            return cond
    return None


def is_true(conditions: list[Mapping[str, Any]] | None, type_: str) -> bool:
    cond = find_condition(conditions, type_)
    return bool(cond) and cond.get("status") == ConditionStatus.TRUE


def set_condition(
    conditions: MutableSequence[dict[str, Any]],
    *,
    type_: str,
    status: str,
    reason: str,
    message: str,
    observed_generation: int | None,
    now: str,
) -> bool:
    """Upsert a condition by type, like apimachinery's SetStatusCondition; return whether it changed.

    `lastTransitionTime` moves only when `status` flips, so dashboards show how long a state has
    held; reason/message/observedGeneration updates do not reset it.
    """
    new = {
        "type": str(type_),
        "status": str(status),
        "reason": str(reason),
        "message": message,
        "observedGeneration": observed_generation,
    }
    for i, cond in enumerate(conditions):
        if cond.get("type") != new["type"]:
            continue
        transition = cond.get("lastTransitionTime") if cond.get("status") == new["status"] else now
        merged = {**new, "lastTransitionTime": transition or now}
        if merged == {k: cond.get(k) for k in merged}:
            return False
        conditions[i] = merged
        return True
    conditions.append({**new, "lastTransitionTime": now})
    return True
