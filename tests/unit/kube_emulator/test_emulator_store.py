"""The emulator's storage keeps the API server's promises (no HTTP involved).

The Store is exercised directly: these are the semantics operators rely on, namely
resourceVersions, generations, optimistic concurrency, status separation, finalizers,
watch resumption, and CRDs becoming served.
"""

from __future__ import annotations

import pytest

from neuronfleet.kube_emulator.store import ApiError, PatchType, Store
from support.crds import schemaless_crd

CRD = schemaless_crd(
    "example.com",
    "widgets",
    "Widget",
    short_names=("wd",),
    subresources={
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.size",
            "statusReplicasPath": ".status.size",
            "labelSelectorPath": ".status.selector",
        },
    },
)


@pytest.fixture
def store() -> Store:
    return Store()


def cm(store: Store):
    return store.resource("", "v1", "configmaps")


def deployments(store: Store):
    return store.resource("apps", "v1", "deployments")


def widget_info(store: Store):
    store.create(store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, CRD)
    return store.resource("example.com", "v1", "widgets")


def test_created_objects_get_server_metadata(store: Store):
    before = store.rv
    obj = store.create(cm(store), "default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    meta = obj["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) == before + 1
    assert meta["generation"] == 1
    assert (obj["apiVersion"], obj["kind"]) == ("v1", "ConfigMap")


