"""The operator against the API emulator: create, update, delete, as a user would see it."""

from __future__ import annotations

from emulator_support import wait_for

from conftest import Cluster, OperatorThread, make_md


def test_a_new_model_deployment_gets_its_children_and_a_status(operator: OperatorThread, cluster: Cluster) -> None:
    cluster.create_md(make_md("llama"))
    dep = wait_for(lambda: cluster.deployment("llama"))
    assert dep["spec"]["replicas"] == 2
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ModelDeployment", "llama", True)
    assert cluster.service("llama") is not None
    status = wait_for(lambda: cluster.status("llama").get("observedGeneration") and cluster.status("llama"))
    assert status["plan"]["instanceType"] == "inf2.48xlarge"
    assert status["plan"]["tensorParallelSize"] == 8
    assert status["selector"].count("app.kubernetes.io/") == 3
    assert cluster.condition("llama", "Degraded")["status"] == "False"
    assert "kopf" not in (cluster.md("llama") or {}).get("metadata", {}).get("finalizers", [])
