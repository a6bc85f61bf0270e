"""An OPTIONAL Karpenter stand-in: nodes appear for unschedulable pods after a delay, up to a limit.

What it keeps of Karpenter's documented behaviour (karpenter.sh docs v1.6, concepts/nodepools and
concepts/scheduling; aws/karpenter-provider-aws website/content/en/v1.6):

- it acts on pods the scheduler marked unschedulable (``PodScheduled=False/Unschedulable``):
  "Nodepools launch nodes in response to pods that are unschedulable";
- a pool is used only for pods that tolerate its taints and whose node selector / required node
  affinity its nodes satisfy ("If Karpenter encounters a taint in the NodePool that is not tolerated
  by a Pod, Karpenter won't use that NodePool"; "a pod's requirements must be within the NodePool's
  requirements"), and only when an empty node of the pool's type would fit the pod; pools are
  tried in the order given (Karpenter's ``weight``, highest first);
- pending pods are packed onto as few new nodes as possible (first fit over the nodes still
  launching, then a new node), and a pool never grows past ``max_nodes`` counting launching nodes
  ("Limits prevent Karpenter from creating new instances once the limit is exceeded");
- a launched node registers ``delay_seconds`` later with the pool's labels
  (``karpenter.sh/nodepool``, ``karpenter.sh/capacity-type``) and the Neuron taint;
- an instance type can be made unavailable (``set_available``), as an insufficient-capacity error
  makes it: nothing of that type launches until it is available again (Karpenter caches the
  unavailable offering for 3 minutes and retries; here the caller decides when it returns).
  Nodes already registered stay unless ``remove_nodes`` takes them away (an outage);
- with ``consolidate_after`` set, a node this provisioner launched that has had no bound pod for
  that long is deleted (``consolidationPolicy: WhenEmpty`` with ``consolidateAfter``).

Not modelled: NodeClaim objects, spot interruption, drift, expiry, price-based instance choice,
the 15-minute registration timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from neuronfleet.kube_emulator import nodes, scheduling
from neuronfleet.kube_emulator.passes import PassController
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.scheduler import is_unschedulable
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent

__all__ = ["Pool", "Provisioner", "create_node"]


@dataclasses.dataclass(frozen=True)
class Pool:
    """One NodePool of a single instance type."""

    name: str
    instance_type: str
    max_nodes: int
    capacity_type: str = "on-demand"
    ephemeral_storage_gib: int = 2000

    @property
    def shape(self) -> nodes.NodeShape:
        return nodes.NodeShape.of(self.instance_type, ephemeral_storage_gib=self.ephemeral_storage_gib)


def create_node(store: Store, node: Mapping[str, Any]) -> dict[str, Any]:
    """Create a Node with its status (the status subresource is written after the object)."""
    info = nodes.serve_nodes(store)
    body = {k: v for k, v in node.items() if k != "status"}
    store.create(info, None, body)
    status = {"status": node.get("status") or {}}
    return store.patch(info, None, node["metadata"]["name"], PatchType.MERGE, status, subresource="status")


@dataclasses.dataclass
class _Launch:
    pool: Pool
    name: str
    template: dict[str, Any]
    claimed: list[dict[str, Any]]
    handle: asyncio.TimerHandle | None = None


class Provisioner(PassController):
    """Launches nodes for unschedulable pods (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        pools: Sequence[Pool],
        *,
        delay_seconds: float,
        consolidate_after: float | None = None,
    ) -> None:
        super().__init__(store)
        self.pools = tuple(pools)
        self.delay_seconds = delay_seconds
        self.consolidate_after = consolidate_after
        self.launched: int = 0
        self.unavailable: set[str] = set()
        self._pods: ResourceInfo = store.resource("", "v1", "pods")
        self._nodes: ResourceInfo = nodes.serve_nodes(store)
        self._launching: dict[str, _Launch] = {}
        self._empty_since: dict[str, asyncio.TimerHandle] = {}
        self._serial = itertools.count(1)

    def _stop(self) -> None:
        for launch in self._launching.values():
            if launch.handle is not None:
                launch.handle.cancel()
        for handle in self._empty_since.values():
            handle.cancel()
        self._launching.clear()
        self._empty_since.clear()

    def set_available(self, instance_type: str, available: bool) -> None:
        """Make an instance type launchable or not (an insufficient-capacity outage)."""
        if available:
            self.unavailable.discard(instance_type)
            self._wake()
        else:
            self.unavailable.add(instance_type)

    def remove_nodes(self, instance_type: str) -> list[str]:
        """Delete every node of a type (an outage takes them away); returns their names."""
        gone = []
        for node in list(self.store.objects(self._nodes)):
            labels = node["metadata"].get("labels") or {}
            if labels.get(nodes.INSTANCE_TYPE_LABEL) == instance_type:
                with contextlib.suppress(ApiError):
                    self.store.delete(self._nodes, None, node["metadata"]["name"])
                    gone.append(node["metadata"]["name"])
        return gone

    def nodes_of(self, pool: Pool) -> list[dict[str, Any]]:
        """Registered nodes of a pool."""
        return [
            n
            for n in self.store.objects(self._nodes)
            if (n["metadata"].get("labels") or {}).get(nodes.NODEPOOL_LABEL) == pool.name
        ]

    def launching(self, pool: Pool | None = None) -> int:
        """Nodes launched and not registered yet (of one pool, or all)."""
        return sum(1 for launch in self._launching.values() if pool is None or launch.pool == pool)

    # -- events -----------------------------------------------------------------------------

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        if info.storage_key == self._pods.storage_key:
            if event.type != "DELETED" and is_unschedulable(event.obj):
                self._wake()
            if self.consolidate_after is not None:
                self._wake()

    # -- one pass ---------------------------------------------------------------------------

    def _pass(self) -> None:
        pods = self.store.objects(self._pods)
        pending = [
            p
            for p in pods
            if is_unschedulable(p)
            and not (p.get("spec") or {}).get("nodeName")
            and not p["metadata"].get("deletionTimestamp")
        ]
        for pod in pending:
            if self._claimed_by_uid(pod):
                continue
            self._provision_for(pod)
        if self.consolidate_after is not None:
            self._consolidate(pods)

    def _claimed_by_uid(self, pod: Mapping[str, Any]) -> bool:
        uid = pod["metadata"].get("uid")
        return any(p["metadata"].get("uid") == uid for launch in self._launching.values() for p in launch.claimed)

    def _provision_for(self, pod: dict[str, Any]) -> None:
        for launch in self._launching.values():  # first fit onto nodes already on their way
            if not scheduling.unfit_reasons(pod, launch.template, launch.claimed):
                launch.claimed.append(pod)
                return
        for pool in self.pools:
            if pool.instance_type in self.unavailable:
                continue
            if len(self.nodes_of(pool)) + self.launching(pool) >= pool.max_nodes:
                continue
            name = f"{pool.name}-{next(self._serial):05d}"
            template = nodes.node_object(name, pool.shape, capacity_type=pool.capacity_type, nodepool=pool.name)
            if scheduling.unfit_reasons(pod, template):
                continue
            launch = _Launch(pool, name, template, [pod])
            assert self._loop is not None
            launch.handle = self._loop.call_later(self.delay_seconds, self._register, name)
            self._launching[name] = launch
            self.launched += 1
            return

    def _register(self, name: str) -> None:
        launch = self._launching.pop(name, None)
        if launch is None:
            return
        if launch.pool.instance_type in self.unavailable:
            self._wake()  # the capacity went away while launching: try again for its pods
            return
        with contextlib.suppress(ApiError):
            create_node(self.store, launch.template)
        self._wake()

    # -- consolidation ----------------------------------------------------------------------

    def _consolidate(self, pods: list[dict[str, Any]]) -> None:
        busy = {(p.get("spec") or {}).get("nodeName") for p in pods}
        mine = [n["metadata"]["name"] for pool in self.pools for n in self.nodes_of(pool)]
        for name in mine:
            if name in busy:
                handle = self._empty_since.pop(name, None)
                if handle is not None:
                    handle.cancel()
            elif name not in self._empty_since and self._loop is not None and self.consolidate_after is not None:
                self._empty_since[name] = self._loop.call_later(self.consolidate_after, self._remove_if_empty, name)

    def _remove_if_empty(self, name: str) -> None:
        self._empty_since.pop(name, None)
        if any((p.get("spec") or {}).get("nodeName") == name for p in self.store.objects(self._pods)):
            return
        with contextlib.suppress(ApiError):
            self.store.delete(self._nodes, None, name)
