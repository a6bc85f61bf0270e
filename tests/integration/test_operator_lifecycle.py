"""The operator against the API emulator: create, update, delete, repair, bad input, scale.

Where a test needs a controller the emulator does not run by default, it switches on the
emulator's opt-in stand-ins and says so: the Deployment "controller" (marks a Deployment's
pods updated/ready/available after a delay; no Pods are created) and the garbage collector
(deletes dependents of a deleted owner by ownerReference).
"""

from __future__ import annotations

import urllib.request

import kubernetes
import pytest
from emulator_support import enable_controllers
from operator_support import Cluster, OperatorThread, make_md, writes

from support.crds import schemaless_crd
from support.waits import wait_for, wait_quiet

READY_DELAY = 0.3


def _ready(cluster: Cluster, name: str) -> bool:
    return cluster.condition(name, "Ready").get("status") == "True"


def test_a_new_model_deployment_gets_its_children_and_a_status(operator: OperatorThread, cluster: Cluster) -> None:
    cluster.create_md(make_md("llama"))
    dep = wait_for(lambda: cluster.deployment("llama"))
    assert dep["spec"]["replicas"] == 2
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelDeployment", "llama", True)
    assert cluster.service("llama") is not None
    status = wait_for(lambda: cluster.status("llama").get("observedGeneration") and cluster.status("llama"))
    assert status["observedGeneration"] == 1
    assert status["plan"]["instanceType"] == "inf2.48xlarge"
    assert status["plan"]["tensorParallelSize"] == 8
    assert status["desiredReplicas"] == 2
    assert status["selector"].count("app.kubernetes.io/") == 3
    assert cluster.condition("llama", "Degraded")["status"] == "False"
    # No Deployment controller runs here: nothing is ready, and the status says so.
    assert cluster.condition("llama", "Ready")["status"] == "False"
    assert cluster.condition("llama", "Progressing")["status"] == "True"
    # No finalizer: a stopped operator can never block deletion.
    assert not (cluster.md("llama") or {})["metadata"].get("finalizers")
    reasons = {e["reason"] for e in wait_for(lambda: cluster.events("llama"))}
    assert "Planned" in reasons


def test_status_follows_the_child_deployment_becoming_ready(operator: OperatorThread, cluster: Cluster) -> None:
    """Uses the emulator's Deployment status stand-in (pods 'ready' after a delay, no real pods)."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=READY_DELAY)
    cluster.create_md(make_md("llama"))
    wait_for(lambda: _ready(cluster, "llama"))
    status = cluster.status("llama")
    assert (status["readyReplicas"], status["updatedReplicas"], status["availableReplicas"]) == (2, 2, 2)
    assert cluster.condition("llama", "Progressing")["reason"] == "RolloutComplete"
    reasons = wait_for(lambda: (r := [e["reason"] for e in cluster.events("llama")]) and "RolloutComplete" in r and r)
    assert reasons.count("Planned") == 1


def test_a_spec_change_rolls_the_deployment_and_bumps_observed_generation(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """Uses the emulator's Deployment status stand-in."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=READY_DELAY)
    cluster.create_md(make_md("llama"))
    wait_for(lambda: _ready(cluster, "llama"))
    before = cluster.deployment("llama")
    cluster.patch_md("llama", {"spec": {"serving": {"maxNumSeqs": 16}}})
    after = wait_for(
        lambda: (
            (d := cluster.deployment("llama")) and d["metadata"]["generation"] > before["metadata"]["generation"] and d
        )
    )
    args = after["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "16" in args[args.index("--max-num-seqs") + 1 :][:1]
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 2 and _ready(cluster, "llama"))
    assert after["spec"]["strategy"]["rollingUpdate"]["maxSurge"] in (0, "0")


def test_a_setting_removed_from_the_spec_is_removed_from_the_child(operator: OperatorThread, cluster: Cluster) -> None:
    """A merge patch of the new render alone would leave the dropped key; the last-applied record removes it."""
    cluster.create_md(make_md("llama", scheduling={"nodeSelector": {"pool": "llm", "zone": "us-east-1a"}}))
    selector = wait_for(
        lambda: (d := cluster.deployment("llama")) and d["spec"]["template"]["spec"]["nodeSelector"].get("zone") and d
    )["spec"]["template"]["spec"]["nodeSelector"]
    assert selector["pool"] == "llm"
    cluster.apps.patch_namespaced_deployment("llama", "ml", {"metadata": {"annotations": {"other-tool/seen": "yes"}}})

    cluster.patch_md("llama", {"spec": {"scheduling": {"nodeSelector": {"zone": None}}}})

    dep = wait_for(
        lambda: (d := cluster.deployment("llama")) and "zone" not in d["spec"]["template"]["spec"]["nodeSelector"] and d
    )
    assert dep["spec"]["template"]["spec"]["nodeSelector"]["pool"] == "llm"
    assert dep["metadata"]["annotations"]["other-tool/seen"] == "yes"  # someone else's key stays


