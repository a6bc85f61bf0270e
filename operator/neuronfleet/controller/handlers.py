"""The kopf handlers: watch, cache, queue. Nothing here decides or writes.

controller-runtime's shape on kopf: every watched object goes into the cache
(controller/cache.py), and every change that was not the echo of the operator's own write queues
one reconcile pass for the fleet it belongs to (controller/workqueue.py). The pass
(controller/reconciler.py) is level-based: it never asks which event woke it.

- ModelDeployments: `kopf.on.event`, not create/update/resume. kopf's change handlers would write
  a last-handled-configuration annotation and handler progress into every object, two requests per
  change that a level-based pass does not need; the work queue retries failed passes itself.
- Children and pods: `kopf.index` handlers fill the cache. kopf starts no handler of any resource
  until every indexed resource has been listed, so the first pass of every fleet sees all of its
  children and a restart creates nothing twice. Index handlers are not called for deletions, so a
  `kopf.on.event` handler takes those.
- A relist (a watch resumed after 410 Gone, or after a pause) names no object deleted in the gap:
  `memo.resync` notices it and drops those through `observed(..., deleted=True)` (controller/resync.py).
- Deletion needs no handler and no finalizer: every child carries a controller ownerReference,
  so Kubernetes' garbage collector removes them with the ModelDeployment, and a stopped or broken
  operator can never block `kubectl delete md`. A DELETED event only drops the fleet's state.
- Autoscaled fleets get a decision loop (controller/autoscaling.py), started and stopped here.
- Handlers return nothing: kopf would store return values in status, which the CRD prunes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf
import kubernetes

from neuronfleet.api import constants
from neuronfleet.controller import diff, kinds, replica_phases, resync, startup
from neuronfleet.controller.cache import Change
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.controller.settings import OperatorConfig
from neuronfleet.controller.state import FleetKey
from neuronfleet.render import labels

__all__ = ["WATCHED", "register"]

WATCHED: tuple[tuple[str, ResourceRef], ...] = (
    *((k.kind, k.ref) for k in kinds.CHILD_KINDS),
    ("Pod", kinds.POD),
)
"""(kind, where) of every object kind the cache holds besides ModelDeployments. A kind the cluster
does not serve (PodMonitor without the Prometheus Operator) is simply not watched by kopf until its
CRD appears."""

MANAGED = {diff.MANAGED_BY_LABEL: diff.MANAGED_BY_VALUE}


def owner_key(kind: str, body: Mapping[str, Any]) -> FleetKey | None:
    """The fleet a child belongs to: its controller ownerReference, or for a pod its instance label."""
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    if kind == "Pod":
        instance = (meta.get("labels") or {}).get(labels.INSTANCE)
        return FleetKey(namespace, str(instance)) if instance else None
    for ref in meta.get("ownerReferences") or ():
        ours = ref.get("kind") == constants.KIND and ref.get("apiVersion") == constants.API_VERSION
        if ref.get("controller") and ours:
            return FleetKey(namespace, str(ref["name"]))
    return None


def wants_pass(kind: str, change: Change) -> bool:
    """Whether a cached change should wake the owner's pass: any foreign change; for pods, a new phase."""
    if not change.changed:
        return False
    if kind != "Pod":
        return True
    before = None if change.previous is None else replica_phases.signature(change.previous)
    after = None if change.current is None else replica_phases.signature(change.current)
    return before != after


RESYNCED: tuple[resync.ListedKind, ...] = (
    resync.ListedKind(constants.KIND, ResourceRef(constants.GROUP, constants.VERSION, constants.PLURAL)),
    *(resync.ListedKind(kind, ref, f"{diff.MANAGED_BY_LABEL}={diff.MANAGED_BY_VALUE}") for kind, ref in WATCHED),
)
"""What a resync lists: every kind the cache holds, with the filter the watches apply (controller/resync.py)."""


def observed(memo: kopf.Memo, kind: str, body: Mapping[str, Any], *, deleted: bool) -> None:
    """One object seen (or gone) by a watch or a resync: cache it and queue its fleet's pass.

    A ModelDeployment also starts or stops its autoscaler, and its deletion drops the fleet's state.
    """
    change = memo.runtime.cache.observe(kind, body, deleted=deleted)
    if kind == constants.KIND:
        memo.autoscaler.track(body, deleted=deleted)
        meta = body.get("metadata") or {}
        key = FleetKey(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if deleted:
            memo.runtime.forget(key)
        elif change.changed:
            memo.queue.add(key)
        return
    owner = owner_key(kind, body)
    if owner is not None and wants_pass(kind, change):
        memo.queue.add(owner)


def register(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    configuration: kubernetes.client.Configuration,
) -> None:
    """Register every handler of the operator into `registry`."""
    md = (constants.GROUP, constants.VERSION, constants.PLURAL)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return startup.connection_info(configuration)

    @kopf.on.startup(registry=registry)
    async def start(memo: kopf.Memo, **_: Any) -> None:
        await startup.populate_memo(memo, config, configuration)
        memo.resync = resync.Resync(
            memo.runtime.kube,
            memo.runtime.cache,
            RESYNCED,
            namespaces=config.namespaces,
            gone=lambda kind, body: observed(memo, kind, body, deleted=True),
        )
        # kopf lists every kind again when it resumes; what was deleted during the pause goes too.
        memo.leadership.subscribe(lambda active: memo.resync.request() if active else None)

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        resyncer = getattr(memo, "resync", None)
        if resyncer is not None:
            await resyncer.close()
        await startup.release_memo(memo)

    @kopf.on.event(*md, registry=registry, id="modeldeployments")
    async def model_deployment_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Cache it, start or stop its autoscaler, and queue a pass unless this is our status write's echo."""
        memo.resync.seen(constants.KIND, type)
        observed(memo, constants.KIND, body, deleted=type == "DELETED")

    def watch(kind: str, ref: ResourceRef) -> None:
        where = (ref.group, ref.version, ref.plural) if ref.group else (ref.version, ref.plural)

        @kopf.index(*where, labels=MANAGED, registry=registry, id=f"cache-{ref.plural}")
        async def index(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
            observed(memo, kind, body, deleted=False)

        @kopf.on.event(*where, labels=MANAGED, registry=registry, id=f"deleted-{ref.plural}")
        async def deleted(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
            memo.resync.seen(kind, type)
            if type == "DELETED":
                observed(memo, kind, body, deleted=True)

    for kind, ref in WATCHED:
        watch(kind, ref)
