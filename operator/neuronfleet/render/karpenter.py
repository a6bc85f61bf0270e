"""A Karpenter v1 NodePool and EC2NodeClass for a fleet's plan and its fallback variants.

`neuronfleet render --nodepool` prints them so a platform team can give the fleet the nodes it
asks for. The facts (karpenter.sh docs v1.6, aws/karpenter-provider-aws website/content/en/v1.6/
concepts/nodepools.md and nodeclasses.md, tested in tests/unit/render/test_karpenter.py):

- NodePool ``karpenter.sh/v1``, cluster-scoped; ``spec.template.spec.nodeClassRef`` is
  ``{group: karpenter.k8s.aws, kind: EC2NodeClass, name}``; ``requirements`` are node selector
  requirements (operators In, NotIn, Exists, DoesNotExist, Gt, Lt) on well-known labels:
  ``node.kubernetes.io/instance-type`` (every variant's type: each pod's own instance-type
  nodeSelector narrows it), ``karpenter.sh/capacity-type`` (``on-demand``, ``spot``, ``reserved``;
  reserved means On-Demand Capacity Reservations and Capacity Blocks, needs
  ``capacityReservationSelectorTerms`` on the EC2NodeClass and the ReservedCapacity feature gate;
  with several allowed Karpenter prefers reserved, then spot, then on-demand),
  ``kubernetes.io/arch`` and ``kubernetes.io/os``;
- ``taints``: the Neuron taint ``aws.amazon.com/neuron=true:NoSchedule`` (reference/neuron-vllm.md
  section 2), which the fleet's pods and the Neuron device plugin tolerate; Karpenter only uses a
  NodePool for pods that tolerate its taints;
- ``limits`` bound the resources the pool may hold; extended resources count (the docs' example
  limits ``nvidia.com/gpu``). The limit here is the ``aws.amazon.com/neuron`` devices of the nodes
  that maxReplicas needs on every variant at once (a drain overlaps them);
- ``disruption``: ``consolidationPolicy: WhenEmpty`` with ``consolidateAfter``, so Karpenter only
  removes a Neuron node once no replica runs on it (a replica moved by consolidation costs a
  cold start of minutes);
- EC2NodeClass ``karpenter.k8s.aws/v1``: ``amiSelectorTerms`` with the alias ``al2023@latest``
  (for Neuron instance types Karpenter resolves the EKS AL2023 Neuron AMI, SSM
  ``.../amazon-linux-2023/x86_64/neuron/recommended/image_id``; karpenter-provider-aws AMI family
  tests), ``role`` (or instanceProfile), ``subnetSelectorTerms`` and ``securityGroupSelectorTerms``
  (required; here by the ``karpenter.sh/discovery: <cluster>`` tag of Karpenter's getting-started
  guide), and a root volume large enough for the replicas' downloaded weights and scratch
  (the pods request it as ephemeral-storage).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.catalog import CATALOG, lookup
from neuronfleet.neuron.variants import PlannedVariant
from neuronfleet.render import deployment, labels
from neuronfleet.render.options import RenderOptions

__all__ = [
    "CAPACITY_TYPES",
    "FLEET_LABEL",
    "NEURON_TAINT",
    "OS_VOLUME_GIB",
    "ec2_node_class",
    "node_pool",
    "node_pool_name",
]

CAPACITY_TYPES = ("on-demand", "spot", "reserved")
FLEET_LABEL = "neuronfleet.io/fleet"
NEURON_TAINT: dict[str, str] = {"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}
OS_VOLUME_GIB = 100
CONSOLIDATE_AFTER = "10m"  # as long as the autoscaler's scale-down stabilization


def node_pool_name(md: ModelDeployment) -> str:
    """NodePools are cluster-scoped: the fleet's namespace and name, as a DNS label."""
    namespace = md.namespace or "default"
    return f"neuronfleet-{namespace}-{md.name}"[:63].rstrip("-")


def _max_replicas(md: ModelDeployment) -> int:
    autoscaling = md.spec.autoscaling
    return autoscaling.max_replicas if autoscaling.enabled else max(1, md.spec.replicas)


def _devices_limit(md: ModelDeployment, variants: Sequence[PlannedVariant]) -> int:
    units = _max_replicas(md)
    total = 0
    for variant in variants:
        replicas = math.ceil(units / variant.units_per_replica - 1e-9)
        node_count = math.ceil(replicas / max(1, variant.plan.replicas_per_node))
        total += node_count * lookup(variant.plan.instance_type, CATALOG).chips
    return total


def node_pool(
    md: ModelDeployment, variants: Sequence[PlannedVariant], *, capacity_types: Sequence[str], node_class: str
) -> dict[str, Any]:
    """The NodePool offering every variant's instance type, tainted for Neuron, limited to maxReplicas."""
    unknown = [c for c in capacity_types if c not in CAPACITY_TYPES]
    if unknown or not capacity_types:
        raise ValueError(f"capacity types must be among {', '.join(CAPACITY_TYPES)}; got {list(capacity_types)}")
    instance_types = [v.plan.instance_type for v in variants]
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": node_pool_name(md), "labels": labels.child_labels(md)},
        "spec": {
            "template": {
                # Template labels land on the nodes; Karpenter's CRD refuses the kubernetes.io domains
                # (app.kubernetes.io included) there, so the fleet is named under neuronfleet.io.
                "metadata": {"labels": {FLEET_LABEL: labels.instance_value(md)}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": instance_types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(capacity_types)},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                    ],
                    "taints": [dict(NEURON_TAINT)],
                },
            },
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": CONSOLIDATE_AFTER},
            "limits": {"aws.amazon.com/neuron": str(_devices_limit(md, variants))},
        },
    }


def _volume_gib(md: ModelDeployment, variants: Sequence[PlannedVariant], options: RenderOptions) -> int:
    need = 0
    for variant in variants:
        per_replica = deployment.ephemeral_storage_gib(md, variant.plan, options)
        need = max(need, per_replica * max(1, variant.plan.replicas_per_node))
    return need + OS_VOLUME_GIB


def ec2_node_class(
    md: ModelDeployment,
    variants: Sequence[PlannedVariant],
    *,
    name: str,
    cluster: str,
    role: str,
    capacity_types: Sequence[str],
    options: RenderOptions,
) -> dict[str, Any]:
    """The EC2NodeClass: AL2023 (its Neuron AMI), discovery by cluster tag, a root volume for the weights."""

    def discovery() -> list[dict[str, Any]]:
        return [{"tags": {"karpenter.sh/discovery": cluster}}]

    spec: dict[str, Any] = {
        "amiSelectorTerms": [{"alias": "al2023@latest"}],
        "role": role,
        "subnetSelectorTerms": discovery(),
        "securityGroupSelectorTerms": discovery(),
        "blockDeviceMappings": [
            {
                "deviceName": "/dev/xvda",
                "ebs": {
                    "volumeSize": f"{_volume_gib(md, variants, options)}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
    }
    if "reserved" in capacity_types:
        spec["capacityReservationSelectorTerms"] = discovery()
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name, "labels": labels.child_labels(md)},
        "spec": spec,
    }
