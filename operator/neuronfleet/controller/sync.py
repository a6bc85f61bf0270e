"""One reconcile pass over a ModelDeployment, and the small work queue for passes kopf cannot retry.

`reconcile_pass` is the imperative shell around the pure core: load the spec, plan it, read the
child Deployment, render, apply, compute the status, write it once if it changed, post the
events of the transitions. Every trigger (create, update, resume, a child changed, a retry)
runs the same pass, serialised per ModelDeployment by a lock so two triggers never interleave.

kopf retries its own change handlers, but not event handlers, so a pass triggered by a child's
event (drift repair, a pod turning ready) goes through `WorkQueue`: keyed by ModelDeployment,
coalescing bursts (a rollout emits many Deployment events), retrying failures with backoff.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from neuronfleet.api import constants, convert, resource
from neuronfleet.api.conditions import ConditionType, Reason, is_true
from neuronfleet.controller import apply, artifacts_sync, events, reconcile, status
from neuronfleet.controller.kube import KubeClient, KubeError
from neuronfleet.controller.metrics import OperatorMetrics
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.neuron.types import Plan
from neuronfleet.render import children, labels, names
from neuronfleet.render.options import RenderOptions

__all__ = [
    "DEPLOYMENT_REF",
    "MD_REF",
    "FleetKey",
    "PassOutcome",
    "Runtime",
    "WorkQueue",
    "deployment_name",
    "previous_status",
    "reconcile_pass",
    "utc_timestamp",
]

log = logging.getLogger(__name__)

MD_REF = ResourceRef(constants.GROUP, constants.VERSION, constants.PLURAL)
DEPLOYMENT_REF = reconcile.CHILD_KINDS[("apps/v1", "Deployment")]


@dataclasses.dataclass(frozen=True)
class FleetKey:
    namespace: str
    name: str


def utc_timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Runtime:
    """Per-operator state that outlives a pass (kept in kopf's memo, never in globals)."""

    kube: KubeClient
    render_options: RenderOptions
    metrics: OperatorMetrics
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    locks: dict[FleetKey, asyncio.Lock] = dataclasses.field(default_factory=dict)
    # The status this operator last wrote per fleet: the base of the next pass, so a pass working
    # from an older event body never reverts fields written since (the autoscaler's, say).
    statuses: dict[FleetKey, tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # resourceVersions of children this operator wrote: their watch events need no new pass.
    own_writes: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)
    # Generations whose turned-off children were already cleaned up.
    cleaned: dict[FleetKey, int] = dataclasses.field(default_factory=dict)
    degraded: set[FleetKey] = dataclasses.field(default_factory=set)
    # Schedules a later pass for a fleet; the artifact gate uses it to retry a failed compile
    # after its backoff and to recheck for required artifacts (no event would come otherwise).
    requeue: Callable[[FleetKey, float], None] | None = None
    managed: set[FleetKey] = dataclasses.field(default_factory=set)

    def lock(self, key: FleetKey) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def forget(self, key: FleetKey) -> None:
        """A ModelDeployment is gone: drop its state and series."""
        self.locks.pop(key, None)
        self.statuses.pop(key, None)
        self.cleaned.pop(key, None)
        self.degraded.discard(key)
        self.managed.discard(key)
        for write in [w for w in self.own_writes if w[1:] == (key.namespace, key.name)]:
            del self.own_writes[write]
        self.metrics.managed.set(len(self.managed))
        self.metrics.degraded.set(len(self.degraded))
        self.metrics.forget_fleet(key.namespace, key.name)

    def is_own_write(self, kind: str, namespace: str, name: str, resource_version: str) -> bool:
        return self.own_writes.get((kind, namespace, name)) == resource_version


@dataclasses.dataclass(frozen=True)
class PassOutcome:
    """What a pass did, for logs, tests and the benchmark."""

    status_written: bool
    created: tuple[str, ...] = ()
    patched: tuple[str, ...] = ()
    failure: str | None = None


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: body[k] for k in body})


def previous_status(rt: Runtime, key: FleetKey, body: Mapping[str, Any]) -> dict[str, Any]:
    uid = str(body["metadata"].get("uid", ""))
    cached = rt.statuses.get(key)
    if cached is not None and cached[0] == uid:
        return copy.deepcopy(cached[1])
    return {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}


