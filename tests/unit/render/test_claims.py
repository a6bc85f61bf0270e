"""DRA: the ResourceClaimTemplate a dra plan renders, and what it changes in the pods.

Facts checked against the Neuron DRA guide (aws-neuron-sdk deploy/eks/dra.rst) and AIBrix's trn2
samples: DeviceClass neuron.aws.com, ExactCount, the devicegroup<N>_id connected-set constraint,
NeuronConfig.logicalNeuronCore in the claim's config, EFA devices in the same claim, and the
UltraServerConfig node claim. Every template validates strictly against the Kubernetes 1.34
resource.k8s.io/v1 schema.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from neuronfleet.api import convert
from neuronfleet.neuron import planner
from neuronfleet.render import children, claims
from neuronfleet.render.options import RenderOptions

from .builders import make_md

OPTIONS = RenderOptions()


def planned(**neuron: Any):
    serving = neuron.pop("serving", {"maxModelLen": 8192, "maxNumSeqs": 8})
    model = neuron.pop("model", "meta-llama/Llama-3.3-70B-Instruct")
    md = make_md("fleet", model={"source": f"hf://{model}"}, neuron={"allocation": "dra", **neuron}, serving=serving)
    return md, planner.plan(convert.plan_request(md))


def template(md, plan) -> dict[str, Any]:
    obj = claims.expected(md, plan)
    assert obj is not None
    kubernetes_validate.validate(obj, "1.34.0", strict=True)
    return obj


def pod_specs(md, plan) -> list[dict[str, Any]]:
    workload = children.workload(md, plan, replicas=1, options=OPTIONS)
    if workload["kind"] == "Deployment":
        return [workload["spec"]["template"]["spec"]]
    lwt = workload["spec"]["leaderWorkerTemplate"]
    return [lwt["leaderTemplate"]["spec"], lwt["workerTemplate"]["spec"]]


@pytest.mark.parametrize(
    ("model", "tp", "devices"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", 4, 1),
        ("meta-llama/Llama-3.3-70B-Instruct", 16, 4),
        ("meta-llama/Llama-3.3-70B-Instruct", 32, 8),
        ("meta-llama/Llama-3.3-70B-Instruct", 64, 16),
    ],
    ids=["TP 4 is one device", "TP 16 four connected devices", "TP 32 eight", "TP 64 the whole node"],
)
def test_a_trn2_claim_asks_for_the_connected_set_and_the_lnc(model: str, tp: int, devices: int):
    serving = {"maxModelLen": 2048, "maxNumSeqs": 4}
    md, plan = planned(model=model, instanceType="trn2.48xlarge", tensorParallelSize=tp, serving=serving)
    spec = template(md, plan)["spec"]["spec"]["devices"]
    (request,) = spec["requests"]
    assert request["exactly"]["deviceClassName"] == "neuron.aws.com"
    assert (request["exactly"]["allocationMode"], request["exactly"]["count"]) == ("ExactCount", devices)
    assert "trn2.48xlarge" in request["exactly"]["selectors"][0]["cel"]["expression"]
    if devices > 1:
        assert spec["constraints"] == [
            {"requests": ["neurons"], "matchAttribute": f"resource.aws.com/devicegroup{devices}_id"}
        ]
    else:
        assert "constraints" not in spec
    (config,) = spec["config"]
    assert config["opaque"]["driver"] == "neuron.aws.com"
    assert config["opaque"]["parameters"] == {
        "apiVersion": "neuron.aws.com/v1",
        "kind": "NeuronConfig",
        "logicalNeuronCore": 2,
    }


def test_pods_reference_the_claim_and_carry_no_neuron_resources_and_no_scheduler():
    md, plan = planned(instanceType="trn2.48xlarge", tensorParallelSize=32)
    (pod,) = pod_specs(md, plan)
    assert pod["resourceClaims"] == [{"name": "neuron", "resourceClaimTemplateName": claims.template_name(md, plan)}]
    (container,) = pod["containers"]
    assert container["resources"]["claims"] == [{"name": "neuron"}]
    everything = {**container["resources"]["requests"], **container["resources"]["limits"]}
    assert not [k for k in everything if k.startswith("aws.amazon.com/neuron")]
    assert "schedulerName" not in pod


def test_a_users_own_scheduler_is_still_honoured_with_dra():
    md = make_md(
        "fleet", neuron={"allocation": "dra", "instanceType": "trn2.48xlarge"}, scheduling={"schedulerName": "volcano"}
    )
    plan = planner.plan(convert.plan_request(md))
    assert pod_specs(md, plan)[0]["schedulerName"] == "volcano"


def test_the_device_plugin_default_renders_no_claim():
    md = make_md("fleet", neuron={"instanceType": "trn2.48xlarge"})
    plan = planner.plan(convert.plan_request(md))
    assert plan.allocation == "devicePlugin" and claims.expected(md, plan) is None
    assert "resourceClaims" not in pod_specs(md, plan)[0]
    dra = planner.plan(convert.plan_request(md, default_allocation="dra"))
    assert dra.allocation == "dra" and claims.expected(md, dra) is not None


def test_a_group_on_trn2_puts_the_efa_devices_under_the_same_devicegroup():
    md, plan = planned(model="meta-llama/Llama-3.1-405B-Instruct", instanceType="trn2.48xlarge", nodesPerReplica=2)
    spec = template(md, plan)["spec"]["spec"]["devices"]
    by_name = {r["name"]: r["exactly"] for r in spec["requests"]}
    assert by_name["neurons"]["count"] == 16
    assert by_name["efas"] == {"deviceClassName": "efa.networking.k8s.aws", "allocationMode": "ExactCount", "count": 16}
    assert spec["constraints"] == [
        {"requests": ["neurons", "efas"], "matchAttribute": "resource.aws.com/devicegroup16_id"}
    ]
    for pod in pod_specs(md, plan):
        assert "vpc.amazonaws.com/efa" not in pod["containers"][0]["resources"]["requests"]


def test_a_group_on_trn1_keeps_its_8_efa_devices_outside_the_16_device_constraint_and_sets_no_lnc():
    md, plan = planned(model="meta-llama/Llama-3.1-405B-Instruct", instanceType="trn1.32xlarge")
    spec = template(md, plan)["spec"]["spec"]["devices"]
    assert {r["name"]: r["exactly"]["count"] for r in spec["requests"]} == {"neurons": 16, "efas": 8}
    assert spec["constraints"] == [{"requests": ["neurons"], "matchAttribute": "resource.aws.com/devicegroup16_id"}]
    assert "config" not in spec  # LNC is a trn2/trn3 setting


def test_an_ultraserver_group_claims_its_node_with_the_ultraserver_mode():
    md, plan = planned(
        model="meta-llama/Llama-3.1-405B-Instruct",
        instanceType="trn2u.48xlarge",
        serving={"maxModelLen": 32768, "maxNumSeqs": 8},
    )
    spec = template(md, plan)["spec"]["spec"]["devices"]
    (request,) = spec["requests"]
    assert request["exactly"]["count"] == 1
    assert request["exactly"]["selectors"][0]["cel"]["expression"] == (
        "device.attributes['neuron.aws.com'].resourceType == 'neuron_node'"
    )
    assert spec["config"][0]["opaque"]["parameters"] == {
        "apiVersion": "neuron.aws.com/v1",
        "kind": "UltraServerConfig",
        "ultraserverMode": 4,
    }


def test_a_changed_claim_is_a_new_template_because_a_template_spec_is_immutable():
    md, tp32 = planned(instanceType="trn2.48xlarge", tensorParallelSize=32)
    _, tp64 = planned(instanceType="trn2.48xlarge", tensorParallelSize=64)
    _, again = planned(instanceType="trn2.48xlarge", tensorParallelSize=32)
    assert claims.template_name(md, tp32) != claims.template_name(md, tp64)
    assert claims.template_name(md, tp32) == claims.template_name(md, again)


def test_stale_templates_are_only_released_once_the_rollout_is_done():
    md, plan = planned(instanceType="trn2.48xlarge", tensorParallelSize=32)
    current = claims.template_name(md, plan)
    live = [current, "fleet-neuron-0ld0ld00"]
    assert children.stale_claim_templates(md, plan, live, rollout_done=False) == []
    assert [r.name for r in children.stale_claim_templates(md, plan, live, rollout_done=True)] == [
        "fleet-neuron-0ld0ld00"
    ]
    back_to_plugin = planner.plan(convert.plan_request(make_md("fleet", neuron={"instanceType": "trn2.48xlarge"})))
    assert {r.name for r in children.stale_claim_templates(md, back_to_plugin, live, rollout_done=True)} == set(live)


def test_a_multi_device_pod_on_inf2_is_refused_with_dra_because_no_connected_set_is_published():
    md = make_md("fleet", neuron={"allocation": "dra", "instanceType": "inf2.48xlarge"})
    with pytest.raises(Exception, match=r"EFA-enabled instances only.*devicePlugin"):
        planner.plan(convert.plan_request(md))
