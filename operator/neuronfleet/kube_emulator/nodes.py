"""Neuron nodes as the API server holds them: labels, the Neuron taint, capacity and allocatable.

The emulator's scheduler places pods against these objects, so each one carries what a real EKS
node of its instance type reports (numbers from the instance catalog, ``neuron/catalog.py``):

- labels: ``node.kubernetes.io/instance-type``, ``kubernetes.io/arch=amd64``, ``kubernetes.io/os``,
  ``topology.kubernetes.io/zone`` (Kubernetes well-known labels), ``karpenter.sh/capacity-type``,
  ``karpenter.sh/nodepool`` and ``karpenter.k8s.aws/instance-family``/``-accelerator-name``/
  ``-accelerator-manufacturer``/``-accelerator-count`` (Karpenter's well-known labels,
  reference/neuron-vllm.md section 2; the accelerator name ``trainium2`` for trn2 is [INFERRED]
  from the naming of the others);
- the taint ``aws.amazon.com/neuron=true:NoSchedule`` that Neuron node groups carry (EKS workshop
  NodePool, reference/neuron-vllm.md section 2); the rendered pods tolerate it with ``Exists``;
- capacity: ``aws.amazon.com/neuron`` = Neuron devices (chips) and ``aws.amazon.com/neuroncore`` =
  NeuronCores at the node's LNC, as the Neuron device plugin advertises them (aws-neuron-sdk
  deploy/includes/k8s-neuron-device-plugin.rst: trn1.32xlarge = 16 neuron / 32 neuroncore; the
  per-LNC count on trn2 is [INFERRED], reference/neuron-vllm.md section 2), cpu = vCPUs, memory =
  host memory, ``pods`` = 110 (the kubelet's default ``--max-pods``; EKS may allow more by ENI
  count [INFERRED]) and ephemeral-storage as configured (the root volume or instance store);
- allocatable: capacity less what the EKS AMI reserves for the kubelet and the system, which
  Karpenter computes the same way (Karpenter docs, concepts/nodeclasses "Reserved Resources",
  linking amazon-eks-ami files/bootstrap.sh): CPU 6 % of the first core, 1 % of the second,
  0.5 % of the third and fourth, 0.25 % of every core above four; memory 11 MiB per pod of
  max-pods plus 255 MiB; and the kubelet's hard eviction threshold ``memory.available<100Mi``.
  Devices are never reserved.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import Store
from neuronfleet.neuron.catalog import CATALOG, InstanceType, lookup

__all__ = [
    "ACCELERATOR_NAMES",
    "CAPACITY_TYPE_LABEL",
    "INSTANCE_TYPE_LABEL",
    "NEURONCORE_RESOURCE",
    "NEURON_RESOURCE",
    "NEURON_TAINT",
    "NODEPOOL_LABEL",
    "NODES",
    "NodeShape",
    "allocatable",
    "capacity",
    "node_object",
    "reserved_cpu_millis",
    "reserved_memory_mib",
    "serve_nodes",
]

NEURON_RESOURCE = "aws.amazon.com/neuron"
NEURONCORE_RESOURCE = "aws.amazon.com/neuroncore"
NEURON_TAINT: dict[str, str] = {"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
NODEPOOL_LABEL = "karpenter.sh/nodepool"
ACCELERATOR_NAMES: dict[str, str] = {"inf2": "inferentia2", "trn1": "trainium", "trn2": "trainium2"}
MAX_PODS = 110
EVICTION_HARD_MIB = 100

NODES = ResourceInfo("", "v1", "nodes", "Node", False, singular="node", status=True, short_names=("no",))
"""core/v1 Node (cluster-scoped, with a status subresource); not in the emulator's built-ins."""


def serve_nodes(store: Store) -> ResourceInfo:
    """Serve core/v1 nodes on `store` (once) and return the resource."""
    if ("", "v1", "nodes") not in store.resources:
        store.serve(NODES)
    return store.resources[("", "v1", "nodes")]


def reserved_cpu_millis(vcpus: int) -> int:
    """kube-reserved CPU of the EKS AMI for a node with `vcpus` cores (see the module docstring)."""
    millis = Decimal(0)
    for core in range(1, vcpus + 1):
        share = (
            Decimal("0.06")
            if core == 1
            else Decimal("0.01")
            if core == 2
            else (Decimal("0.005") if core <= 4 else Decimal("0.0025"))
        )
        millis += share * 1000
    return int(millis)


def reserved_memory_mib(max_pods: int = MAX_PODS) -> int:
    """kube-reserved memory of the EKS AMI: 11 MiB per pod of max-pods + 255 MiB."""
    return 11 * max_pods + 255


@dataclasses.dataclass(frozen=True)
class NodeShape:
    """What one node of a type offers, before anything is bound to it."""

    instance: InstanceType
    lnc: int | None = None  # logical NeuronCore config the node boots with; None: the type's default
    ephemeral_storage_gib: int = 2000  # root volume or RAID0 instance store given to pods' emptyDirs
    max_pods: int = MAX_PODS

    @classmethod
    def of(cls, instance_type: str, **options: Any) -> NodeShape:
        return cls(lookup(instance_type, CATALOG), **options)


def capacity(shape: NodeShape) -> dict[str, str]:
    """status.capacity of a node of this shape."""
    instance = shape.instance
    return {
        "cpu": str(instance.vcpus),
        "memory": f"{instance.host_memory_gib * 1024 * 1024}Ki",
        "ephemeral-storage": f"{shape.ephemeral_storage_gib}Gi",
        "pods": str(shape.max_pods),
        NEURON_RESOURCE: str(instance.chips),
        NEURONCORE_RESOURCE: str(instance.logical_cores(shape.lnc)),
    }


def allocatable(shape: NodeShape) -> dict[str, str]:
    """status.allocatable: capacity less the kubelet/system reservation and the eviction threshold."""
    instance = shape.instance
    memory_mib = instance.host_memory_gib * 1024 - reserved_memory_mib(shape.max_pods) - EVICTION_HARD_MIB
    return {
        **capacity(shape),
        "cpu": f"{instance.vcpus * 1000 - reserved_cpu_millis(instance.vcpus)}m",
        "memory": f"{memory_mib * 1024}Ki",
    }


def node_object(
    name: str,
    shape: NodeShape,
    *,
    capacity_type: str = "on-demand",
    nodepool: str | None = None,
    zone: str = "us-east-2a",
    unschedulable: bool = False,
) -> dict[str, Any]:
    """The Node a kubelet of this shape registers (plus the labels Karpenter adds)."""
    instance = shape.instance
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        INSTANCE_TYPE_LABEL: instance.name,
        "topology.kubernetes.io/zone": zone,
        CAPACITY_TYPE_LABEL: capacity_type,
        "karpenter.k8s.aws/instance-family": instance.name.split(".")[0],
        "karpenter.k8s.aws/instance-accelerator-name": ACCELERATOR_NAMES.get(instance.family, instance.family),
        "karpenter.k8s.aws/instance-accelerator-manufacturer": "aws",
        "karpenter.k8s.aws/instance-accelerator-count": str(instance.chips),
    }
    if nodepool:
        labels[NODEPOOL_LABEL] = nodepool
    spec: dict[str, Any] = {"taints": [dict(NEURON_TAINT)]}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "capacity": capacity(shape),
            "allocatable": allocatable(shape),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.31.0", "operatingSystem": "linux", "architecture": "amd64"},
        },
    }
