"""OPTIONAL stand-in for the LeaderWorkerSet controller: groups of leader and worker pods, and LWS status.

Like the other stand-ins in `controllers.py`, tests switch it on and say so. It is simpler than the
real controller, which drives a leader StatefulSet plus one worker StatefulSet per group: here the
pods are made directly, owned by the LeaderWorkerSet (so the emulator's GarbageCollector removes
them with it). What it keeps of the real API (kubernetes-sigs/lws; tests/lws_facts.py has the same
facts with their sources):

- pods of group g: leader `<lws>-<g>`, workers `<lws>-<g>-<i>` for i in 1..size-1; labels
  `leaderworkerset.sigs.k8s.io/{name, group-index, worker-index (leader 0), group-key,
  template-revision-hash}` over the template's own, annotation `leaderworkerset.sigs.k8s.io/size`
  (and `leader-name` on workers), `hostname` = the pod name and `subdomain` = the LWS name, and
  `LWS_LEADER_ADDRESS=<lws>-<g>.<lws>.<namespace>`, `LWS_GROUP_SIZE`, `LWS_WORKER_INDEX` put in
  FRONT of every container's env (pkg/webhooks/pod_webhook.go, pkg/utils/pod);
- `restartPolicy: RecreateGroupOnPodRestart` (the default): a group that lost a pod is deleted and
  made again, all of it; `None`/`Default` recreate only the missing pod;
- scaling: groups 0..replicas-1 exist, higher ones are deleted;
- a changed leaderWorkerTemplate is a new revision: groups are replaced from the highest index
  down, at most `maxUnavailable` (default 1) groups unready at once;
- status (pkg/controllers/leaderworkerset_controller.go, updateStatus/updateConditions):
  `replicas` = groups whose leader exists, `readyReplicas` = groups whose pods are all running and
  ready, `updatedReplicas` = groups entirely on the current revision, `hpaPodSelector` =
  `leaderworkerset.sigs.k8s.io/name=<lws>,leaderworkerset.sigs.k8s.io/worker-index=0`; conditions
  UpdateInProgress+Progressing while groups are outdated, Available when all groups are ready and
  updated, else Progressing, with the upstream reasons and messages, set with upstream's rule
  (a True condition excludes the other of Available vs Progressing/UpdateInProgress by flipping it
  to False); an Event with the condition's reason and message `<message>, with N groups ready of
  total M groups` when conditions change. Like upstream at that revision, observedGeneration is
  never written.

Pods become Running and Ready `ready_delay` seconds after they are created (no scheduler, no
kubelet); `mark_ready=False` leaves that to something else (a simulated node pool). No
StatefulSets, ControllerRevisions, headless Service, startupPolicy LeaderReady, partition or
maxSurge.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any, Self

from neuronfleet.kube_emulator import leaderworkerset
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent, utc_now

__all__ = ["CONDITIONS", "LeaderWorkerSetController", "hpa_pod_selector"]

_PREFIX = "leaderworkerset.sigs.k8s.io/"
NAME_LABEL = _PREFIX + "name"
GROUP_INDEX_LABEL = _PREFIX + "group-index"
WORKER_INDEX_LABEL = _PREFIX + "worker-index"
GROUP_KEY_LABEL = _PREFIX + "group-key"
REVISION_LABEL = _PREFIX + "template-revision-hash"
SIZE_ANNOTATION = _PREFIX + "size"
LEADER_NAME_ANNOTATION = _PREFIX + "leader-name"

# condition type -> (reason, message), as upstream's makeCondition writes them.
CONDITIONS: dict[str, tuple[str, str]] = {
    "Available": ("AllGroupsReady", "All replicas are ready"),
    "Progressing": ("GroupsProgressing", "Replicas are progressing"),
    "UpdateInProgress": ("GroupsUpdating", "Rolling Upgrade is in progress"),
}
_EXCLUSIVE = {frozenset({"Available", "Progressing"}), frozenset({"Available", "UpdateInProgress"})}
_STORAGE_KEY = (leaderworkerset.GROUP, leaderworkerset.PLURAL)
_POD_KEY = ("", "pods")


def hpa_pod_selector(name: str) -> str:
    """LWS's status.hpaPodSelector: its leaders, keys sorted as a label selector prints them."""
    return f"{NAME_LABEL}={name},{WORKER_INDEX_LABEL}=0"


def _now() -> str:
    return utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")


def _revision(spec: dict[str, Any]) -> str:
    template = spec.get("leaderWorkerTemplate") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _int_or_percent(value: Any, total: int, *, default: int) -> int:
    if value is None:
        return default
    text = str(value)
    if text.endswith("%"):
        return total * int(text[:-1]) // 100  # maxUnavailable rounds down (LWS RollingUpdateConfiguration)
    return int(text)


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return status.get("phase") == "Running" and ready


