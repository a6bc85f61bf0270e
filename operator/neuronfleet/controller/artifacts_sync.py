"""The I/O around the compiled-artifact gate, called from the reconcile pass at three points.

1. `run_gate` after planning: key the plan, list the fleet's artifact Jobs, decide
   (controller/artifacts.py), create or delete Jobs, and hand back the plan the pass renders (with
   the cache-hit startup estimate once the key's artifacts are ready, which sizes the startup probe
   and the autoscaler's time-to-ready).
2. `hold_rollout` after rendering: while the key's artifacts are not ready, the Deployment is not
   applied at all, so the live one keeps its template (the old ReplicaSet serves the old key) or,
   for a new fleet, is not created yet. The other children (Service, PDB, monitor) still apply.
3. `annotate_status` after the status is computed: status.plan.artifactKey, the
   CompiledArtifactsReady condition, Degraded on a failed compile, Progressing/Ready saying what
   the rollout waits for, and where each starting replica is (`starting_replicas`).

Jobs carry the ModelDeployment's controller ownerReference, so the child watch queues a pass when
one changes, and garbage collection removes them with the fleet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from collections.abc import Callable, Hashable, Mapping, MutableMapping, Sequence
from typing import Any

from neuronfleet.api.conditions import ConditionStatus, ConditionType, Reason, find_condition, set_condition
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.controller import apply, artifacts, events, replica_phases
from neuronfleet.controller.kube import KubeClient, KubeError
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.neuron.types import Plan
from neuronfleet.render import compile_job, deployment, labels
from neuronfleet.render.options import RenderOptions

__all__ = [
    "JOB_REF",
    "POD_REF",
    "Gate",
    "annotate_status",
    "artifact_events",
    "hold_rollout",
    "later",
    "run_gate",
    "starting_replicas",
]

log = logging.getLogger(__name__)

JOB_REF = ResourceRef("batch", "v1", "jobs")
POD_REF = ResourceRef("", "v1", "pods")


@dataclasses.dataclass(frozen=True)
class Gate:
    """The gate's outcome for one pass."""

    plan: Plan  # keyed; with the cache-hit startup estimate when the artifacts are ready
    decision: artifacts.Decision
    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    requeue_after: float | None = None  # seconds until a pass must look again (retry, recheck, race)


def live_key(live_deployment: Mapping[str, Any] | None) -> str | None:
    """The artifact key the live Deployment's template serves (its annotation), if any."""
    if live_deployment is None:
        return None
    annotations = (live_deployment.get("metadata") or {}).get("annotations") or {}
    return annotations.get(deployment.ARTIFACT_KEY_ANNOTATION) or None


