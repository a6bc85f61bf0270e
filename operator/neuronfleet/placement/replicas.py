"""Each pod of a fleet, by where it stands with the scheduler, and the counts per variant.

`controller/replica_phases.py` says where a *starting* replica is (downloading, compiling,
loading); this module answers the question before it: has the replica got a node at all? It lives
here rather than beside replica_phases because the fallback decision and the capacity status need
it too, and it is written as a new module so the controller keeps one writer per file.

A pod is (kube-scheduler's vocabulary, core/v1 PodCondition ``PodScheduled``):

- ``unschedulable``: ``PodScheduled=False`` with reason ``Unschedulable``: the scheduler tried and no
  node fits. It carries the scheduler's message (``0/8 nodes are available: 8 Insufficient
  aws.amazon.com/neuron.``) and the condition's lastTransitionTime, when it started waiting (the
  scheduler keeps that time while the answer stays no; podutil.UpdatePodCondition);
- ``waiting``: not bound and not (yet) judged unschedulable: just created, or in the scheduler's
  queue;
- ``starting``: bound to a node (``spec.nodeName``), not Ready yet;
- ``ready``: the Ready condition is True.

Terminating pods are left out, as a ReplicaSet no longer counts them. The variant of a pod is its
``neuronfleet.io/variant`` label; the primary's pods have none (the primary's selector and
template predate variants and stay as they are).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "VARIANT_LABEL",
    "Placement",
    "ReplicaPlacement",
    "VariantObservation",
    "classify",
    "observe",
]

VARIANT_LABEL = "neuronfleet.io/variant"
PRIMARY = "primary"


class Placement(enum.StrEnum):
    UNSCHEDULABLE = "unschedulable"
    WAITING = "waiting"
    STARTING = "starting"
    READY = "ready"


@dataclasses.dataclass(frozen=True)
class ReplicaPlacement:
    pod: str
    variant: str
    placement: Placement
    since: datetime.datetime | None = None  # unschedulable since (the condition's transition time)
    message: str = ""  # the scheduler's reason, for unschedulable pods

    def waited_seconds(self, now: datetime.datetime) -> float:
        """How long an unschedulable pod has waited for a node (0 when unknown or not unschedulable)."""
        if self.placement is not Placement.UNSCHEDULABLE or self.since is None:
            return 0.0
        return max(0.0, (now - self.since).total_seconds())


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def classify(pod: Mapping[str, Any]) -> ReplicaPlacement:
    """Where one pod stands with the scheduler (see the module docstring)."""
    meta = pod.get("metadata") or {}
    name = str(meta.get("name", ""))
    variant = str((meta.get("labels") or {}).get(VARIANT_LABEL) or PRIMARY)
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    ready = conditions.get("Ready")
    if ready is not None and ready.get("status") == "True":
        return ReplicaPlacement(name, variant, Placement.READY)
    if (pod.get("spec") or {}).get("nodeName"):
        return ReplicaPlacement(name, variant, Placement.STARTING)
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return ReplicaPlacement(
            name,
            variant,
            Placement.UNSCHEDULABLE,
            since=_time(scheduled.get("lastTransitionTime")),
            message=str(scheduled.get("message") or ""),
        )
    return ReplicaPlacement(name, variant, Placement.WAITING)


@dataclasses.dataclass(frozen=True)
class VariantObservation:
    """One variant's Deployment and pods, as counts; `unschedulable` keeps each pod's state."""

    name: str
    asked: int = 0  # the Deployment's spec.replicas (0 when it does not exist)
    ready: int = 0
    starting: int = 0
    waiting: int = 0  # pods not bound and not judged, plus asked replicas without a pod yet
    unschedulable: tuple[ReplicaPlacement, ...] = ()

    @property
    def pods(self) -> int:
        return self.ready + self.starting + self.waiting + len(self.unschedulable)


def observe(
    pods: Iterable[Mapping[str, Any]], asked: Mapping[str, int], variants: Sequence[str]
) -> dict[str, VariantObservation]:
    """Counts per variant from the fleet's live pods and each Deployment's spec.replicas.

    Replicas asked for but without a pod yet (the ReplicaSet has not created them) count as
    waiting; pods beyond what is asked (being scaled away) still count where they stand.
    """
    states: dict[str, list[ReplicaPlacement]] = {name: [] for name in variants}
    for pod in pods:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        state = classify(pod)
        if state.variant in states:
            states[state.variant].append(state)
    out: dict[str, VariantObservation] = {}
    for name in variants:
        mine = states[name]
        counts = {p: sum(1 for s in mine if s.placement is p) for p in Placement}
        unschedulable = tuple(sorted((s for s in mine if s.placement is Placement.UNSCHEDULABLE), key=lambda s: s.pod))
        missing = max(0, int(asked.get(name, 0)) - len(mine))
        out[name] = VariantObservation(
            name=name,
            asked=int(asked.get(name, 0)),
            ready=counts[Placement.READY],
            starting=counts[Placement.STARTING],
            waiting=counts[Placement.WAITING] + missing,
            unschedulable=unschedulable,
        )
    return out
