"""What a Deployment's ReplicaSet controller decides, as pure functions: which pods go, and the status.

The emulator's pod-creating Deployment controller (``workloads.py``) and the demo's simulated node
pool both keep ``spec.replicas`` pods of a Deployment's current template and report its status the
way kube-controller-manager does, so the decisions live here once: the pod-template hash, the
rollout's ``maxUnavailable`` as a count, the order pods are removed in, and the status written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "HASH_LABEL",
    "PodView",
    "deployment_status",
    "max_unavailable",
    "pod_body",
    "pods_to_remove",
    "status_differs",
    "template_hash",
]

HASH_LABEL = "pod-template-hash"


def template_hash(template: Mapping[str, Any]) -> str:
    """A short hash of a pod template, like the `pod-template-hash` label of a ReplicaSet."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:10]


def max_unavailable(deployment: Mapping[str, Any], desired: int) -> int:
    """rollingUpdate.maxUnavailable as a pod count (percentages round down, as Kubernetes does), at least 1."""
    value = (((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}).get(
        "maxUnavailable", "25%"
    )
    text = str(value)
    count = desired * int(text[:-1]) // 100 if text.endswith("%") else int(text)
    return max(1, count)


@dataclasses.dataclass(frozen=True)
class PodView:
    """What the rollout decision needs to know of a pod."""

    name: str
    template_hash: str
    ready: bool
    created: float  # order of creation, larger is younger
    scheduled: bool = True  # bound to a node (spec.nodeName); unscheduled pods go first


def pods_to_remove(pods: Sequence[PodView], *, desired: int, current_hash: str, max_unavailable: int) -> list[str]:
    """Which pods to delete now: the excess over `desired`, then old-template pods the rollout may take.

    Excess goes unscheduled first, then not ready, then old template, then youngest (the ReplicaSet
    controller's ActivePods order, pkg/controller/controller_utils.go, simplified): a pod still
    waiting for a node is given up before one that is already starting. A rolling update deletes
    old pods only while the pods not ready stay within `max_unavailable`, and only old ones; new
    pods replace them on the next pass.
    """

    def victim_order(pod: PodView) -> tuple[bool, bool, bool, float]:
        return (pod.scheduled, pod.ready, pod.template_hash == current_hash, -pod.created)

    ordered = sorted(pods, key=victim_order)
    excess = max(0, len(pods) - desired)
    chosen = [p.name for p in ordered[:excess]]
    kept = ordered[excess:]
    unavailable = desired - sum(1 for p in kept if p.ready)
    for pod in kept:
        if pod.template_hash == current_hash:
            continue
        if not pod.ready:  # already unavailable: replacing it costs nothing
            chosen.append(pod.name)
        elif unavailable < max_unavailable:
            unavailable += 1
            chosen.append(pod.name)
    return chosen


def deployment_status(
    deployment: Mapping[str, Any], pods: Sequence[PodView], *, current_hash: str, previous: Mapping[str, Any], now: str
) -> dict[str, Any]:
    """The Deployment status the Deployment controller would write for these pods.

    Zero counts are left out, as the API server's JSON (omitempty) does; lastTransitionTime moves
    only when a condition's status does.
    """
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    ready = sum(1 for p in pods if p.ready)
    updated = sum(1 for p in pods if p.template_hash == current_hash)
    counts = {
        "replicas": len(pods),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(0, desired - ready),
    }
    status: dict[str, Any] = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    status.update({k: (v or None) for k, v in counts.items()})
    available = ready >= desired - max_unavailable(deployment, desired)
    complete = updated == desired == ready == len(pods)
    name = deployment["metadata"]["name"]
    wanted = [
        (
            "Available",
            "True" if available else "False",
            "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability." if available else "Deployment does not have minimum availability.",
        ),
        (
            "Progressing",
            "True",
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{name}-{current_hash}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{name}-{current_hash}" is progressing.',
        ),
    ]
    old = {c.get("type"): c for c in previous.get("conditions") or ()}
    conditions = []
    for type_, state, reason, message in wanted:
        before = old.get(type_) or {}
        same = before.get("status") == state
        conditions.append(
            {
                "type": type_,
                "status": state,
                "reason": reason,
                "message": message,
                "lastUpdateTime": before.get("lastUpdateTime", now) if same and before.get("reason") == reason else now,
                "lastTransitionTime": before.get("lastTransitionTime", now) if same else now,
            }
        )
    status["conditions"] = conditions
    return status


def status_differs(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    def strip(status: Mapping[str, Any]) -> Any:
        conds = [
            {k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
            for c in status.get("conditions") or ()
        ]
        return ({k: v for k, v in status.items() if k != "conditions" and v is not None}, conds)

    return strip(new) != strip(old)


def pod_body(
    deployment: Mapping[str, Any], template: Mapping[str, Any], name: str, current_hash: str
) -> dict[str, Any]:
    """A Pod of the Deployment's template, owned by the Deployment (no ReplicaSets), not yet on a node."""
    meta = deployment["metadata"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), HASH_LABEL: current_hash}
    return {
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace", ""),
            "labels": labels,
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {k: v for k, v in (template.get("spec") or {}).items() if k != "nodeName"},
    }
