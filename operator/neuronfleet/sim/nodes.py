"""The simulated cluster's Neuron nodes: a scheduler's fit, a Karpenter stand-in's launches, consolidation.

What the fleet simulator needs of the cluster when capacity is finite, in the terms of the emulator's
scheduler and Karpenter stand-in (kube_emulator/scheduling.py, kube_emulator/provisioner.py), reduced to
counts:

- a node of a type offers `replicas_per_node` replica slots (one for a group pod, which takes the whole
  node's devices); a single-node replica binds to the first registered node of its type with a free slot
  (first fit in launch order, as the emulator's scheduler picks the first fitting node; the real default
  scoring, NodeResourcesFit LeastAllocated, spreads pods instead, which leaves fewer nodes empty for
  consolidation [simplification]), a group binds when
  `nodes_per_replica` empty registered nodes of its type exist, all at once [simplification: a
  LeaderWorkerSet schedules its pods one by one, so a real group can hold part of its nodes while it
  waits for the rest; here it waits holding none];
- a replica that does not fit waits Unschedulable, with the scheduler's message (`FitError.Error()`,
  `kube_emulator.scheduling.fit_error_message`): nodes of other types fail node affinity, full nodes of
  its type lack its Neuron resource;
- the provisioner launches the nodes the waiting replicas of a type need, counting nodes still launching
  as capacity on its way, never past the pool's `max_nodes` (for groups, only nodes that complete a
  group under the cap), and none while the type is in an outage
  (Karpenter retries an insufficient-capacity offering later; here it launches as soon as the outage ends);
  a node registers `provisioning_seconds` after its launch;
- a node that stays empty `consolidate_after_seconds` is removed (`consolidationPolicy: WhenEmpty`);
- an outage reclaims every node of its type at its start (the replicas on them stop).

Node-hours are billed from launch to removal: a launching node is paid for.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from neuronfleet.sim.shapes import Pool, ReplicaShape

__all__ = ["NodeRecord", "Nodes", "node_hours"]


@dataclasses.dataclass
class NodeRecord:
    """One node's life and occupancy."""

    id: int
    instance_type: str
    launched: float
    ready_at: float
    slots: int
    ready: float | None = None  # registered (takes pods)
    removed: float | None = None
    used: int = 0
    idle_version: int = 0  # bumped whenever the node turns empty: a consolidation timer checks it

    @property
    def alive(self) -> bool:
        return self.removed is None


def node_hours(nodes: Sequence[NodeRecord], horizon: float) -> dict[str, float]:
    """Node-hours per instance type, each node billed from launch to removal (or the horizon)."""
    out: dict[str, float] = {}
    for node in nodes:
        end = horizon if node.removed is None else min(node.removed, horizon)
        out[node.instance_type] = out.get(node.instance_type, 0.0) + max(0.0, end - node.launched) / 3600.0
    return out


