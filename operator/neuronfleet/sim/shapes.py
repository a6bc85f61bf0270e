"""What one simulated replica is on the cluster: its engine, its nodes, its startup and its weight.

Why a shape beside the engine profile: the step-time model (`EngineProfile`) says how fast a replica
serves; where it runs says what it costs and when it can start. A replica of Llama-3.1-8B on trn2
TP4 takes 4 of a trn2.48xlarge's 64 logical NeuronCores, so 16 share one node; a Llama-3.1-405B
replica on trn1.32xlarge is a group of 4 whole nodes (a LeaderWorkerSet group, neuron/groups.py),
costs 4 nodes' 128 NeuronCores and is ready only when the whole group is. The fleet scales shapes
by whole replicas, so a group fleet scales by whole groups.

A fleet may run several shapes: the primary and the fallback variants of `spec.neuron.fallback`
(neuron/variants.py), each with its own plan, engine, startup and capacity units (what one of its
replicas is worth in primary replicas, as the operator weighs it).

`Pool` is the capacity of one instance type over time, as a Karpenter NodePool sees it: a node cap,
the time a launched node takes to register, the emptiness delay before consolidation removes it,
and outages during which the type has no capacity at all.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

from neuronfleet.errors import PlanError
from neuronfleet.neuron import capacity, planner
from neuronfleet.neuron.types import Plan
from neuronfleet.neuron.variants import PRIMARY, PlannedVariant
from neuronfleet.sim import profiles
from neuronfleet.sim.profiles import EngineProfile, derive

__all__ = [
    "CONSOLIDATE_AFTER_SECONDS",
    "PRIMARY",
    "Pool",
    "ReplicaShape",
    "cache_hit_startup_seconds",
    "check_shapes",
    "shape_of",
    "single",
]

CONSOLIDATE_AFTER_SECONDS = 600.0
"""How long a node stays empty before it is removed: the `consolidateAfter: 10m` of the NodePool
neuronfleet renders (render/karpenter.py CONSOLIDATE_AFTER, with `consolidationPolicy: WhenEmpty`)."""


@dataclasses.dataclass(frozen=True)
class ReplicaShape:
    """One variant's replica: engine, instance type, nodes, startup and weight (see the module docstring)."""

    name: str  # the variant: "primary", or the fallback's name (`trn1-32xlarge`)
    profile: EngineProfile
    startup_seconds: float  # requested (or bound to its nodes) -> ready
    nodes_per_replica: int = 1  # > 1: a group of whole nodes, one pod on each
    replicas_per_node: int = 1  # single-node replicas that share one node (1 for groups)
    units_per_replica: float = 1.0  # capacity units: primary replicas one replica is worth
    resource_name: str = "aws.amazon.com/neuroncore"  # what the scheduler says is insufficient
    derived: str = ""  # non-empty: the engine is derived (a roofline prior), and from what

    def __post_init__(self) -> None:
        if self.nodes_per_replica < 1 or self.replicas_per_node < 1:
            raise ValueError(f"{self.name}: nodes_per_replica and replicas_per_node must be >= 1")
        if self.nodes_per_replica > 1 and self.replicas_per_node != 1:
            raise ValueError(f"{self.name}: a group of {self.nodes_per_replica} nodes cannot share a node")
        if self.units_per_replica <= 0:
            raise ValueError(f"{self.name}: units_per_replica must be > 0, got {self.units_per_replica}")

    @property
    def instance_type(self) -> str:
        return self.profile.instance_type

    @property
    def cores(self) -> int:
        """NeuronCores one replica bills: the whole group's for a group."""
        return self.profile.cores

    @property
    def node_share(self) -> float:
        """Nodes one replica occupies: N for a group, 1/replicas_per_node for replicas sharing a node."""
        return float(self.nodes_per_replica) if self.nodes_per_replica > 1 else 1.0 / self.replicas_per_node

    @property
    def is_group(self) -> bool:
        return self.nodes_per_replica > 1


def single(profile: EngineProfile, startup_seconds: float) -> ReplicaShape:
    """The one shape of a fleet that only knows its engine: its nodes from the profile's plan.

    A derived profile keeps the plan it came from; a calibrated one is planned as `capacity.plan_request`
    plans it; an engine no planner knows (a test's) is one replica per node.
    """
    nodes, per_node, resource = _placement_of(profile)
    return ReplicaShape(
        PRIMARY,
        profile,
        startup_seconds,
        nodes_per_replica=nodes,
        replicas_per_node=per_node,
        resource_name=resource,
        derived=found.source if (found := profiles.derived(profile.name)) is not None else "",
    )


