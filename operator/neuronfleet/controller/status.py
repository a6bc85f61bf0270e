"""The pure half of status: a ModelDeployment's status reconstituted from the state of the world.

Every pass computes the whole status (kubebuilder's "reconstituted from the state of the
world") from what it observed: the plan (or why planning failed), the child Deployment as the
API server returns it, and the previous status (for condition transition times and the fields
the autoscaler owns). The caller writes it once, and only when it differs (`status_patch`).

How the child Deployment's rollout maps onto conditions follows `kubectl rollout status`:
the Deployment controller has not seen the latest template (observedGeneration behind), not
all pods are updated, old pods are still terminating, or updated pods are not yet available.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from neuronfleet.api.conditions import ConditionStatus, ConditionType, Reason, find_condition, set_condition
from neuronfleet.neuron.types import Plan

__all__ = [
    "Observed",
    "Rollout",
    "autoscaling_disabled",
    "compute_status",
    "condition_status",
    "plan_status",
    "rollout_of",
    "scaling_status",
    "status_patch",
]

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one pass saw and decided; the input of `compute_status`."""

    generation: int | None
    plan: Plan | None  # None when planning failed (see `failure`)
    failure: str | None  # PlanFailed/ApplyFailed message; the fleet is left as it was
    failure_reason: str = Reason.PLAN_FAILED
    deployment: Mapping[str, Any] | None = None  # the live child Deployment, None if absent
    selector: str | None = None  # the pods' label selector (status.selector, for /scale)
    desired_replicas: int | None = None


@dataclasses.dataclass(frozen=True)
class Rollout:
    """The child Deployment's progress, in numbers and one verdict."""

    replicas: int
    ready: int
    updated: int
    available: int
    complete: bool
    message: str


def plan_status(plan: Plan) -> dict[str, Any]:
    """`status.plan` (camelCase, as the CRD declares PlanStatus)."""
    needed = round(plan.memory_needed_bytes / GIB, 1)
    available = round(plan.memory_available_bytes / GIB, 1)
    summary = (
        f"{plan.instance_type} TP={plan.tensor_parallel_size} ({plan.runtime}), "
        f"{plan.resource_count} {plan.resource_name.rsplit('/', 1)[-1]} per replica, "
        f"{needed}/{available} GiB"
    )
    return {
        "model": plan.model,
        "instanceType": plan.instance_type,
        "runtime": plan.runtime,
        "tensorParallelSize": plan.tensor_parallel_size,
        "logicalCoreSize": plan.logical_core_size,
        "coresPerReplica": plan.cores_per_replica,
        "devicesPerReplica": plan.devices_per_replica,
        "resourceName": plan.resource_name,
        "resourceCount": plan.resource_count,
        "replicasPerNode": plan.replicas_per_node,
        "memoryNeededGiB": needed,
        "memoryAvailableGiB": available,
        "expectedStartupSeconds": plan.expected_startup_seconds,
        "maxNumBatchedTokens": plan.max_num_batched_tokens,
        "summary": summary,
    }


