"""OPTIONAL stand-ins for kube-controller-manager, switched on by tests that need them.

The emulator itself is only an API server: like the real one, it never deletes dependents or
fills in Deployment status. Tests that want "delete the owner, the children go away" or
"a Deployment becomes ready" switch these on and say so. They are deliberately simple:

- :class:`GarbageCollector`: when an object is deleted, its dependents (ownerReferences by uid)
  are deleted after ``delay`` seconds; an object created with an ownerReference to a uid that
  does not exist is deleted too; deleting a Namespace deletes what it contains. Orphan and
  foreground propagation are not modelled (everything is background), nor blockOwnerDeletion.
- :class:`DeploymentController`: ``ready_delay`` seconds after a Deployment's spec changes, its
  status says all ``spec.replicas`` are updated, ready and available, with
  ``observedGeneration`` and the Available/Progressing conditions. No ReplicaSets or Pods; the
  demo replaces it with a simulated node pool.
- :class:`JobController`: ``run_seconds`` after a Job is created it has run to completion:
  ``succeeded: 1`` and the SuccessCriteriaMet/Complete conditions, or, for a Job whose name is in
  ``fail``, ``failed`` and the FailureTarget/Failed conditions with ``BackoffLimitExceeded``. No
  Pods run; a Job stands for its outcome only (a compile Job's marker is not written anywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Self

from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent, utc_now

__all__ = ["DeploymentController", "GarbageCollector", "JobController"]

_STATUS_KEYS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas")


class GarbageCollector:
    """Background-propagation garbage collection over ownerReferences (see module docstring)."""

    def __init__(self, store: Store, *, delay: float = 0.0) -> None:
        self.store = store
        self.delay = delay
        self.deleted: int = 0
        self._dependents: dict[str, set[tuple[ResourceInfo, str, str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> GarbageCollector:
        """Start collecting; call from the emulator's event loop."""
        self._loop = asyncio.get_running_loop()
        for info in {i.storage_key: i for i in self.store.resources.values()}.values():
            for obj in self.store.objects(info):
                self._index(info, obj)
        self.store.add_listener(self._on_event)
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.remove_listener(self._on_event)

    def _index(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        for ref in meta.get("ownerReferences") or []:
            uid = ref.get("uid")
            if not uid:
                continue
            self._dependents.setdefault(uid, set()).add((info, meta.get("namespace", ""), meta["name"]))
            if uid not in self.store.uids:
                self._later(info, meta.get("namespace", ""), meta["name"], uid)

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        if event.type != "DELETED":
            self._index(info, event.obj)
            return
        for dep_info, ns, name in self._dependents.pop(meta["uid"], set()):
            self._later(dep_info, ns, name, meta["uid"])
        if info.storage_key == ("", "namespaces"):
            for other in {i.storage_key: i for i in self.store.resources.values() if i.namespaced}.values():
                for obj in self.store.objects(other):
                    if obj["metadata"].get("namespace") == meta["name"]:
                        self._later(other, meta["name"], obj["metadata"]["name"], None)

    def _later(self, info: ResourceInfo, namespace: str, name: str, owner_uid: str | None) -> None:
        assert self._loop is not None
        self._loop.call_later(self.delay, self._collect, info, namespace, name, owner_uid)

    def _collect(self, info: ResourceInfo, namespace: str, name: str, owner_uid: str | None) -> None:
        obj = self.store.try_get(info, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        if owner_uid is not None:
            refs = obj["metadata"].get("ownerReferences") or []
            # Still owned by the dead owner, and no other owner is alive (the real GC's rule).
            if owner_uid not in {r.get("uid") for r in refs}:
                return
            if any(r.get("uid") in self.store.uids for r in refs):
                return
        with contextlib.suppress(ApiError):
            self.store.delete(info, namespace or None, name)
            self.deleted += 1


class _DelayedController:
    """Calls `_act(key)` `delay` seconds after an object of one resource needs it (`_wants`)."""

    def __init__(self, store: Store, info: ResourceInfo, delay: float) -> None:
        self.store = store
        self._info = info
        self._delay = delay
        self._pending: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> Self:
        """Start; call from the emulator's event loop."""
        self._loop = asyncio.get_running_loop()
        for obj in self.store.objects(self._info):
            self._consider(obj)
        self.store.add_listener(self._on_event)
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.remove_listener(self._on_event)
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()

    def _wants(self, obj: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _act(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        if info.storage_key == self._info.storage_key and event.type != "DELETED":
            self._consider(event.obj)

    def _consider(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") or not self._wants(obj):
            return
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._pending:
            return
        assert self._loop is not None
        self._pending[key] = self._loop.call_later(self._delay, self._fire, key)

    def _write_status(self, key: tuple[str, str], status: dict[str, Any]) -> None:
        """Merge `status` into the object's status subresource, as its controller would (gone: no-op)."""
        with contextlib.suppress(ApiError):
            self.store.patch(self._info, key[0], key[1], PatchType.MERGE, {"status": status}, subresource="status")

    def _fire(self, key: tuple[str, str]) -> None:
        self._pending.pop(key, None)
        obj = self.store.try_get(self._info, *key)
        if obj is not None and not obj["metadata"].get("deletionTimestamp"):
            self._act(key, obj)


class DeploymentController(_DelayedController):
    """Marks Deployments fully rolled out after ``ready_delay`` seconds (see module docstring)."""

    def __init__(self, store: Store, *, ready_delay: float = 0.0) -> None:
        super().__init__(store, store.resource("apps", "v1", "deployments"), ready_delay)
        self.ready_delay = ready_delay

    @staticmethod
    def expected_status(obj: dict[str, Any]) -> dict[str, Any]:
        """The status a healthy rollout of this Deployment ends with (conditions aside)."""
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        status: dict[str, Any] = {"observedGeneration": obj["metadata"].get("generation", 1)}
        if replicas:
            status.update(
                replicas=replicas,
                updatedReplicas=replicas,
                readyReplicas=replicas,
                availableReplicas=replicas,
            )
        return status

    def _wants(self, obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        wanted = self.expected_status(obj)
        return not all(status.get(k) == wanted.get(k) for k in _STATUS_KEYS)

    def _act(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        now = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "replicas": None,
            "updatedReplicas": None,
            "readyReplicas": None,
            "availableReplicas": None,
            **self.expected_status(obj),
        }
        status["conditions"] = [
            {
                "type": "Available",
                "status": "True",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
                "message": f'ReplicaSet "{key[1]}" has successfully progressed.',
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            },
        ]
        self._write_status(key, status)


class JobController(_DelayedController):
    """Finishes each Job ``run_seconds`` after it is created (see the module docstring)."""

    def __init__(self, store: Store, *, run_seconds: float = 0.0, fail: frozenset[str] = frozenset()) -> None:
        super().__init__(store, store.resource("batch", "v1", "jobs"), run_seconds)
        self.run_seconds = run_seconds
        self.fail = fail

    def _wants(self, obj: dict[str, Any]) -> bool:
        status = obj.get("status") or {}
        return not (status.get("succeeded") or status.get("failed"))

    def _act(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        now = utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        failed = key[1] in self.fail

        def condition(kind: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }

        status: dict[str, Any] = {"startTime": obj["metadata"].get("creationTimestamp", now)}
        if failed:
            message = "Job has reached the specified backoff limit"
            status["failed"] = 1
            status["conditions"] = [
                condition("FailureTarget", "BackoffLimitExceeded", message),
                condition("Failed", "BackoffLimitExceeded", message),
            ]
        else:
            message = "Reached expected number of succeeded pods"
            status.update(succeeded=1, completionTime=now)
            status["conditions"] = [
                condition("SuccessCriteriaMet", "CompletionsReached", message),
                condition("Complete", "CompletionsReached", message),
            ]
        self._write_status(key, status)
