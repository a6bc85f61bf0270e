"""The leaderworkerset.x-k8s.io/v1 LeaderWorkerSet that runs a fleet whose replicas span nodes.

A replica of a multi-node plan is one LeaderWorkerSet group: `spec.replicas` counts groups (the
fleet's replicas) and `leaderWorkerTemplate.size` the pods of a group (nodes per replica, the
leader included). The LWS API facts used (kubernetes-sigs/lws api/leaderworkerset/v1/
leaderworkerset_types.go, tests/unit/render/test_leaderworkerset.py keeps them in one place):

- `restartPolicy: RecreateGroupOnPodRestart`: a rank that restarts alone cannot rejoin the
  collectives, so any pod or container restart recreates the whole group;
- `startupPolicy: LeaderCreated`: workers start with the leader instead of waiting for it to be
  ready; a leader only becomes ready (vLLM /health) once all ranks have joined, so LeaderReady
  would deadlock the group;
- `rolloutStrategy: {type: RollingUpdate, rollingUpdateConfiguration: {maxUnavailable, maxSurge}}`
  in groups, from spec.rollout;
- the scale subresource sits on `spec.replicas` / `status.replicas` with the selector in
  `status.hpaPodSelector` (leaders only), which is how the operator scales groups;
- annotation `leaderworkerset.sigs.k8s.io/exclusive-topology: <node label>` gives every pod of a
  group a required pod affinity to its group and anti-affinity to other groups within that
  topology domain (lws pkg/webhooks/pod_webhook.go SetExclusiveAffinities); with the UltraServer
  label `neuron.amazonaws.com/ultraserver-server-id-<N>` a group lands inside one UltraServer, as
  the Neuron DRA guide's 4-node example does (aws-neuron-sdk deploy/eks/dra.rst).

The LWS also creates a headless Service named after itself for the pods' DNS names
(`LWS_LEADER_ADDRESS`), which is why the LWS is not named like the fleet's own Service
(names.leader_worker_set_name).
"""

from __future__ import annotations

from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron import groups
from neuronfleet.neuron.types import Plan
from neuronfleet.render import deployment, labels, names
from neuronfleet.render.options import RenderOptions

__all__ = [
    "API_VERSION",
    "CRD_NAME",
    "EXCLUSIVE_TOPOLOGY_ANNOTATION",
    "GROUP",
    "KIND",
    "PLURAL",
    "RESTART_POLICY",
    "STARTUP_POLICY",
    "VERSION",
    "expected",
    "missing_api_message",
    "pod_templates",
    "status_view",
]

GROUP = "leaderworkerset.x-k8s.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LeaderWorkerSet"
PLURAL = "leaderworkersets"
RESTART_POLICY = "RecreateGroupOnPodRestart"
STARTUP_POLICY = "LeaderCreated"
EXCLUSIVE_TOPOLOGY_ANNOTATION = "leaderworkerset.sigs.k8s.io/exclusive-topology"
CRD_NAME = f"{PLURAL}.{GROUP}"


def missing_api_message(plan: Plan) -> str:
    """The Degraded message (reason LeaderWorkerSetMissing) when the cluster serves no LeaderWorkerSet."""
    return (
        f"replicas span {plan.nodes_per_replica} nodes and need the LeaderWorkerSet API ({CRD_NAME}), which this "
        "cluster does not serve; install LeaderWorkerSet (kubernetes-sigs/lws)"
    )


def pod_templates(md: ModelDeployment, plan: Plan, options: RenderOptions) -> tuple[dict[str, Any], dict[str, Any]]:
    """(leader template, worker template) of one group."""
    return (
        deployment.pod_template(md, plan, options, role=deployment.ROLE_LEADER),
        deployment.pod_template(md, plan, options, role=deployment.ROLE_WORKER),
    )


def expected(md: ModelDeployment, plan: Plan, *, replicas: int, options: RenderOptions) -> dict[str, Any]:
    """The LeaderWorkerSet for `md` running `replicas` groups of `plan` (no ownerReferences; see children)."""
    if replicas < 0:
        raise ValueError(f"replicas must be >= 0, got {replicas}")
    if not plan.multi_node:
        raise ValueError("a LeaderWorkerSet is only rendered for a plan whose replicas span nodes")
    leader, worker = pod_templates(md, plan, options)
    annotations = {deployment.TEMPLATE_HASH_ANNOTATION: deployment.template_hash({"leader": leader, "worker": worker})}
    if plan.artifact_key:
        annotations[deployment.ARTIFACT_KEY_ANNOTATION] = plan.artifact_key
    if plan.ultraserver_nodes:
        annotations[EXCLUSIVE_TOPOLOGY_ANNOTATION] = groups.ultraserver_topology_key(plan.ultraserver_nodes)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            **labels.object_meta(md, names.leader_worker_set_name(md)),
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "startupPolicy": STARTUP_POLICY,
            "rolloutStrategy": {
                "type": "RollingUpdate",
                "rollingUpdateConfiguration": deployment.rolling_update(md),
            },
            "leaderWorkerTemplate": {
                "size": plan.nodes_per_replica,
                "restartPolicy": RESTART_POLICY,
                "leaderTemplate": leader,
                "workerTemplate": worker,
            },
        },
    }


def status_view(lws: dict[str, Any] | None) -> dict[str, Any] | None:
    """A live LeaderWorkerSet in the shape of a Deployment, counted in groups, for the status code.

    The operator's rollout and status logic reads `spec.replicas`, `status.{replicas, readyReplicas,
    updatedReplicas, availableReplicas, observedGeneration}` and `metadata.generation` of its
    workload. LWS status counts groups (`replicas`: leaders created, `readyReplicas`: groups with
    every pod ready, `updatedReplicas`: groups on the current template) and has no available count,
    so ready groups stand for available ones. The LWS controller does not write
    `status.observedGeneration` (lws pkg/controllers/leaderworkerset_controller.go, updateStatus), so
    once it has written any status the spec counts as observed: right after a template change the
    view can look complete until the LWS controller's next pass lowers `updatedReplicas` [INFERRED:
    the window is one LWS reconcile, the rollout then reports UpdateInProgress].
    """
    if lws is None:
        return None
    meta, spec, status = lws.get("metadata") or {}, lws.get("spec") or {}, lws.get("status")
    generation = meta.get("generation")
    view_status: dict[str, Any] = {}
    if status:
        ready = int(status.get("readyReplicas") or 0)
        view_status = {
            "observedGeneration": status.get("observedGeneration", generation),
            "replicas": int(status.get("replicas") or 0),
            "readyReplicas": ready,
            "updatedReplicas": int(status.get("updatedReplicas") or 0),
            "availableReplicas": ready,
        }
    return {
        "metadata": {"name": meta.get("name"), "generation": generation, "annotations": meta.get("annotations") or {}},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": view_status,
    }
