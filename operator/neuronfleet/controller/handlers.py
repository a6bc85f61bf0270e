"""The kopf handlers: thin, level-based, registered into an explicit registry.

- create/update/resume are stacked on one `reconcile_model_deployment` (no branching on cause);
  a failed pass raises `kopf.TemporaryError` and kopf retries it with backoff.
- Children (Deployment, Service, PDB, artifact Jobs) are watched; any change or deletion of one that this
  operator manages queues a pass for its owner: drift is repaired and the owner's status follows
  the pods within seconds (a pod turning ready updates the Deployment's status, hence an event).
- Deletion needs no handler and no finalizer: every child carries a controller ownerReference,
  so Kubernetes' garbage collector removes them with the ModelDeployment. Without a finalizer a
  stopped or broken operator can never block `kubectl delete md`. A DELETED event only drops the
  fleet's in-memory state.
- Autoscaled fleets get a decision loop from `controller/autoscaling.py`, started and stopped by
  the ModelDeployment watch (`track_model_deployment`); not a `@kopf.timer`, which would need a
  finalizer.
- Handlers return nothing: kopf would store return values in status, which the CRD prunes.
"""

from __future__ import annotations

import time
from typing import Any

import kopf
import kubernetes

from neuronfleet.api import constants
from neuronfleet.controller import reconcile, startup, sync
from neuronfleet.controller.kube import KubeError
from neuronfleet.controller.settings import OperatorConfig

__all__ = ["CHILD_WATCHES", "register"]

# Children whose drift the operator repairs; the PodMonitor is only watched if its CRD exists,
# which kopf cannot know up front, so it is re-applied on the owner's passes instead.
CHILD_WATCHES: tuple[tuple[str, str, str], ...] = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("batch", "v1", "jobs"),  # compile/check Jobs of the artifact gate
)
MANAGED = {reconcile.MANAGED_BY_LABEL: reconcile.MANAGED_BY_VALUE}


def _owner_key(body: Any) -> sync.FleetKey | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or ():
        ours = ref.get("kind") == constants.KIND and ref.get("apiVersion") == constants.API_VERSION
        if ref.get("controller") and ours:
            return sync.FleetKey(body["metadata"]["namespace"], ref["name"])
    return None


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

    @kopf.on.cleanup(registry=registry)
    async def stop(memo: kopf.Memo, **_: Any) -> None:
        await startup.release_memo(memo)

    @kopf.on.resume(*md, registry=registry, id="reconcile")
    @kopf.on.create(*md, registry=registry, id="reconcile")
    @kopf.on.update(*md, registry=registry, id="reconcile")
    async def reconcile_model_deployment(
        body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, retry: int, **_: Any
    ) -> None:
        rt: sync.Runtime = memo.runtime
        key = sync.FleetKey(body.metadata.namespace or "", body.metadata.name or "")
        started = time.monotonic()
        rt.metrics.reconciles.labels(handler="reconcile").inc()
        try:
            async with rt.lock(key):
                await sync.reconcile_pass(rt, body, logger=logger)
        except KubeError as exc:
            rt.metrics.errors.labels(handler="reconcile").inc()
            delay = min(config.retry_delay * 2**retry, config.retry_delay_max)
            # kopf retries through its progress record in status; if the API server also refuses
            # that write, kopf waits for the next event, which may never come. The work queue
            # retries the same level-based pass regardless.
            memo.queue.add(key, delay)
            raise kopf.TemporaryError(f"API server: {exc}", delay=delay) from exc
        finally:
            rt.metrics.duration.labels(handler="reconcile").observe(time.monotonic() - started)

    @kopf.on.event(*md, registry=registry, id="track")
    async def track_model_deployment(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Start or stop the fleet's autoscaling loop; drop the state of a deleted fleet."""
        deleted = type == "DELETED"
        memo.autoscaler.track(body, deleted=deleted)
        if deleted:
            memo.runtime.forget(sync.FleetKey(body.metadata.namespace or "", body.metadata.name or ""))

    async def child_changed(type: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        key = _owner_key(body)
        if key is None:
            return
        meta = body.get("metadata", {})
        rv = str(meta.get("resourceVersion", ""))
        if type != "DELETED" and memo.runtime.is_own_write(body.get("kind", ""), key.namespace, meta.get("name"), rv):
            return  # the echo of our own write: the pass that made it already accounted for it
        memo.queue.add(key)

    for group, version, plural in CHILD_WATCHES:
        where = (group, version, plural) if group else (version, plural)
        kopf.on.event(*where, labels=MANAGED, registry=registry, id=f"child-{plural}")(child_changed)
