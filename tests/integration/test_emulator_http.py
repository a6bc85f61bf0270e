"""The emulator speaks Kubernetes over HTTP to the official ``kubernetes`` client (and kubectl).

These drive a real ThreadedEmulator on 127.0.0.1 through the real client: discovery, CRUD,
status/scale subresources, CRD serving, watches, fault injection and the request log.
"""

# ruff: noqa: F811  (fixtures are imported from emulator_fixtures until the conftest does it)

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes
import pytest
from emulator_fixtures import emulator, emulator_kubeconfig, kube_api  # noqa: F401
from emulator_support import enable_controllers
from kubernetes.client import ApiException

from neuronfleet.kube_emulator import ThreadedEmulator, rbac_rules, write_kubeconfig
from support.crds import schemaless_crd
from support.waits import wait_for

CRD = schemaless_crd(
    "example.com",
    "widgets",
    "Widget",
    short_names=("wd",),
    subresources={
        "status": {},
        "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"},
    },
)


PRINTED_CRD = {
    **CRD,
    "spec": {
        **CRD["spec"],
        "versions": [
            {
                **CRD["spec"]["versions"][0],
                "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}],
            }
        ],
    },
}


def deployment(name: str = "d", replicas: int = 2, labels: dict | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "img:1", "env": [{"name": "A", "value": "1"}]}]},
            },
        },
    }


@pytest.mark.parametrize(
    "path",
    [
        "/version",
        "/version/",
        "/api",
        "/api/v1",
        "/apis",
        "/apis/",
        "/apis/apps",
        "/apis/apps/v1/",
        "/apis/kopf.dev/v1",
    ],
    ids=lambda p: f"discovery at {p}",
)
def test_discovery_paths_answer_with_and_without_trailing_slash(emulator: ThreadedEmulator, path: str):
    with urllib.request.urlopen(emulator.url + path, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())


def test_discovery_lists_subresources_so_clients_can_find_status_and_scale(kube_api):
    resources = kubernetes.client.AppsV1Api(kube_api).get_api_resources().resources
    names = {r.name for r in resources}
    assert {"deployments", "deployments/status", "deployments/scale"} <= names
    groups = {g.name for g in kubernetes.client.ApisApi(kube_api).get_api_versions().groups}
    assert {
        "apps",
        "policy",
        "coordination.k8s.io",
        "monitoring.coreos.com",
        "apiextensions.k8s.io",
        "kopf.dev",
    } <= groups


def test_create_answers_201_with_server_fields_and_duplicates_are_409(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert created is not None, "the client maps only 201 to a return value"
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.namespace == "default"
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    assert err.value.status == 409


def test_a_missing_object_is_a_404_status(kube_api):
    with pytest.raises(ApiException) as err:
        kubernetes.client.CoreV1Api(kube_api).read_namespaced_secret("nope", "default")
    assert err.value.status == 404 and '"reason":"NotFound"' in err.value.body


def test_deployments_patch_strategically_scale_and_keep_status_apart(kube_api):
    apps = kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment("default", deployment())
    patched = apps.patch_namespaced_deployment(
        "d",
        "default",
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "B", "value": "2"}]}]}}}},
    )
    assert [e.name for e in patched.spec.template.spec.containers[0].env] == ["A", "B"]
    assert patched.metadata.generation == 2
    status = apps.patch_namespaced_deployment_status(
        "d", "default", {"status": {"readyReplicas": 1}, "spec": {"replicas": 9}}
    )
    assert status.status.ready_replicas == 1 and status.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("d", "default", {"spec": {"replicas": 5}})
    scale = apps.read_namespaced_deployment_scale("d", "default")
    assert scale.spec.replicas == 5 and scale.status.selector == "app=d"


def test_replace_with_a_stale_resource_version_is_409(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    old = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "2"}})
    old.data = {"k": "3"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", "default", old)
    assert err.value.status == 409
    fresh = core.read_namespaced_config_map("a", "default")
    fresh.data = {"k": "4"}
    assert core.replace_namespaced_config_map("a", "default", fresh).data == {"k": "4"}


def test_label_and_field_selectors_filter_lists(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    for name, tier in [("a", "web"), ("b", "db"), ("c", "web")]:
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tier": tier}}})
    names = lambda **kw: [i.metadata.name for i in core.list_namespaced_config_map("default", **kw).items]  # noqa: E731
    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier notin (web)") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    listed = core.list_config_map_for_all_namespaces()
    assert listed.kind == "ConfigMapList" and int(listed.metadata.resource_version) > 0


def test_posting_a_crd_makes_its_custom_resources_served(kube_api):
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    with pytest.raises(ApiException) as err:
        custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert err.value.status == 404
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(CRD)
    custom.create_namespaced_custom_object(
        "example.com",
        "v1",
        "default",
        "widgets",
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"replicas": 1},
            "status": {"x": 1},
        },
    )
    obj = custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert "status" not in obj, "status is dropped on create when the status subresource is on"
    custom.patch_namespaced_custom_object_status(
        "example.com", "v1", "default", "widgets", "w", {"status": {"replicas": 1}}
    )
    custom.patch_namespaced_custom_object_scale(
        "example.com", "v1", "default", "widgets", "w", {"spec": {"replicas": 3}}
    )
    obj = custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert obj["spec"]["replicas"] == 3 and obj["status"] == {"replicas": 1} and obj["metadata"]["generation"] == 2
    with urllib.request.urlopen(f"{custom.api_client.configuration.host}/apis/example.com/v1", timeout=10) as response:
        resources = {r["name"] for r in json.loads(response.read())["resources"]}
    assert resources == {"widgets", "widgets/status", "widgets/scale"}


