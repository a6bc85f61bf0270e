"""One reconcile pass over a ModelDeployment, as a flat list of named steps (KServe's reconciler shape).

    load_and_plan -> gate_artifacts -> render -> apply_children -> observe -> compute_status
                  -> write_status -> emit_events

Every trigger (the ModelDeployment or a child changed, an autoscaling decision, a retry, a
compile's backoff) runs the same pass: it never asks why it runs. Passes of one fleet are
serialised by a lock. Reads come from the cache that kopf's watches fill (controller/cache.py), so
a pass that finds nothing to change makes no request; writes are the children (controller/apply.py,
the only path that writes them) and the status (written once, when it changed).

Each step is small, and only `apply_children` and `write_status` do I/O. Only a `PlanError` (the
spec cannot be served) becomes a status message; a `KubeError` from the API server is retried by
the work queue; anything else is a bug and propagates with its traceback (workqueue.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from neuronfleet.api import constants, convert, resource
from neuronfleet.api.conditions import ConditionType, is_true
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.controller import apply, artifacts, desired, events, kinds, replica_phases, status
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.controller.state import FleetKey, Runtime, utc_timestamp
from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.neuron.types import Plan
from neuronfleet.render import labels, names
from neuronfleet.render.deployment import ARTIFACT_KEY_ANNOTATION

__all__ = ["MD_KIND", "MD_REF", "REJECTED_RETRY_SECONDS", "PassOutcome", "Planned", "load_and_plan", "reconcile"]

log = logging.getLogger(__name__)

MD_KIND = constants.KIND
MD_REF = ResourceRef(constants.GROUP, constants.VERSION, constants.PLURAL)
REJECTED_RETRY_SECONDS = 60.0
"""A write the API server refused (403, 422) is tried again this much later: RBAC or a webhook may be fixed
without any event the operator would see."""


@dataclasses.dataclass(frozen=True)
class Planned:
    """Step 1's outcome: the loaded spec and its plan, or why it cannot be served."""

    md: ModelDeployment | None
    plan: Plan | None  # keyed with its compiled-artifact key
    failure: str | None = None


@dataclasses.dataclass(frozen=True)
class PassOutcome:
    """What a pass did, for logs, tests and the benchmark."""

    status_written: bool
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    failure: str | None = None


def load_and_plan(body: Mapping[str, Any], rt: Runtime) -> Planned:
    """Step 1: validate the spec, plan it, key it; a PlanError (SpecError included) is the user's to fix."""
    md: ModelDeployment | None = None
    try:
        md = resource.load({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})
        plan = artifacts.keyed_plan(md, planner.plan(convert.plan_request(md)), rt.render_options)
        if md.spec.autoscaling.enabled:
            # An SLO that no replica can meet is a spec problem like a model that does not fit.
            convert.autoscale_policy(
                md.spec.autoscaling,
                expected_startup_seconds=plan.expected_startup_seconds,
                profile=convert.capacity_profile(plan),
            )
    except PlanError as exc:
        return Planned(md, None, str(exc))
    return Planned(md, plan)


def gate_artifacts(
    rt: Runtime, key: FleetKey, md: ModelDeployment, plan: Plan, live_dep: Mapping[str, Any] | None
) -> artifacts.Decision:
    """Step 2: the compiled-artifact gate over the fleet's Jobs (pure decision; its Job writes go through apply)."""
    jobs = rt.cache.owned("Job", key.namespace, key.name)
    live_key = None
    if live_dep is not None:
        live_key = ((live_dep.get("metadata") or {}).get("annotations") or {}).get(ARTIFACT_KEY_ANNOTATION)
    decision = artifacts.decide(md, plan, jobs, live_key=live_key or None, now=rt.clock(), render=rt.render_options)
    if decision.requeue_after is not None and rt.requeue is not None:
        rt.requeue(key, decision.requeue_after)
    return decision


def render(
    rt: Runtime,
    key: FleetKey,
    md: ModelDeployment,
    plan: Plan,
    gate: artifacts.Decision,
    live_dep: Mapping[str, Any] | None,
) -> desired.Desired:
    """Step 3: the children to apply (the autoscaler's decision is their replica count) and the deletions."""
    state = rt.decisions.get(key) if md.spec.autoscaling.enabled else None
    count = desired.replicas(md.spec, live_dep, None if state is None else state.decision.replicas)
    return desired.desired(md, plan, gate, replicas=count, options=rt.render_options)


async def apply_children(
    rt: Runtime, body: Mapping[str, Any], todo: desired.Desired, logger: logging.Logger | logging.LoggerAdapter
) -> apply.Applied:
    """Step 4: the one writer of children."""
    return await apply.apply(rt, body, todo.children, todo.deletions, logger=logger)


def observe(
    rt: Runtime, key: FleetKey, md: ModelDeployment, plan: Plan, gate: artifacts.Decision
) -> tuple[Mapping[str, Any] | None, str | None]:
    """Step 5: the live Deployment after the writes, and where its starting replicas are (from the cache)."""
    live_dep = rt.cache.get("Deployment", key.namespace, names.deployment_name(md))
    if live_dep is None:
        return None, None
    want = int((live_dep.get("spec") or {}).get("replicas") or 0)
    ready = int((live_dep.get("status") or {}).get("readyReplicas") or 0)
    if want == 0 or ready >= want:
        return live_dep, None
    pods = rt.cache.matching("Pod", key.namespace, labels.selector(md))
    if not pods:
        return live_dep, None
    states = replica_phases.replica_states(
        pods, plan=plan, cache_hit=gate.ready, downloads=md.spec.model.source.startswith("hf://"), now=rt.clock()
    )
    return live_dep, replica_phases.summary(states) or None


