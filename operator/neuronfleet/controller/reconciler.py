"""One reconcile pass over a ModelDeployment, as a flat list of named steps (KServe's reconciler shape).

    load_and_plan -> gate_artifacts -> place -> render -> apply_children -> observe -> compute_status
                  -> announce -> write_status -> emit_events

Every trigger (the ModelDeployment or a child changed, an autoscaling decision, a retry, a
compile's backoff) runs the same pass: it never asks why it runs. Passes of one fleet are
serialised by a lock. Reads come from the cache that kopf's watches fill (controller/cache.py), so
a pass that finds nothing to change makes no request; writes are the children (controller/apply.py,
the only path that writes them) and the status (written once, when it changed).

A fleet has a workload per variant (controller/workloads.py): the primary's Deployment, or its
LeaderWorkerSet when a replica spans nodes, and a Deployment per fallback variant in use. `place`
turns the replicas asked for (spec.replicas or the autoscaler's decision, in primary replicas) into
replicas per variant from what the pods show (placement/fallback.py).

Each step is small, and only `apply_children` and `write_status` do I/O. Only a `PlanError` (the
spec cannot be served) becomes a status message; a `KubeError` from the API server is retried by
the work queue; anything else is a bug and propagates with its traceback (workqueue.py).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from neuronfleet.api import constants, convert, resource
from neuronfleet.api.conditions import ConditionType, is_true
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.controller import apply, artifacts, desired, events, kinds, replica_phases, status, workloads
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.controller.state import FleetKey, Runtime, ScalingState, utc_timestamp
from neuronfleet.errors import PlanError
from neuronfleet.neuron import variants
from neuronfleet.neuron.variants import PlannedVariant
from neuronfleet.placement import capacity_status
from neuronfleet.render import labels, leaderworkerset
from neuronfleet.render import variants as render_variants
from neuronfleet.render.deployment import ARTIFACT_KEY_ANNOTATION

__all__ = [
    "MD_KIND",
    "MD_REF",
    "REJECTED_RETRY_SECONDS",
    "PassOutcome",
    "Planned",
    "load_and_plan",
    "plan_fleet",
    "reconcile",
]

log = logging.getLogger(__name__)

MD_KIND = constants.KIND
MD_REF = ResourceRef(constants.GROUP, constants.VERSION, constants.PLURAL)
REJECTED_RETRY_SECONDS = 60.0
"""A write the API server refused (403, 422) is tried again this much later: RBAC or a webhook may be fixed
without any event the operator would see."""
UNSCHEDULABLE_RECHECK_SECONDS = (5.0, 60.0)
"""While replicas wait for a node, a pass looks again when the next one crosses its cutoff, within
these bounds: nothing else would wake it (a pod that stays Pending changes nothing)."""


@dataclasses.dataclass(frozen=True)
class Planned:
    """Step 1's outcome: the loaded spec and each variant's plan (primary first), or why it cannot be served."""

    md: ModelDeployment | None
    variants: tuple[PlannedVariant, ...] = ()  # plans keyed with their compiled-artifact keys
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.md is not None and bool(self.variants)


@dataclasses.dataclass(frozen=True)
class PassOutcome:
    """What a pass did, for logs, tests and the benchmark."""

    status_written: bool
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    repaired: tuple[str, ...] = ()
    failure: str | None = None


def plan_fleet(md: ModelDeployment, rt: Runtime) -> tuple[PlannedVariant, ...]:
    """Every variant's plan, keyed; raises PlanError. Shared by the pass and the autoscaler."""
    request = convert.plan_request(md, default_allocation=rt.render_options.default_allocation)
    fallback = [
        variants.VariantRequest(v.instance_type, v.tensor_parallel_size, v.runtime) for v in md.spec.neuron.fallback
    ]
    planned = variants.plan_variants(request, fallback)
    keyed = [dataclasses.replace(planned[0], plan=artifacts.keyed_plan(md, planned[0].plan, rt.render_options))]
    for variant in planned[1:]:
        if variant.plan.multi_node:
            raise PlanError(
                f"fallback {variant.plan.instance_type} needs replicas spanning {variant.plan.nodes_per_replica} "
                "nodes; fallback variants must fit one node"
            )
        source = render_variants.variant_md(md, planned[0].plan, variant)
        keyed.append(
            dataclasses.replace(variant, plan=render_variants.keyed_plan(source, variant.plan, rt.render_options))
        )
    return tuple(keyed)


