"""The Service and the PodDisruptionBudget select exactly the pods the Deployment creates."""

from __future__ import annotations

import pytest

from neuronfleet.render import deployment, labels, pdb, service
from neuronfleet.render.options import RenderOptions

from .builders import make_md, make_plan


def pod_template_labels(md) -> dict[str, str]:
    obj = deployment.expected(md, make_plan(), replicas=1, options=RenderOptions())
    return obj["spec"]["template"]["metadata"]["labels"]


def test_the_service_selects_the_deployments_pods():
    md = make_md()
    assert service.expected(md)["spec"]["selector"].items() <= pod_template_labels(md).items()


def test_the_service_targets_the_containers_http_port_by_name():
    md = make_md()
    (port,) = service.expected(md)["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (8000, "http")
    (container,) = deployment.expected(md, make_plan(), replicas=1, options=RenderOptions())["spec"]["template"][
        "spec"
    ]["containers"]
    assert "http" in {p["name"] for p in container["ports"]}


def test_the_service_is_cluster_internal():
    assert service.expected(make_md())["spec"]["type"] == "ClusterIP"


def test_the_pdb_selects_the_deployments_pods():
    md = make_md()
    assert pdb.expected(md)["spec"]["selector"]["matchLabels"].items() <= pod_template_labels(md).items()


@pytest.mark.parametrize("replicas", [1, 2, 8], ids=["one replica", "two replicas", "eight replicas"])
def test_the_pdb_allows_one_voluntary_disruption_at_any_size(replicas: int):
    spec = pdb.expected(make_md(replicas=replicas))["spec"]
    assert spec["maxUnavailable"] == 1
    assert "minAvailable" not in spec, "minAvailable 1 with one replica would block node drains forever"


def test_unready_replicas_never_block_a_drain():
    assert pdb.expected(make_md())["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_both_carry_the_recommended_labels():
    md = make_md()
    for obj in (service.expected(md), pdb.expected(md)):
        assert obj["metadata"]["labels"] == labels.child_labels(md)
        assert obj["metadata"]["namespace"] == "ml"
