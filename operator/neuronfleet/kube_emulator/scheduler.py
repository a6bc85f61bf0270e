"""An OPTIONAL kube-scheduler stand-in: binds pending pods where they fit, or says why not.

Like the other emulator controllers it runs in the emulator's event loop directly on the store
and is off unless a test or the demo starts it. What it does, as kube-scheduler does it:

- it considers pods with no ``spec.nodeName`` whose ``spec.schedulerName`` it serves (by default
  ``default-scheduler`` and ``my-scheduler``, the name the Neuron scheduler extension is installed
  under, which the renderer sets for multi-core pods; reference/neuron-vllm.md section 2), oldest
  first;
- a pod that fits (``scheduling.unfit_reasons`` is empty) on a node is bound to the first such node
  in name order, with the effect of the ``pods/binding`` subresource: ``spec.nodeName`` is set and
  the ``PodScheduled`` condition becomes True (kubernetes/kubernetes pkg/registry/core/pod/storage,
  BindingREST/assignPod). Scoring is not modelled;
- a pod that fits nowhere stays Pending with ``PodScheduled=False``, reason ``Unschedulable`` and
  the FitError message, and gets a ``Warning FailedScheduling`` Event with the same message
  (pkg/scheduler/schedule_one.go, handleSchedulingFailure: ``Eventf(pod, nil, Warning,
  "FailedScheduling", "Scheduling", msg)`` and ``updatePod`` with the condition). The condition's
  lastTransitionTime moves only when its status changes (podutil.UpdatePodCondition); repeated
  identical events are counted on one Event, as the event recorder aggregates them;
- unschedulable pods are retried when the cluster changes in a way that may help (a node added or
  changed, a bound pod gone), as the scheduling queue moves them back to the active queue on those
  cluster events, and every ``retry_seconds`` (the queue flushes unschedulable pods after at most
  5 minutes, podMaxInUnschedulablePodsDuration).

Events are core/v1 Events (what ``kubectl describe pod`` and ``kubectl get events`` list); on a
real cluster the scheduler writes events.k8s.io/v1 Events, which the API server serves under both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from neuronfleet.kube_emulator import nodes, scheduling
from neuronfleet.kube_emulator.passes import PassController
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent, utc_now

__all__ = ["DEFAULT_SCHEDULERS", "Scheduler", "bind", "is_unschedulable", "pod_scheduled"]

DEFAULT_SCHEDULERS = ("default-scheduler", "my-scheduler")
_DONE_PHASES = ("Succeeded", "Failed")


def _now() -> str:
    return utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_scheduled(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod's PodScheduled condition, if any."""
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "PodScheduled":
            return cond
    return None


def is_unschedulable(pod: Mapping[str, Any]) -> bool:
    """Pending for lack of a fitting node: PodScheduled=False with reason Unschedulable."""
    cond = pod_scheduled(pod)
    return bool(cond) and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def _with_condition(pod: Mapping[str, Any], condition: dict[str, Any], now: str) -> list[dict[str, Any]]:
    """The pod's conditions with `condition` upserted (transition time kept while the status holds)."""
    out: list[dict[str, Any]] = []
    found = False
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") != condition["type"]:
            out.append(dict(cond))
            continue
        found = True
        same = cond.get("status") == condition["status"]
        out.append({**condition, "lastTransitionTime": cond.get("lastTransitionTime", now) if same else now})
    if not found:
        out.append({**condition, "lastTransitionTime": now})
    return out


def bind(store: Store, pod: Mapping[str, Any], node_name: str) -> dict[str, Any]:
    """Bind `pod` to `node_name` as the pods/binding subresource does; 409 if it is bound already."""
    pods = store.resource("", "v1", "pods")
    meta = pod["metadata"]
    namespace, name = meta.get("namespace", ""), meta["name"]
    current = store.get(pods, namespace, name)
    assigned = (current.get("spec") or {}).get("nodeName")
    if assigned:
        raise ApiError(409, "Conflict", f'pod {name} is already assigned to node "{assigned}"', name=name, info=pods)
    store.patch(pods, namespace, name, PatchType.MERGE, {"spec": {"nodeName": node_name}})
    bound = store.get(pods, namespace, name)
    conditions = _with_condition(bound, {"type": "PodScheduled", "status": "True", "lastProbeTime": None}, _now())
    return store.patch(
        pods, namespace, name, PatchType.MERGE, {"status": {"conditions": conditions}}, subresource="status"
    )


