"""The child set: apply order, off-means-deleted, no ownerReferences, and preview replicas."""

from __future__ import annotations

from typing import Any

import pytest

from neuronfleet.api import resource
from neuronfleet.render import children
from neuronfleet.render.options import RenderOptions

from .builders import make_md, make_plan


def kinds(md) -> list[str]:
    return [o["kind"] for o in children.desired(md, make_plan(), replicas=1, options=RenderOptions())]


def test_service_and_pdb_come_before_the_deployment():
    assert kinds(make_md()) == ["Service", "PodDisruptionBudget", "Deployment"]


def test_the_pod_monitor_is_rendered_when_enabled():
    md = make_md(monitoring={"podMonitor": True})
    assert kinds(md)[-1] == "PodMonitor"
    assert children.undesired(md) == []


def test_a_disabled_pod_monitor_is_listed_for_deletion():
    md = make_md(monitoring={"podMonitor": False})
    assert "PodMonitor" not in kinds(md)
    assert children.undesired(md) == [children.ChildRef("monitoring.coreos.com/v1", "PodMonitor", "llama3-8b")]


def test_children_carry_no_owner_references_but_the_owners_namespace():
    md = make_md(namespace="team-b", monitoring={"podMonitor": True})
    for obj in children.desired(md, make_plan(), replicas=1, options=RenderOptions()):
        assert "ownerReferences" not in obj["metadata"]
        assert obj["metadata"]["namespace"] == "team-b"
        assert obj["metadata"]["name"] == "llama3-8b"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"replicas": 3}, 3),
        ({"replicas": 0}, 0),
        (
            {"replicas": 3, "autoscaling": {"enabled": True, "minReplicas": 2, "metrics": {"waitingPerReplica": 8}}},
            2,
        ),
        ({"replicas": 3, "autoscaling": {"enabled": False, "minReplicas": 2}}, 3),
    ],
    ids=["spec replicas", "scaled to zero", "autoscaling on uses minReplicas", "autoscaling off ignores minReplicas"],
)
def test_preview_replicas(spec: dict[str, Any], expected: int):
    assert children.preview_replicas(make_md(**spec)) == expected


def test_without_a_namespace_the_children_have_none_so_kubectl_n_decides():
    md = resource.load({**make_md().model_dump(by_alias=True, exclude_none=True), "metadata": {"name": "llama3-8b"}})
    for obj in children.desired(md, make_plan(), replicas=1, options=RenderOptions()):
        assert "namespace" not in obj["metadata"]