class Nodes:
    """Every pool's nodes and the fit, launch and removal rules above; the fleet drives the clock."""

    def __init__(self, pools: Mapping[str, Pool], shapes: Sequence[ReplicaShape]) -> None:
        self.shapes = {s.instance_type: s for s in shapes}
        self.pools = {t: pools.get(t) or Pool(t) for t in self.shapes}
        unknown = set(pools) - set(self.shapes)
        if unknown:
            raise ValueError(f"pools for instance types no variant runs on: {sorted(unknown)}")
        self.records: list[NodeRecord] = []

    def _slots(self, instance_type: str) -> int:
        shape = self.shapes[instance_type]
        return 1 if shape.is_group else shape.replicas_per_node

    def _alive(self, instance_type: str) -> list[NodeRecord]:
        return [n for n in self.records if n.alive and n.instance_type == instance_type]

    def _new(self, instance_type: str, now: float, ready_at: float) -> NodeRecord:
        node = NodeRecord(len(self.records), instance_type, now, ready_at, self._slots(instance_type))
        self.records.append(node)
        return node

    def warm(self, instance_type: str, count: int, now: float) -> list[NodeRecord]:
        """`count` registered nodes at `now` (the warm fleet's, and the pool's initial ones), within the cap."""
        cap = self.pools[instance_type].max_nodes
        room = count if cap is None else max(0, min(count, cap - len(self._alive(instance_type))))
        out = []
        for _ in range(room):
            node = self._new(instance_type, now, now)
            node.ready = now
            out.append(node)
        return out

    def nodes_for(self, shape: ReplicaShape, count: int) -> int:
        """Nodes `count` replicas of `shape` need."""
        if shape.is_group:
            return count * shape.nodes_per_replica
        return math.ceil(count / shape.replicas_per_node)

    def find(self, shape: ReplicaShape) -> tuple[NodeRecord, ...] | None:
        """Registered nodes one replica of `shape` fits on now, or None."""
        ready = [n for n in self._alive(shape.instance_type) if n.ready is not None]
        if shape.is_group:
            empty = [n for n in ready if n.used == 0]
            return tuple(empty[: shape.nodes_per_replica]) if len(empty) >= shape.nodes_per_replica else None
        for node in ready:
            if node.used < node.slots:
                return (node,)
        return None

    @staticmethod
    def take(nodes: Sequence[NodeRecord]) -> None:
        for node in nodes:
            node.used += 1

    @staticmethod
    def free(nodes: Sequence[NodeRecord]) -> list[NodeRecord]:
        """Release one slot on each node; the nodes that turned empty (their idle timers start)."""
        empty = []
        for node in nodes:
            node.used -= 1
            if node.used == 0 and node.alive:
                node.idle_version += 1
                empty.append(node)
        return empty

    def launch(self, shape: ReplicaShape, waiting: int, now: float) -> list[NodeRecord]:
        """Nodes the provisioner launches now for `waiting` replicas of `shape` that fit nowhere."""
        pool = self.pools[shape.instance_type]
        if waiting <= 0 or pool.in_outage(now):
            return []
        alive = self._alive(shape.instance_type)
        launching = sum(1 for n in alive if n.ready is None)
        room = math.inf if pool.max_nodes is None else pool.max_nodes - len(alive)
        if shape.is_group:
            # Whole groups only: nodes that could never complete a group under the cap are not launched.
            size = shape.nodes_per_replica
            spare = sum(1 for n in alive if n.ready is not None and n.used == 0) + launching
            reachable = spare + min(max(0, waiting * size - spare), room)
            count = int(reachable // size * size - spare)
        else:
            need = math.ceil(max(0, waiting - launching * shape.replicas_per_node) / shape.replicas_per_node)
            count = int(min(need, room))
        return [self._new(shape.instance_type, now, now + pool.provisioning_seconds) for _ in range(max(0, count))]

    @staticmethod
    def register(node: NodeRecord, now: float) -> bool:
        """The node registers (False: removed before it did)."""
        if not node.alive:
            return False
        node.ready = now
        node.idle_version += 1
        return True

    def consolidate(self, node: NodeRecord, version: int, now: float) -> bool:
        """Remove `node` if it stayed empty since the timer of `version` started."""
        if node.alive and node.ready is not None and node.used == 0 and node.idle_version == version:
            node.removed = now
            return True
        return False

    def reclaim(self, instance_type: str, now: float) -> list[NodeRecord]:
        """An outage starts: every node of the type goes, registered or launching."""
        gone = self._alive(instance_type)
        for node in gone:
            node.removed = now
        return gone

    def message(self, shape: ReplicaShape) -> str:
        """What the scheduler says of a replica of `shape` that fits no registered node."""
        from neuronfleet.kube_emulator.scheduling import AFFINITY_REASON, fit_error_message, insufficient

        ready = [n for n in self.records if n.alive and n.ready is not None]
        reasons = {
            str(n.id): [
                AFFINITY_REASON if n.instance_type != shape.instance_type else insufficient(shape.resource_name)
            ]
            for n in ready
        }
        return fit_error_message(len(ready), reasons)