def test_an_unchanged_fleet_is_not_written_again(operator: OperatorThread, cluster: Cluster) -> None:
    """Uses the emulator's Deployment status stand-in; a pass that finds nothing to change writes nothing."""
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=READY_DELAY)
    cluster.create_md(make_md("llama"))
    wait_for(lambda: _ready(cluster, "llama"))
    wait_quiet(lambda: writes(cluster.emu))
    before = writes(cluster.emu)
    rv = cluster.deployment("llama")["metadata"]["resourceVersion"]
    # A label change is an event like any other: a full pass, with nothing to do.
    cluster.patch_md("llama", {"metadata": {"labels": {"team": "search"}}})
    wait_quiet(lambda: writes(cluster.emu))
    assert writes(cluster.emu) == before + 1  # the test's own label patch, nothing from the operator
    assert cluster.deployment("llama")["metadata"]["resourceVersion"] == rv


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param("delete-deployment", id="a deleted Deployment is recreated"),
        pytest.param("delete-service", id="a deleted Service is recreated"),
        pytest.param("edit-image", id="a hand-edited container image is put back"),
        pytest.param("edit-replicas", id="hand-edited replicas are put back when autoscaling is off"),
    ],
)
def test_drift_is_repaired_within_seconds(operator: OperatorThread, cluster: Cluster, edit: str) -> None:
    cluster.create_md(make_md("llama"))
    original = wait_for(lambda: cluster.deployment("llama"))
    wait_for(lambda: cluster.status("llama").get("observedGeneration"))
    image = original["spec"]["template"]["spec"]["containers"][0]["image"]
    if edit == "delete-deployment":
        cluster.apps.delete_namespaced_deployment("llama", "ml")
        wait_for(lambda: (d := cluster.deployment("llama")) and d["metadata"]["uid"] != original["metadata"]["uid"])
    elif edit == "delete-service":
        uid = cluster.service("llama")["metadata"]["uid"]
        # Raw answer: the emulator answers a Status where the real API server returns the Service.
        cluster.core.delete_namespaced_service("llama", "ml", _preload_content=False)
        wait_for(lambda: (s := cluster.service("llama")) and s["metadata"]["uid"] != uid)
    elif edit == "edit-image":
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "evil:latest"}]}}}}
        cluster.apps.patch_namespaced_deployment("llama", "ml", patch)
        wait_for(lambda: cluster.deployment("llama")["spec"]["template"]["spec"]["containers"][0]["image"] == image)
    else:
        cluster.apps.patch_namespaced_deployment("llama", "ml", {"spec": {"replicas": 7}})
        wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 2)
    wait_for(lambda: "ChildRepaired" in [e["reason"] for e in cluster.events("llama")])
    wait_quiet(lambda: writes(cluster.emu))
    assert [e["reason"] for e in cluster.events("llama")].count("ChildRepaired") == 1
    assert len(cluster.deployments()) == 1


def test_deleting_the_model_deployment_removes_its_children(operator: OperatorThread, cluster: Cluster) -> None:
    """Children go by ownerReference: uses the emulator's garbage-collector stand-in (no finalizer involved)."""
    enable_controllers(cluster.emu, garbage_collector=True, deployments=False)
    cluster.create_md(make_md("llama"))
    wait_for(lambda: cluster.deployment("llama") and cluster.service("llama"))
    cluster.delete_md("llama")
    wait_for(lambda: cluster.md("llama") is None and cluster.deployment("llama") is None)
    wait_for(lambda: cluster.service("llama") is None)
    wait_quiet(lambda: writes(cluster.emu))
    assert cluster.deployment("llama") is None  # nothing recreated it after the owner was gone