def deployment_name(md: resource.ModelDeployment) -> str:
    return names.deployment_name(md)


def _deployment_name(body: Mapping[str, Any], md: resource.ModelDeployment | None) -> str:
    if md is not None:
        return names.deployment_name(md)
    return str(body["metadata"]["name"])


async def reconcile_pass(
    rt: Runtime,
    body: Mapping[str, Any],
    *,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> PassOutcome:
    """Converge one ModelDeployment's children and status; raises KubeError when the API failed."""
    body = _plain(body)
    meta = body["metadata"]
    key = FleetKey(meta["namespace"], meta["name"])
    if meta.get("deletionTimestamp"):
        return PassOutcome(status_written=False)  # children go with the owner (ownerReference GC)
    rt.managed.add(key)
    rt.metrics.managed.set(len(rt.managed))
    generation = meta.get("generation")
    previous = previous_status(rt, key, body)

    failure: str | None = None
    failure_reason: str = Reason.PLAN_FAILED
    md: resource.ModelDeployment | None = None
    plan: Plan | None = None
    try:
        md = resource.load({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})
        plan = planner.plan(convert.plan_request(md))
        if md.spec.autoscaling.enabled:
            # An SLO that no calibrated replica can meet is a spec problem like a model that does
            # not fit: Degraded, running replicas untouched (the autoscaler holds meanwhile).
            convert.autoscale_policy(
                md.spec.autoscaling,
                expected_startup_seconds=plan.expected_startup_seconds,
                profile=convert.capacity_profile(plan),
            )
    except (PlanError, ValueError) as exc:
        failure, plan = str(exc), None

    namespace = key.namespace
    dep_name = _deployment_name(body, md)
    live_dep = await rt.kube.get_or_none(DEPLOYMENT_REF, namespace, dep_name)
    replicas = None
    result = apply.ApplyResult()
    rendered: list[dict[str, Any]] = []
    gate: artifacts_sync.Gate | None = None
    if md is not None and plan is not None:
        replicas = reconcile.desired_replicas(md.spec, live_dep)
        try:
            # Compiled-artifact gate: keys the plan, runs compile/check Jobs, and may hold the
            # Deployment back until the artifacts exist (controller/artifacts_sync.py).
            gate = await artifacts_sync.run_gate(
                rt.kube, body, md, plan, live_dep, render=rt.render_options, now=rt.clock(), logger=logger
            )
            plan = gate.plan
            rendered = children.desired(md, plan, replicas=replicas, options=rt.render_options)
            rendered = artifacts_sync.hold_rollout(rendered, gate)
        except (PlanError, ValueError) as exc:
            failure, plan, gate = str(exc), None, None
    if failure is None and md is not None:
        # Only a spec that plans and renders ever touches the children: a broken update leaves
        # the running fleet exactly as it was.

        def remember(kind: str, name: str, rv: str) -> None:
            rt.own_writes[(kind, namespace, name)] = rv

        result = await apply.apply_children(
            rt.kube, body, rendered, known={("Deployment", dep_name): live_dep}, on_write=remember, logger=logger
        )
        if result.refused:
            failure, failure_reason = "; ".join(result.refused), Reason.APPLY_FAILED
        if rt.cleaned.get(key) != generation:
            refs = [
                (reconcile.child_ref({"apiVersion": r.api_version, "kind": r.kind}), r.name)
                for r in children.undesired(md)
            ]
            await apply.delete_undesired(rt.kube, body, refs, logger=logger)
            rt.cleaned[key] = generation
        live_dep = result.object("Deployment", dep_name) or live_dep
        for what in result.created + result.patched:
            action = "create" if what in result.created else "patch"
            rt.metrics.writes.labels(kind=what.split(" ", 1)[0], action=action).inc()

    if replicas is None and live_dep is not None:
        replicas = (live_dep.get("spec") or {}).get("replicas")
    observed = status.Observed(
        generation=generation,
        plan=plan,
        failure=failure,
        failure_reason=failure_reason,
        deployment=live_dep,
        selector=labels.selector_string(md) if md is not None else previous.get("selector"),
        desired_replicas=replicas,
    )
    now = utc_timestamp(rt.clock())
    new_status = status.compute_status(observed, previous, now=now)
    if md is not None and not md.spec.autoscaling.enabled:
        status.autoscaling_disabled(new_status, generation=generation, now=now)
    if gate is not None and md is not None:
        phases = await artifacts_sync.starting_replicas(rt.kube, md, gate, live_dep, now=rt.clock())
        artifacts_sync.annotate_status(new_status, gate, generation=generation, now=now, phases=phases)
        if gate.requeue_after is not None and rt.requeue is not None:
            rt.requeue(key, gate.requeue_after)
    patch = status.status_patch(previous, new_status)
    written = False
    if patch is not None:
        answer = await rt.kube.patch(MD_REF, namespace, key.name, {"status": patch}, subresource="status")
        stored = {k: v for k, v in (answer.get("status") or {}).items() if k != "kopf"}
        rt.statuses[key] = (str(meta.get("uid", "")), stored)
        written = True
    else:
        rt.statuses[key] = (str(meta.get("uid", "")), new_status)

    repaired: list[str] = []
    if previous.get("observedGeneration") == generation and previous.get("conditions"):
        repaired = result.created + result.patched
    events.post(body, events.transitions(previous, new_status, repaired=repaired))
    events.post(body, artifacts_sync.artifact_events(previous, new_status))

    # From the condition, not `failure`: a failed compile Job is Degraded too (artifacts_sync).
    degraded = is_true(new_status.get("conditions"), ConditionType.DEGRADED)
    if degraded:
        rt.degraded.add(key)
    else:
        rt.degraded.discard(key)
    rt.metrics.degraded.set(len(rt.degraded))
    rt.metrics.fleet_degraded.labels(namespace=key.namespace, name=key.name).set(int(degraded))
    return PassOutcome(
        status_written=written,
        created=tuple(result.created),
        patched=tuple(result.patched),
        failure=failure,
    )


PassRunner = Callable[[FleetKey], Awaitable[None]]


class WorkQueue:
    """Passes keyed by fleet: coalesced (one pending run per key), retried with capped backoff."""

    def __init__(self, run: PassRunner, *, delay: float = 0.05, retry: float = 1.0, retry_max: float = 30.0) -> None:
        self._run = run
        self._delay = delay
        self._retry = retry
        self._retry_max = retry_max
        self._pending: dict[FleetKey, asyncio.TimerHandle] = {}
        self._failures: dict[FleetKey, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, key: FleetKey, delay: float | None = None) -> None:
        """Run a pass for `key` after `delay`; a pass already pending absorbs this one."""
        if self._closed or key in self._pending:
            return
        loop = asyncio.get_running_loop()
        self._pending[key] = loop.call_later(self._delay if delay is None else delay, self._start, key)

    def _start(self, key: FleetKey) -> None:
        self._pending.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._attempt(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, key: FleetKey) -> None:
        try:
            await self._run(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is retried; the pass logged details
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            delay = min(self._retry * 2 ** (count - 1), self._retry_max)
            log.warning("Requeued a pass for %s/%s in %.1fs: %s", key.namespace, key.name, delay, exc)
            self.add(key, delay)
        else:
            self._failures.pop(key, None)

    def pending(self) -> int:
        return len(self._pending) + len(self._tasks)

    async def close(self) -> None:
        self._closed = True
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def fetch_and_pass(rt: Runtime, key: FleetKey, *, logger: logging.Logger | logging.LoggerAdapter = log) -> None:
    """A pass for a fleet known only by name (child events, retries): read the owner first."""
    started = time.monotonic()
    rt.metrics.reconciles.labels(handler="child").inc()
    try:
        async with rt.lock(key):
            body = await rt.kube.get_or_none(MD_REF, key.namespace, key.name)
            if body is None:
                rt.forget(key)
                return
            await reconcile_pass(rt, body, logger=logger)
    except KubeError:
        rt.metrics.errors.labels(handler="child").inc()
        raise
    finally:
        rt.metrics.duration.labels(handler="child").observe(time.monotonic() - started)
