"""All children of a ModelDeployment in apply order, and the ones a spec turns off.

The workload follows the plan: a Deployment when a replica is one pod, a LeaderWorkerSet when a
replica spans nodes (leaderworkerset.py), plus a ResourceClaimTemplate with the dra allocation
(claims.py). `undesired(md, plan)` names the workload kind the plan does NOT use, so a fleet that
moves to groups and back leaves no stale workload behind.

`desired()` returns complete objects but NO ownerReferences: an ownerReference needs the
owner's uid, which only exists on the API server. The controller adds it with `kopf.adopt`
before applying; `neuronfleet render` prints the objects as they are, so its output works for
`kubectl diff` previews and GitOps review without a cluster. Off means deleted: a child whose
feature is disabled (PodMonitor with monitoring.podMonitor false) is listed by `undesired()`, and
the controller deletes it if it exists and is owned by the ModelDeployment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.types import Plan
from neuronfleet.render import claims, deployment, leaderworkerset, monitor, names, pdb, service
from neuronfleet.render.options import RenderOptions

__all__ = [
    "KINDS",
    "ApiNeed",
    "ChildRef",
    "ScaleTarget",
    "desired",
    "preview_replicas",
    "required_apis",
    "scale_target",
    "stale_claim_templates",
    "undesired",
    "workload",
]

# Every kind `desired` may return (the compile Job is rendered by compile_job.py), as
# (apiVersion, kind) -> (group, version, plural): what the controller watches, applies and is granted.
KINDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("v1", "Service"): ("", "v1", "services"),
    ("policy/v1", "PodDisruptionBudget"): ("policy", "v1", "poddisruptionbudgets"),
    ("apps/v1", "Deployment"): ("apps", "v1", "deployments"),
    (leaderworkerset.API_VERSION, leaderworkerset.KIND): (leaderworkerset.GROUP, "v1", leaderworkerset.PLURAL),
    (claims.API_VERSION, claims.KIND): ("resource.k8s.io", "v1", "resourceclaimtemplates"),
    (monitor.API_VERSION, monitor.KIND): ("monitoring.coreos.com", "v1", "podmonitors"),
}


class ChildRef(NamedTuple):
    """Identity of a child object, for deletion."""

    api_version: str
    kind: str
    name: str


class ScaleTarget(NamedTuple):
    """The object whose /scale subresource holds the fleet's replica count (groups for a LeaderWorkerSet)."""

    group: str
    version: str
    plural: str
    name: str


class ApiNeed(NamedTuple):
    """An API a plan's children need that a cluster may not serve, and the Degraded condition if it does not."""

    group: str
    version: str
    plural: str
    reason: str
    message: str


def scale_target(md: ModelDeployment, plan: Plan) -> ScaleTarget:
    """Where the autoscaler (and the fleet's own /scale) set replicas: the Deployment, or the LWS in groups."""
    if plan.multi_node:
        return ScaleTarget(
            leaderworkerset.GROUP, leaderworkerset.VERSION, leaderworkerset.PLURAL, names.leader_worker_set_name(md)
        )
    return ScaleTarget("apps", "v1", "deployments", names.deployment_name(md))


def required_apis(plan: Plan) -> list[ApiNeed]:
    """APIs beyond the core ones that `plan`'s children need; empty for a single-node device-plugin fleet.

    The controller checks each against discovery before applying: a missing one makes the fleet
    Degraded with the reason and message given here, and leaves the running replicas alone.
    """
    needs: list[ApiNeed] = []
    if plan.multi_node:
        needs.append(
            ApiNeed(
                leaderworkerset.GROUP,
                leaderworkerset.VERSION,
                leaderworkerset.PLURAL,
                "LeaderWorkerSetMissing",
                leaderworkerset.missing_api_message(plan),
            )
        )
    if plan.allocation == "dra":
        needs.append(
            ApiNeed(
                "resource.k8s.io",
                "v1",
                "resourceclaimtemplates",
                "ResourceClaimTemplateMissing",
                "allocation dra needs the resource.k8s.io/v1 API (ResourceClaimTemplate, Kubernetes 1.34+), which "
                "this cluster does not serve; use allocation devicePlugin or upgrade the cluster",
            )
        )
    return needs


def workload(md: ModelDeployment, plan: Plan, *, replicas: int, options: RenderOptions) -> dict[str, Any]:
    """The object that runs the replicas: a Deployment, or a LeaderWorkerSet of `replicas` groups."""
    if plan.multi_node:
        return leaderworkerset.expected(md, plan, replicas=replicas, options=options)
    return deployment.expected(md, plan, replicas=replicas, options=options)


def desired(md: ModelDeployment, plan: Plan, *, replicas: int, options: RenderOptions) -> list[dict[str, Any]]:
    """Children in apply order: the Service and PDB before the workload, so pods are covered from the start;
    the claim template before the workload, so no pod waits for a template that does not exist yet."""
    children = [service.expected(md, plan), pdb.expected(md)]
    claim = claims.expected(md, plan)
    if claim is not None:
        children.append(claim)
    children.append(workload(md, plan, replicas=replicas, options=options))
    if md.spec.monitoring.pod_monitor:
        children.append(monitor.expected(md))
    return children


def undesired(md: ModelDeployment, plan: Plan | None = None) -> list[ChildRef]:
    """Children the spec turns off; the controller deletes them when present.

    With a plan, also the workload kind the plan does not use: the Deployment of a fleet that now
    spans nodes, or the LeaderWorkerSet of one that no longer does. Stale claim templates have
    hashed names and are found by label instead (`stale_claim_templates`).
    """
    refs: list[ChildRef] = []
    if not md.spec.monitoring.pod_monitor:
        refs.append(ChildRef(monitor.API_VERSION, monitor.KIND, names.pod_monitor_name(md)))
    if plan is not None:
        if plan.multi_node:
            refs.append(ChildRef("apps/v1", "Deployment", names.deployment_name(md)))
        else:
            refs.append(ChildRef(leaderworkerset.API_VERSION, leaderworkerset.KIND, names.leader_worker_set_name(md)))
    return refs


def stale_claim_templates(
    md: ModelDeployment, plan: Plan | None, live_names: Iterable[str], *, rollout_done: bool
) -> list[ChildRef]:
    """The fleet's live ResourceClaimTemplates (found by its labels) that its pods no longer need.

    A template is in use until every pod of the workload runs the current template, so nothing is
    stale while a rollout is in progress (`rollout_done` False): an old pod recreated mid-rollout
    still needs its old template to get a claim.
    """
    if not rollout_done:
        return []
    keep = claims.template_name(md, plan) if plan is not None and plan.allocation == "dra" else None
    return [ChildRef(claims.API_VERSION, claims.KIND, name) for name in sorted(set(live_names)) if name != keep]


def preview_replicas(md: ModelDeployment) -> int:
    """Replicas for an offline preview: spec.replicas, or minReplicas when autoscaling is on."""
    autoscaling = md.spec.autoscaling
    return autoscaling.min_replicas if autoscaling.enabled else md.spec.replicas
