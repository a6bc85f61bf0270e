"""The operator when things go wrong: restarts, a flaky API server, many objects at once, RBAC.

These tests observe the world through the emulator's store (in-process, not over HTTP) where
they must not add requests of their own to the request log (the RBAC test), and through the
official client elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from operator_support import NAMESPACE, Cluster, OperatorThread, make_md

from neuronfleet.api import constants
from neuronfleet.controller import rbac
from neuronfleet.controller.state import FleetKey
from support.waits import wait_for, wait_quiet


def _converged(cluster: Cluster, names: list[str]) -> bool:
    """Every fleet has its Deployment and a status for its current generation (read from the store)."""
    store = cluster.emu.store
    md_info = cluster.emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)
    dep_info = cluster.emu.call(store.resource, "apps", "v1", "deployments")
    deps = {d["metadata"]["name"] for d in cluster.emu.call(store.objects, dep_info)}
    if not set(names) <= deps:
        return False
    done = {
        md["metadata"]["name"]
        for md in cluster.emu.call(store.objects, md_info)
        if (md.get("status") or {}).get("observedGeneration") == md["metadata"]["generation"]
    }
    return set(names) <= done


def test_an_operator_restarted_midway_finishes_without_duplicates(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    names = [f"fleet-{i:02d}" for i in range(20)]
    first = start_operator()
    for name in names:
        cluster.create_md(make_md(name))
    wait_for(lambda: len(cluster.deployments()) >= 3, timeout=30)
    first.stop()  # mid-way: some fleets done, some not started
    assert first.exception is None
    partial = len(cluster.deployments())
    second = start_operator()
    wait_for(lambda: _converged(cluster, names), timeout=60)
    deployments = cluster.deployments()
    assert sorted(d["metadata"]["name"] for d in deployments) == names
    assert all(len(d["metadata"]["ownerReferences"]) == 1 for d in deployments)
    assert partial <= len(names)
    assert second.alive


@pytest.mark.parametrize(
    ("method", "path", "status", "delay"),
    [
        pytest.param("POST", "/deployments", 500, 0.0, id="creates of Deployments failing with 500"),
        pytest.param("PATCH", "/modeldeployments/.*/status", 409, 0.0, id="status writes answered 409 Conflict"),
        pytest.param("POST", "/services", None, 1.5, id="creates of Services timing out"),
        pytest.param("*", "/namespaces/ml/", 503, 0.0, id="every namespaced request failing with 503"),
    ],
)
def test_the_operator_retries_through_api_errors_and_converges(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    method: str,
    path: str,
    status: int | None,
    delay: float,
) -> None:
    start_operator(kube_timeout=1.0)
    fault = cluster.emu.inject(method=method, path=path, status=status, delay=delay, times=6)
    names = ["flaky-a", "flaky-b"]
    store = cluster.emu.store
    md_info = cluster.emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)
    for name in names:  # through the store: the faults are for the operator's requests, not the test's
        cluster.emu.call(store.create, md_info, NAMESPACE, make_md(name))
    wait_for(lambda: fault.hits > 0, timeout=30)
    wait_for(lambda: _converged(cluster, names), timeout=30)
    assert sorted(d["metadata"]["name"] for d in cluster.deployments()) == names


def test_two_hundred_model_deployments_all_converge(operator: OperatorThread, cluster: Cluster) -> None:
    """All 200 land at once, written straight into the emulator's store (no client round trips)."""
    names = [f"md-{i:03d}" for i in range(200)]
    store = cluster.emu.store
    md_info = cluster.emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)

    def create_all() -> None:
        for name in names:
            store.create(md_info, NAMESPACE, make_md(name, replicas=1))

    cluster.emu.call(create_all)
    wait_for(lambda: _converged(cluster, names), timeout=120, interval=0.5)
    assert len(cluster.deployments()) == 200


