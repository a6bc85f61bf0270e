"""The emulator's LeaderWorkerSet kind (installed as a CRD) and its opt-in group controller.

The real LWS controller and kubelet cannot run here: the group controller stands in for both,
and these tests hold it to the LWS facts it claims (tests/lws_facts.py), on the emulator's store.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

import pytest

import lws_facts
from neuronfleet.kube_emulator import ApiError, GarbageCollector, PatchType, Store
from neuronfleet.kube_emulator import leaderworkerset as lws_kind
from neuronfleet.kube_emulator.group_controller import LeaderWorkerSetController, hpa_pod_selector

NS = "ml"


def lws_body(name: str = "big-lws", *, replicas: int = 2, size: int = 3, image: str = "vllm:1") -> dict[str, Any]:
    container = {"name": "vllm", "image": image, "env": [{"name": "NEURON_RANK_ID", "value": "$(LWS_WORKER_INDEX)"}]}
    template = {"metadata": {"labels": {"app.kubernetes.io/instance": "big"}}, "spec": {"containers": [container]}}
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "leaderWorkerTemplate": {"size": size, "leaderTemplate": template, "workerTemplate": template},
        },
    }


@pytest.fixture
def store() -> Store:
    s = Store()
    s.create(s.resource("", "v1", "namespaces"), None, {"metadata": {"name": NS}})
    return s


def pods(store: Store) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in store.objects(store.resource("", "v1", "pods"))}


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def lws(store: Store, name: str = "big-lws") -> dict[str, Any]:
    return store.get(lws_kind.resource(), NS, name)


def test_without_the_crd_the_kind_is_not_served(store: Store):
    with pytest.raises(ApiError) as exc:
        store.resource(lws_kind.GROUP, lws_kind.VERSION, lws_kind.PLURAL)
    assert exc.value.code == 404


def test_the_installed_crd_serves_the_kind_as_the_lws_api_declares_it(store: Store):
    lws_kind.install(store)
    info = store.resource(lws_kind.GROUP, lws_kind.VERSION, lws_kind.PLURAL)
    assert (info.kind, info.namespaced, info.short_names) == (lws_facts.KIND, True, lws_facts.SHORT_NAMES)
    assert info.status
    assert (info.scale.spec_replicas_path, info.scale.status_replicas_path, info.scale.label_selector_path) == (
        lws_facts.SCALE["specReplicasPath"],
        lws_facts.SCALE["statusReplicasPath"],
        lws_facts.SCALE["labelSelectorPath"],
    )
    status_fields = set(
        lws_kind.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    )
    assert status_fields == lws_facts.STATUS_FIELDS


def test_the_crd_defaults_what_the_lws_api_defaults(store: Store):
    lws_kind.install(store)
    body = lws_body()
    del body["spec"]["replicas"]
    created = store.create(lws_kind.resource(), NS, body)
    spec = created["spec"]
    facts = lws_facts.SPEC_SCHEMA["properties"]
    assert spec["replicas"] == facts["replicas"]["default"]
    assert spec["startupPolicy"] == facts["startupPolicy"]["default"]
    template_facts = facts["leaderWorkerTemplate"]["properties"]
    assert spec["leaderWorkerTemplate"]["restartPolicy"] == template_facts["restartPolicy"]["default"]


@pytest.mark.parametrize(
    ("path", "value"),
    [(("startupPolicy",), "LeaderStarted"), (("leaderWorkerTemplate", "restartPolicy"), "Always")],
    ids=["an unknown startup policy is refused", "an unknown restart policy is refused"],
)
def test_the_crd_refuses_values_outside_the_lws_enums(store: Store, path: tuple[str, ...], value: str):
    lws_kind.install(store)
    body = lws_body()
    node = body["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ApiError) as exc:
        store.create(lws_kind.resource(), NS, body)
    assert exc.value.code == 422


async def test_groups_of_leader_and_workers_are_made_with_the_lws_identity_and_become_ready(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store).start()
    try:
        store.create(lws_kind.resource(), NS, lws_body(replicas=2, size=3))
        await until(lambda: (lws(store).get("status") or {}).get("readyReplicas") == 2)
        assert sorted(pods(store)) == [
            "big-lws-0",
            "big-lws-0-1",
            "big-lws-0-2",
            "big-lws-1",
            "big-lws-1-1",
            "big-lws-1-2",
        ]
        worker = pods(store)["big-lws-1-2"]
        labels = worker["metadata"]["labels"]
        assert labels[lws_facts.LABELS["name"]] == "big-lws" and labels[lws_facts.LABELS["group_index"]] == "1"
        assert labels[lws_facts.LABELS["worker_index"]] == "2" and labels["app.kubernetes.io/instance"] == "big"
        assert (
            labels[lws_facts.LABELS["group_key"]]
            == pods(store)["big-lws-1"]["metadata"]["labels"][lws_facts.LABELS["group_key"]]
        )
        assert worker["metadata"]["annotations"]["leaderworkerset.sigs.k8s.io/leader-name"] == "big-lws-1"
        env = worker["spec"]["containers"][0]["env"]
        assert env[:3] == [
            {"name": "LWS_LEADER_ADDRESS", "value": "big-lws-1.big-lws.ml"},
            {"name": "LWS_GROUP_SIZE", "value": "3"},
            {"name": "LWS_WORKER_INDEX", "value": "2"},
        ], "prepended, so the template's $(LWS_*) references resolve"
        assert (worker["spec"]["hostname"], worker["spec"]["subdomain"]) == ("big-lws-1-2", "big-lws")
        status = lws(store)["status"]
        assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)
        assert status["hpaPodSelector"] == hpa_pod_selector("big-lws")
        by_type = {c["type"]: c for c in status["conditions"]}
        assert (by_type["Available"]["status"], by_type["Available"]["reason"]) == ("True", "AllGroupsReady")
        assert by_type["Available"]["message"] == lws_facts.CONDITIONS["Available"][1]
        assert by_type["Progressing"]["status"] == "False", "Available excludes Progressing"
        assert "observedGeneration" not in status
        messages = [e["message"] for e in store.objects(store.resource("", "v1", "events"))]
        assert "All replicas are ready, with 2 groups ready of total 2 groups" in messages
    finally:
        controller.stop()


async def test_not_ready_groups_report_progressing_with_the_upstream_wording(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store, mark_ready=False).start()
    try:
        store.create(lws_kind.resource(), NS, lws_body(replicas=1, size=2))
        await until(lambda: bool((lws(store).get("status") or {}).get("conditions")))
        status = lws(store)["status"]
        assert (status["replicas"], status["readyReplicas"]) == (1, 0)
        (condition,) = status["conditions"]
        assert (condition["type"], condition["reason"], condition["message"]) == (
            "Progressing",
            *lws_facts.CONDITIONS["Progressing"],
        )
    finally:
        controller.stop()


async def test_the_scale_subresource_scales_groups(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store).start()
    info = lws_kind.resource()
    try:
        store.create(info, NS, lws_body(replicas=1, size=2))
        await until(lambda: (lws(store).get("status") or {}).get("readyReplicas") == 1)
        scale = store.get_scale(info, NS, "big-lws")
        assert scale["status"] == {"replicas": 1, "selector": hpa_pod_selector("big-lws")}
        store.patch_scale(info, NS, "big-lws", PatchType.MERGE, {"spec": {"replicas": 3}})
        await until(lambda: (lws(store).get("status") or {}).get("readyReplicas") == 3)
        assert len(pods(store)) == 6
        store.patch_scale(info, NS, "big-lws", PatchType.MERGE, {"spec": {"replicas": 1}})
        await until(lambda: sorted(pods(store)) == ["big-lws-0", "big-lws-0-1"])
        await until(lambda: lws(store)["status"]["replicas"] == 1)
    finally:
        controller.stop()


async def test_a_lost_pod_recreates_its_whole_group(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store).start()
    try:
        store.create(lws_kind.resource(), NS, lws_body(replicas=2, size=3))
        await until(lambda: (lws(store).get("status") or {}).get("readyReplicas") == 2)
        before = {name: p["metadata"]["uid"] for name, p in pods(store).items()}
        store.delete(store.resource("", "v1", "pods"), NS, "big-lws-1-1")
        await until(
            lambda: len(pods(store)) == 6 and pods(store)["big-lws-1"]["metadata"]["uid"] != before["big-lws-1"]
        )
        after = {name: p["metadata"]["uid"] for name, p in pods(store).items()}
        assert all(after[n] != before[n] for n in ("big-lws-1", "big-lws-1-1", "big-lws-1-2")), "the whole group"
        assert all(after[n] == before[n] for n in ("big-lws-0", "big-lws-0-1", "big-lws-0-2")), "only that group"
        await until(lambda: lws(store)["status"]["readyReplicas"] == 2)
    finally:
        controller.stop()


async def test_a_new_template_replaces_groups_one_at_a_time(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store, ready_delay=0.05).start()
    info = lws_kind.resource()
    try:
        store.create(info, NS, lws_body(replicas=3, size=2))
        await until(lambda: (lws(store).get("status") or {}).get("readyReplicas") == 3)
        seen_unready: list[int] = []

        def replaced() -> bool:
            status = lws(store)["status"]
            seen_unready.append(3 - status["readyReplicas"])
            images = {p["spec"]["containers"][0]["image"] for p in pods(store).values()}
            return images == {"vllm:2"} and status["readyReplicas"] == 3 and status["updatedReplicas"] == 3

        current = copy.deepcopy(lws(store))  # the store hands out its own object
        current["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["image"] = "vllm:2"
        current["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]["image"] = "vllm:2"
        store.replace(info, NS, "big-lws", current)
        await until(
            lambda: (
                {c["type"]: c["status"] for c in lws(store)["status"]["conditions"]}.get("UpdateInProgress") == "True"
            )
        )
        await until(replaced)
        assert max(seen_unready) <= 1, "maxUnavailable 1: one group down at a time"
        by_type = {c["type"]: c["status"] for c in lws(store)["status"]["conditions"]}
        assert by_type == {"Available": "True", "Progressing": "False", "UpdateInProgress": "False"}
    finally:
        controller.stop()


async def test_deleting_the_lws_takes_its_pods_with_it_through_the_garbage_collector(store: Store):
    lws_kind.install(store)
    controller = LeaderWorkerSetController(store).start()
    gc = GarbageCollector(store).start()
    try:
        store.create(lws_kind.resource(), NS, lws_body(replicas=1, size=2))
        await until(lambda: len(pods(store)) == 2)
        store.delete(lws_kind.resource(), NS, "big-lws")
        await until(lambda: not pods(store))
    finally:
        gc.stop()
        controller.stop()


def test_a_resource_claim_template_is_served_and_its_spec_is_immutable(store: Store):
    info = store.resource("resource.k8s.io", "v1", "resourceclaimtemplates")
    body = {"metadata": {"name": "claim"}, "spec": {"spec": {"devices": {"requests": [{"name": "neurons"}]}}}}
    store.create(info, NS, body)
    store.patch(info, NS, "claim", PatchType.MERGE, {"metadata": {"labels": {"a": "b"}}})  # metadata may change
    with pytest.raises(ApiError) as exc:
        store.patch(info, NS, "claim", PatchType.MERGE, {"spec": {"spec": {"devices": {"requests": []}}}})
    assert exc.value.code == 422 and "field is immutable" in str(exc.value)
