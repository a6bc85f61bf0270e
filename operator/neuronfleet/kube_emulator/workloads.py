"""An OPTIONAL Deployment controller that creates Pods, for tests that run the emulator's scheduler.

``controllers.DeploymentController`` only writes a finished status; it creates no pod, so nothing
can be Pending for lack of capacity. This one does what the Deployment and ReplicaSet controllers
and the kubelets do, reduced to what scheduling needs:

- each Deployment gets ``spec.replicas`` Pods of its current template (owned by the Deployment:
  there are no ReplicaSets), created without ``spec.nodeName`` so the scheduler places them;
  extra pods are removed unscheduled first, then not ready, then youngest (``rollout.pods_to_remove``,
  the ReplicaSet controller's order), and a changed template rolls within ``maxUnavailable``;
- a pod bound to a node turns Running, and Ready ``ready_delay`` seconds after binding (the
  kubelet's startup probe succeeding); unbound pods stay Pending with the scheduler's condition;
- the Deployment's status counts the pods as the Deployment controller would
  (``rollout.deployment_status``).

Pods are named ``<deployment>-<template hash>-<5 chars>``. Use it instead of, never together with,
``controllers.DeploymentController`` or the demo's node pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

from neuronfleet.kube_emulator import kubelet, rollout
from neuronfleet.kube_emulator.passes import PassController
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent, utc_now

__all__ = ["HASH_LABEL", "PodDeploymentController"]

HASH_LABEL = rollout.HASH_LABEL
_IMAGE = "neuronfleet-emulator/pod"


def _now() -> str:
    return utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class _Tracked:
    created: float
    ready: bool = False
    timer: asyncio.TimerHandle | None = None


class PodDeploymentController(PassController):
    """Pods for every Deployment, placed by the scheduler (see the module docstring)."""

    def __init__(self, store: Store, *, ready_delay: float = 0.0) -> None:
        super().__init__(store)
        self.ready_delay = ready_delay
        self._deployments: ResourceInfo = store.resource("apps", "v1", "deployments")
        self._pods: ResourceInfo = store.resource("", "v1", "pods")
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._serial = itertools.count(1)
        for obj in store.objects(self._deployments):
            self._dirty.add((obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def _stop(self) -> None:
        for tracked in self._tracked.values():
            if tracked.timer is not None:
                tracked.timer.cancel()

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        if info.storage_key == self._deployments.storage_key:
            self._dirty.add((meta.get("namespace", ""), meta["name"]))
            self._wake()
        elif info.storage_key == self._pods.storage_key:
            owner = self._owner(event.obj)
            if owner is None:
                return
            key = (meta.get("namespace", ""), meta["name"])
            if event.type == "DELETED":
                tracked = self._tracked.pop(key, None)
                if tracked is not None and tracked.timer is not None:
                    tracked.timer.cancel()
            elif (event.obj.get("spec") or {}).get("nodeName") and key in self._tracked:
                assert self._loop is not None
                self._loop.call_soon(self._on_bound, key)  # listeners must not write synchronously
            self._dirty.add((meta.get("namespace", ""), owner))
            self._wake()

    @staticmethod
    def _owner(pod: Mapping[str, Any]) -> str | None:
        for ref in pod["metadata"].get("ownerReferences") or ():
            if ref.get("kind") == "Deployment" and ref.get("controller"):
                return str(ref.get("name"))
        return None

    def _on_bound(self, key: tuple[str, str]) -> None:
        tracked = self._tracked.get(key)
        pod = self.store.try_get(self._pods, *key)
        if tracked is None or pod is None or tracked.timer is not None or tracked.ready:
            return
        assert self._loop is not None
        started = _now()
        self._status(key, kubelet.running_status(ready=False, started_at=started, now=started, image=_IMAGE, pod=pod))
        tracked.timer = self._loop.call_later(self.ready_delay, self._ready, key, started)

    def _ready(self, key: tuple[str, str], started: str) -> None:
        tracked = self._tracked.get(key)
        pod = self.store.try_get(self._pods, *key)
        if tracked is None or pod is None:
            return
        tracked.ready = True
        self._status(key, kubelet.running_status(ready=True, started_at=started, now=_now(), image=_IMAGE, pod=pod))
        owner = self._owner(pod)
        if owner is not None:
            self._dirty.add((key[0], owner))
            self._wake()

    def _status(self, key: tuple[str, str], status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.store.patch(self._pods, key[0], key[1], PatchType.MERGE, {"status": status}, subresource="status")

    # -- one pass ---------------------------------------------------------------------------

    def _pass(self) -> None:
        while self._dirty:
            namespace, name = self._dirty.pop()
            with contextlib.suppress(ApiError):
                self._sync(namespace, name)

    def _mine(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.store.objects(self._pods)
            if p["metadata"].get("namespace") == namespace
            and self._owner(p) == name
            and not p["metadata"].get("deletionTimestamp")
        ]

    def _view(self, pod: Mapping[str, Any]) -> rollout.PodView:
        meta = pod["metadata"]
        tracked = self._tracked.get((meta.get("namespace", ""), meta["name"]))
        return rollout.PodView(
            meta["name"],
            (meta.get("labels") or {}).get(HASH_LABEL, ""),
            bool(tracked and tracked.ready),
            tracked.created if tracked else 0.0,
            scheduled=bool((pod.get("spec") or {}).get("nodeName")),
        )

    def _sync(self, namespace: str, name: str) -> None:
        deployment = self.store.try_get(self._deployments, namespace, name)
        mine = self._mine(namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            for pod in mine:
                self.store.delete(self._pods, namespace, pod["metadata"]["name"])
            return
        spec = deployment.get("spec") or {}
        template = spec.get("template") or {}
        desired = int(spec.get("replicas", 1))
        current = rollout.template_hash(template)
        views = [self._view(p) for p in mine]
        doomed = rollout.pods_to_remove(
            views, desired=desired, current_hash=current, max_unavailable=rollout.max_unavailable(deployment, desired)
        )
        for pod_name in doomed:
            self.store.delete(self._pods, namespace, pod_name)
        kept = [v for v in views if v.name not in doomed]
        while len(kept) < desired:
            kept.append(self._create(deployment, template, current))
        previous = deployment.get("status") or {}
        status = rollout.deployment_status(deployment, kept, current_hash=current, previous=previous, now=_now())
        if rollout.status_differs(status, previous):
            self.store.patch(
                self._deployments, namespace, name, PatchType.MERGE, {"status": status}, subresource="status"
            )

    def _create(self, deployment: Mapping[str, Any], template: Mapping[str, Any], current: str) -> rollout.PodView:
        meta = deployment["metadata"]
        namespace, owner = meta.get("namespace", ""), meta["name"]
        serial = next(self._serial)
        suffix = f"{serial:05x}"[-5:]
        name = f"{owner}-{current}-{suffix}"
        body = rollout.pod_body(deployment, template, name, current)
        self._tracked[(namespace, name)] = _Tracked(created=float(serial))
        self.store.create(self._pods, namespace, body)
        self._status((namespace, name), {"phase": "Pending"})
        return rollout.PodView(name, current, False, float(serial), scheduled=False)
