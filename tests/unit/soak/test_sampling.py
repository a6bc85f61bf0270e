"""The runner's pure parts: the soak's fleets, and how API objects become a Snapshot."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from neuronfleet.api import convert, resource
from neuronfleet.neuron import planner
from neuronfleet.soak.runner import fleet_manifests, settled, snapshot

REPO = Path(__file__).resolve().parents[3]
DEMO = yaml.safe_load((REPO / "examples" / "demo" / "llama3-8b-trn2.yaml").read_text())


def test_the_three_fleets_load_and_plan_and_only_the_compiled_one_has_a_compile_job():
    docs = fleet_manifests(DEMO, compression=10, prometheus_url="http://127.0.0.1:9")
    assert {d["metadata"]["name"] for d in docs.values()} == {"chat", "batch", "compiled"}
    for role, doc in docs.items():
        md = resource.load(copy.deepcopy(doc))
        assert planner.plan(convert.plan_request(md)).instance_type == "trn2.48xlarge", role
    assert docs["compiled"]["spec"]["neuron"]["compiledArtifacts"]["policy"] == "precompile"
    assert "compiledArtifacts" not in docs["spare"]["spec"]["neuron"]
    assert (
        docs["spare"]["spec"]["autoscaling"]["maxReplicas"] == 3 and "slo" not in docs["spare"]["spec"]["autoscaling"]
    )


def _md(uid: str, *, generation: int = 2, observed: int | None = 2, ready: str = "True") -> dict:
    return {
        "metadata": {"name": "chat", "namespace": "soak", "uid": uid, "generation": generation},
        "spec": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 8}},
        "status": {"observedGeneration": observed, "conditions": [{"type": "Ready", "status": ready}]},
    }


def _deployment(owner: str, *, replicas: int = 2, ready: int = 2) -> dict:
    return {
        "metadata": {
            "name": "chat",
            "uid": f"dep-{owner}",
            "generation": 3,
            "ownerReferences": [{"kind": "ModelDeployment", "uid": owner, "controller": True}],
        },
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": ready},
    }


def test_a_snapshot_groups_children_by_owner_and_keeps_the_rest_as_orphans():
    snap = snapshot(5.0, [_md("md-1")], [("Deployment", _deployment("md-1")), ("Service", _deployment("md-gone"))])
    (fleet,) = snap.fleets
    assert (fleet.key, fleet.min_replicas, fleet.max_replicas, fleet.ready) == ("soak/chat", 1, 8, True)
    assert [(c.kind, c.replicas, c.rolled_out) for c in fleet.children] == [("Deployment", 2, True)]
    assert fleet.converged
    assert [(o.kind, o.owner_uid) for o in snap.orphans] == [("Service", "md-gone")]


def test_a_rollout_with_unready_pods_is_not_rolled_out_and_the_fleet_not_converged():
    snap = snapshot(5.0, [_md("md-1")], [("Deployment", _deployment("md-1", ready=1))])
    (fleet,) = snap.fleets
    assert not fleet.children[0].rolled_out and not fleet.converged


def test_the_soak_settles_only_when_every_fleet_converged_with_every_child_it_had():
    whole = snapshot(5.0, [_md("md-1")], [("Deployment", _deployment("md-1")), ("Service", _deployment("md-1"))])
    no_service = snapshot(6.0, [_md("md-1")], [("Deployment", _deployment("md-1"))])
    assert settled([whole], after=1.0, fleets=1)
    assert not settled([whole, no_service], after=1.0, fleets=1)
    assert not settled([whole], after=5.0, fleets=1), "a sample from before the last fault ended says nothing"