def test_a_watch_streams_changes_and_resumes_from_a_resource_version(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v"}})
    core.delete_namespaced_config_map("b", "default")
    stream = kubernetes.watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1
    )
    seen = [(e["type"], e["object"].metadata.name) for e in stream]
    assert seen == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_a_watch_delivers_live_events_and_ends_at_its_timeout(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    seen: list[tuple[str, str]] = []

    def watch() -> None:
        for event in kubernetes.watch.Watch().stream(core.list_config_map_for_all_namespaces, timeout_seconds=2):
            seen.append((event["type"], event["object"].metadata.name))

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.3)
    core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
    thread.join(10)
    assert not thread.is_alive(), "timeoutSeconds ends the stream"
    assert ("ADDED", "live") in seen


def test_a_watch_from_a_compacted_version_gets_an_expired_error_event(emulator: ThreadedEmulator, kube_api):
    emulator.store._logs[("", "configmaps")].size = 2  # a tiny log makes compaction observable
    core = kubernetes.client.CoreV1Api(kube_api)
    for n in range(4):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"c{n}"}})
    url = f"{emulator.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1"
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = [json.loads(line) for line in response.read().splitlines()]
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in lines] == [("ERROR", 410, "Expired")]


def test_cut_watches_ends_open_streams_and_a_resume_from_the_last_version_misses_nothing(
    emulator: ThreadedEmulator, kube_api
):
    core = kubernetes.client.CoreV1Api(kube_api)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    last_rv: list[str] = []

    def watch() -> None:
        for event in kubernetes.watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=60
        ):
            seen.append((event["type"], event["object"].metadata.name))
            last_rv.append(event["object"].metadata.resource_version)

    thread = threading.Thread(target=watch)
    thread.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    wait_for(lambda: seen, timeout=10)
    assert emulator.cut_watches() == 1
    thread.join(10)
    assert not thread.is_alive(), "the stream ended long before its 60 s timeout"
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    resumed = kubernetes.watch.Watch().stream(
        core.list_namespaced_config_map, "default", resource_version=last_rv[-1], timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.name) for e in resumed] == [("ADDED", "after")]
    assert seen == [("ADDED", "before")]


def test_a_watch_whose_client_left_before_the_headers_is_not_kept(emulator: ThreadedEmulator, monkeypatch):
    from aiohttp import web

    async def gone(self, request):  # what aiohttp raises when the client has already closed
        raise ConnectionResetError("Cannot write to closing transport")

    monkeypatch.setattr(web.StreamResponse, "prepare", gone)
    url = f"{emulator.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=30"
    with pytest.raises(Exception):  # noqa: B017 - the server has nothing to answer with
        urllib.request.urlopen(url, timeout=10)
    monkeypatch.undo()
    assert emulator.cut_watches() == 0, "no watcher left behind to receive events forever"


def test_after_compaction_a_stale_resume_gets_410_gone_expired(emulator: ThreadedEmulator, kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    stale = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "b"}})
    emulator.compact()
    url = f"{emulator.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={stale}&timeoutSeconds=1"
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = [json.loads(line) for line in response.read().splitlines()]
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in lines] == [("ERROR", 410, "Expired")]
    assert lines[0]["object"]["message"].startswith(f"too old resource version: {stale} (")


def test_a_fractional_watch_timeout_is_refused_like_a_real_server_does(emulator: ThreadedEmulator):
    url = f"{emulator.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=300.0"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 400
    assert "strconv.ParseInt" in err.value.read().decode()


