"""The scheduler's fit rules and its FailedScheduling message, on plain pods and nodes.

Expected messages are the wording of kube-scheduler's FitError (pkg/scheduler/framework/types.go)
and its filter plugins; the first case is the message a real kube-scheduler gave for 17 devices on
8 trn1 nodes (issue 17).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from neuronfleet.api import quantities
from neuronfleet.kube_emulator import nodes, scheduling

TOLERATE_NEURON = [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}]


def pod(
    *,
    neuron: int = 0,
    cpu: str = "1",
    memory: str = "1Gi",
    selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    affinity: dict[str, Any] | None = None,
    name: str = "p",
) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": cpu, "memory": memory}
    if neuron:
        requests["aws.amazon.com/neuron"] = str(neuron)
    spec: dict[str, Any] = {
        "containers": [{"name": "vllm", "resources": {"requests": requests, "limits": dict(requests)}}],
        "tolerations": TOLERATE_NEURON if tolerations is None else tolerations,
    }
    if selector:
        spec["nodeSelector"] = selector
    if affinity:
        spec["affinity"] = affinity
    return {"metadata": {"name": name, "namespace": "ml"}, "spec": spec}


def node(instance_type: str = "trn1.32xlarge", name: str = "n1", **options: Any) -> dict[str, Any]:
    return nodes.node_object(name, nodes.NodeShape.of(instance_type), **options)


def message_for(p: dict[str, Any], node_list: list[dict[str, Any]], bound: dict[str, list] | None = None) -> str:
    bound = bound or {}
    reasons = {
        n["metadata"]["name"]: scheduling.unfit_reasons(p, n, bound.get(n["metadata"]["name"], ())) for n in node_list
    }
    return scheduling.fit_error_message(len(node_list), reasons)


def test_seventeen_devices_on_eight_trn1_nodes_read_as_the_real_scheduler_said():
    eight = [node(name=f"trn1-{i}") for i in range(8)]
    assert message_for(pod(neuron=17), eight) == "0/8 nodes are available: 8 Insufficient aws.amazon.com/neuron."


def test_a_pod_that_fits_has_no_reasons():
    assert scheduling.unfit_reasons(pod(neuron=16), node()) == []


def test_devices_taken_by_bound_pods_are_not_available():
    first = pod(neuron=8, name="a")
    assert scheduling.unfit_reasons(pod(neuron=8), node(), [first]) == []
    assert scheduling.unfit_reasons(pod(neuron=8), node(), [first, pod(neuron=4, name="b")]) == [
        "Insufficient aws.amazon.com/neuron"
    ]


def test_every_insufficient_resource_is_named_for_one_node():
    reasons = scheduling.unfit_reasons(pod(neuron=17, cpu="500", memory="4Ti"), node())
    assert sorted(reasons) == ["Insufficient aws.amazon.com/neuron", "Insufficient cpu", "Insufficient memory"]


def test_allocatable_cpu_is_below_the_vcpu_count():
    """A pod asking for every vCPU does not fit: the EKS AMI reserves some for the kubelet."""
    assert scheduling.unfit_reasons(pod(cpu="128"), node()) == ["Insufficient cpu"]
    assert scheduling.unfit_reasons(pod(cpu="127"), node()) == []


@pytest.mark.parametrize(
    ("toleration", "fits"),
    [
        ({"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "aws.amazon.com/neuron", "operator": "Equal", "value": "true"}, True),
        ({"key": "aws.amazon.com/neuron", "operator": "Equal", "value": "false"}, False),
        ({"operator": "Exists"}, True),
        ({"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
    ids=[
        "exists on the key and effect tolerates",
        "equal with the taint's value tolerates",
        "equal with another value does not",
        "an empty key with exists tolerates everything",
        "another effect does not",
        "another key does not",
    ],
)
def test_the_neuron_taint_needs_a_matching_toleration(toleration: dict[str, Any], fits: bool):
    reasons = scheduling.unfit_reasons(pod(tolerations=[toleration]), node())
    assert (reasons == []) is fits
    if not fits:
        assert reasons == ["node(s) had untolerated taint(s)"]


def test_the_legacy_taint_wording_names_the_taint():
    reasons = scheduling.unfit_reasons(pod(tolerations=[]), node(), legacy_taints=True)
    assert reasons == ["node(s) had untolerated taint {aws.amazon.com/neuron: true}"]


def test_the_first_failing_filter_wins_over_resources():
    """A node whose taint is not tolerated never reports missing devices as well."""
    reasons = scheduling.unfit_reasons(pod(neuron=99, tolerations=[]), node())
    assert reasons == ["node(s) had untolerated taint(s)"]


def test_a_cordoned_node_is_unschedulable_first():
    assert scheduling.unfit_reasons(pod(), node(unschedulable=True)) == ["node(s) were unschedulable"]


def test_mixed_reasons_are_counted_and_sorted_as_strings():
    node_list = [
        node("trn1.32xlarge", "a"),
        node("trn1.32xlarge", "b"),
        node("trn2.48xlarge", "c"),
        node("inf2.48xlarge", "d", unschedulable=True),
    ]
    p = pod(neuron=17, selector={"node.kubernetes.io/instance-type": "trn1.32xlarge"})
    assert message_for(p, node_list) == (
        "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable, 2 Insufficient aws.amazon.com/neuron."
    )


def test_a_post_filter_message_follows_the_histogram():
    preemption = "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    message = scheduling.fit_error_message(2, {"a": ["Insufficient cpu"], "b": ["Insufficient cpu"]}, preemption)
    assert message == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )


def test_no_nodes_at_all_is_the_schedulers_no_nodes_error():
    assert scheduling.fit_error_message(0, {}) == "no nodes available to schedule pods"


TYPE = "node.kubernetes.io/instance-type"
COUNT = "karpenter.k8s.aws/instance-accelerator-count"


def _affinity(*terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": exprs} for exprs in terms]
            }
        }
    }


@pytest.mark.parametrize(
    ("affinity", "fits"),
    [
        (_affinity([{"key": TYPE, "operator": "In", "values": ["trn1.32xlarge"]}]), True),
        (_affinity([{"key": TYPE, "operator": "NotIn", "values": ["trn1.32xlarge"]}]), False),
        (
            _affinity(
                [{"key": TYPE, "operator": "In", "values": ["trn2.48xlarge"]}],
                [{"key": "karpenter.k8s.aws/instance-accelerator-name", "operator": "In", "values": ["trainium"]}],
            ),
            True,
        ),
        (_affinity([{"key": COUNT, "operator": "Gt", "values": ["8"]}]), True),
        (_affinity([{"key": COUNT, "operator": "Lt", "values": ["8"]}]), False),
        (_affinity([{"key": "missing", "operator": "DoesNotExist"}]), True),
        (_affinity([{"key": "missing", "operator": "Exists"}]), False),
        (_affinity([]), False),
    ],
    ids=[
        "in the node's type",
        "not in the node's type",
        "terms are ORed",
        "greater than the device count",
        "less than the device count",
        "a label the node lacks does not exist",
        "a label the node lacks does not match exists",
        "an empty term matches no node",
    ],
)
def test_required_node_affinity(affinity: dict[str, Any], fits: bool):
    reasons = scheduling.unfit_reasons(pod(affinity=affinity), node())
    assert (reasons == []) is fits


def test_init_containers_count_by_their_largest_request():
    p = pod(cpu="2")
    p["spec"]["initContainers"] = [{"name": "fetch", "resources": {"requests": {"cpu": "8"}}}]
    assert scheduling.pod_requests(p)["cpu"] == Decimal(8)


def test_a_non_quantity_parses_to_none():
    assert quantities.parse("lots") is None