def rollout_of(deployment: Mapping[str, Any] | None, desired: int | None) -> Rollout:
    """Where the child Deployment's rollout stands (the checks of `kubectl rollout status`)."""
    if deployment is None:
        return Rollout(0, 0, 0, 0, False, "the Deployment does not exist yet")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    want = int(spec.get("replicas", 1) if desired is None else desired)
    replicas = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    observed = status.get("observedGeneration")
    spec_replicas = int(spec.get("replicas", want))

    def rollout(complete: bool, message: str) -> Rollout:
        return Rollout(replicas, ready, updated, available, complete, message)

    if observed is None or int(observed) < int(meta.get("generation") or 0):
        return rollout(False, "waiting for the Deployment controller to observe the new spec")
    if spec_replicas != want:
        return rollout(False, f"waiting for the Deployment to be scaled to {want} replicas")
    if updated < want:
        return rollout(False, f"{updated} of {want} replicas updated")
    if replicas > updated:
        return rollout(False, f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return rollout(False, f"{available} of {updated} updated replicas available")
    if ready < want:
        return rollout(False, f"{ready} of {want} replicas ready")
    return rollout(True, f"{ready} of {want} replicas ready")


def compute_status(observed: Observed, previous: Mapping[str, Any] | None, *, now: str) -> dict[str, Any]:
    """The full status this pass stands for; autoscaler-owned fields are carried over from `previous`."""
    previous = previous or {}
    status: dict[str, Any] = {k: copy.deepcopy(v) for k, v in previous.items() if k not in ("kopf",) and v is not None}
    conditions: list[dict[str, Any]] = copy.deepcopy(list(previous.get("conditions") or []))
    gen = observed.generation
    rollout = rollout_of(observed.deployment, observed.desired_replicas)

    status["observedGeneration"] = gen
    status["replicas"] = rollout.replicas
    status["readyReplicas"] = rollout.ready
    status["updatedReplicas"] = rollout.updated
    status["availableReplicas"] = rollout.available
    if observed.desired_replicas is not None:
        status["desiredReplicas"] = observed.desired_replicas
    if observed.selector is not None:
        status["selector"] = observed.selector
    if observed.plan is not None:
        status["plan"] = plan_status(observed.plan)
    # On failure the previous plan stays: it still describes the pods that are running.

    def cond(type_: ConditionType, ok: bool | None, reason: str, message: str) -> None:
        value = ConditionStatus.UNKNOWN if ok is None else ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        set_condition(
            conditions,
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            observed_generation=gen,
            now=now,
        )

    if observed.failure is not None:
        cond(ConditionType.DEGRADED, True, observed.failure_reason, observed.failure)
    else:
        cond(ConditionType.DEGRADED, False, Reason.AS_EXPECTED, "the spec is planned and every child is applied")

    template_rolling = rollout.updated < max(rollout.replicas, 1) or rollout.replicas > rollout.updated
    if observed.deployment is None:
        reason = observed.failure_reason if observed.failure is not None else Reason.ROLLOUT_IN_PROGRESS
        cond(ConditionType.PROGRESSING, observed.failure is None, reason, rollout.message)
        cond(ConditionType.READY, False, reason, observed.failure or rollout.message)
    elif rollout.complete:
        cond(ConditionType.PROGRESSING, False, Reason.ROLLOUT_COMPLETE, rollout.message)
        cond(ConditionType.READY, True, Reason.ALL_REPLICAS_READY, rollout.message)
    else:
        reason = Reason.ROLLOUT_IN_PROGRESS if template_rolling else Reason.SCALING
        cond(ConditionType.PROGRESSING, True, reason, rollout.message)
        ready_reason = Reason.ROLLOUT_IN_PROGRESS if template_rolling else Reason.REPLICAS_NOT_READY
        cond(ConditionType.READY, False, ready_reason, rollout.message)
    status["conditions"] = conditions
    return status


def status_patch(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch turning `previous` into `new`, or None when nothing changed (skip the write).

    Top-level fields only: `conditions` is a list and a merge patch replaces it whole, which is
    what we want because `new` carries every condition, including the autoscaler's.
    """
    previous = previous or {}
    patch = {k: v for k, v in new.items() if previous.get(k) != v}
    return patch or None


def condition_status(status: Mapping[str, Any] | None, type_: str) -> str | None:
    """The status string of one condition, None when absent (for transition checks)."""
    cond = find_condition(list((status or {}).get("conditions") or []), type_)
    return None if cond is None else str(cond.get("status"))


def scaling_status(
    previous: Mapping[str, Any] | None,
    *,
    generation: int | None,
    decision: Any,
    observation: Any,
    metrics_error: str | None,
    scaled: bool,
    now: str,
    sampled_at: str | None,
) -> dict[str, Any]:
    """The status after one autoscaling decision: the fields and conditions the autoscaler owns.

    `decision` is an `autoscale.types.Decision`, `observation` the `Observation` it was made on.
    Everything the reconcile pass owns is carried over from `previous` unchanged.
    """
    status: dict[str, Any] = {k: copy.deepcopy(v) for k, v in (previous or {}).items() if k != "kopf"}
    conditions: list[dict[str, Any]] = copy.deepcopy(list(status.get("conditions") or []))
    status["desiredReplicas"] = decision.replicas
    if scaled:
        status["lastScaleTime"] = now
        status["lastScaleReason"] = str(decision.reason)
    metrics = {
        "tokensPerSecond": observation.tokens_per_second,
        "concurrency": observation.concurrency,
        "waiting": observation.waiting,
        "kvCacheUsage": observation.kv_cache_usage,
        "sampledAt": sampled_at,
    }
    status["metrics"] = {k: v for k, v in metrics.items() if v is not None}

    def cond(type_: ConditionType, ok: bool, reason: str, message: str) -> None:
        set_condition(
            conditions,
            type_=type_,
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            observed_generation=generation,
            now=now,
        )

    holding = str(decision.reason) == Reason.METRICS_UNAVAILABLE
    if metrics_error is not None or holding:
        message = metrics_error or decision.message
        cond(ConditionType.METRICS_AVAILABLE, False, Reason.METRICS_UNAVAILABLE, message)
        cond(ConditionType.SCALING_ACTIVE, False, Reason.METRICS_UNAVAILABLE, f"holding {decision.replicas}: {message}")
    else:
        cond(ConditionType.METRICS_AVAILABLE, True, Reason.METRICS_FRESH, "Prometheus answered with fresh samples")
        cond(ConditionType.SCALING_ACTIVE, True, Reason.AUTOSCALING_ACTIVE, decision.message)
    if decision.limited:
        # Clamped: the raw recommendation lies beyond the bound the decision stopped at.
        reason = Reason.LIMITED_BY_MAX if decision.recommended > decision.replicas else Reason.LIMITED_BY_MIN
        cond(ConditionType.SCALING_LIMITED, True, reason, decision.message)
    else:
        cond(ConditionType.SCALING_LIMITED, False, Reason.WITHIN_BOUNDS, "the decision is within min/max replicas")
    status["conditions"] = conditions
    return status


def autoscaling_disabled(status: dict[str, Any], *, generation: int | None, now: str) -> None:
    """Mark the autoscaler's conditions off (spec.replicas rules); only touches conditions already there."""
    conditions = status.get("conditions") or []
    if find_condition(conditions, ConditionType.SCALING_ACTIVE) is None:
        return
    set_condition(
        conditions,
        type_=ConditionType.SCALING_ACTIVE,
        status=ConditionStatus.FALSE,
        reason=Reason.AUTOSCALING_DISABLED,
        message="spec.autoscaling.enabled is false; spec.replicas rules",
        observed_generation=generation,
        now=now,
    )