@pytest.mark.parametrize("status", [409, 500], ids=["conflicts", "server errors"])
def test_injected_faults_answer_the_next_matching_requests_then_stop(emulator: ThreadedEmulator, kube_api, status: int):
    core = kubernetes.client.CoreV1Api(kube_api)
    fault = emulator.inject(method="POST", path=r"/configmaps$", status=status, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
        assert err.value.status == status
    assert core.create_namespaced_config_map("default", {"metadata": {"name": "a"}}).metadata.name == "a"
    assert fault.hits == 2
    core.read_namespaced_config_map("a", "default")  # GETs never matched the fault


def test_an_injected_delay_times_the_client_out(emulator: ThreadedEmulator, kube_api):
    emulator.emulator.inject(method="GET", path=r"/configmaps/a$", status=None, delay=2.0, times=5)
    core = kubernetes.client.CoreV1Api(kube_api)
    # The client retries reads; every retry hangs too, so it gives up with urllib3's ReadTimeoutError.
    with pytest.raises(Exception) as err:
        core.read_namespaced_config_map("a", "default", _request_timeout=0.3)
    assert "timed out" in str(err.value).lower()


def test_the_request_log_yields_the_rbac_rules_used(emulator: ThreadedEmulator, kube_api):
    apps = kubernetes.client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment("default", deployment())
    apps.patch_namespaced_deployment_status("d", "default", {"status": {"replicas": 1}})
    apps.list_deployment_for_all_namespaces()
    rules = rbac_rules(emulator.emulator.requests)
    assert rules == {("apps", "deployments"): {"create", "list"}, ("apps", "deployments/status"): {"patch"}}


def test_the_request_log_names_each_clients_user_and_arrival_time(emulator: ThreadedEmulator, tmp_path: Path):
    emulator.emulator.tokens.update({"token-a": "operator-a", "token-b": "operator-b"})
    clients = [
        kubernetes.config.new_client_from_config(
            config_file=str(write_kubeconfig(tmp_path / f"kubeconfig-{token}", emulator.url, token=token))
        )
        for token in ("token-a", "token-b", "unknown")
    ]
    before = time.time()
    for n, client in enumerate(clients):
        kubernetes.client.CoreV1Api(client).create_namespaced_config_map("default", {"metadata": {"name": f"c{n}"}})
        client.close()
    writes = [r for r in emulator.requests if r.write]
    assert [(r.user, r.resource) for r in writes] == [
        ("operator-a", "configmaps"),
        ("operator-b", "configmaps"),
        ("system:anonymous", "configmaps"),
    ]
    assert before <= writes[0].at <= writes[1].at <= writes[2].at <= time.time()


def test_finalizers_keep_an_object_until_they_are_removed(kube_api):
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "a", "finalizers": ["example.com/hold"]}})
    core.delete_namespaced_config_map("a", "default", propagation_policy="Foreground")
    held = core.read_namespaced_config_map("a", "default")
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("a", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("a", "default")
    assert err.value.status == 404


def test_optional_controllers_collect_dependents_and_roll_out_deployments(emulator: ThreadedEmulator, kube_api):
    """The GC and Deployment controllers are stand-ins, switched on explicitly here."""
    enable_controllers(emulator, ready_delay=0.1)
    core = kubernetes.client.CoreV1Api(kube_api)
    apps = kubernetes.client.AppsV1Api(kube_api)
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid, "controller": True}
    apps.create_namespaced_deployment("default", {**deployment(), "metadata": {"name": "d", "ownerReferences": [ref]}})
    ready = wait_for(lambda: apps.read_namespaced_deployment("d", "default").status.ready_replicas == 2)
    assert ready
    dep = apps.read_namespaced_deployment("d", "default")
    assert dep.status.observed_generation == dep.metadata.generation
    assert {c.type for c in dep.status.conditions} == {"Available", "Progressing"}
    core.delete_namespaced_config_map("owner", "default")
    wait_for(lambda: not apps.list_namespaced_deployment("default").items)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_applies_gets_patches_and_deletes(emulator_kubeconfig: Path, tmp_path: Path):
    def kubectl(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(emulator_kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k\ndata:\n  a: '1'\n"
    kubectl("apply", "-f", "-", stdin=manifest)
    assert kubectl("get", "configmap", "k", "-o", "jsonpath={.data.a}") == "1"
    kubectl("patch", "configmap", "k", "--type=merge", "-p", '{"data":{"a":"2"}}')
    assert "k" in kubectl("get", "configmaps")
    kubectl("apply", "-f", "-", stdin=manifest.replace("'1'", "'3'"))
    assert kubectl("get", "cm", "k", "-o", "jsonpath={.data.a}") == "3"
    assert "deployments" in kubectl("api-resources")
    kubectl("create", "-f", "-", stdin=json.dumps(PRINTED_CRD))
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 3}}
    kubectl("apply", "-f", "-", stdin=json.dumps(widget))
    kubectl("apply", "-f", "-", stdin=json.dumps({**widget, "spec": {"replicas": 4}}))
    header, row = kubectl("get", "widgets").splitlines()
    assert header.split() == ["NAME", "REPLICAS", "AGE"] and row.split()[:2] == ["w", "4"]
    kubectl("delete", "configmap", "k")
    assert "k " not in kubectl("get", "configmaps", "--no-headers")


def test_a_dry_run_answers_like_a_write_but_stores_nothing(emulator: ThreadedEmulator, kube_api):
    apps = kubernetes.client.AppsV1Api(kube_api)
    created = apps.create_namespaced_deployment("default", deployment(), dry_run="All")
    assert created.metadata.name == "d" and created.spec.replicas == 2
    assert apps.list_namespaced_deployment("default").items == []
    apps.create_namespaced_deployment("default", deployment())
    rv = emulator.store.rv
    preview = apps.patch_namespaced_deployment("d", "default", {"spec": {"replicas": 7}}, dry_run="All")
    assert preview.spec.replicas == 7 and preview.metadata.generation == 2
    assert apps.read_namespaced_deployment("d", "default").spec.replicas == 2
    assert emulator.store.rv == rv, "a dry run commits no resourceVersion"
