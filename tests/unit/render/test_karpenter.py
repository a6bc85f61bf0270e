"""The Karpenter NodePool and EC2NodeClass against the documented Karpenter v1 API, as facts.

Each fact cites where it is documented: the Karpenter v1.6 docs (aws/karpenter-provider-aws
website/content/en/v1.6/concepts/nodepools.md, nodeclasses.md) and the NodePool CRD's validation
rules (kubernetes-sigs/karpenter pkg/apis/crds/karpenter.sh_nodepools.yaml). No Karpenter runs here.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

from neuronfleet.api import convert
from neuronfleet.neuron import variants
from neuronfleet.render import karpenter
from neuronfleet.render.options import RenderOptions
from render.builders import make_md

# nodepools.md: requirements operators; capacity-type values; disruption.consolidationPolicy values.
OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"}
CAPACITY_TYPES = {"spot", "on-demand", "reserved"}
CONSOLIDATION_POLICIES = {"WhenEmpty", "WhenEmptyOrUnderutilized"}
# CRD: consolidateAfter pattern, limits are quantities, taint effects of core/v1.
DURATION = re.compile(r"^(([0-9]+(s|m|h))+)|(Never)$")
QUANTITY = re.compile(
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
EFFECTS = {"NoSchedule", "PreferNoSchedule", "NoExecute"}
# CRD: template label keys may not use these domains (except the few well-known ones allowed).
RESTRICTED_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws")


def fleet(**overrides: Any):
    md = make_md(
        neuron={
            "instanceType": "trn2.48xlarge",
            "tensorParallelSize": 4,
            "fallback": [{"instanceType": "trn1.32xlarge"}, {"instanceType": "inf2.48xlarge"}],
        },
        autoscaling={"enabled": True, "maxReplicas": 8, "metrics": {"concurrencyPerReplica": 16}},
        **overrides,
    )
    fallback = [
        variants.VariantRequest(v.instance_type, v.tensor_parallel_size, v.runtime) for v in md.spec.neuron.fallback
    ]
    return md, variants.plan_variants(convert.plan_request(md), fallback)


def render(capacity_types=("on-demand",)):
    md, planned = fleet()
    pool = karpenter.node_pool(md, planned, capacity_types=list(capacity_types), node_class="neuron")
    node_class = karpenter.ec2_node_class(
        md,
        planned,
        name="neuron",
        cluster="prod",
        role="KarpenterNodeRole-prod",
        capacity_types=list(capacity_types),
        options=RenderOptions(),
    )
    return md, planned, pool, node_class


def test_the_nodepool_is_karpenter_v1_and_references_an_ec2nodeclass_by_group_kind_name():
    _, _, pool, node_class = render()
    assert (pool["apiVersion"], pool["kind"]) == ("karpenter.sh/v1", "NodePool")
    assert "namespace" not in pool["metadata"], "NodePools are cluster-scoped"
    ref = pool["spec"]["template"]["spec"]["nodeClassRef"]
    assert ref == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "neuron"}
    assert (node_class["apiVersion"], node_class["kind"]) == ("karpenter.k8s.aws/v1", "EC2NodeClass")


def test_requirements_list_every_variants_instance_type_with_documented_operators():
    _, planned, pool, _ = render()
    requirements = pool["spec"]["template"]["spec"]["requirements"]
    assert {r["operator"] for r in requirements} <= OPERATORS
    by_key = {r["key"]: r["values"] for r in requirements}
    assert by_key["node.kubernetes.io/instance-type"] == [v.plan.instance_type for v in planned]
    assert by_key["kubernetes.io/arch"] == ["amd64"]


@pytest.mark.parametrize(
    "capacity_types",
    [("on-demand",), ("spot", "on-demand"), ("reserved",)],
    ids=["on-demand", "spot then on-demand", "reserved"],
)
def test_capacity_types_are_the_documented_values(capacity_types):
    _, _, pool, node_class = render(capacity_types)
    requirement = next(
        r for r in pool["spec"]["template"]["spec"]["requirements"] if r["key"] == "karpenter.sh/capacity-type"
    )
    assert set(requirement["values"]) == set(capacity_types) <= CAPACITY_TYPES
    # nodeclasses.md / tasks odcrs: reserved capacity is selected by capacityReservationSelectorTerms.
    assert ("capacityReservationSelectorTerms" in node_class["spec"]) is ("reserved" in capacity_types)


def test_an_unknown_capacity_type_is_refused():
    md, planned = fleet()
    with pytest.raises(ValueError, match="capacity types must be among on-demand, spot, reserved"):
        karpenter.node_pool(md, planned, capacity_types=["preemptible"], node_class="neuron")


def test_the_neuron_taint_matches_what_the_pods_tolerate():
    _, _, pool, _ = render()
    taints = pool["spec"]["template"]["spec"]["taints"]
    assert taints == [{"key": "aws.amazon.com/neuron", "value": "true", "effect": "NoSchedule"}]
    assert {t["effect"] for t in taints} <= EFFECTS


def test_template_labels_avoid_the_domains_karpenter_restricts():
    _, _, pool, _ = render()
    for key in pool["spec"]["template"]["metadata"]["labels"]:
        domain = key.split("/", 1)[0] if "/" in key else ""
        assert not domain.endswith(RESTRICTED_DOMAINS), key


def test_disruption_and_limits_are_valid():
    _, planned, pool, _ = render()
    disruption = pool["spec"]["disruption"]
    assert disruption["consolidationPolicy"] in CONSOLIDATION_POLICIES
    assert DURATION.match(disruption["consolidateAfter"])
    limit = pool["spec"]["limits"]["aws.amazon.com/neuron"]
    assert QUANTITY.match(limit)
    # maxReplicas 8 in primary units on every variant at once: trn2 8 of 16 per node (1 node, 16
    # devices); trn1 ceil(8/0.69)=12 replicas, 4 per node (3 nodes, 48); inf2 as many by its units.
    inf2 = planned[2]
    inf2_nodes = math.ceil(math.ceil(8 / inf2.units_per_replica) / inf2.plan.replicas_per_node)
    assert int(limit) == 16 + 48 + inf2_nodes * 12


def test_the_ec2nodeclass_has_the_required_selectors_and_one_identity():
    _, _, _, node_class = render()
    spec = node_class["spec"]
    for required in ("amiSelectorTerms", "subnetSelectorTerms", "securityGroupSelectorTerms"):
        assert spec[required], required
    assert ("role" in spec) != ("instanceProfile" in spec), "one of role or instanceProfile"
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@latest"}], "an alias term stands alone"
    assert spec["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": "prod"}}]


def test_the_root_volume_holds_a_full_node_of_replicas_weights():
    _, _, _, node_class = render()
    size = node_class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"]
    assert QUANTITY.match(size)
    # 16 trn2 replicas per node, each downloading ~16 GB of weights (+10 % and 10 GiB scratch).
    assert int(size.removesuffix("Gi")) >= 16 * 16 + karpenter.OS_VOLUME_GIB
