"""A simulated Neuron node pool: the Deployment controller and kubelet stand-in of the demo.

The emulator is only an API server, so something has to do what kube-controller-manager and the
kubelets do in a cluster, or a Deployment the operator creates would never get a pod. This does
it, in the emulator's event loop and directly on its store (as an in-process controller would):

- for every Deployment, keep ``spec.replicas`` Pods of the current pod template; scale down by
  deleting unscheduled pods first, then the youngest not-ready ones; roll a changed template one
  pod at a time within ``maxUnavailable`` (``maxSurge`` is taken as 0: the renderer's default, since
  spare Neuron capacity is rare); pods are owned by their Deployment directly (there are no
  ReplicaSets); the decisions are ``kube_emulator.rollout``'s;
- with ``scheduled=True`` (what the demo runs) a pod is created without a node and waits for the
  emulator's scheduler (``kube_emulator.scheduler``) to bind it: a pod no node has room for stays
  Pending with the scheduler's reason, and its replica only starts once it is bound, so startup
  counts from the node being there (node provisioning included). Without it every pod is put on
  ``node_name`` at once;
- for every bound Pod, start a :class:`~neuronfleet.demo.replica.SimulatedReplica` on its own
  loopback port (``podIP`` 127.0.0.1, the port in the annotation ``neuronfleet.io/demo-endpoint``),
  mark the pod Running, then Ready once the replica answers healthy (the startup probe), as a
  kubelet would;
- keep the Deployment's status current (``replicas``, ``updatedReplicas``, ``readyReplicas``,
  ``availableReplicas``, ``observedGeneration``, the Available and Progressing conditions), and
  the fleet's Service endpoints (the router) and Prometheus' targets in step with ready pods.

A pod deleted by hand (``kubectl delete pod``) stops its replica and gets a replacement, like a
ReplicaSet does. The emulator's simple DeploymentController must stay off while this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from neuronfleet.demo.clock import CompressedClock
from neuronfleet.demo.prometheus import Target, pod_target_labels
from neuronfleet.demo.replica import SimulatedReplica
from neuronfleet.demo.router import Router
from neuronfleet.kube_emulator import ApiError, PatchType, Store, kubelet, rollout
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.rollout import (
    PodView,
    deployment_status,
    max_unavailable,
    pod_body,
    pods_to_remove,
    status_differs,
    template_hash,
)
from neuronfleet.kube_emulator.store import WatchEvent, utc_now
from neuronfleet.sim.profiles import LLAMA_8B_TRN2_TP4, PROFILES, EngineProfile

__all__ = [
    "ENDPOINT_ANNOTATION",
    "NodePool",
    "ReplicaSettings",
    "deployment_status",
    "max_unavailable",
    "pods_to_remove",
    "replica_settings",
    "template_hash",
]

ENDPOINT_ANNOTATION = "neuronfleet.io/demo-endpoint"
HASH_LABEL = rollout.HASH_LABEL
_IMAGE = "neuronfleet-demo/simulated-vllm-neuron"
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ReplicaSettings:
    """What a replica needs from its pod template."""

    profile: EngineProfile
    served_name: str
    max_model_len: int


def _arg(args: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def replica_settings(template: Mapping[str, Any]) -> ReplicaSettings:
    """Engine profile, served name and context length from the vLLM container's `vllm serve` args.

    The profile is the calibrated one whose model the args serve (see `neuronfleet.sim.profiles`),
    else Llama-3.1-8B on trn2; `--max-num-seqs` and `--max-num-batched-tokens` override its batch
    limits, so the replica schedules like the vLLM the operator configured.
    """
    containers = (template.get("spec") or {}).get("containers") or [{}]
    args = [str(a) for a in (containers[0].get("args") or [])]
    source = args[2] if len(args) > 2 and args[:2] == ["vllm", "serve"] else ""
    profile = next((p for p in PROFILES.values() if p.model in source), LLAMA_8B_TRN2_TP4)
    overrides: dict[str, int] = {}
    for flag, name in (("--max-num-seqs", "max_num_seqs"), ("--max-num-batched-tokens", "max_num_batched_tokens")):
        value = _arg(args, flag)
        if value and value.isdigit():
            overrides[name] = int(value)
    if overrides:
        profile = dataclasses.replace(profile, **overrides)
    served = _arg(args, "--served-model-name") or source or profile.model
    length = _arg(args, "--max-model-len")
    return ReplicaSettings(profile, served, int(length) if length and length.isdigit() else 8192)


def _now() -> str:
    return utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(eq=False)
class _Pod:
    name: str
    namespace: str
    deployment: str
    template_hash: str
    labels: dict[str, str]
    created: float
    settings: ReplicaSettings
    replica: SimulatedReplica | None = None  # started once the pod is bound to a node
    ready: bool = False
    waiter: asyncio.Task[None] | None = None

    def view(self) -> PodView:
        return PodView(self.name, self.template_hash, self.ready, self.created, scheduled=self.waiter is not None)


RouterFor = Callable[[str, str], "Router | None"]


class NodePool:
    """Pods and replicas for every Deployment in the store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: CompressedClock,
        startup_seconds: float,
        router_for: RouterFor,
        on_targets: Callable[[list[Target]], None] | None = None,
        grace_seconds: float = 2.0,
        node_name: str = "sim-neuron-node",
        scheduled: bool = False,
    ) -> None:
        self.store = store
        self.clock = clock
        self.startup_seconds = startup_seconds
        self.router_for = router_for
        self.on_targets = on_targets
        self.grace_seconds = grace_seconds
        self.node_name = node_name
        self.scheduled = scheduled
        self.pods: dict[tuple[str, str], _Pod] = {}
        self.started_replicas = 0
        self.addresses_used: set[str] = set()
        self._deployments: ResourceInfo = store.resource("apps", "v1", "deployments")
        self._pod_info: ResourceInfo = store.resource("", "v1", "pods")
        self._dirty: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self._serial = 0.0
        self._closing = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> NodePool:
        """Start acting; call from the emulator's event loop."""
        self.store.add_listener(self._on_event)
        for obj in self.store.objects(self._deployments):
            self._mark(obj)
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="node-pool")
        return self

    async def stop(self) -> None:
        """Stop every replica (in-flight requests get the grace period) and forget the pods."""
        self._closing = True
        with contextlib.suppress(ValueError):
            self.store.remove_listener(self._on_event)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for pod in list(self.pods.values()):
            self._forget(pod, delete_object=False)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
        self._publish_targets()

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        if self._closing:
            return
        if info.storage_key == self._deployments.storage_key:
            self._mark(event.obj)
        elif info.storage_key == self._pod_info.storage_key and event.type != "DELETED":
            meta = event.obj["metadata"]
            pod = self.pods.get((meta.get("namespace", ""), meta["name"]))
            node = (event.obj.get("spec") or {}).get("nodeName")
            if pod is not None and node and pod.waiter is None:  # the scheduler bound it: start the replica
                pod.waiter = asyncio.get_running_loop().create_task(self._run(pod), name=f"run-{pod.name}")
        elif info.storage_key == self._pod_info.storage_key and event.type == "DELETED":
            meta = event.obj["metadata"]
            pod = self.pods.get((meta.get("namespace", ""), meta["name"]))
            if pod is not None:  # deleted by someone else: stop it, the next pass replaces it
                asyncio.get_running_loop().call_soon(self._forget, pod, False)
                self._dirty.add((pod.namespace, pod.deployment))
                self._wake.set()

    def _mark(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        self._dirty.add((meta.get("namespace", ""), meta["name"]))
        self._wake.set()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                key = self._dirty.pop()
                try:
                    await self._sync(*key)
                except ApiError as exc:  # a conflicting write: the event it caused brings us back
                    log.debug("Node pool pass for %s/%s failed: %s", *key, exc)
                    self._dirty.add(key)
                    await asyncio.sleep(0.05)

    # -- one pass over one Deployment -------------------------------------------------------

    async def _sync(self, namespace: str, name: str) -> None:
        deployment = self.store.try_get(self._deployments, namespace, name)
        mine = [p for p in self.pods.values() if (p.namespace, p.deployment) == (namespace, name)]
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            for pod in mine:
                self._forget(pod, delete_object=True)
            return
        spec = deployment.get("spec") or {}
        template = spec.get("template") or {}
        desired = int(spec.get("replicas", 1))
        current = template_hash(template)
        doomed = pods_to_remove(
            [p.view() for p in mine],
            desired=desired,
            current_hash=current,
            max_unavailable=max_unavailable(deployment, desired),
        )
        for pod in mine:
            if pod.name in doomed:
                self._forget(pod, delete_object=True)
        mine = [p for p in mine if p.name not in doomed]
        # With maxSurge 0, new pods only fill the room that removals left.
        while len(mine) < desired:
            mine.append(await self._create_pod(deployment, template, current))
        self._write_status(deployment, mine, current)

    async def _create_pod(self, deployment: Mapping[str, Any], template: Mapping[str, Any], current: str) -> _Pod:
        meta = deployment["metadata"]
        namespace, owner = meta.get("namespace", ""), meta["name"]
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        name = f"{owner}-{current}-{suffix}"
        body = pod_body(deployment, template, name, current)
        if not self.scheduled:
            body["spec"]["nodeName"] = self.node_name
        labels = body["metadata"]["labels"]
        self._serial += 1
        pod = _Pod(name, namespace, owner, current, labels, self._serial, replica_settings(template))
        self.pods[(namespace, name)] = pod
        self.store.create(self._pod_info, namespace, body)
        if self.scheduled:
            self._patch_pod(pod, {"phase": "Pending"})
        else:
            pod.waiter = asyncio.get_running_loop().create_task(self._run(pod), name=f"run-{name}")
        return pod

    async def _run(self, pod: _Pod) -> None:
        """The kubelet's part: start the replica of a bound pod, report Running, then Ready."""
        settings = pod.settings
        replica = await SimulatedReplica(
            profile=settings.profile,
            clock=self.clock,
            served_name=settings.served_name,
            startup_seconds=self.startup_seconds,
            max_model_len=settings.max_model_len,
        ).start()
        if (pod.namespace, pod.name) not in self.pods:
            await replica.stop(grace=0)
            return
        pod.replica = replica
        self.started_replicas += 1
        self.addresses_used.add(replica.address)
        with contextlib.suppress(ApiError):
            self.store.patch(
                self._pod_info,
                pod.namespace,
                pod.name,
                PatchType.MERGE,
                {"metadata": {"annotations": {ENDPOINT_ANNOTATION: replica.address}}},
            )
        started_at = _now()
        self._patch_pod(pod, self._running(pod, ready=False, started_at=started_at, now=started_at))
        self._publish_targets()
        self._dirty.add((pod.namespace, pod.deployment))
        self._wake.set()
        await self._await_ready(pod, started_at)

    async def _await_ready(self, pod: _Pod, started_at: str) -> None:
        assert pod.replica is not None
        await pod.replica.ready_event.wait()
        if (pod.namespace, pod.name) not in self.pods:
            return
        pod.ready = True
        self._patch_pod(pod, self._running(pod, ready=True, started_at=started_at, now=_now()))
        router = self.router_for(pod.namespace, pod.deployment)
        if router is not None:
            router.set_endpoint(pod.name, pod.replica.address)
        self._dirty.add((pod.namespace, pod.deployment))
        self._wake.set()

    def _forget(self, pod: _Pod, delete_object: bool) -> None:
        """Take the pod out of the Service and Prometheus, delete its object, drain and stop its replica."""
        if self.pods.pop((pod.namespace, pod.name), None) is None:
            return
        router = self.router_for(pod.namespace, pod.deployment)
        if router is not None:
            router.remove_endpoint(pod.name)
        if pod.waiter is not None:
            if pod.replica is not None:
                pod.waiter.cancel()
            else:  # still starting its replica: `_run` sees the pod gone and stops it; wait for that
                self._draining.add(pod.waiter)
                pod.waiter.add_done_callback(self._draining.discard)
        if delete_object:
            with contextlib.suppress(ApiError):
                self.store.delete(self._pod_info, pod.namespace, pod.name)
        self._publish_targets()
        if pod.replica is None:
            return
        task = asyncio.get_running_loop().create_task(pod.replica.stop(grace=self.grace_seconds))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _running(self, pod: _Pod, *, ready: bool, started_at: str, now: str) -> dict[str, Any]:
        live = self.store.try_get(self._pod_info, pod.namespace, pod.name)
        return kubelet.running_status(ready=ready, started_at=started_at, now=now, image=_IMAGE, pod=live)

    def _patch_pod(self, pod: _Pod, status: dict[str, Any]) -> None:
        with contextlib.suppress(ApiError):
            self.store.patch(
                self._pod_info, pod.namespace, pod.name, PatchType.MERGE, {"status": status}, subresource="status"
            )

    def _write_status(self, deployment: Mapping[str, Any], pods: Sequence[_Pod], current: str) -> None:
        previous = deployment.get("status") or {}
        status = deployment_status(
            deployment, [p.view() for p in pods], current_hash=current, previous=previous, now=_now()
        )
        if not status_differs(status, previous):
            return
        meta = deployment["metadata"]
        self.store.patch(
            self._deployments,
            meta.get("namespace", ""),
            meta["name"],
            PatchType.MERGE,
            {"status": status},
            subresource="status",
        )

    def _publish_targets(self) -> None:
        if self.on_targets is not None:
            self.on_targets(self.targets())

    def targets(self) -> list[Target]:
        """One scrape target per running pod, labelled as Kubernetes relabeling would label it."""
        return [
            Target(p.replica.address, pod_target_labels(p.namespace, p.name, p.labels))
            for p in sorted(self.pods.values(), key=lambda p: p.created)
            if p.replica is not None
        ]

    def counts(self, namespace: str, deployment: str) -> tuple[int, int]:
        """(pods, ready pods) of one Deployment, straight from the pool."""
        mine = [p for p in self.pods.values() if (p.namespace, p.deployment) == (namespace, deployment)]
        return len(mine), sum(1 for p in mine if p.ready)
