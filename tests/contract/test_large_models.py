"""Multi-node and DRA fleets on a real Kubernetes 1.36 API server.

The new spec fields are admitted, defaulted and refused by the real structural schema, and the
LeaderWorkerSet the renderer emits for the large-model examples is admitted by a real server
through the LeaderWorkerSet CRD the emulator serves (written from the LWS API facts, not copied
from upstream), with the scale subresource where the operator scales groups. Nothing is mocked.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client

import lws_facts
from contract import md
from contract.realapi import REPO, RealApiServer, install_crds
from neuronfleet.api import convert, resource
from neuronfleet.kube_emulator import leaderworkerset as lws_kind
from neuronfleet.kube_emulator.group_controller import hpa_pod_selector
from neuronfleet.neuron import planner
from neuronfleet.render import children
from neuronfleet.render.options import RenderOptions

pytestmark = pytest.mark.realapi

GROUP_EXAMPLES = ["llama31-405b-trn1-lws.yaml", "llama31-405b-trn2u-ultraserver.yaml"]


def _with_neuron(**fields: Any) -> dict[str, Any]:
    return {**md.MINIMAL_SPEC, "neuron": fields}


@pytest.mark.parametrize(
    ("neuron", "cause"),
    [
        (
            {"allocation": "cdi"},
            'spec.neuron.allocation: Unsupported value: "cdi": supported values: "devicePlugin", "dra"',
        ),
        (
            {"nodesPerReplica": 0},
            "spec.neuron.nodesPerReplica: Invalid value: 0: spec.neuron.nodesPerReplica in body should be "
            "greater than or equal to 1",
        ),
        (
            {"nodesPerReplica": 17},
            "spec.neuron.nodesPerReplica: Invalid value: 17: spec.neuron.nodesPerReplica in body should be "
            "less than or equal to 16",
        ),
        (
            {"efa": "yes"},
            'spec.neuron.efa: Invalid value: "string": spec.neuron.efa in body must be of type boolean: "string"',
        ),
    ],
    ids=[
        "an unknown allocation",
        "a replica on no node",
        "more nodes than a group may have",
        "efa that is not a boolean",
    ],
)
def test_the_new_neuron_fields_are_refused_precisely(api: client.ApiClient, namespace: str, neuron, cause: str):
    with pytest.raises(client.ApiException) as info:
        md.create(api, namespace, md.make_md("bad", _with_neuron(**neuron)))
    rejection = md.rejection_of(info.value)
    assert rejection.status == 422
    assert cause in rejection.message, rejection.message


def test_tp_across_nodes_and_the_allocation_are_stored_and_efa_defaults_on(api: client.ApiClient, namespace: str):
    stored = md.create(api, namespace, md.make_md("big", _with_neuron(tensorParallelSize=256, allocation="dra")))
    neuron = stored["spec"]["neuron"]
    assert (neuron["tensorParallelSize"], neuron["allocation"], neuron["efa"]) == (256, "dra", True)
    assert "nodesPerReplica" not in neuron, "no default: the planner picks the fewest nodes"
    assert "allocation" not in md.create(api, namespace, md.make_md("plain"))["spec"]["neuron"], (
        "no default: the operator's --neuron-allocation applies"
    )


def _rendered_lws(name: str) -> dict[str, Any]:
    (doc,) = [d for d in yaml.safe_load_all((REPO / "examples" / name).read_text()) if d]
    model = resource.load(doc)
    plan = planner.plan(convert.plan_request(model))
    objects = children.desired(model, plan, replicas=2, options=RenderOptions())
    (lws,) = [o for o in objects if o["kind"] == "LeaderWorkerSet"]
    lws["metadata"].pop("namespace", None)
    return lws


@pytest.fixture(scope="module")
def lws_api(real_api: RealApiServer) -> None:
    """The LeaderWorkerSet kind served by the real server through the emulator's CRD (installed once)."""
    with real_api.api_client() as api:
        install_crds(api, [lws_kind.crd()])


def _subset(small: Any, big: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _subset(v, big[k]) for k, v in small.items())
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(_subset(a, b) for a, b in zip(small, big, strict=True))
        )
    return small == big


@pytest.mark.parametrize(
    "name", GROUP_EXAMPLES, ids=[f"{n}'s LeaderWorkerSet is admitted whole" for n in GROUP_EXAMPLES]
)
def test_rendered_leaderworkersets_are_admitted_without_pruning(
    lws_api, api: client.ApiClient, namespace: str, name: str
):
    rendered = _rendered_lws(name)
    objects = client.CustomObjectsApi(api)
    stored = objects.create_namespaced_custom_object(
        lws_kind.GROUP, lws_kind.VERSION, namespace, lws_kind.PLURAL, rendered
    )
    assert _subset(rendered["spec"], stored["spec"]), "the server pruned or changed what we rendered"
    assert stored["metadata"]["annotations"] == rendered["metadata"]["annotations"]
    defaults = lws_facts.SPEC_SCHEMA["properties"]["rolloutStrategy"]["properties"]["rollingUpdateConfiguration"]
    assert (
        stored["spec"]["rolloutStrategy"]["rollingUpdateConfiguration"]["partition"]
        == defaults["properties"]["partition"]["default"]
    )


def test_groups_are_scaled_through_the_scale_subresource_as_the_lws_api_declares(
    lws_api: None, api: client.ApiClient, namespace: str
):
    rendered = _rendered_lws("llama31-405b-trn1-lws.yaml")
    objects = client.CustomObjectsApi(api)
    args = (lws_kind.GROUP, lws_kind.VERSION, namespace, lws_kind.PLURAL)
    objects.create_namespaced_custom_object(*args, rendered)
    name = rendered["metadata"]["name"]
    selector = hpa_pod_selector(name)
    objects.patch_namespaced_custom_object_status(*args, name, {"status": {"replicas": 2, "hpaPodSelector": selector}})
    scale = objects.get_namespaced_custom_object_scale(*args, name)
    assert (scale["spec"]["replicas"], scale["status"]["replicas"], scale["status"]["selector"]) == (2, 2, selector)
    objects.patch_namespaced_custom_object_scale(*args, name, {"spec": {"replicas": 5}})
    stored = objects.get_namespaced_custom_object(*args, name)
    assert stored["spec"]["replicas"] == 5
    assert stored["spec"]["leaderWorkerTemplate"]["size"] == 4, "scaling adds groups, never nodes to a group"