def test_every_request_the_operator_makes_is_covered_by_its_rbac_table(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """Mutations and reads of the test go through the emulator's store, so the log holds only the operator's."""
    store = cluster.emu.store
    md_info = cluster.emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)
    dep_info = cluster.emu.call(store.resource, "apps", "v1", "deployments")
    body = make_md("rbac", monitoring={"podMonitor": False})
    cluster.emu.call(store.create, md_info, NAMESPACE, body)
    wait_for(lambda: cluster.emu.call(store.try_get, dep_info, NAMESPACE, "rbac"))
    cluster.emu.call(store.patch, md_info, NAMESPACE, "rbac", "application/merge-patch+json", {"spec": {"replicas": 3}})
    wait_for(lambda: cluster.emu.call(store.try_get, dep_info, NAMESPACE, "rbac")["spec"]["replicas"] == 3)
    cluster.emu.call(store.delete, dep_info, NAMESPACE, "rbac")
    wait_for(lambda: cluster.emu.call(store.try_get, dep_info, NAMESPACE, "rbac"))
    cluster.emu.call(store.delete, md_info, NAMESPACE, "rbac")
    wait_quiet(lambda: len(cluster.emu.requests))  # every request the operator makes until it is idle
    used = {(r.group, r.rbac_resource, r.verb) for r in cluster.emu.requests}
    # The fixtures' own setup (CRD and namespace creation) happened before the operator started.
    used -= {("apiextensions.k8s.io", "customresourcedefinitions", "create"), ("", "namespaces", "create")}
    missing = sorted(u for u in used if not rbac.covers(*u))
    assert missing == []
    assert (constants.GROUP, f"{constants.PLURAL}/status", "patch") in used


def test_objects_deleted_while_the_watches_were_down_leave_the_cache_after_the_relist(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """Watches cut, a Deployment and a ModelDeployment deleted, the event log compacted, all in one step of
    the emulator's loop: the operator's watches resume from a resourceVersion the server no longer keeps,
    get 410 Gone and list again. The lists lack both objects, and no DELETED event names them."""
    store = cluster.emu.store
    md_info = cluster.emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)
    dep_info = cluster.emu.call(store.resource, "apps", "v1", "deployments")
    for name in ("kept", "gone"):
        cluster.create_md(make_md(name))
    wait_for(lambda: _converged(cluster, ["kept", "gone"]), timeout=30)
    runtime = operator.memo.runtime
    assert {FleetKey(NAMESPACE, "kept"), FleetKey(NAMESPACE, "gone")} <= runtime.managed

    def gap() -> None:
        store.close_watches()
        store.delete(dep_info, NAMESPACE, "kept")
        store.delete(md_info, NAMESPACE, "gone")
        store.compact()

    cluster.emu.call(gap)
    wait_for(lambda: cluster.deployment("kept"), timeout=30, what="the Deployment deleted in the gap recreated")
    wait_for(lambda: FleetKey(NAMESPACE, "gone") not in runtime.managed, what="the deleted fleet forgotten")
    assert runtime.cache.get(constants.KIND, NAMESPACE, "gone") is None
    # The fleet goes as the resync reaches its kind; the run counts once every kind is listed.
    wait_for(lambda: operator.memo.resync.runs >= 1, what="the resync finished")
    assert operator.memo.runtime.metrics.managed._value.get() == 1
    reasons = wait_for(lambda: [e["reason"] for e in cluster.events("kept") if e["reason"] == "ChildRepaired"])
    assert reasons == ["ChildRepaired"], "deleted outside the operator, put back once"


def test_a_spec_change_while_the_status_write_is_in_flight_is_served(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """The status patch is held by the emulator (an injected delay) while the spec changes: the change's
    watch event arrives with the write in flight, so it counts as the write's echo and starts no pass.
    The write's answer carries the new generation, and that queues the pass."""
    cluster.create_md(make_md("llama"))
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 1)
    wait_quiet(lambda: len(cluster.emu.requests))
    held = cluster.emu.inject(method="PATCH", path="/modeldeployments/llama/status", status=None, delay=1.5)
    cluster.patch_md("llama", {"spec": {"replicas": 3}})
    wait_for(lambda: held.hits == 1, what="the status write of the pass for replicas 3 is in flight")
    cluster.patch_md("llama", {"spec": {"replicas": 4}})
    wait_for(lambda: cluster.status("llama").get("observedGeneration") == 3, timeout=20)
    assert cluster.deployment("llama")["spec"]["replicas"] == 4