class Scheduler(PassController):
    """Binds pending pods to nodes (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        scheduler_names: Iterable[str] = DEFAULT_SCHEDULERS,
        post_filter_message: str = "",
        legacy_taints: bool = False,
        retry_seconds: float = 300.0,
    ) -> None:
        super().__init__(store)
        self.scheduler_names = frozenset(scheduler_names)
        self.post_filter_message = post_filter_message
        self.legacy_taints = legacy_taints
        self.retry_seconds = retry_seconds
        self.bound: int = 0
        self.failed_attempts: int = 0
        self._pods: ResourceInfo = store.resource("", "v1", "pods")
        self._nodes: ResourceInfo = nodes.serve_nodes(store)
        self._events: ResourceInfo = store.resource("", "v1", "events")
        self._retry: asyncio.TimerHandle | None = None

    def _stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        if info.storage_key == self._nodes.storage_key:
            self._wake()
        elif info.storage_key == self._pods.storage_key:
            spec = event.obj.get("spec") or {}
            if event.type == "DELETED" and spec.get("nodeName"):
                self._wake()  # room was freed
            elif (
                event.type != "DELETED"
                and self._wants(event.obj)
                and (event.type == "ADDED" or not is_unschedulable(event.obj))
            ):
                self._wake()

    def _wants(self, pod: Mapping[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or pod["metadata"].get("deletionTimestamp"):
            return False
        if (pod.get("status") or {}).get("phase") in _DONE_PHASES:
            return False
        return (spec.get("schedulerName") or "default-scheduler") in self.scheduler_names

    # -- one pass ---------------------------------------------------------------------------

    def _pass(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        all_pods = self.store.objects(self._pods)
        pending = sorted(
            (p for p in all_pods if self._wants(p)),
            key=lambda p: (p["metadata"].get("creationTimestamp", ""), int(p["metadata"]["resourceVersion"])),
        )
        if not pending:
            return
        node_list = sorted(self.store.objects(self._nodes), key=lambda n: n["metadata"]["name"])
        bound_on: dict[str, list[dict[str, Any]]] = {n["metadata"]["name"]: [] for n in node_list}
        for pod in all_pods:
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name in bound_on and (pod.get("status") or {}).get("phase") not in _DONE_PHASES:
                bound_on[node_name].append(pod)
        left = False
        for pod in pending:
            placed = self._place(pod, node_list, bound_on)
            left = left or not placed
        if left and self._loop is not None and self.retry_seconds > 0:
            self._retry = self._loop.call_later(self.retry_seconds, self._wake)

    def _place(
        self, pod: dict[str, Any], node_list: list[dict[str, Any]], bound_on: dict[str, list[dict[str, Any]]]
    ) -> bool:
        reasons: dict[str, list[str]] = {}
        for node in node_list:
            name = node["metadata"]["name"]
            why = scheduling.unfit_reasons(pod, node, bound_on[name], legacy_taints=self.legacy_taints)
            if not why:
                try:
                    bind(self.store, pod, name)
                except ApiError:
                    return True  # bound or deleted meanwhile: nothing left to do for it
                bound_on[name].append(pod)
                self.bound += 1
                return True
            reasons[name] = why
        message = scheduling.fit_error_message(len(node_list), reasons, self.post_filter_message)
        self._unschedulable(pod, message)
        return False

    def _unschedulable(self, pod: dict[str, Any], message: str) -> None:
        self.failed_attempts += 1
        meta = pod["metadata"]
        now = _now()
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
        }
        old = pod_scheduled(pod) or {}
        if (old.get("status"), old.get("reason"), old.get("message")) != ("False", "Unschedulable", message):
            status: dict[str, Any] = {"conditions": _with_condition(pod, condition, now)}
            if not (pod.get("status") or {}).get("phase"):
                status["phase"] = "Pending"
            with contextlib.suppress(ApiError):
                self.store.patch(
                    self._pods,
                    meta.get("namespace", ""),
                    meta["name"],
                    PatchType.MERGE,
                    {"status": status},
                    subresource="status",
                )
        self._event(pod, message, now)

    def _event(self, pod: Mapping[str, Any], message: str, now: str) -> None:
        """One Warning FailedScheduling Event per (pod, message), its count bumped on repeats."""
        meta = pod["metadata"]
        namespace = meta.get("namespace", "")
        digest = hashlib.sha256(f"{meta.get('uid')}/{message}".encode()).hexdigest()[:16]
        name = f"{meta['name']}.{digest}"
        existing = self.store.try_get(self._events, namespace, name)
        with contextlib.suppress(ApiError):
            if existing is not None:
                self.store.patch(
                    self._events,
                    namespace,
                    name,
                    PatchType.MERGE,
                    {"count": int(existing.get("count") or 1) + 1, "lastTimestamp": now},
                )
                return
            component = (pod.get("spec") or {}).get("schedulerName") or "default-scheduler"
            self.store.create(
                self._events,
                namespace,
                {
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "namespace": namespace,
                        "name": meta["name"],
                        "uid": meta.get("uid"),
                    },
                    "type": "Warning",
                    "reason": "FailedScheduling",
                    "action": "Scheduling",
                    "message": message,
                    "source": {"component": component},
                    "reportingComponent": component,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                },
            )
