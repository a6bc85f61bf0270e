"""The recommended `app.kubernetes.io/*` labels of every child, and the pod selector.

The selector of a Deployment is immutable, and the Service, PDB and PodMonitor find the pods by
it, so it uses only labels that never change with the spec: name (a constant), instance (the
ModelDeployment's name) and component. Model, runtime or instance type may change in place
without orphaning pods. The autoscaler's PromQL selects series by
`app_kubernetes_io_instance="<ModelDeployment name>"` plus namespace; the PodMonitor copies that
pod label onto the scraped series.
"""

from __future__ import annotations

import hashlib
import re

from neuronfleet.api.resource import ModelDeployment

__all__ = [
    "COMPONENT",
    "INSTANCE",
    "LWS_WORKER_INDEX",
    "MANAGED_BY",
    "NAME",
    "PART_OF",
    "child_labels",
    "instance_value",
    "leader_selector",
    "leader_selector_string",
    "object_meta",
    "pod_labels",
    "selector",
    "selector_string",
]

NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"

APP_NAME = "vllm"
SERVER_COMPONENT = "inference-server"
OPERATOR = "neuronfleet"

# LeaderWorkerSet labels every pod of a group with its index in the group; the leader's is "0"
# (kubernetes-sigs/lws api/leaderworkerset/v1 WorkerIndexLabelKey; LWS's own status.hpaPodSelector
# selects leaders by it).
LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"

_MAX_VALUE = 63


def instance_value(md: ModelDeployment) -> str:
    """The instance label value: the ModelDeployment's name, hashed down when it exceeds a label value's 63 chars."""
    name = md.name
    if len(name) <= _MAX_VALUE and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_VALUE - 9].rstrip('-._')}-{digest}"


def selector(md: ModelDeployment) -> dict[str, str]:
    """matchLabels of the pods: stable for the object's whole life (Deployment selectors are immutable)."""
    return {NAME: APP_NAME, INSTANCE: instance_value(md), COMPONENT: SERVER_COMPONENT}


def selector_string(md: ModelDeployment) -> str:
    """The selector as `status.selector` carries it for the scale subresource (HPA, KEDA, kubectl scale)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector(md).items()))


def leader_selector(md: ModelDeployment) -> dict[str, str]:
    """The pods that serve a multi-node replica's API: the leaders of its groups (workers serve none)."""
    return {**selector(md), LWS_WORKER_INDEX: "0"}


def leader_selector_string(md: ModelDeployment) -> str:
    """`status.selector` of a multi-node fleet: one pod per replica, as LWS's hpaPodSelector counts them."""
    return ",".join(f"{k}={v}" for k, v in sorted(leader_selector(md).items()))


def child_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels on every child object."""
    return {**selector(md), MANAGED_BY: OPERATOR, PART_OF: OPERATOR}


def pod_labels(md: ModelDeployment) -> dict[str, str]:
    """Labels of the pod template: the selector plus the informational ones."""
    return child_labels(md)


def object_meta(md: ModelDeployment, name: str) -> dict[str, object]:
    """metadata of a child: its name, the owner's namespace when the owner names one, the child labels.

    A ModelDeployment read from a file without a namespace renders children without one, so
    `neuronfleet render -f md.yaml | kubectl diff -n team -f -` works like `kubectl apply -n team`.
    On the cluster the owner always has a namespace.
    """
    meta: dict[str, object] = {"name": name}
    if md.metadata.get("namespace"):
        meta["namespace"] = md.metadata["namespace"]
    meta["labels"] = child_labels(md)
    return meta