@functools.lru_cache(maxsize=64)
def _placement_of(profile: EngineProfile) -> tuple[int, int, str]:
    found = profiles.derived(profile.name)
    if found is not None:
        plan = found.plan
    else:
        try:
            plan = planner.plan(capacity.plan_request(profile))
        except (PlanError, ValueError, KeyError):
            return 1, 1, ReplicaShape.resource_name
    if plan.multi_node:
        return plan.nodes_per_replica, 1, plan.resource_name
    return 1, max(1, plan.replicas_per_node), plan.resource_name


def cache_hit_startup_seconds(plan: Plan) -> int:
    """The planner's startup estimate once the plan's compiled artifacts exist (download + load).

    Why a cache hit: the precompile policy builds every variant's artifacts ahead of time, so a fallback
    never compiles at the worst moment (issue 17); the controller uses the same estimate
    (controller/artifacts.py `with_cache_hit`).
    """
    return planner.expected_startup_seconds(plan.weights_bytes, runtime=plan.runtime, cache_hit=True)


def shape_of(
    variant: PlannedVariant,
    *,
    startup_seconds: float | None = None,
    profile: EngineProfile | None = None,
) -> ReplicaShape:
    """A planned variant as the simulator runs it.

    The engine is the plan's capacity prior (`capacity.prior`: the calibrated curve where one exists, else
    the roofline, then named and marked derived: `profiles.derive`) unless `profile` is given; the startup
    is the cache-hit estimate unless `startup_seconds` is given.
    """
    plan = variant.plan
    derived = ""
    if profile is None:
        prior = capacity.prior(plan)
        profile = prior.profile
        if prior.source != "calibrated":
            derived = f"{prior.source} prior of the planner's {plan.instance_type} TP {plan.tensor_parallel_size} plan"
            profile = derive(plan, None, derived).profile
    startup = float(cache_hit_startup_seconds(plan) if startup_seconds is None else startup_seconds)
    return ReplicaShape(
        name=variant.name,
        profile=profile,
        startup_seconds=startup,
        nodes_per_replica=plan.nodes_per_replica,
        replicas_per_node=1 if plan.multi_node else max(1, plan.replicas_per_node),
        units_per_replica=variant.units_per_replica,
        resource_name=plan.resource_name,
        derived=derived,
    )


@dataclasses.dataclass(frozen=True)
class Pool:
    """The capacity of one instance type over the run (see the module docstring).

    - `max_nodes`: nodes of the type that may exist at once, launching ones included (None: no cap);
    - `provisioning_seconds`: a launched node registers and takes pods this long after the launch (0: at once);
    - `consolidate_after_seconds`: an empty node is removed after this long empty;
    - `outages`: [start, end) intervals with no capacity of the type: at `start` every node of the type
      is reclaimed (its replicas stop, their pods wait for a node again) and none launches until `end`.
    - `initial_nodes`: nodes that exist at t=0 besides the ones the warm fleet needs.
    """

    instance_type: str
    max_nodes: int | None = None
    provisioning_seconds: float = 0.0
    consolidate_after_seconds: float = CONSOLIDATE_AFTER_SECONDS
    outages: tuple[tuple[float, float], ...] = ()
    initial_nodes: int = 0

    def __post_init__(self) -> None:
        if self.max_nodes is not None and self.max_nodes < 0:
            raise ValueError(f"{self.instance_type}: max_nodes must be >= 0, got {self.max_nodes}")
        if self.provisioning_seconds < 0 or self.consolidate_after_seconds < 0:
            raise ValueError(f"{self.instance_type}: provisioning and consolidation delays must be >= 0")
        for start, end in self.outages:
            if not 0 <= start < end:
                raise ValueError(f"{self.instance_type}: an outage must be [start, end) with 0 <= start < end")

    def in_outage(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.outages)

    def replica_cap(self, shape: ReplicaShape, t: float) -> float:
        """Replicas of `shape` the pool can hold at `t` (inf without a cap; 0 in an outage)."""
        if self.in_outage(t):
            return 0.0
        if self.max_nodes is None:
            return math.inf
        if shape.is_group:
            return float(self.max_nodes // shape.nodes_per_replica)
        return float(self.max_nodes * shape.replicas_per_node)


def check_shapes(shapes: Sequence[ReplicaShape]) -> None:
    """One shape per instance type and unique names: a pool's nodes then belong to one variant."""
    if not shapes:
        raise ValueError("at least one replica shape is needed")
    names = [s.name for s in shapes]
    types = [s.instance_type for s in shapes]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names repeat: {names}")
    if len(set(types)) != len(types):
        raise ValueError(f"two variants share an instance type: {types}")