def load_and_plan(body: Mapping[str, Any], rt: Runtime) -> Planned:
    """Step 1: validate the spec, plan every variant, key them; a PlanError (SpecError included) is the user's."""
    md: ModelDeployment | None = None
    try:
        md = resource.load({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})
        planned = plan_fleet(md, rt)
        if md.spec.autoscaling.enabled:
            # An SLO that no replica can meet is a spec problem like a model that does not fit.
            convert.autoscale_policy(
                md.spec.autoscaling,
                expected_startup_seconds=planned[0].plan.expected_startup_seconds,
                profile=convert.capacity_profile(planned[0].plan),
            )
    except PlanError as exc:
        return Planned(md, (), str(exc))
    return Planned(md, planned)


def gate_artifacts(
    rt: Runtime, key: FleetKey, md: ModelDeployment, fleet: Sequence[workloads.Workload]
) -> tuple[artifacts.Decision, ...]:
    """Step 2: the compiled-artifact gate of every variant (pure decisions; their Jobs go through apply)."""
    jobs = rt.cache.owned("Job", key.namespace, key.name)
    keys = frozenset(w.variant.plan.artifact_key for w in fleet)
    primary = fleet[0].variant.plan
    decisions = []
    for workload in fleet:
        live = rt.cache.get(workload.kind, key.namespace, workload.name)
        live_key = ((live or {}).get("metadata") or {}).get("annotations", {}).get(ARTIFACT_KEY_ANNOTATION)
        source = render_variants.variant_md(md, primary, workload.variant)
        decision = artifacts.decide(
            source,
            workload.variant.plan,
            jobs,
            live_key=live_key or None,
            now=rt.clock(),
            render=rt.render_options,
            keep_keys=keys - {workload.variant.plan.artifact_key},
        )
        if decision.requeue_after is not None and rt.requeue is not None:
            rt.requeue(key, decision.requeue_after)
        decisions.append(decision)
    return tuple(decisions)


def place(rt: Runtime, key: FleetKey, md: ModelDeployment, fleet: Sequence[workloads.Workload]) -> workloads.Placed:
    """Step 3: the replicas asked for (in primary replicas) over the variants, from what the pods show."""
    asked = {
        w.variant.name: int(((w_live.get("spec") or {}).get("replicas")) or 0)
        for w in fleet
        if (w_live := workloads.view(w, rt.cache.get(w.kind, key.namespace, w.name))) is not None
    }
    state = rt.decisions.get(key) if md.spec.autoscaling.enabled else None
    wanted = desired.units(
        md.spec,
        workloads.live_units([w.variant for w in fleet], asked),
        None if state is None else state.decision.replicas,
    )
    return workloads.placement(
        fleet,
        lambda w: rt.cache.get(w.kind, key.namespace, w.name),
        rt.cache.matching("Pod", key.namespace, labels.selector(md)),
        desired_units=wanted,
        now=rt.clock(),
        fallback_after_seconds=md.spec.neuron.fallback_after_seconds,
    )


def render(
    rt: Runtime,
    key: FleetKey,
    md: ModelDeployment,
    fleet: Sequence[workloads.Workload],
    gates: Sequence[artifacts.Decision],
    placed: workloads.Placed,
) -> desired.Desired:
    """Step 4: the children to apply (the allocation is their replica counts) and the deletions."""
    templates = [t["metadata"]["name"] for t in rt.cache.owned("ResourceClaimTemplate", key.namespace, key.name)]
    return desired.desired(
        md,
        fleet,
        gates,
        replicas=placed.allocation.replicas,
        retire=placed.allocation.delete,
        live=lambda kind, name: rt.cache.get(kind, key.namespace, name),
        claim_templates=templates,
        options=rt.render_options,
    )


async def apply_children(
    rt: Runtime, body: Mapping[str, Any], todo: desired.Desired, logger: logging.Logger | logging.LoggerAdapter
) -> apply.Applied:
    """Step 5: the one writer of children."""
    return await apply.apply(rt, body, todo.children, todo.deletions, logger=logger)


def observe(
    rt: Runtime, key: FleetKey, md: ModelDeployment, fleet: Sequence[workloads.Workload], gate: artifacts.Decision
) -> tuple[Mapping[str, Any] | None, str | None]:
    """Step 6: the workloads after the writes, as one Deployment-shaped view, and where starting replicas are."""
    views = [workloads.view(w, rt.cache.get(w.kind, key.namespace, w.name)) for w in fleet]
    combined = workloads.combined_view(views)
    if combined is None:
        return None, None
    want = int((combined.get("spec") or {}).get("replicas") or 0)
    ready = int((combined.get("status") or {}).get("readyReplicas") or 0)
    if want == 0 or ready >= want:
        return combined, None
    pods = rt.cache.matching("Pod", key.namespace, labels.selector(md))
    if not pods:
        return combined, None
    plan = fleet[0].variant.plan
    states = replica_phases.replica_states(
        pods, plan=plan, cache_hit=gate.ready, downloads=md.spec.model.source.startswith("hf://"), now=rt.clock()
    )
    return combined, replica_phases.summary(states) or None


