"""The pure half of status: the whole ModelDeployment status, reconstituted from the state of the world.

`compute_status` is the only function that produces a status, and nothing edits its output
afterwards: the pass writes it once, and only when it differs (`status_patch`). Its inputs are
what the pass observed and decided (kubebuilder's "reconstituted from the state of the world"):
the plan (or why planning failed), the child Deployment as the API server returns it, the
artifact gate's decision, the autoscaler's last decision, the kinds the cluster does not serve,
where the starting replicas are, and the previous status (for condition transition times, and for
the autoscaler's fields while this process has not decided yet, after a restart). With an SLO, the
autoscaler's decision carries what it measured (`autoscale.slo_status.SloReport`): serviceLevel,
capacityCurve and ServiceLevelMet are copied from it, never computed twice.

How the child Deployment's rollout maps onto conditions follows `kubectl rollout status`:
the Deployment controller has not seen the latest template (observedGeneration behind), not
all pods are updated, old pods are still terminating, or updated pods are not yet available.

Degraded names the most fundamental failure first: the spec cannot be planned (PlanFailed), a
child cannot be written (ApplyFailed), the cluster lacks a required kind (KindNotServed), the
compile failed (CompileFailed). Running replicas are never touched for any of them. An SLO that no
fleet can meet on the fleet's fitted capacity curve is a PlanFailed too (the spec cannot be served as
written), found by the autoscaler, which meanwhile keeps deciding on the plan's prior targets.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any

from neuronfleet.api.conditions import ConditionStatus, ConditionType, Reason, find_condition, set_condition
from neuronfleet.autoscale.slo_status import SloReport
from neuronfleet.controller.artifacts import Decision as GateDecision
from neuronfleet.controller.kinds import ChildKind
from neuronfleet.controller.state import ScalingState, utc_timestamp
from neuronfleet.neuron.types import Plan
from neuronfleet.placement.capacity_status import CapacityCondition

__all__ = [
    "Observed",
    "Rollout",
    "compute_status",
    "condition_status",
    "plan_status",
    "rollout_of",
    "status_patch",
    "unserved_message",
]

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one pass saw and decided; the input of `compute_status`."""

    generation: int | None
    plan: Plan | None  # None when planning failed (see `plan_failure`)
    plan_failure: str | None = None  # the PlanError's message; nothing was applied
    apply_failures: tuple[str, ...] = ()  # children refused (foreign owner) or rejected by the server
    deployment: Mapping[str, Any] | None = None  # the live child Deployment, None if absent
    selector: str | None = None  # the pods' label selector (status.selector, for /scale)
    desired_replicas: int | None = None  # in primary replicas: spec.replicas or the autoscaler's decision
    asked: int | None = None  # replicas asked of the workloads in all (variants add up); default desired_replicas
    autoscaling: bool | None = None  # spec.autoscaling.enabled; None when the spec did not load
    gate: GateDecision | None = None  # the compiled-artifact gate's decision
    phases: str | None = None  # where the starting replicas are (controller/replica_phases.py)
    scaling: ScalingState | None = None  # the autoscaler's last decision in this process
    scaled: bool = False  # this pass changed the Deployment's replicas on that decision
    missing: tuple[tuple[str, str], ...] = ()  # required kinds the cluster does not serve: (reason, message)
    skipped: tuple[ChildKind, ...] = ()  # optional kinds the cluster does not serve (skipped, a warning)
    wants_optional: tuple[str, ...] = ()  # optional kinds the spec asks for (PodMonitor)
    capacity: Mapping[str, Any] | None = None  # status.capacity (placement/capacity_status.py)
    capacity_condition: CapacityCondition | None = None  # CapacityAvailable
    capacity_limited: CapacityCondition | None = None  # ScalingLimited when placement, not min/max, limits
    slo: bool | None = None  # spec.autoscaling.slo is set; None when the spec did not load


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
    where = f"{plan.nodes_per_replica}x {plan.instance_type}" if plan.multi_node else plan.instance_type
    per = "per pod" if plan.multi_node else "per replica"
    summary = (
        f"{where} TP={plan.tensor_parallel_size} ({plan.runtime}), "
        f"{plan.resource_count} {plan.resource_name.rsplit('/', 1)[-1]} {per}, "
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
        "nodesPerReplica": plan.nodes_per_replica,
        "parallelism": plan.parallelism,
        "allocation": plan.allocation,
        **({"artifactKey": plan.artifact_key} if plan.artifact_key else {}),
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
    """The full status this pass stands for (see the module docstring)."""
    previous = previous or {}
    status: dict[str, Any] = {k: copy.deepcopy(v) for k, v in previous.items() if k != "kopf" and v is not None}
    conditions: list[dict[str, Any]] = copy.deepcopy(list(previous.get("conditions") or []))
    gen = observed.generation
    rollout = rollout_of(observed.deployment, observed.desired_replicas if observed.asked is None else observed.asked)

    def cond(type_: str, ok: bool | None, reason: str, message: str) -> None:
        value = ConditionStatus.UNKNOWN if ok is None else ConditionStatus.TRUE if ok else ConditionStatus.FALSE
        set_condition(
            conditions, type_=type_, status=value, reason=reason, message=message, observed_generation=gen, now=now
        )

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
        status["plan"] = _without_nulls(plan_status(observed.plan))
    # On a plan failure the previous plan stays: it still describes the pods that are running.
    if observed.capacity is not None:
        status["capacity"] = _without_nulls(observed.capacity)

    _degraded(observed, cond)
    _rollout(observed, rollout, conditions, cond)
    _optional_children(observed, conditions, cond)
    if observed.capacity_condition is not None:
        c = observed.capacity_condition
        cond(ConditionType.CAPACITY_AVAILABLE, c.status == ConditionStatus.TRUE, c.reason, c.message)
    _scaling(observed, status, conditions, cond, now)
    _service_level(observed, status, conditions, cond)
    status["conditions"] = conditions
    return status


def _without_nulls(value: Any) -> Any:
    """A merge patch deletes null fields, so a null would differ from what the server stores on every pass."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


_Cond = Callable[[str, "bool | None", str, str], None]


def _degraded(observed: Observed, cond: _Cond) -> None:
    failures: list[tuple[str, str]] = []
    if observed.plan_failure is not None:
        failures.append((Reason.PLAN_FAILED, observed.plan_failure))
    if observed.apply_failures:
        failures.append((Reason.APPLY_FAILED, "; ".join(observed.apply_failures)))
    if observed.missing:
        failures.append((observed.missing[0][0], "; ".join(message for _, message in observed.missing)))
    if observed.gate is not None and observed.gate.degraded:
        failures.append((Reason.COMPILE_FAILED, observed.gate.degraded))
    report = _slo_report(observed)
    if report is not None and report.unreachable is not None:
        failures.append((Reason.PLAN_FAILED, report.unreachable))
    if failures:
        cond(ConditionType.DEGRADED, True, failures[0][0], "; ".join(message for _, message in failures))
    else:
        cond(ConditionType.DEGRADED, False, Reason.AS_EXPECTED, "the spec is planned and every child is applied")


def unserved_message(kind: ChildKind) -> str:
    """What status says of a kind the cluster does not serve, and what to install."""
    hint = f"; {kind.install}" if kind.install else ""
    return f"the cluster does not serve {kind.api_version} {kind.kind} ({kind.ref.plural}){hint}"


def _rollout(observed: Observed, rollout: Rollout, conditions: list[dict[str, Any]], cond: _Cond) -> None:
    gate = observed.gate
    if gate is None or gate.condition is None:
        conditions[:] = [c for c in conditions if c.get("type") != ConditionType.COMPILED_ARTIFACTS_READY]
    else:
        value, reason, message = gate.condition
        cond(ConditionType.COMPILED_ARTIFACTS_READY, value == ConditionStatus.TRUE, reason, message)
    phases = f"; replicas: {observed.phases}" if observed.phases else ""
    if gate is not None and not gate.may_roll_out and gate.waiting:
        cond(ConditionType.PROGRESSING, True, Reason.WAITING_FOR_ARTIFACTS, gate.waiting + phases)
        cond(ConditionType.READY, False, Reason.WAITING_FOR_ARTIFACTS, gate.waiting + phases)
        return
    failure = observed.plan_failure
    template_rolling = rollout.updated < max(rollout.replicas, 1) or rollout.replicas > rollout.updated
    if observed.deployment is None:
        reason = Reason.PLAN_FAILED if failure is not None else Reason.ROLLOUT_IN_PROGRESS
        cond(ConditionType.PROGRESSING, failure is None, reason, rollout.message)
        cond(ConditionType.READY, False, reason, failure or rollout.message)
    elif rollout.complete:
        cond(ConditionType.PROGRESSING, False, Reason.ROLLOUT_COMPLETE, rollout.message)
        cond(ConditionType.READY, True, Reason.ALL_REPLICAS_READY, rollout.message)
    else:
        reason = Reason.ROLLOUT_IN_PROGRESS if template_rolling else Reason.SCALING
        cond(ConditionType.PROGRESSING, True, reason, rollout.message + phases)
        ready_reason = Reason.ROLLOUT_IN_PROGRESS if template_rolling else Reason.REPLICAS_NOT_READY
        cond(ConditionType.READY, False, ready_reason, rollout.message + phases)


def _optional_children(observed: Observed, conditions: list[dict[str, Any]], cond: _Cond) -> None:
    """OptionalChildrenApplied: present while the spec asks for an optional child (a PodMonitor)."""
    if not observed.wants_optional:
        if observed.autoscaling is not None:  # the spec loaded and asks for none: drop a stale condition
            conditions[:] = [c for c in conditions if c.get("type") != ConditionType.OPTIONAL_CHILDREN_APPLIED]
        return
    if observed.skipped:
        message = "skipped: " + "; ".join(unserved_message(k) for k in observed.skipped)
        cond(ConditionType.OPTIONAL_CHILDREN_APPLIED, False, Reason.KIND_NOT_SERVED, message)
    else:
        cond(
            ConditionType.OPTIONAL_CHILDREN_APPLIED,
            True,
            Reason.AS_EXPECTED,
            f"applied {', '.join(observed.wants_optional)}",
        )


def _scaling(
    observed: Observed, status: dict[str, Any], conditions: list[dict[str, Any]], cond: _Cond, now: str
) -> None:
    """The autoscaler's fields and conditions, from its last decision; kept as they were until it decides."""
    if observed.autoscaling is False:
        if find_condition(conditions, ConditionType.SCALING_ACTIVE) is not None:
            cond(
                ConditionType.SCALING_ACTIVE,
                False,
                Reason.AUTOSCALING_DISABLED,
                "spec.autoscaling.enabled is false; spec.replicas rules",
            )
        return
    state = observed.scaling
    if state is None or not observed.autoscaling:
        return
    decision, observation = state.decision, state.observation
    if observed.scaled:
        status["lastScaleTime"] = utc_timestamp(state.decided_at)
        status["lastScaleReason"] = str(decision.reason)
    sampled_at = None
    if observation.sampled_at is not None:
        sampled_at = utc_timestamp(datetime.datetime.fromtimestamp(observation.sampled_at, datetime.UTC))
    metrics = {
        "tokensPerSecond": observation.tokens_per_second,
        "concurrency": observation.concurrency,
        "waiting": observation.waiting,
        "kvCacheUsage": observation.kv_cache_usage,
        "sampledAt": sampled_at,
    }
    status["metrics"] = {k: v for k, v in metrics.items() if v is not None}
    status["autoscalingTargets"] = dict(state.targets)
    holding = str(decision.reason) == Reason.METRICS_UNAVAILABLE
    if state.metrics_error is not None or holding:
        message = state.metrics_error or decision.message
        cond(ConditionType.METRICS_AVAILABLE, False, Reason.METRICS_UNAVAILABLE, message)
        cond(ConditionType.SCALING_ACTIVE, False, Reason.METRICS_UNAVAILABLE, f"holding {decision.replicas}: {message}")
    else:
        cond(ConditionType.METRICS_AVAILABLE, True, Reason.METRICS_FRESH, "Prometheus answered with fresh samples")
        cond(ConditionType.SCALING_ACTIVE, True, Reason.AUTOSCALING_ACTIVE, decision.message)
    if observed.capacity_limited is not None:
        limited = observed.capacity_limited
        cond(ConditionType.SCALING_LIMITED, True, limited.reason, limited.message)
    elif decision.limited:
        # Clamped: the raw recommendation lies beyond the bound the decision stopped at.
        reason = Reason.LIMITED_BY_MAX if decision.recommended > decision.replicas else Reason.LIMITED_BY_MIN
        cond(ConditionType.SCALING_LIMITED, True, reason, decision.message)
    else:
        cond(ConditionType.SCALING_LIMITED, False, Reason.WITHIN_BOUNDS, "the decision is within min/max replicas")


def _slo_report(observed: Observed) -> SloReport | None:
    """The autoscaler's last SLO report, while the spec still states an SLO and autoscaling is on."""
    if not observed.autoscaling or not observed.slo or observed.scaling is None:
        return None
    return observed.scaling.slo


def _service_level(observed: Observed, status: dict[str, Any], conditions: list[dict[str, Any]], cond: _Cond) -> None:
    """status.serviceLevel, status.capacityCurve and ServiceLevelMet, from the autoscaler's last SLO report.

    Gone with the SLO (or with autoscaling, which measures it); kept as they were until the autoscaler of
    this process has reported (after a restart), like the other autoscaler fields. ServiceLevelMet is
    informational: nothing else here reads it (Ready does not).
    """
    if observed.autoscaling is None:
        return  # the spec did not load: nothing is known about the SLO
    if not observed.autoscaling or not observed.slo:
        status.pop("serviceLevel", None)
        status.pop("capacityCurve", None)
        conditions[:] = [c for c in conditions if c.get("type") != ConditionType.SERVICE_LEVEL_MET]
        return
    report = _slo_report(observed)
    if report is None:
        return
    status["serviceLevel"] = dict(report.service_level)
    status["capacityCurve"] = dict(report.capacity_curve)
    _, reason, message = report.condition
    cond(ConditionType.SERVICE_LEVEL_MET, report.met, reason, message)


def status_patch(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch (RFC 7386) turning `previous` into `new`, or None when nothing changed (skip the write).

    A merge patch merges maps and replaces lists: `conditions` is replaced whole, which is what we want
    because `new` carries every condition, including the autoscaler's. A map is patched key by key, and
    a key `new` no longer has is deleted with a null, at any depth: without it, a field dropped from
    `status.autoscalingTargets` (the SLO removed) or `status.serviceLevel` (a window too quiet to judge)
    would stay on the server, and every pass would find the status different and write it again.
    """
    patch = _merge_diff({k: v for k, v in (previous or {}).items() if k != "kopf"}, new)
    return patch or None


def _merge_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(before, Mapping) and isinstance(value, Mapping):
            patch[key] = _merge_diff(before, value)
        else:
            patch[key] = value
    patch.update({k: None for k, v in old.items() if k not in new and v is not None})
    return patch


def condition_status(status: Mapping[str, Any] | None, type_: str) -> str | None:
    """The status string of one condition, None when absent (for transition checks)."""
    cond = find_condition(list((status or {}).get("conditions") or []), type_)
    return None if cond is None else str(cond.get("status"))
