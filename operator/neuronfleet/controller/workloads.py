"""The objects that run a fleet's replicas, and where those replicas stand, as plain data.

A fleet runs one workload per variant: the primary's Deployment, or its LeaderWorkerSet when a
replica spans nodes (render/leaderworkerset.py), plus one Deployment per fallback variant that has
replicas (render/variants.py). This module names them, reads them back from the live objects in
a Deployment-shaped view (the LeaderWorkerSet counts groups), folds them into one view for the
rollout conditions, and turns the fleet's pods into the placement the capacity logic reads
(placement/replicas.py): a group of pods counts as one replica, placed as its least placed pod.

Pure: live objects and pods come in, plain data goes out. The reconcile pass and the autoscaler
both call `placement`, so what the autoscaler counts as capacity is what the pass allocates.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.variants import PlannedVariant
from neuronfleet.placement import fallback, replicas
from neuronfleet.render import leaderworkerset, names
from neuronfleet.render import variants as render_variants

__all__ = [
    "GROUP_INDEX_LABEL",
    "Placed",
    "Workload",
    "combined_view",
    "group_pods",
    "live_units",
    "placement",
    "view",
    "workloads",
]

GROUP_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/group-index"
"""The LeaderWorkerSet controller's label naming a pod's group (kubernetes-sigs/lws, pkg/utils/pod)."""
_LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"


@dataclasses.dataclass(frozen=True)
class Workload:
    """One variant's workload object."""

    variant: PlannedVariant
    kind: str  # Deployment | LeaderWorkerSet
    name: str


def workloads(md: ModelDeployment, variants: Sequence[PlannedVariant]) -> list[Workload]:
    """Every variant's workload, primary first (fallback variants are always single-node Deployments)."""
    out = []
    for variant in variants:
        if variant.is_primary and variant.plan.multi_node:
            out.append(Workload(variant, leaderworkerset.KIND, names.leader_worker_set_name(md)))
        else:
            out.append(Workload(variant, "Deployment", render_variants.deployment_name(md, variant)))
    return out


def view(workload: Workload, live: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The live workload as a Deployment-shaped object (a LeaderWorkerSet's counts are groups)."""
    if live is None or workload.kind != leaderworkerset.KIND:
        return live
    return leaderworkerset.status_view(dict(live))


def _spec_replicas(obj: Mapping[str, Any] | None) -> int:
    return int(((obj or {}).get("spec") or {}).get("replicas") or 0)


def combined_view(views: Sequence[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
    """One Deployment-shaped view of all variants' workloads, for the rollout conditions.

    Replicas, ready, updated and available add up; the generation is observed only when every
    workload's is. With one workload this is that workload's view unchanged.
    """
    present = [v for v in views if v is not None]
    if len(present) <= 1:
        return present[0] if present else None
    status_keys = ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")
    totals = {k: sum(int((v.get("status") or {}).get(k) or 0) for v in present) for k in status_keys}
    observed = all(
        (v.get("status") or {}).get("observedGeneration") is not None
        and int((v.get("status") or {})["observedGeneration"]) >= int((v.get("metadata") or {}).get("generation") or 0)
        for v in present
    )
    return {
        "metadata": {"generation": 1},
        "spec": {"replicas": sum(_spec_replicas(v) for v in present)},
        "status": {**totals, "observedGeneration": 1 if observed else 0},
    }


def group_pods(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods with LeaderWorkerSet group labels folded into one per group (its least placed pod).

    A group serves only when all its pods do, so it is unschedulable if any pod is, waiting if any
    is unbound, starting if any is not ready, and ready otherwise. Other pods pass through.
    """
    order = {
        replicas.Placement.UNSCHEDULABLE: 0,
        replicas.Placement.WAITING: 1,
        replicas.Placement.STARTING: 2,
        replicas.Placement.READY: 3,
    }
    groups: dict[tuple[str, str], Mapping[str, Any]] = {}
    out: list[Mapping[str, Any]] = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if GROUP_INDEX_LABEL not in labels:
            out.append(pod)
            continue
        key = (str(labels.get(_LWS_NAME_LABEL)), str(labels[GROUP_INDEX_LABEL]))
        held = groups.get(key)
        if held is None or order[replicas.classify(pod).placement] < order[replicas.classify(held).placement]:
            groups[key] = pod
    return out + [groups[k] for k in sorted(groups)]


@dataclasses.dataclass(frozen=True)
class Placed:
    """Where the fleet's replicas stand, and how many each variant gets for a demand."""

    observed: dict[str, replicas.VariantObservation]
    allocation: fallback.Allocation
    desired_units: int  # what was allocated: spec.replicas or the autoscaler's decision, clamped


def live_units(variants: Sequence[PlannedVariant], asked: Mapping[str, int]) -> int | None:
    """What the live workloads hold, in primary replicas (None when none exists)."""
    if not asked:
        return None
    return int(sum(asked.get(v.name, 0) * v.units_per_replica for v in variants) + 1e-9)


def placement(
    workloads_: Sequence[Workload],
    live: Callable[[Workload], Mapping[str, Any] | None],
    pods: Sequence[Mapping[str, Any]],
    *,
    desired_units: int,
    now: datetime.datetime,
    fallback_after_seconds: float,
) -> Placed:
    """The fleet's placement per variant, and the allocation of `desired_units` over the variants."""
    asked = {w.variant.name: _spec_replicas(view(w, live(w))) for w in workloads_ if live(w) is not None}
    names_ = [w.variant.name for w in workloads_]
    observed = replicas.observe(group_pods(pods), asked, names_)
    units = [fallback.VariantUnits(w.variant.name, w.variant.units_per_replica) for w in workloads_]
    allocation = fallback.allocate(
        desired_units, units, observed, now=now, fallback_after_seconds=fallback_after_seconds
    )
    return Placed(observed, allocation, desired_units)
