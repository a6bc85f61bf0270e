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
    # False reasons: RolloutInProgress, ReplicasNotReady, PlanFailed (nothing rendered yet),
    # WaitingForArtifacts. Set by every reconcile pass (controller/status.py, the only writer of
    # status). Argo CD's Healthy needs it.
    READY = "Ready"
    # True while the child Deployment rolls out a new template or changes its replica count.
    # Reasons: RolloutInProgress, Scaling; False: RolloutComplete.
    PROGRESSING = "Progressing"
    # True when the spec cannot be served as written (PlanFailed), a child cannot be applied
    # (ApplyFailed: someone else's object on its name, or the API server refused the write), the
    # cluster does not serve a kind the spec needs (KindNotServed; LeaderWorkerSetMissing and
    # ResourceClaimTemplateMissing name the two kinds only some plans need, so single-node
    # device-plugin fleets never depend on them), or the compile of the artifacts failed
    # (CompileFailed). The first of those is the reason; the message lists all. Running replicas
    # are left untouched while Degraded. False: AsExpected.
    DEGRADED = "Degraded"
    # True when built-in autoscaling is on and computing decisions; False: AutoscalingDisabled
    # or MetricsUnavailable (holding the current count). From the autoscaler's last decision, which
    # the reconcile pass applies and reports (the autoscaler itself writes nothing).
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
    # True when every optional child the spec asks for (a PodMonitor) is applied (AsExpected).
    # False: KindNotServed, the cluster lacks the kind (no Prometheus Operator CRDs); the child is
    # skipped and nothing else is held back. Absent when the spec asks for no optional child.
    OPTIONAL_CHILDREN_APPLIED = "OptionalChildrenApplied"
    # True when every replica asked for is placed on a node or still within its wait for one:
    # AllReplicasPlaced, WaitingForNodes (some wait for a node, within the deadline), or FallbackInUse
    # when fallback variants serve what the primary cannot place.
    # False: InsufficientNeuronCapacity, replicas stay unschedulable past the deadline on every variant
    # that could take them; the message carries the scheduler's own reason (e.g. "0/8 nodes are
    # available: 8 Insufficient aws.amazon.com/neuron."). Unschedulable pods are never deleted for it.
    # Set by the reconcile pass from the pods' PodScheduled conditions (placement/capacity_status.py).
    CAPACITY_AVAILABLE = "CapacityAvailable"


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
    # The API server does not serve a kind the spec needs (a missing CRD or API group).
    KIND_NOT_SERVED = "KindNotServed"
    # Capacity (placement/): every asked replica placed; fallback variants serving; replicas that no
    # node can take. ScalingLimited says LimitedByCapacity when the autoscaler asked for replicas that
    # cannot be placed. Events: FallbackActivated when a fallback variant gets replicas, FallbackDrained
    # when it is back to none, ReplicasUnschedulable when a replica passes the deadline.
    ALL_REPLICAS_PLACED = "AllReplicasPlaced"
    WAITING_FOR_NODES = "WaitingForNodes"
    FALLBACK_IN_USE = "FallbackInUse"
    INSUFFICIENT_NEURON_CAPACITY = "InsufficientNeuronCapacity"
    LIMITED_BY_CAPACITY = "LimitedByCapacity"
    FALLBACK_ACTIVATED = "FallbackActivated"
    FALLBACK_DRAINED = "FallbackDrained"
    REPLICAS_UNSCHEDULABLE = "ReplicasUnschedulable"
    # Replicas spanning nodes run as LeaderWorkerSet groups; the cluster serves no LeaderWorkerSet
    # kind (render/leaderworkerset.py missing_api_message words the condition).
    LEADER_WORKER_SET_MISSING = "LeaderWorkerSetMissing"
    # allocation dra on a cluster that serves no resource.k8s.io/v1 (before Kubernetes 1.34).
    RESOURCE_CLAIM_TEMPLATE_MISSING = "ResourceClaimTemplateMissing"


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
