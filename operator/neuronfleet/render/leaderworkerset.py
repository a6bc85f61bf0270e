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
    "EXCLUSIVE_TOPOLOGY_ANNOTATION",
    "GROUP",
    "KIND",
    "PLURAL",
    "RESTART_POLICY",
    "STARTUP_POLICY",
    "CRD_NAME",
    "VERSION",
    "expected",
    "missing_api_message",
    "pod_templates",
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