def test_creating_twice_is_already_exists(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    with pytest.raises(ApiError) as err:
        store.create(cm(store), "default", {"metadata": {"name": "a"}})
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")


def test_creating_in_a_missing_namespace_is_not_found(store: Store):
    with pytest.raises(ApiError) as err:
        store.create(cm(store), "nowhere", {"metadata": {"name": "a"}})
    assert err.value.code == 404


def test_generate_name_makes_a_unique_name(store: Store):
    a = store.create(cm(store), "default", {"metadata": {"generateName": "x-"}})
    b = store.create(cm(store), "default", {"metadata": {"generateName": "x-"}})
    assert a["metadata"]["name"].startswith("x-") and a["metadata"]["name"] != b["metadata"]["name"]


def test_a_stale_resource_version_on_replace_is_a_conflict(store: Store):
    old = store.create(cm(store), "default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
    store.patch(cm(store), "default", "a", PatchType.MERGE, {"data": {"k": "2"}})
    with pytest.raises(ApiError) as err:
        store.replace(cm(store), "default", "a", {**old, "data": {"k": "3"}})
    assert err.value.code == 409
    assert store.get(cm(store), "default", "a")["data"] == {"k": "2"}


def test_a_failing_json_patch_test_is_unprocessable_not_a_server_error(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "add", "path": "/data", "value": {}},
    ]
    with pytest.raises(ApiError) as err:
        store.patch(cm(store), "default", "a", PatchType.JSON, ops)
    assert err.value.code == 422


def test_a_no_op_write_keeps_the_resource_version_and_emits_nothing(store: Store):
    obj = store.create(cm(store), "default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    rv = store.rv
    same = store.patch(cm(store), "default", "a", PatchType.MERGE, {"data": {"k": "v"}})
    assert same["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert store.rv == rv


DEPLOYMENT = {
    "metadata": {"name": "d", "labels": {"app": "d"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": []}}},
    "status": {"replicas": 99},
}


def test_status_is_dropped_on_create_for_kinds_with_a_status_subresource(store: Store):
    obj = store.create(deployments(store), "default", DEPLOYMENT)
    assert obj["status"] == {}


def test_the_main_endpoint_ignores_status_and_status_endpoint_ignores_spec(store: Store):
    store.create(deployments(store), "default", DEPLOYMENT)
    obj = store.patch(deployments(store), "default", "d", PatchType.MERGE, {"status": {"replicas": 5}})
    assert obj["status"] == {}
    obj = store.patch(
        deployments(store),
        "default",
        "d",
        PatchType.MERGE,
        {"status": {"replicas": 5}, "spec": {"replicas": 7}},
        subresource="status",
    )
    assert obj["status"] == {"replicas": 5}
    assert obj["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("patch", "subresource", "bumped"),
    [
        ({"spec": {"replicas": 3}}, None, True),
        ({"metadata": {"labels": {"x": "y"}}}, None, False),
        ({"metadata": {"annotations": {"x": "y"}}}, None, False),
        ({"status": {"replicas": 1}}, "status", False),
    ],
    ids=["spec change bumps", "label change does not", "annotation change does not", "status change does not"],
)
def test_generation_follows_spec_changes_only(store: Store, patch: dict, subresource: str | None, bumped: bool):
    store.create(deployments(store), "default", DEPLOYMENT)
    obj = store.patch(deployments(store), "default", "d", PatchType.MERGE, patch, subresource=subresource)
    assert obj["metadata"]["generation"] == (2 if bumped else 1)


def test_server_owned_metadata_cannot_be_overwritten(store: Store):
    obj = store.create(cm(store), "default", {"metadata": {"name": "a"}})
    patched = store.patch(
        cm(store), "default", "a", PatchType.MERGE, {"metadata": {"uid": "forged", "labels": {"a": "b"}}}
    )
    assert patched["metadata"]["uid"] == obj["metadata"]["uid"]
    assert patched["metadata"]["labels"] == {"a": "b"}


def test_finalizers_hold_deletion_until_they_are_removed(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a", "finalizers": ["x/y"]}})
    obj, gone = store.delete(cm(store), "default", "a")
    assert not gone and obj["metadata"]["deletionTimestamp"]
    store.patch(cm(store), "default", "a", PatchType.JSON, [{"op": "remove", "path": "/metadata/finalizers/0"}])
    assert store.try_get(cm(store), "default", "a") is None


def test_scale_subresource_reads_and_writes_deployment_replicas(store: Store):
    store.create(deployments(store), "default", DEPLOYMENT)
    scale = store.get_scale(deployments(store), "default", "d")
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=d"
    store.patch_scale(deployments(store), "default", "d", PatchType.MERGE, {"spec": {"replicas": 4}})
    obj = store.get(deployments(store), "default", "d")
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2


def test_posting_a_crd_serves_its_resource_with_declared_subresources(store: Store):
    with pytest.raises(ApiError):
        store.resource("example.com", "v1", "widgets")
    info = widget_info(store)
    crd = store.get(
        store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, "widgets.example.com"
    )
    assert {c["type"] for c in crd["status"]["conditions"]} == {"Established", "NamesAccepted"}
    assert info.status and info.scale is not None and info.kind == "Widget"
    store.create(info, "default", {"metadata": {"name": "w"}, "spec": {"size": 1}})
    store.patch(info, "default", "w", PatchType.MERGE, {"status": {"size": 1, "selector": "a=b"}}, subresource="status")
    scale = store.patch_scale(info, "default", "w", PatchType.MERGE, {"spec": {"replicas": 3}})
    assert scale["spec"]["replicas"] == 3 and scale["status"] == {"replicas": 1, "selector": "a=b"}


def test_strategic_merge_patch_is_refused_for_custom_resources(store: Store):
    info = widget_info(store)
    store.create(info, "default", {"metadata": {"name": "w"}})
    with pytest.raises(ApiError) as err:
        store.patch(info, "default", "w", PatchType.STRATEGIC, {"spec": {}})
    assert err.value.code == 415


def test_deleting_a_crd_stops_serving_and_removes_its_objects(store: Store):
    info = widget_info(store)
    store.create(info, "default", {"metadata": {"name": "w"}})
    store.delete(store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, "widgets.example.com")
    with pytest.raises(ApiError):
        store.resource("example.com", "v1", "widgets")
    assert store.objects(info) == []


def test_list_filters_by_namespace_and_labels_and_reports_the_current_version(store: Store):
    store.create(store.resource("", "v1", "namespaces"), None, {"metadata": {"name": "other"}})
    store.create(cm(store), "default", {"metadata": {"name": "a", "labels": {"t": "1"}}})
    store.create(cm(store), "default", {"metadata": {"name": "b", "labels": {"t": "2"}}})
    store.create(cm(store), "other", {"metadata": {"name": "c", "labels": {"t": "1"}}})
    from neuronfleet.kube_emulator.selectors import LabelSelector

    result = store.list(cm(store), "default", LabelSelector.parse("t=1"))
    assert [i["metadata"]["name"] for i in result["items"]] == ["a"]
    assert result["kind"] == "ConfigMapList" and result["metadata"]["resourceVersion"] == str(store.rv)
    assert len(store.list(cm(store), None, LabelSelector.parse("t=1"))["items"]) == 2


def drain(watcher) -> list[tuple[str, str]]:
    events = []
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        events.append((item[0], item[1].obj["metadata"]["name"]))
    return events


def test_a_watch_from_a_resource_version_replays_only_what_came_after(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    rv = store.list(cm(store), "default")["metadata"]["resourceVersion"]
    store.create(cm(store), "default", {"metadata": {"name": "b"}})
    store.delete(cm(store), "default", "a")
    watcher = store.watch(cm(store), "default", resource_version=rv)
    assert drain(watcher) == [("ADDED", "b"), ("DELETED", "a")]
    store.patch(cm(store), "default", "b", PatchType.MERGE, {"data": {"x": "y"}})
    assert drain(watcher) == [("MODIFIED", "b")]


def test_a_watch_without_a_version_starts_with_synthetic_added_events(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    assert drain(store.watch(cm(store), "default")) == [("ADDED", "a")]


def test_a_watch_from_a_compacted_version_is_gone():
    store = Store(log_size=2)
    for n in range(5):
        store.create(cm(store), "default", {"metadata": {"name": f"c{n}"}})
    with pytest.raises(ApiError) as err:
        store.watch(cm(store), "default", resource_version="1")
    assert err.value.code == 410


def test_compaction_expires_older_resumes_but_not_one_from_the_current_version(store: Store):
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    old = store.rv
    store.create(cm(store), "default", {"metadata": {"name": "b"}})
    assert drain(store.watch(cm(store), "default", resource_version=str(old))) == [("ADDED", "b")]
    store.compact()
    with pytest.raises(ApiError) as err:
        store.watch(cm(store), "default", resource_version=str(old))
    assert (err.value.code, err.value.reason) == (410, "Expired")
    assert err.value.message == f"too old resource version: {old} ({store.rv})"
    current = store.watch(cm(store), "default", resource_version=str(store.rv))
    store.create(cm(store), "default", {"metadata": {"name": "c"}})
    assert drain(current) == [("ADDED", "c")]


def test_closing_watches_ends_each_stream_and_counts_them(store: Store):
    first = store.watch(cm(store), "default")
    second = store.watch(deployments(store), "default")
    assert store.close_watches() == 2
    assert first.queue.get_nowait() is None and second.queue.get_nowait() is None
    store.create(cm(store), "default", {"metadata": {"name": "a"}})
    assert first.queue.empty(), "a closed watch gets no more events"
    assert store.close_watches() == 0


def test_a_label_selected_watch_sees_objects_leave_and_enter_the_selection(store: Store):
    from neuronfleet.kube_emulator.selectors import LabelSelector

    store.create(cm(store), "default", {"metadata": {"name": "a", "labels": {"t": "1"}}})
    watcher = store.watch(cm(store), "default", LabelSelector.parse("t=1"))
    drain(watcher)
    store.patch(cm(store), "default", "a", PatchType.MERGE, {"metadata": {"labels": {"t": "2"}}})
    store.patch(cm(store), "default", "a", PatchType.MERGE, {"metadata": {"labels": {"t": "1"}}})
    assert drain(watcher) == [("DELETED", "a"), ("ADDED", "a")]
