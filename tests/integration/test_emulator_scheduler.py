"""The emulator's scheduler, Karpenter stand-in and pod-creating Deployment controller, together.

Everything runs in the test's event loop on one Store, as in the demo; tests wait for the state
they assert (never for a time). A pod here asks for whole trn2.48xlarge nodes or parts of them, as
the rendered vLLM pods do (``aws.amazon.com/neuron``, the Neuron toleration, the instance-type
selector).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from neuronfleet.kube_emulator import Emulator, nodes
from neuronfleet.kube_emulator.provisioner import Pool, Provisioner, create_node
from neuronfleet.kube_emulator.scheduler import Scheduler, is_unschedulable, pod_scheduled
from neuronfleet.kube_emulator.store import PatchType, Store
from neuronfleet.kube_emulator.workloads import PodDeploymentController

NS = "ml"
TRN2 = "trn2.48xlarge"


def deployment(name: str, replicas: int, *, devices: int = 16, instance_type: str = TRN2) -> dict[str, Any]:
    labels = {"app": name}
    requests = {"cpu": "8", "memory": "64Gi", "aws.amazon.com/neuron": str(devices)}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"node.kubernetes.io/instance-type": instance_type},
                    "tolerations": [{"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{"name": "vllm", "resources": {"requests": requests, "limits": requests}}],
                },
            },
        },
    }


@pytest.fixture
def store() -> Iterator[Store]:
    s = Store()
    s.create(s.resource("", "v1", "namespaces"), None, {"metadata": {"name": NS}})
    yield s


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Wait until `check()` is truthy (the state asserted), failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {check}")
        await asyncio.sleep(0.02)


def pods(store: Store) -> list[dict[str, Any]]:
    return [p for p in store.objects(store.resource("", "v1", "pods")) if p["metadata"].get("namespace") == NS]


def bound(store: Store) -> list[dict[str, Any]]:
    return [p for p in pods(store) if (p.get("spec") or {}).get("nodeName")]


def pending(store: Store) -> list[dict[str, Any]]:
    return [p for p in pods(store) if is_unschedulable(p)]


def add_nodes(store: Store, count: int, instance_type: str = TRN2, prefix: str = "n") -> None:
    for i in range(count):
        create_node(store, nodes.node_object(f"{prefix}{i}", nodes.NodeShape.of(instance_type)))


def events(store: Store) -> list[dict[str, Any]]:
    return [e for e in store.objects(store.resource("", "v1", "events")) if e.get("reason") == "FailedScheduling"]


def apply(store: Store, body: dict[str, Any]) -> None:
    store.create(store.resource("apps", "v1", "deployments"), NS, body)


def scale(store: Store, name: str, replicas: int) -> None:
    info = store.resource("apps", "v1", "deployments")
    store.patch(info, NS, name, PatchType.MERGE, {"spec": {"replicas": replicas}})


async def test_a_fleet_larger_than_the_pool_leaves_the_rest_pending_with_the_schedulers_reason(store: Store):
    add_nodes(store, 3)
    controllers = [Scheduler(store).start(), PodDeploymentController(store, ready_delay=0.05).start()]
    try:
        apply(store, deployment("llm", 4))
        await until(lambda: len(bound(store)) == 3 and len(pending(store)) == 1)
        waiting = pending(store)[0]
        condition = pod_scheduled(waiting)
        assert condition is not None
        assert condition["message"] == "0/3 nodes are available: 3 Insufficient aws.amazon.com/neuron."
        assert waiting["status"]["phase"] == "Pending"
        event = (await until(lambda: events(store)))[0]
        assert (event["type"], event["involvedObject"]["name"]) == ("Warning", waiting["metadata"]["name"])
        assert event["message"] == condition["message"]
        dep = await until(
            lambda: (
                (d := store.get(store.resource("apps", "v1", "deployments"), NS, "llm"))["status"].get("readyReplicas")
                == 3
                and d
            )
        )
        assert dep["status"]["replicas"] == 4
        assert dep["status"]["unavailableReplicas"] == 1
    finally:
        for c in controllers:
            c.stop()


async def test_replicas_that_share_a_node_are_packed_until_its_devices_run_out(store: Store):
    add_nodes(store, 1)
    controllers = [Scheduler(store).start(), PodDeploymentController(store).start()]
    try:
        apply(store, deployment("small", 5, devices=4))
        await until(lambda: len(bound(store)) == 4 and len(pending(store)) == 1)
        assert {p["spec"]["nodeName"] for p in bound(store)} == {"n0"}
    finally:
        for c in controllers:
            c.stop()


async def test_a_pod_for_another_instance_type_reads_as_a_selector_mismatch(store: Store):
    add_nodes(store, 2)
    controllers = [Scheduler(store).start(), PodDeploymentController(store).start()]
    try:
        apply(store, deployment("trn1", 1, instance_type="trn1.32xlarge"))
        waiting = (await until(lambda: pending(store)))[0]
        assert pod_scheduled(waiting)["message"] == (
            "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        )
    finally:
        for c in controllers:
            c.stop()


async def test_a_pool_that_grows_after_a_delay_converges(store: Store):
    add_nodes(store, 1, prefix="static-")
    pool = Pool("neuron", TRN2, max_nodes=3)
    provisioner = Provisioner(store, [pool], delay_seconds=0.2)
    controllers = [
        Scheduler(store, retry_seconds=0).start(),
        PodDeploymentController(store, ready_delay=0.05).start(),
        provisioner.start(),
    ]
    try:
        apply(store, deployment("llm", 3))
        await until(lambda: len(pending(store)) == 2)
        assert provisioner.launching(pool) == 2, "one node launched per pending whole-node pod"
        await until(lambda: len(bound(store)) == 3)
        assert not pending(store)
        assert len(provisioner.nodes_of(pool)) == 2
        labels = provisioner.nodes_of(pool)[0]["metadata"]["labels"]
        assert (labels["karpenter.sh/nodepool"], labels["karpenter.sh/capacity-type"]) == ("neuron", "on-demand")
        dep_info = store.resource("apps", "v1", "deployments")
        await until(lambda: store.get(dep_info, NS, "llm")["status"].get("readyReplicas") == 3)
    finally:
        for c in controllers:
            c.stop()


async def test_the_pool_never_grows_past_its_limit(store: Store):
    pool = Pool("neuron", TRN2, max_nodes=2)
    provisioner = Provisioner(store, [pool], delay_seconds=0.05)
    controllers = [
        Scheduler(store, retry_seconds=0).start(),
        PodDeploymentController(store).start(),
        provisioner.start(),
    ]
    try:
        apply(store, deployment("llm", 3))
        await until(lambda: len(bound(store)) == 2 and len(pending(store)) == 1)
        await asyncio.sleep(0.2)  # room for a wrong third launch to show up
        assert provisioner.launched == 2
        assert len(pending(store)) == 1
        assert pod_scheduled(pending(store)[0])["message"] == (
            "0/2 nodes are available: 2 Insufficient aws.amazon.com/neuron."
        )
    finally:
        for c in controllers:
            c.stop()


async def test_small_pods_share_a_launching_node(store: Store):
    pool = Pool("neuron", TRN2, max_nodes=4)
    provisioner = Provisioner(store, [pool], delay_seconds=0.1)
    controllers = [
        Scheduler(store, retry_seconds=0).start(),
        PodDeploymentController(store).start(),
        provisioner.start(),
    ]
    try:
        apply(store, deployment("small", 4, devices=4))
        await until(lambda: len(bound(store)) == 4)
        assert provisioner.launched == 1, "four 4-device pods fit one 16-device node"
    finally:
        for c in controllers:
            c.stop()


async def test_an_unavailable_instance_type_launches_nothing_until_it_returns(store: Store):
    pool = Pool("neuron", TRN2, max_nodes=2)
    provisioner = Provisioner(store, [pool], delay_seconds=0.05)
    provisioner.set_available(TRN2, False)
    controllers = [
        Scheduler(store, retry_seconds=0).start(),
        PodDeploymentController(store).start(),
        provisioner.start(),
    ]
    try:
        apply(store, deployment("llm", 1))
        await until(lambda: pending(store))
        await asyncio.sleep(0.15)
        assert provisioner.launched == 0
        provisioner.set_available(TRN2, True)
        await until(lambda: bound(store))
    finally:
        for c in controllers:
            c.stop()


async def test_scaling_down_removes_the_pending_replica_first(store: Store):
    add_nodes(store, 2)
    controllers = [Scheduler(store).start(), PodDeploymentController(store, ready_delay=0.01).start()]
    try:
        apply(store, deployment("llm", 3))
        await until(lambda: len(bound(store)) == 2 and len(pending(store)) == 1)
        waiting = pending(store)[0]["metadata"]["name"]
        scale(store, "llm", 2)
        await until(lambda: len(pods(store)) == 2)
        assert waiting not in {p["metadata"]["name"] for p in pods(store)}
        assert len(bound(store)) == 2
    finally:
        for c in controllers:
            c.stop()


async def test_a_repeated_failure_counts_on_one_event_and_keeps_the_transition_time(store: Store):
    add_nodes(store, 1)
    controllers = [Scheduler(store).start(), PodDeploymentController(store).start()]
    try:
        apply(store, deployment("llm", 2))
        waiting = (await until(lambda: pending(store)))[0]
        first = pod_scheduled(waiting)["lastTransitionTime"]
        assert [int(e.get("count") or 1) for e in await until(lambda: events(store))] == [1]
        # A node change that does not help makes the scheduler try again with the same answer.
        node_info = store.resource("", "v1", "nodes")
        store.patch(node_info, None, "n0", PatchType.MERGE, {"metadata": {"labels": {"touched": "yes"}}})
        await until(lambda: [int(e.get("count") or 1) for e in events(store)] == [2])
        assert pod_scheduled(pending(store)[0])["lastTransitionTime"] == first
        # A new answer is a new event.
        add_nodes(store, 1, instance_type="inf2.48xlarge", prefix="inf-")
        await until(lambda: len(events(store)) == 2)
        assert pod_scheduled(pending(store)[0])["message"] == (
            "0/2 nodes are available: 1 Insufficient aws.amazon.com/neuron, "
            "1 node(s) didn't match Pod's node affinity/selector."
        )
    finally:
        for c in controllers:
            c.stop()


async def test_a_pod_of_another_scheduler_is_left_alone(store: Store):
    add_nodes(store, 1)
    scheduler = Scheduler(store).start()
    try:
        info = store.resource("", "v1", "pods")
        store.create(info, NS, {"metadata": {"name": "other"}, "spec": {"schedulerName": "volcano", "containers": []}})
        await asyncio.sleep(0.05)
        assert not store.get(info, NS, "other")["spec"].get("nodeName")
        assert scheduler.bound == 0
    finally:
        scheduler.stop()


async def test_the_binding_subresource_puts_a_pod_on_a_node_once():
    """What a real scheduler calls: POST pods/NAME/binding; a second binding is refused with 409."""
    async with Emulator() as emu, aiohttp.ClientSession(emu.url) as session:
        emu.store.create(emu.store.resource("", "v1", "namespaces"), None, {"metadata": {"name": NS}})
        add_nodes(emu.store, 1)
        pods_path = f"/api/v1/namespaces/{NS}/pods"
        async with session.post(pods_path, json={"metadata": {"name": "p"}, "spec": {"containers": []}}) as created:
            assert created.status == 201
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": "p"},
            "target": {"kind": "Node", "name": "n0"},
        }
        async with session.post(f"{pods_path}/p/binding", json=binding) as bound_answer:
            assert bound_answer.status == 201
        pod = emu.store.get(emu.store.resource("", "v1", "pods"), NS, "p")
        assert pod["spec"]["nodeName"] == "n0"
        assert pod_scheduled(pod)["status"] == "True"
        async with session.post(f"{pods_path}/p/binding", json=binding) as again:
            assert again.status == 409
            assert (await again.json())["message"] == 'pod p is already assigned to node "n0"'