async def write_status(rt: Runtime, key: FleetKey, previous: Mapping[str, Any], new: dict[str, Any]) -> bool:
    """Step 7: one merge patch of what changed, or none; the answer goes into the cache."""
    patch = status.status_patch(previous, new)
    if patch is None:
        return False
    with rt.cache.writing(MD_KIND, key.namespace, key.name):
        answer = await rt.kube.patch(MD_REF, key.namespace, key.name, {"status": patch}, subresource="status")
    if not rt.cache.record_write(MD_KIND, answer) and rt.enqueue is not None:
        rt.enqueue(key)  # the spec changed while the status was being written
    return True


async def reconcile(rt: Runtime, key: FleetKey, *, logger: logging.Logger | logging.LoggerAdapter = log) -> PassOutcome:
    """Converge one ModelDeployment's children and status (see the module docstring)."""
    body = rt.cache.get(MD_KIND, key.namespace, key.name)
    if body is None:
        rt.forget(key)
        return PassOutcome(status_written=False)
    if body["metadata"].get("deletionTimestamp"):
        return PassOutcome(status_written=False)  # children go with the owner (ownerReference GC)
    rt.manage(key)
    generation = body["metadata"].get("generation")
    previous = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}

    planned = load_and_plan(body, rt)
    md, plan, failure = planned.md, planned.plan, planned.failure
    dep_name = names.deployment_name(md) if md is not None else key.name
    gate: artifacts.Decision | None = None
    todo: desired.Desired | None = None
    if md is not None and plan is not None:
        live_dep = rt.cache.get("Deployment", key.namespace, dep_name)
        try:
            gate = gate_artifacts(rt, key, md, plan, live_dep)
            if gate.ready:
                plan = artifacts.with_cache_hit(plan)
            todo = render(rt, key, md, plan, gate, live_dep)
        except PlanError as exc:
            failure, plan, gate = str(exc), None, None

    applied = apply.Applied()
    if todo is not None:
        # Only a spec that plans and renders touches the children: a broken update leaves the fleet as it was.
        applied = await apply_children(rt, body, todo, logger)

    live_dep, phases = rt.cache.get("Deployment", key.namespace, dep_name), None
    if md is not None and plan is not None and gate is not None:
        live_dep, phases = observe(rt, key, md, plan, gate)
    autoscaling = None if md is None else md.spec.autoscaling.enabled
    state = rt.decisions.get(key) if autoscaling else None
    rendered = None if todo is None else todo.replicas
    # A replica change this pass made on the autoscaler's decision (an update, not a repair of a hand edit).
    scaled = bool(
        state is not None
        and f"Deployment {dep_name}" in applied.updated
        and applied.replicas_before is not None
        and _live_replicas(live_dep) != applied.replicas_before
    )
    observed = status.Observed(
        generation=generation,
        plan=plan,
        plan_failure=failure,
        apply_failures=tuple(applied.refused + applied.rejected),
        deployment=live_dep,
        selector=labels.selector_string(md) if md is not None else previous.get("selector"),
        desired_replicas=rendered if rendered is not None else _live_replicas(live_dep),
        autoscaling=autoscaling,
        gate=gate,
        phases=phases,
        scaling=state,
        scaled=scaled,
        missing=tuple(k for k in applied.unserved if not k.optional),
        skipped=tuple(k for k in applied.unserved if k.optional),
        wants_optional=tuple(c["kind"] for c in (todo.children if todo else ()) if kinds.of(c).optional),
    )
    new = status.compute_status(observed, previous, now=utc_timestamp(rt.clock()))
    written = await write_status(rt, key, previous, new)

    found = events.transitions(previous, new, repaired=applied.repaired)
    if scaled and state is not None and rt.announced.get(key) != state.seq:
        found.append(events.scaled(state.decision))
        rt.announced[key] = state.seq
    events.post(body, found)

    for kind, action in applied.writes:
        rt.metrics.writes.labels(kind=kind, action=action).inc()
    rt.set_degraded(key, is_true(new.get("conditions"), ConditionType.DEGRADED))
    if applied.rejected and rt.requeue is not None:
        rt.requeue(key, REJECTED_RETRY_SECONDS)
    if applied.unserved and rt.requeue is not None:
        rt.requeue(key, rt.unserved_recheck)  # a CRD installed later is picked up without any event
    if applied.changed_since and rt.enqueue is not None:
        rt.enqueue(key)
    if applied.errors:
        raise applied.errors[0]  # the others applied; the work queue retries this one with backoff
    return PassOutcome(
        status_written=written,
        created=tuple(applied.created),
        updated=tuple(applied.updated),
        repaired=tuple(applied.repaired),
        failure=failure,
    )


def _live_replicas(live_dep: Mapping[str, Any] | None) -> int | None:
    if live_dep is None:
        return None
    replicas = (live_dep.get("spec") or {}).get("replicas")
    return None if replicas is None else int(replicas)