class LeaderWorkerSetController:
    """Makes and replaces the pods of LeaderWorkerSet groups and writes their status (see the module docstring)."""

    def __init__(self, store: Store, *, ready_delay: float = 0.0, delay: float = 0.0, mark_ready: bool = True) -> None:
        self.store = store
        self.ready_delay = ready_delay
        self.delay = delay
        self.mark_ready = mark_ready
        self._pending: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start; call from the emulator's event loop. The LWS kind may be installed before or after."""
        self._loop = asyncio.get_running_loop()
        info = self._info()
        if info is not None:
            for obj in self.store.objects(info):
                self._enqueue(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        self.store.add_listener(self._on_event)
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.remove_listener(self._on_event)
        for handle in [*self._pending.values(), *self._timers]:
            handle.cancel()
        self._pending.clear()
        self._timers.clear()

    def _info(self) -> ResourceInfo | None:
        try:
            return self.store.resource(leaderworkerset.GROUP, leaderworkerset.VERSION, leaderworkerset.PLURAL)
        except ApiError:
            return None

    def _pods(self) -> ResourceInfo:
        return self.store.resource("", "v1", "pods")

    # -- events ---------------------------------------------------------------------------------

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        meta = event.obj["metadata"]
        if info.storage_key == _STORAGE_KEY and event.type != "DELETED":
            self._enqueue(meta.get("namespace", ""), meta["name"])
        elif info.storage_key == _POD_KEY:
            owner = (meta.get("labels") or {}).get(NAME_LABEL)
            if owner:
                self._enqueue(meta.get("namespace", ""), owner)

    def _enqueue(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        if key in self._pending or self._loop is None:
            return
        self._pending[key] = self._loop.call_later(self.delay, self._fire, key)

    def _fire(self, key: tuple[str, str]) -> None:
        self._pending.pop(key, None)
        info = self._info()
        if info is None:
            return
        lws = self.store.try_get(info, *key)
        if lws is None or lws["metadata"].get("deletionTimestamp"):
            return
        with contextlib.suppress(ApiError):
            self._reconcile(info, lws)

    # -- the reconcile pass ---------------------------------------------------------------------

    def _group_pods(self, namespace: str, name: str) -> dict[int, list[dict[str, Any]]]:
        groups: dict[int, list[dict[str, Any]]] = {}
        for pod in self.store.objects(self._pods()):
            meta = pod["metadata"]
            pod_labels = meta.get("labels") or {}
            if meta.get("namespace") != namespace or pod_labels.get(NAME_LABEL) != name:
                continue
            if meta.get("deletionTimestamp"):
                continue
            groups.setdefault(int(pod_labels[GROUP_INDEX_LABEL]), []).append(pod)
        return groups

    def _reconcile(self, info: ResourceInfo, lws: dict[str, Any]) -> None:
        meta, spec = lws["metadata"], lws.get("spec") or {}
        namespace, name = meta.get("namespace", ""), meta["name"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("leaderWorkerTemplate") or {}
        size = int(template.get("size", 1))
        recreate_group = template.get("restartPolicy", "RecreateGroupOnPodRestart") in (
            "RecreateGroupOnPodRestart",
            "RecreateGroupAfterStart",
        )
        revision = _revision(spec)
        groups = self._group_pods(namespace, name)
        # Scale down: groups past replicas go, leader and workers.
        for index in [i for i in groups if i >= replicas]:
            self._delete(groups.pop(index))
        # A group that lost a pod restarts whole under RecreateGroupOnPodRestart.
        for index, pods in list(groups.items()):
            if recreate_group and 0 < len(pods) < size:
                self._delete(pods)
                groups.pop(index)
        # Rolling update: outdated groups, highest index first, maxUnavailable unready at a time.
        rolling = (spec.get("rolloutStrategy") or {}).get("rollingUpdateConfiguration") or {}
        max_unavailable = max(1, _int_or_percent(rolling.get("maxUnavailable"), replicas, default=1))
        unready = sum(1 for i in range(replicas) if i not in groups or not all(_ready(p) for p in groups[i]))
        for index in sorted(groups, reverse=True):
            if unready >= max_unavailable:
                break
            pods = groups[index]
            if any((p["metadata"].get("labels") or {}).get(REVISION_LABEL) != revision for p in pods):
                self._delete(pods)
                groups.pop(index)
                unready += 1
        # Create what is missing.
        for index in range(replicas):
            have = {int((p["metadata"].get("labels") or {})[WORKER_INDEX_LABEL]) for p in groups.get(index, [])}
            for worker in range(size):
                if worker not in have:
                    self._create_pod(lws, index, worker, size, revision)
        self._write_status(info, lws, revision)

    def _delete(self, pods: list[dict[str, Any]]) -> None:
        for pod in pods:
            with contextlib.suppress(ApiError):
                self.store.delete(self._pods(), pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _create_pod(self, lws: dict[str, Any], group: int, worker: int, size: int, revision: str) -> None:
        meta, spec = lws["metadata"], lws.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        template = spec.get("leaderWorkerTemplate") or {}
        pod_template = (template.get("leaderTemplate") if worker == 0 else None) or template.get("workerTemplate") or {}
        leader = f"{name}-{group}"
        pod_name = leader if worker == 0 else f"{leader}-{worker}"
        pod_meta = json.loads(json.dumps(pod_template.get("metadata") or {}))
        pod_spec = json.loads(json.dumps(pod_template.get("spec") or {}))
        group_key = hashlib.sha1(f"{namespace}/{leader}".encode(), usedforsecurity=False).hexdigest()
        labels = {
            **(pod_meta.get("labels") or {}),
            NAME_LABEL: name,
            GROUP_INDEX_LABEL: str(group),
            WORKER_INDEX_LABEL: str(worker),
            GROUP_KEY_LABEL: group_key,
            REVISION_LABEL: revision,
        }
        annotations = {**(pod_meta.get("annotations") or {}), SIZE_ANNOTATION: str(size)}
        if worker:
            annotations[LEADER_NAME_ANNOTATION] = leader
        lws_env = [
            {"name": "LWS_LEADER_ADDRESS", "value": f"{leader}.{name}.{namespace}"},
            {"name": "LWS_GROUP_SIZE", "value": str(size)},
            {"name": "LWS_WORKER_INDEX", "value": str(worker)},
        ]
        for key in ("containers", "initContainers"):
            for container in pod_spec.get(key) or []:
                container["env"] = [*lws_env, *(container.get("env") or [])]
        pod_spec["hostname"] = pod_name
        pod_spec["subdomain"] = name
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": lws["apiVersion"],
                        "kind": leaderworkerset.KIND,
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
        }
        try:
            self.store.create(self._pods(), namespace, body)
        except ApiError:
            return
        self.store.patch(
            self._pods(), namespace, pod_name, PatchType.MERGE, {"status": {"phase": "Pending"}}, subresource="status"
        )
        if self.mark_ready and self._loop is not None:
            self._timers.append(self._loop.call_later(self.ready_delay, self._mark_ready, namespace, pod_name, body))

    def _mark_ready(self, namespace: str, name: str, created: dict[str, Any]) -> None:
        pod = self.store.try_get(self._pods(), namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        if pod["metadata"]["labels"].get(REVISION_LABEL) != created["metadata"]["labels"][REVISION_LABEL]:
            return
        now = _now()
        status = {
            "phase": "Running",
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": now}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "startTime": now,
        }
        with contextlib.suppress(ApiError):
            self.store.patch(self._pods(), namespace, name, PatchType.MERGE, {"status": status}, subresource="status")

    # -- status ---------------------------------------------------------------------------------

    def _write_status(self, info: ResourceInfo, lws: dict[str, Any], revision: str) -> None:
        meta, spec = lws["metadata"], lws.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        replicas = int(spec.get("replicas", 1))
        size = int((spec.get("leaderWorkerTemplate") or {}).get("size", 1))
        groups = self._group_pods(namespace, name)
        created = sum(1 for i, pods in groups.items() if any(p["metadata"]["name"] == f"{name}-{i}" for p in pods))
        ready_groups = {i for i, pods in groups.items() if len(pods) == size and all(_ready(p) for p in pods)}
        updated_groups = {
            i
            for i, pods in groups.items()
            if len(pods) == size
            and all((p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision for p in pods)
        }
        current = [i for i in groups if i < replicas]
        if sum(1 for i in current if i in updated_groups) < len(current):
            wanted = ["UpdateInProgress", "Progressing"]
        elif len([i for i in ready_groups if i < replicas]) == replicas and all(i in updated_groups for i in current):
            wanted = ["Available"]
        else:
            wanted = ["Progressing"]
        status = dict(lws.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        changed = False
        for kind in wanted:
            changed = _set_condition(conditions, kind) or changed
        status.update(
            replicas=created,
            readyReplicas=len(ready_groups),
            updatedReplicas=len(updated_groups),
            hpaPodSelector=hpa_pod_selector(name),
            conditions=conditions,
        )
        if status != (lws.get("status") or {}):
            with contextlib.suppress(ApiError):
                self.store.patch(info, namespace, name, PatchType.MERGE, {"status": status}, subresource="status")
        if changed:
            reason, message = CONDITIONS[wanted[0]]
            self._event(lws, reason, f"{message}, with {len(ready_groups)} groups ready of total {replicas} groups")

    def _event(self, lws: dict[str, Any], reason: str, message: str) -> None:
        meta = lws["metadata"]
        events = self.store.resource("", "v1", "events")
        now = _now()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": lws["apiVersion"],
                "kind": leaderworkerset.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": "lws"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(ApiError):
            self.store.create(events, meta["namespace"], body)


def _set_condition(conditions: list[dict[str, Any]], kind: str) -> bool:
    """Upstream's setCondition for a True condition of `kind`: returns whether anything changed."""
    reason, message = CONDITIONS[kind]
    new = {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": _now()}
    found = changed = False
    for i, current in enumerate(conditions):
        if current.get("type") == kind:
            found = True
            if current.get("status") != "True":
                conditions[i] = new
                changed = True
        elif frozenset({current.get("type"), kind}) in _EXCLUSIVE and current.get("status") == "True":
            conditions[i] = {**current, "status": "False"}
            changed = True
    if not found:
        conditions.append(new)
        changed = True
    return changed