def test_an_unplannable_spec_degrades_without_touching_the_running_fleet(
    operator: OperatorThread, cluster: Cluster
) -> None:
    cluster.create_md(make_md("llama"))
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 1)
    before = cluster.deployment("llama")
    # A 70B model on one inf2.8xlarge (32 GiB of device memory) cannot fit.
    cluster.patch_md(
        "llama",
        {
            "spec": {
                "model": {"source": "hf://meta-llama/Llama-3.3-70B-Instruct"},
                "neuron": {"instanceType": "inf2.8xlarge", "tensorParallelSize": None},
            }
        },
    )
    degraded = wait_for(lambda: (c := cluster.condition("llama", "Degraded")).get("status") == "True" and c)
    assert degraded["reason"] == "PlanFailed"
    assert "inf2.8xlarge" in degraded["message"]
    assert cluster.status("llama")["observedGeneration"] == 2
    assert cluster.status("llama")["plan"]["instanceType"] == "inf2.48xlarge"  # still what runs
    warning = wait_for(lambda: [e for e in cluster.events("llama") if e["type"] == "Warning"])
    assert warning[0]["reason"] == "PlanFailed"
    after = cluster.deployment("llama")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # The per-fleet gauge the Degraded alert names the fleet from.
    gauge = 'neuronfleet_modeldeployment_degraded{name="llama",namespace="ml"}'
    assert f"{gauge} 1.0" in _operator_metrics(operator)
    assert "neuronfleet_degraded_modeldeployments 1.0" in _operator_metrics(operator)
    # Fixing the spec clears the condition.
    fixed = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "neuron": {"instanceType": "inf2.48xlarge"}}
    cluster.patch_md("llama", {"spec": fixed})
    wait_for(lambda: cluster.condition("llama", "Degraded").get("status") == "False")
    assert cluster.status("llama")["observedGeneration"] == 3
    assert f"{gauge} 0.0" in _operator_metrics(operator)
    cluster.delete_md("llama")
    wait_for(lambda: gauge not in _operator_metrics(operator))


def _operator_metrics(op: OperatorThread) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.config.metrics_port}/metrics", timeout=5) as answer:
        return answer.read().decode()


def test_scaling_through_the_scale_subresource_resizes_the_fleet(operator: OperatorThread, cluster: Cluster) -> None:
    cluster.create_md(make_md("llama"))
    wait_for(lambda: cluster.deployment("llama"))
    cluster.custom.patch_namespaced_custom_object_scale(
        "neuronfleet.io", "v1alpha1", "ml", "modeldeployments", "llama", {"spec": {"replicas": 4}}
    )
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 4)
    assert cluster.md("llama")["spec"]["replicas"] == 4
    wait_for(lambda: cluster.status("llama").get("desiredReplicas") == 4)


def test_autoscaled_fleets_keep_the_live_replica_count(operator: OperatorThread, cluster: Cluster) -> None:
    """With autoscaling on, the autoscaler alone writes replicas: a pass preserves the live count."""
    autoscaling = {"enabled": True, "minReplicas": 1, "maxReplicas": 5, "metrics": {"concurrencyPerReplica": 8}}
    cluster.create_md(make_md("llama", replicas=2, autoscaling=autoscaling))
    wait_for(lambda: cluster.deployment("llama"))
    cluster.apps.patch_namespaced_deployment("llama", "ml", {"spec": {"replicas": 3}})
    cluster.patch_md("llama", {"spec": {"serving": {"maxNumSeqs": 16}}})
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 2)
    assert cluster.deployment("llama")["spec"]["replicas"] == 3
    # New bounds apply at once.
    cluster.patch_md("llama", {"spec": {"autoscaling": {"maxReplicas": 2}}})
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 2)


POD_MONITOR_CRD = schemaless_crd("monitoring.coreos.com", "podmonitors", "PodMonitor")


def test_turning_monitoring_off_deletes_the_pod_monitor(operator: OperatorThread, cluster: Cluster) -> None:
    """The Prometheus Operator's PodMonitor CRD is installed as a minimal schema-less CRD."""
    kubernetes.client.ApiextensionsV1Api(cluster.api).create_custom_resource_definition(
        POD_MONITOR_CRD, _preload_content=False
    )

    def pod_monitor() -> dict | None:
        try:
            return cluster.custom.get_namespaced_custom_object(
                "monitoring.coreos.com", "v1", "ml", "podmonitors", "llama"
            )
        except kubernetes.client.ApiException:
            return None

    cluster.create_md(make_md("llama", monitoring={"podMonitor": True}))
    created = wait_for(pod_monitor)
    assert created["metadata"]["ownerReferences"][0]["name"] == "llama"
    cluster.patch_md("llama", {"spec": {"monitoring": {"podMonitor": False}}})
    wait_for(lambda: pod_monitor() is None)
    assert cluster.deployment("llama") is not None


def test_a_foreign_object_on_a_child_name_is_left_alone_and_reported(
    operator: OperatorThread, cluster: Cluster
) -> None:
    squatter = {
        "metadata": {"name": "llama", "labels": {"app": "someone-elses"}},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "someone-elses"}},
    }
    cluster.core.create_namespaced_service("ml", squatter, _preload_content=False)
    cluster.create_md(make_md("llama"))
    degraded = wait_for(lambda: (c := cluster.condition("llama", "Degraded")).get("status") == "True" and c)
    assert degraded["reason"] == "ApplyFailed"
    assert "Service llama" in degraded["message"]
    service = cluster.service("llama")
    assert service["spec"]["selector"] == {"app": "someone-elses"}  # untouched
    assert not service["metadata"].get("ownerReferences")
    assert cluster.deployment("llama") is not None  # the other children still apply