async def write_status(
    rt: Runtime, key: FleetKey, previous: Mapping[str, Any], new: dict[str, Any], generation: Any = None
) -> bool:
    """Step 8: one merge patch of what changed, or none; the answer goes into the cache.

    The ModelDeployment may change while the patch is in flight. Its watch event starts no pass then
    (it cannot be told from this write's echo before the answer); the answer, applied on top of the
    change, carries its generation and resourceVersion. A generation other than the one this pass
    served, or an event in flight that was not this write's echo (`Cache.record_write`), queues
    another pass.
    """
    patch = status.status_patch(previous, new)
    if patch is None:
        return False
    with rt.cache.writing(MD_KIND, key.namespace, key.name):
        answer = await rt.kube.patch(MD_REF, key.namespace, key.name, {"status": patch}, subresource="status")
    newer = not rt.cache.record_write(MD_KIND, answer)
    answered = (answer.get("metadata") or {}).get("generation")
    moved = generation is not None and answered is not None and answered != generation
    if (newer or moved) and rt.enqueue is not None:
        rt.enqueue(key)  # the spec changed while the status was being written
    return True


def announce(
    rt: Runtime, key: FleetKey, body: Mapping[str, Any], applied: apply.Applied, scaled: ScalingState | None
) -> None:
    """Step 7b: events and metrics of what this pass did to the children (repairs, a scale), before the status.

    They are history, not state: if the status write then fails, the retried pass finds the children
    already as decided and has nothing left to announce. Events derived from the status (transitions)
    wait for its write: the retry computes them again from the same previous status.
    """
    found = events.repairs(applied.repaired)
    if scaled is not None and rt.announced.get(key) != scaled.seq:
        found.append(events.scaled(scaled.decision))
        rt.announced[key] = scaled.seq
    events.post(body, found)
    for kind, action in applied.writes:
        rt.metrics.writes.labels(kind=kind, action=action).inc()


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
    now = rt.clock()

    planned = load_and_plan(body, rt)
    md, failure = planned.md, planned.failure
    fleet: list[workloads.Workload] = []
    gates: tuple[artifacts.Decision, ...] = ()
    placed: workloads.Placed | None = None
    todo: desired.Desired | None = None
    if planned.ok and md is not None:
        fleet = workloads.workloads(md, planned.variants)
        try:
            gates = gate_artifacts(rt, key, md, fleet)
            if gates[0].ready:
                primary = dataclasses.replace(fleet[0].variant, plan=artifacts.with_cache_hit(fleet[0].variant.plan))
                fleet[0] = dataclasses.replace(fleet[0], variant=primary)
            placed = place(rt, key, md, fleet)
            todo = render(rt, key, md, fleet, gates, placed)
        except PlanError as exc:
            failure, fleet, gates, placed, todo = str(exc), [], (), None, None

    applied = apply.Applied()
    if todo is not None:
        # Only a spec that plans and renders touches the children: a broken update leaves the fleet as it was.
        applied = await apply_children(rt, body, todo, logger)

    plan = fleet[0].variant.plan if fleet else None
    live_view, phases = None, None
    if md is not None and fleet:
        live_view, phases = observe(rt, key, md, fleet, gates[0])
    elif md is not None:
        live_view = rt.cache.get("Deployment", key.namespace, key.name)  # a failed plan: what still runs
    autoscaling = None if md is None else md.spec.autoscaling.enabled
    state = rt.decisions.get(key) if autoscaling else None
    primary_name = fleet[0].name if fleet else None
    # A replica change this pass made on the autoscaler's decision (an update, not a repair of a hand edit).
    scaled = bool(
        state is not None
        and primary_name is not None
        and any(f"{kind} {primary_name}" in applied.updated for kind in ("Deployment", leaderworkerset.KIND))
        and applied.replicas_before.get(primary_name) is not None
        and (todo.replicas.get(primary_name) if todo else None) != applied.replicas_before.get(primary_name)
    )
    if placed is not None and md is not None:
        placed = place(rt, key, md, fleet)  # as the workloads stand after the writes (status reports this)
    capacity = _capacity(md, fleet, placed, previous, now, state)
    observed = status.Observed(
        generation=generation,
        plan=plan,
        plan_failure=failure,
        apply_failures=tuple(applied.refused + applied.rejected),
        deployment=live_view,
        selector=_selector(md, plan, previous),
        desired_replicas=None if placed is None else placed.desired_units,
        asked=None if todo is None else sum(todo.replicas.values()),
        autoscaling=autoscaling,
        gate=gates[0] if gates else None,
        phases=phases,
        scaling=state,
        scaled=scaled,
        missing=tuple((k.missing_reason, _missing_message(k, plan)) for k in applied.unserved if not k.optional),
        skipped=tuple(k for k in applied.unserved if k.optional),
        slo=None if md is None else md.spec.autoscaling.slo is not None,
        wants_optional=tuple(c["kind"] for c in (todo.children if todo else ()) if kinds.of(c).optional),
        **capacity,
    )
    new = status.compute_status(observed, previous, now=utc_timestamp(now))
    announce(rt, key, body, applied, state if scaled else None)
    written = await write_status(rt, key, previous, new, generation)

    found = events.transitions(previous, new)
    if capacity["capacity_condition"] is not None:
        found += events.capacity(previous, new, capacity["capacity_condition"])
    events.post(body, found)

    rt.set_degraded(key, is_true(new.get("conditions"), ConditionType.DEGRADED))
    _requeue(rt, key, applied, placed, md, now)
    if applied.errors:
        raise applied.errors[0]  # the others applied; the work queue retries this one with backoff
    return PassOutcome(
        status_written=written,
        created=tuple(applied.created),
        updated=tuple(applied.updated),
        repaired=tuple(applied.repaired),
        failure=failure,
    )


