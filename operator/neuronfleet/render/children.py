"""All children of a ModelDeployment in apply order, and the ones a spec turns off.

`desired()` returns complete objects but NO ownerReferences: an ownerReference needs the
owner's uid, which only exists on the API server. The controller adds it with `kopf.adopt`
before applying; `neuronfleet render` prints the objects as they are, so its output works for
`kubectl diff` previews and GitOps review without a cluster. Off means deleted: a child whose
feature is disabled (PodMonitor with monitoring.podMonitor false) is listed by `undesired()`, and
the controller deletes it if it exists and is owned by the ModelDeployment.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.types import Plan
from neuronfleet.render import deployment, monitor, names, pdb, service
from neuronfleet.render.options import RenderOptions

__all__ = ["ChildRef", "desired", "preview_replicas", "undesired"]


class ChildRef(NamedTuple):
    """Identity of a child object, for deletion."""

    api_version: str
    kind: str
    name: str


def desired(md: ModelDeployment, plan: Plan, *, replicas: int, options: RenderOptions) -> list[dict[str, Any]]:
    """Children in apply order: the Service and PDB before the Deployment, so pods are covered from the start."""
    children = [
        service.expected(md),
        pdb.expected(md),
        deployment.expected(md, plan, replicas=replicas, options=options),
    ]
    if md.spec.monitoring.pod_monitor:
        children.append(monitor.expected(md))
    return children


def undesired(md: ModelDeployment) -> list[ChildRef]:
    """Children the spec turns off; the controller deletes them when present."""
    refs: list[ChildRef] = []
    if not md.spec.monitoring.pod_monitor:
        refs.append(ChildRef(monitor.API_VERSION, monitor.KIND, names.pod_monitor_name(md)))
    return refs


def preview_replicas(md: ModelDeployment) -> int:
    """Replicas for an offline preview: spec.replicas, or minReplicas when autoscaling is on."""
    autoscaling = md.spec.autoscaling
    return autoscaling.min_replicas if autoscaling.enabled else md.spec.replicas