async def run_gate(
    kube: KubeClient,
    owner: Mapping[str, Any],
    md: ModelDeployment,
    plan: Plan,
    live_deployment: Mapping[str, Any] | None,
    *,
    render: RenderOptions,
    now: datetime.datetime,
    options: artifacts.ArtifactOptions | None = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Gate:
    """Key the plan, converge the artifact Jobs, and say whether the Deployment may roll out."""
    plan = artifacts.keyed_plan(md, plan, render)
    namespace = owner["metadata"]["namespace"]
    jobs: list[dict[str, Any]] = []
    if md.spec.neuron.compiled_artifacts.policy != artifacts.Policy.COMPILE_ON_START:
        jobs = await kube.list(JOB_REF, namespace, label_selector=compile_job.job_selector(md))
    decision = artifacts.decide(
        md, plan, jobs, live_key=live_key(live_deployment), now=now, render=render, options=options
    )
    created: list[str] = []
    deleted: list[str] = []
    requeue = decision.requeue_after
    if decision.create is not None:
        body = apply.with_owner(decision.create, owner)
        name = body["metadata"]["name"]
        try:
            await kube.create(JOB_REF, namespace, body)
            created.append(name)
            logger.info("Created Job %s for artifact key %s", name, plan.artifact_key, extra={"child": f"jobs/{name}"})
        except KubeError as exc:
            if not exc.conflict:
                raise
            # A Job of that name still exists: a racing pass created it, or the old one is still
            # being deleted. Look again shortly instead of waiting for an event that may not come.
            requeue = 2.0
    for name in decision.delete:
        try:
            await kube.delete(JOB_REF, namespace, name)
            deleted.append(name)
            logger.info("Deleted Job %s (artifact key %s)", name, plan.artifact_key, extra={"child": f"jobs/{name}"})
        except KubeError as exc:
            if not exc.not_found:
                raise
    if decision.ready:
        plan = artifacts.with_cache_hit(plan)
    return Gate(plan, decision, tuple(created), tuple(deleted), requeue)


def hold_rollout(rendered: Sequence[Mapping[str, Any]], gate: Gate) -> list[Mapping[str, Any]]:
    """The children to apply: without the Deployment while the gate is closed."""
    if gate.decision.may_roll_out:
        return list(rendered)
    return [child for child in rendered if child.get("kind") != "Deployment"]


async def starting_replicas(
    kube: KubeClient,
    md: ModelDeployment,
    gate: Gate,
    live_deployment: Mapping[str, Any] | None,
    *,
    now: datetime.datetime,
) -> str | None:
    """A summary of the fleet's pods' phases while some are not ready; None when all are (no read)."""
    if live_deployment is None:
        return None
    spec_replicas = int((live_deployment.get("spec") or {}).get("replicas") or 0)
    ready = int((live_deployment.get("status") or {}).get("readyReplicas") or 0)
    if spec_replicas == 0 or ready >= spec_replicas:
        return None
    namespace = str(live_deployment["metadata"].get("namespace") or md.metadata.get("namespace") or "")
    pods = await kube.list(POD_REF, namespace, label_selector=labels.selector_string(md))
    if not pods:
        return None
    states = replica_phases.replica_states(
        pods,
        plan=gate.plan,
        cache_hit=gate.decision.ready,
        downloads=md.spec.model.source.startswith("hf://"),
        now=now,
    )
    return replica_phases.summary(states)


def annotate_status(
    status: MutableMapping[str, Any],
    gate: Gate,
    *,
    generation: int | None,
    now: str,
    phases: str | None = None,
) -> None:
    """Lay the gate's findings over a status `compute_status` produced (in place)."""
    decision = gate.decision
    plan_status = status.get("plan")
    if isinstance(plan_status, dict):
        plan_status["artifactKey"] = gate.plan.artifact_key
        plan_status["expectedStartupSeconds"] = gate.plan.expected_startup_seconds
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])

    def cond(type_: str, value: str, reason: str, message: str) -> None:
        set_condition(
            conditions,
            type_=type_,
            status=value,
            reason=reason,
            message=message,
            observed_generation=generation,
            now=now,
        )

    if decision.condition is None:
        conditions[:] = [c for c in conditions if c.get("type") != ConditionType.COMPILED_ARTIFACTS_READY]
    else:
        cond(ConditionType.COMPILED_ARTIFACTS_READY, *decision.condition)
    degraded = find_condition(conditions, ConditionType.DEGRADED)
    already_failed = degraded is not None and degraded.get("status") == ConditionStatus.TRUE
    if decision.degraded and not already_failed:
        cond(ConditionType.DEGRADED, ConditionStatus.TRUE, Reason.COMPILE_FAILED, decision.degraded)
    if not decision.may_roll_out and decision.waiting:
        waiting = decision.waiting if not phases else f"{decision.waiting}; replicas: {phases}"
        cond(ConditionType.PROGRESSING, ConditionStatus.TRUE, Reason.WAITING_FOR_ARTIFACTS, waiting)
        cond(ConditionType.READY, ConditionStatus.FALSE, Reason.WAITING_FOR_ARTIFACTS, waiting)
        return
    if phases:
        for type_ in (ConditionType.PROGRESSING, ConditionType.READY):
            current = find_condition(conditions, type_)
            if current is not None and current.get("reason") in (
                Reason.ROLLOUT_IN_PROGRESS,
                Reason.SCALING,
                Reason.REPLICAS_NOT_READY,
            ):
                cond(
                    type_,
                    str(current["status"]),
                    str(current["reason"]),
                    f"{current.get('message', '')}; replicas: {phases}",
                )


def artifact_events(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[events.Event]:
    """Events for CompiledArtifactsReady changes (compile started, artifacts ready, waiting)."""
    return [events.Event(type_, reason, message) for type_, reason, message in artifacts.transitions(previous, new)]


def later(add: Callable[[Any], None]) -> Callable[[Hashable, float], None]:
    """A requeue that queues a pass after `delay` without blocking earlier ones.

    The work queue coalesces a key's passes into the one pending; handing it a ten-minute delay
    directly would swallow every event until then (a Job deleted to retry now, say). A timer that
    adds the key when it fires keeps both.
    """

    def requeue(key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, add, key)

    return requeue