def _selector(md: ModelDeployment | None, plan: Any, previous: Mapping[str, Any]) -> str | None:
    """status.selector, for /scale (HPA, KEDA): the pods, or only the leaders of multi-node groups."""
    if md is None:
        return previous.get("selector")
    if plan is not None and plan.multi_node:
        return labels.leader_selector_string(md)
    return labels.selector_string(md)


def _missing_message(kind: kinds.ChildKind, plan: Any) -> str:
    if kind.kind == leaderworkerset.KIND and plan is not None and plan.multi_node:
        return leaderworkerset.missing_api_message(plan)
    return status.unserved_message(kind)


def _capacity(
    md: ModelDeployment | None,
    fleet: Sequence[workloads.Workload],
    placed: workloads.Placed | None,
    previous: Mapping[str, Any],
    now: Any,
    state: Any,
) -> dict[str, Any]:
    """status.capacity, CapacityAvailable and the capacity side of ScalingLimited, from the placement."""
    none = {"capacity": None, "capacity_condition": None, "capacity_limited": None}
    if md is None or placed is None or not fleet:
        return none
    infos = [
        capacity_status.VariantInfo(
            w.variant.name,
            w.variant.plan.instance_type,
            w.variant.plan.tensor_parallel_size,
            w.variant.units_per_replica,
        )
        for w in fleet
    ]
    allocation, observed = placed.allocation, placed.observed
    condition = capacity_status.capacity_condition(infos, allocation, observed, now=now)
    limited = None
    if state is not None:
        limited = capacity_status.scaling_limited(state.decision.replicas, allocation)
    return {
        "capacity": capacity_status.capacity_status(infos, allocation, observed, now=now),
        "capacity_condition": condition,
        "capacity_limited": limited,
    }


def _requeue(
    rt: Runtime,
    key: FleetKey,
    applied: apply.Applied,
    placed: workloads.Placed | None,
    md: ModelDeployment | None,
    now: Any,
) -> None:
    """Passes no event would trigger: a refused write, a kind not served yet, a replica crossing its cutoff."""
    if rt.requeue is None:
        return
    if applied.rejected:
        rt.requeue(key, REJECTED_RETRY_SECONDS)
    if applied.unserved:
        rt.requeue(key, rt.unserved_recheck)  # a CRD installed later is picked up without any event
    if applied.changed_since and rt.enqueue is not None:
        rt.enqueue(key)
    if placed is not None and md is not None:
        waits = [p.waited_seconds(now) for o in placed.observed.values() for p in o.unschedulable]
        if waits:
            cutoff = md.spec.neuron.fallback_after_seconds
            ahead = [cutoff - w for w in waits if w < cutoff]
            low, high = UNSCHEDULABLE_RECHECK_SECONDS
            rt.requeue(key, max(low, min(high, min(ahead, default=high))))
