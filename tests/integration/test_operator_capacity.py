"""Capacity: replicas that no node takes, a node pool that grows, and fallback variants, end to end.

The emulator's opt-in stand-ins say what they replace (tests/integration/emulator_support.py,
`enable_cluster`): Neuron nodes of the catalog's shapes, a scheduler that binds pods where their
requests, selector and tolerations fit (and words FailedScheduling as kube-scheduler does), a
Deployment controller that creates the pods, a Karpenter stand-in that adds nodes after a delay.
The deadlines involved are minutes; the tests move the operator's clock (`Runtime.clock`, the one
clock every decision reads) instead of waiting them out, and the pods keep their real wait times.
"""

from __future__ import annotations

import datetime
from typing import Any

from emulator_support import enable_cluster
from operator_support import Cluster, OperatorThread, make_md

from neuronfleet.kube_emulator.provisioner import Pool
from support.waits import wait_for

INF2 = "inf2.48xlarge"  # 12 Neuron devices: three replicas of Llama-3.1-8B at TP 8 (4 devices each)


def _advance(op: OperatorThread, seconds: float) -> None:
    """Move the operator's clock `seconds` ahead of the wall clock (deadlines, not the pods' own times)."""
    op.memo.runtime.clock = lambda: datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


def _poke(cluster: Cluster, name: str) -> None:
    """An annotation on the ModelDeployment: an event, hence a pass, now rather than at the next requeue."""
    cluster.patch_md(name, {"metadata": {"annotations": {"test/poke": datetime.datetime.now().isoformat()}}})


def _pods(cluster: Cluster, name: str) -> list[Any]:
    return cluster.core.list_namespaced_pod("ml", label_selector=f"app.kubernetes.io/instance={name}").items


def test_a_fleet_larger_than_the_pool_reports_the_schedulers_reason_and_then_the_missing_capacity(
    operator: OperatorThread, cluster: Cluster
) -> None:
    enable_cluster(cluster.emu, node_pool={INF2: 1})
    cluster.create_md(make_md("llama", replicas=5))

    waiting = wait_for(
        lambda: (c := cluster.condition("llama", "CapacityAvailable")).get("reason") == "WaitingForNodes" and c
    )
    assert "0/1 nodes are available: 1 Insufficient aws.amazon.com/neuron" in waiting["message"]
    assert waiting["status"] == "True"  # capacity may still come (a node launching)
    wait_for(lambda: cluster.status("llama").get("readyReplicas") == 3)
    row = cluster.status("llama")["capacity"]["variants"][0]
    assert (row["desiredReplicas"], row["readyReplicas"], row["unschedulableReplicas"]) == (5, 3, 2)
    assert "1 Insufficient aws.amazon.com/neuron" in cluster.condition("llama", "Ready")["message"]

    _advance(operator, 11 * 60)  # past the 10-minute deadline of the only variant
    _poke(cluster, "llama")
    short = wait_for(lambda: (c := cluster.condition("llama", "CapacityAvailable")).get("status") == "False" and c)
    assert short["reason"] == "InsufficientNeuronCapacity"
    assert "0/1 nodes are available: 1 Insufficient aws.amazon.com/neuron" in short["message"]
    warning = wait_for(lambda: [e for e in cluster.events("llama") if e["reason"] == "ReplicasUnschedulable"])
    assert warning[0]["type"] == "Warning"
    assert len(_pods(cluster, "llama")) == 5  # nothing deleted blindly: the pods still take the first node that fits


def test_a_pool_that_grows_after_a_delay_converges(operator: OperatorThread, cluster: Cluster) -> None:
    pools = [Pool("inf2", INF2, max_nodes=2)]
    enable_cluster(cluster.emu, node_pool={INF2: 1}, provision=(1.0, pools))
    cluster.create_md(make_md("llama", replicas=5))
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True", timeout=30)
    assert cluster.condition("llama", "CapacityAvailable")["reason"] == "AllReplicasPlaced"
    assert cluster.status("llama")["readyReplicas"] == 5


def test_a_fallback_variant_takes_over_what_the_primary_cannot_place_and_drains_back(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """Primary trn1.32xlarge (no node of that type yet), fallback inf2.48xlarge (one node)."""
    world = enable_cluster(cluster.emu, node_pool={INF2: 1})
    neuron = {"instanceType": "trn1.32xlarge", "fallback": [{"instanceType": INF2}], "fallbackAfterSeconds": 30}
    cluster.create_md(make_md("llama", replicas=2, neuron=neuron))
    wait_for(lambda: cluster.condition("llama", "CapacityAvailable").get("reason") == "WaitingForNodes")
    assert cluster.deployment("llama-inf2-48xlarge") is None  # not before fallbackAfterSeconds

    _advance(operator, 45)
    _poke(cluster, "llama")
    fallback = wait_for(lambda: cluster.deployment("llama-inf2-48xlarge"))
    assert fallback["spec"]["replicas"] >= 2
    assert fallback["spec"]["template"]["metadata"]["labels"]["neuronfleet.io/variant"] == "inf2-48xlarge"
    in_use = wait_for(
        lambda: (c := cluster.condition("llama", "CapacityAvailable")).get("reason") == "FallbackInUse" and c
    )
    assert in_use["status"] == "True"
    wait_for(lambda: "FallbackActivated" in [e["reason"] for e in cluster.events("llama")])
    wait_for(lambda: "inf2.48xlarge=" in (cluster.status("llama").get("capacity") or {}).get("inUse", ""))

    # Primary capacity comes back: its replicas start, then the fallback drains and is deleted.
    world.add_nodes("trn1.32xlarge", 1)
    wait_for(lambda: cluster.deployment("llama-inf2-48xlarge") is None, timeout=30)
    wait_for(lambda: "FallbackDrained" in [e["reason"] for e in cluster.events("llama")])
    wait_for(lambda: cluster.condition("llama", "CapacityAvailable").get("reason") == "AllReplicasPlaced")
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
