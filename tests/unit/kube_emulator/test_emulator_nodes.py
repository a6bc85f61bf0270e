"""Emulated Neuron nodes carry their type's devices, cores, labels and taint, from the catalog."""

from __future__ import annotations

import pytest

from neuronfleet.api import quantities
from neuronfleet.kube_emulator import nodes
from neuronfleet.neuron.catalog import CATALOG


@pytest.mark.parametrize("instance", [i for i in CATALOG if not i.inferred], ids=lambda i: i.name)
def test_devices_and_cores_come_from_the_catalog(instance):
    shape = nodes.NodeShape(instance)
    capacity = nodes.capacity(shape)
    assert capacity["aws.amazon.com/neuron"] == str(instance.chips)
    assert capacity["aws.amazon.com/neuroncore"] == str(instance.logical_cores())
    assert capacity["cpu"] == str(instance.vcpus)


def test_trn1_32xlarge_advertises_the_device_plugin_docs_example():
    """deploy/includes/k8s-neuron-device-plugin.rst: trn1.32xlarge = 32 neuroncore / 16 neuron."""
    capacity = nodes.capacity(nodes.NodeShape.of("trn1.32xlarge"))
    assert (capacity["aws.amazon.com/neuroncore"], capacity["aws.amazon.com/neuron"]) == ("32", "16")


def test_lnc1_doubles_trn2_cores():
    assert nodes.capacity(nodes.NodeShape.of("trn2.48xlarge", lnc=1))["aws.amazon.com/neuroncore"] == "128"


@pytest.mark.parametrize(
    ("vcpus", "millis"),
    [(1, 60), (2, 70), (4, 80), (8, 90), (192, 80 + 188 * 2.5)],
    ids=["one core", "two cores", "four cores", "eight cores", "a trn2.48xlarge"],
)
def test_reserved_cpu_follows_the_eks_ami_steps(vcpus: int, millis: float):
    assert nodes.reserved_cpu_millis(vcpus) == int(millis)


def test_allocatable_is_capacity_less_the_reservations():
    shape = nodes.NodeShape.of("trn2.48xlarge")
    capacity, allocatable = nodes.capacity(shape), nodes.allocatable(shape)
    reserved_memory = quantities.parse(capacity["memory"]) - quantities.parse(allocatable["memory"])
    assert reserved_memory == (11 * 110 + 255 + 100) * 2**20
    assert quantities.parse(allocatable["cpu"]) * 1000 == 192_000 - nodes.reserved_cpu_millis(192)
    assert allocatable["aws.amazon.com/neuron"] == capacity["aws.amazon.com/neuron"], "devices are never reserved"


def test_a_node_carries_the_neuron_taint_and_karpenter_labels():
    node = nodes.node_object("n", nodes.NodeShape.of("trn2.48xlarge"), capacity_type="spot", nodepool="neuron")
    labels = node["metadata"]["labels"]
    assert node["spec"]["taints"] == [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}]
    assert labels["node.kubernetes.io/instance-type"] == "trn2.48xlarge"
    assert labels["karpenter.sh/capacity-type"] == "spot"
    assert labels["karpenter.sh/nodepool"] == "neuron"
    assert labels["karpenter.k8s.aws/instance-accelerator-count"] == "16"
