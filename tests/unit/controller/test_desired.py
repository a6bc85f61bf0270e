"""What a pass applies: replicas in units, held workloads, fallbacks in use, and deletions that never
take a running fleet down."""

from __future__ import annotations

from typing import Any

import pytest

from neuronfleet.api import convert
from neuronfleet.api.resource import load
from neuronfleet.controller import artifacts, desired, workloads
from neuronfleet.neuron import variants
from neuronfleet.render.options import RenderOptions

OPEN = artifacts.Decision(artifacts.Policy.COMPILE_ON_START, "k", ready=False, may_roll_out=True)
CLOSED = artifacts.Decision(artifacts.Policy.PRECOMPILE, "k", ready=False, may_roll_out=False, waiting="compiling")


def make_md(**spec: Any):
    return load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "llama", "namespace": "ml", "uid": "u"},
            "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **spec},
        }
    )


def fleet(md):
    fallback = [
        variants.VariantRequest(v.instance_type, v.tensor_parallel_size, v.runtime) for v in md.spec.neuron.fallback
    ]
    return workloads.workloads(md, variants.plan_variants(convert.plan_request(md), fallback))


def nothing_live(kind: str, name: str) -> None:
    return None


AUTOSCALING = {"enabled": True, "minReplicas": 2, "maxReplicas": 5, "metrics": {"concurrencyPerReplica": 8}}


@pytest.mark.parametrize(
    ("spec", "live", "decided", "expected"),
    [
        pytest.param({"replicas": 3}, None, None, 3, id="autoscaling off: spec.replicas for a new fleet"),
        pytest.param({"replicas": 3}, 7, None, 3, id="autoscaling off: spec.replicas overrides what runs"),
        pytest.param({"replicas": 3, "autoscaling": AUTOSCALING}, 4, None, 4, id="on, not decided yet: what runs"),
        pytest.param({"replicas": 3, "autoscaling": AUTOSCALING}, 4, 5, 5, id="on: the autoscaler's decision"),
        pytest.param({"replicas": 3, "autoscaling": AUTOSCALING}, 4, 9, 5, id="on: a decision clamped to maxReplicas"),
        pytest.param({"replicas": 3, "autoscaling": AUTOSCALING}, 9, None, 5, id="on: what runs clamped to bounds"),
        pytest.param({"replicas": 1, "autoscaling": AUTOSCALING}, None, None, 2, id="on: a new fleet starts in bounds"),
    ],
)
def test_the_replicas_asked_for_have_one_writer_per_mode(
    spec: dict, live: int | None, decided: int | None, expected: int
):
    assert desired.units(make_md(**spec).spec, live, decided) == expected


def test_a_closed_gate_leaves_the_workload_out_and_everything_else_in() -> None:
    md = make_md(neuron={"instanceType": "inf2.48xlarge"})
    def kinds(gate):
        return [
            c["kind"]
            for c in desired.desired(
                md, fleet(md), [gate], replicas={"primary": 2}, live=nothing_live, options=RenderOptions()
            ).children
        ]
    assert "Deployment" in kinds(OPEN)
    assert "Deployment" not in kinds(CLOSED) and "Service" in kinds(CLOSED)


def test_a_fallback_with_nothing_to_serve_or_drain_is_not_rendered_and_a_retired_one_is_deleted() -> None:
    md = make_md(neuron={"instanceType": "trn1.32xlarge", "fallback": [{"instanceType": "inf2.48xlarge"}]})
    f = fleet(md)
    idle = desired.desired(
        md, f, [OPEN, OPEN], replicas={"primary": 2, f[1].variant.name: 0}, live=nothing_live, options=RenderOptions()
    )
    assert [c["metadata"]["name"] for c in idle.children if c["kind"] == "Deployment"] == ["llama"]
    busy = desired.desired(
        md, f, [OPEN, OPEN], replicas={"primary": 2, f[1].variant.name: 3}, live=nothing_live, options=RenderOptions()
    )
    rendered = {c["metadata"]["name"]: c["spec"]["replicas"] for c in busy.children if c["kind"] == "Deployment"}
    assert rendered == {"llama": 2, "llama-inf2-48xlarge": 3}

    def fallback_live(kind: str, name: str) -> dict | None:
        return {"metadata": {"name": name}} if name == "llama-inf2-48xlarge" else None

    retired = desired.desired(
        md,
        f,
        [OPEN, OPEN],
        replicas={"primary": 2, f[1].variant.name: 0},
        retire=(f[1].variant.name,),
        live=fallback_live,
        options=RenderOptions(),
    )
    assert ("Deployment", "llama-inf2-48xlarge") in [(d.kind, d.name) for d in retired.deletions]
    assert "llama-inf2-48xlarge" not in [c["metadata"]["name"] for c in retired.children]


def _complete(replicas: int, *, kind: str = "Deployment") -> dict:
    return {
        "kind": kind,
        "metadata": {"generation": 1},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        },
    }


def _deletes(todo: desired.Desired) -> list[tuple[str, str]]:
    return [(d.kind, d.name) for d in todo.deletions]


@pytest.mark.parametrize(
    ("lws_live", "surge", "deleted"),
    [
        pytest.param(False, 0, False, id="the LeaderWorkerSet does not exist (kind not served): the Deployment stays"),
        pytest.param(True, 0, True, id="it exists and there is no room for both: the Deployment goes"),
    ],
)
def test_the_old_workload_kind_goes_only_once_the_new_one_exists(lws_live: bool, surge: int, deleted: bool) -> None:
    md = make_md(
        model={"source": "hf://meta-llama/Llama-3.1-405B-Instruct"},
        neuron={"instanceType": "trn1.32xlarge"},
        serving={"maxNumSeqs": 8},
        rollout={"maxSurge": surge, "maxUnavailable": 1},
    )
    f = fleet(md)
    assert f[0].kind == "LeaderWorkerSet"

    def live(kind: str, name: str) -> dict | None:
        if kind == "Deployment" and name == "llama":
            return _complete(2)
        if kind == "LeaderWorkerSet" and lws_live:
            return {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": {}}
        return None

    todo = desired.desired(md, f, [OPEN], replicas={"primary": 1}, live=live, options=RenderOptions())
    assert (("Deployment", "llama") in _deletes(todo)) is deleted
