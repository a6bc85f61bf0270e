"""Multi-node fleets (LeaderWorkerSet groups) and Neuron DRA fleets, end to end on the API emulator.

The emulator's opt-in stand-ins say what they replace: the LeaderWorkerSet CRD written from the LWS
API facts and a group controller that makes leader and worker pods and reports ready groups
(kube_emulator/group_controller.py, no scheduler involved), the Deployment status stand-in for DRA
fleets, and the garbage collector. No Neuron hardware and no DRA driver run here: a
ResourceClaimTemplate is stored and referenced, never allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kubernetes
import yaml
from emulator_support import enable_cluster, enable_controllers
from operator_support import REPO, Cluster, OperatorThread, make_md

from support.waits import wait_for

LWS = ("leaderworkerset.x-k8s.io", "v1", "ml", "leaderworkersets")
RCT = ("resource.k8s.io", "v1", "ml", "resourceclaimtemplates")


def _example(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())


def _lws(cluster: Cluster, name: str) -> dict[str, Any] | None:
    try:
        return cluster.custom.get_namespaced_custom_object(*LWS, name)
    except kubernetes.client.ApiException:
        return None


def _claim_templates(cluster: Cluster) -> list[str]:
    items = cluster.custom.list_namespaced_custom_object(*RCT)["items"]
    return sorted(i["metadata"]["name"] for i in items if not i["metadata"].get("deletionTimestamp"))


def test_a_multi_node_fleet_runs_as_leaderworkerset_groups_scales_by_groups_and_is_repaired(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    """Llama-3.1-405B on trn1.32xlarge: each replica a group of 4 nodes (the example as users apply it).

    LeaderWorkerSet is installed before the operator starts, as on a cluster prepared for it. kopf
    ignores its CRD watch's initial listing (kopf/_core/reactor/observation.py), so a CRD created
    between its first discovery and that listing is never watched: installed after the start, the
    group controller's ready counts never reached the operator on a slow CI machine.
    """
    enable_cluster(cluster.emu, leader_worker_sets=True)
    start_operator()
    body = _example("llama31-405b-trn1-lws")
    name = body["metadata"]["name"]
    cluster.create_md(body)

    lws = wait_for(lambda: _lws(cluster, f"{name}-lws"))
    assert lws["spec"]["replicas"] == 1
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 4
    assert lws["spec"]["leaderWorkerTemplate"]["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert lws["spec"]["startupPolicy"] == "LeaderCreated"
    assert lws["metadata"]["ownerReferences"][0]["name"] == name
    assert cluster.deployment(name) is None  # a group fleet has no Deployment
    assert "leaderworkerset.sigs.k8s.io/worker-index" in cluster.service(name)["spec"]["selector"]

    wait_for(lambda: cluster.condition(name, "Ready").get("status") == "True", timeout=30)
    status = cluster.status(name)
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)  # groups, not pods
    assert status["plan"]["nodesPerReplica"] == 4
    assert status["plan"]["parallelism"] == "tensorAcrossNodes"
    assert "worker-index=0" in status["selector"]  # /scale counts leaders

    cluster.patch_md(name, {"spec": {"replicas": 2}})
    wait_for(lambda: _lws(cluster, f"{name}-lws")["spec"]["replicas"] == 2)
    wait_for(lambda: cluster.status(name).get("readyReplicas") == 2, timeout=30)
    pods = cluster.core.list_namespaced_pod("ml", label_selector=f"leaderworkerset.sigs.k8s.io/name={name}-lws")
    assert len(pods.items) == 8  # 2 groups x 4 nodes

    # Drift: someone shrinks the groups by hand; the operator puts its size back, once.
    cluster.custom.patch_namespaced_custom_object(*LWS, f"{name}-lws", {"spec": {"leaderWorkerTemplate": {"size": 2}}})
    wait_for(lambda: _lws(cluster, f"{name}-lws")["spec"]["leaderWorkerTemplate"]["size"] == 4)
    wait_for(lambda: "ChildRepaired" in [e["reason"] for e in cluster.events(name)])

    cluster.delete_md(name)
    wait_for(lambda: _lws(cluster, f"{name}-lws") is None)


def test_without_the_leaderworkerset_api_a_multi_node_fleet_is_degraded_and_single_node_fleets_are_not(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    """No LWS CRD in the cluster. Uses the Deployment status stand-in for the single-node fleet."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.1)
    start_operator()
    body = _example("llama31-405b-trn1-lws")
    name = body["metadata"]["name"]
    cluster.create_md(body)
    cluster.create_md(make_md("small"))

    degraded = wait_for(lambda: (c := cluster.condition(name, "Degraded")).get("status") == "True" and c)
    assert degraded["reason"] == "LeaderWorkerSetMissing"
    assert "leaderworkersets.leaderworkerset.x-k8s.io" in degraded["message"]
    assert "install LeaderWorkerSet" in degraded["message"]
    assert cluster.service(name) is not None  # what the cluster does serve is applied
    wait_for(lambda: cluster.condition("small", "Ready").get("status") == "True")
    assert cluster.condition("small", "Degraded")["status"] == "False"


def test_a_fleet_that_outgrows_one_node_keeps_its_deployment_while_the_cluster_lacks_leaderworkerset(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """Never take running replicas down: the old workload goes only once the new kind exists."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.1)
    cluster.create_md(make_md("llama", neuron={"instanceType": "trn1.32xlarge"}))
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    before = cluster.deployment("llama")
    cluster.patch_md(
        "llama",
        {"spec": {"model": {"source": "hf://meta-llama/Llama-3.1-405B-Instruct"}, "serving": {"maxNumSeqs": 8}}},
    )
    wait_for(lambda: cluster.condition("llama", "Degraded").get("reason") == "LeaderWorkerSetMissing")
    after = cluster.deployment("llama")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_dra_fleet_claims_its_devices_from_a_template_and_retires_old_templates_after_the_rollout(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """allocation dra on trn2: one ResourceClaimTemplate (immutable, hashed name) the pods claim from.

    Uses the Deployment status stand-in (replicas turn ready 1 s after a change, so the rollout can be
    seen in progress); no DRA driver allocates anything here."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=1.0)
    neuron = {"instanceType": "trn2.48xlarge", "allocation": "dra", "tensorParallelSize": 8}
    cluster.create_md(make_md("llama", neuron=neuron))
    (first,) = wait_for(lambda: _claim_templates(cluster))
    dep = wait_for(lambda: cluster.deployment("llama"))
    pod = dep["spec"]["template"]["spec"]
    assert [c["resourceClaimTemplateName"] for c in pod["resourceClaims"]] == [first]
    assert not any("aws.amazon.com/neuron" in str(c.get("resources")) for c in pod["containers"])
    assert "schedulerName" not in pod
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    assert cluster.status("llama")["plan"]["allocation"] == "dra"

    # A plan needing more devices (8 instead of 2: another connected set): a new template; the old
    # one stays while the rollout may still recreate a pod that claims from it, then goes.
    cluster.patch_md("llama", {"spec": {"neuron": {**neuron, "tensorParallelSize": 32}}})
    both = wait_for(lambda: len(_claim_templates(cluster)) == 2 and _claim_templates(cluster))
    assert first in both
    wait_for(lambda: _claim_templates(cluster) != both, timeout=30)
    (second,) = _claim_templates(cluster)
    assert second != first
    claims = cluster.deployment("llama")["spec"]["template"]["spec"]["resourceClaims"]
    assert [c["resourceClaimTemplateName"] for c in claims] == [second]
    assert cluster.condition("llama", "Ready")["status"] == "True"
