"""Real kopf runs a throwaway operator against the emulator, end to end.

kopf 1.45 writes finalizers with a JSON patch whose first op tests metadata.resourceVersion,
watches with resourceVersions, posts events and patches status through /status; each of these
must work for any operator test on the emulator to mean something. The throwaway operator
creates a child Deployment (adopted), mirrors spec.replicas into it and writes status.
Garbage collection is the emulator's OPTIONAL stand-in controller, switched on here.
"""

# ruff: noqa: F811  (fixtures are imported from emulator_fixtures until the conftest does it)

from __future__ import annotations

import textwrap
from pathlib import Path

import kopf
import kubernetes
import pytest
from emulator_fixtures import emulator, emulator_login, kube_api  # noqa: F401
from emulator_support import enable_controllers, kopf_run_args
from kopf.testing import KopfRunner

from neuronfleet.kube_emulator import ThreadedEmulator, count
from support.crds import schemaless_crd
from support.waits import wait_for

OPERATOR = textwrap.dedent(
    """
    import os
    import kopf
    import kubernetes

    def apps_api():
        config = kubernetes.client.Configuration()
        config.host = os.environ["NEURONFLEET_EMULATOR_URL"]
        return kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(config))

    @kopf.on.startup()
    def tune(settings: kopf.OperatorSettings, **_):
        settings.watching.server_timeout = 1
        settings.networking.error_backoffs = [0.1, 0.2, 0.3]
        settings.posting.level = 0

    @kopf.on.create("example.com", "v1", "widgets", backoff=0.2)
    def create_fn(spec, name, namespace, body, patch, logger, **_):
        child = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"{name}-child", "labels": {"app": name}},
            "spec": {
                "replicas": spec.get("replicas", 1),
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{"name": "c", "image": "img"}]}},
            },
        }
        kopf.adopt(child, owner=body)
        apps_api().create_namespaced_deployment(namespace, child)
        patch.status["phase"] = "Created"
        kopf.info(body, reason="Created", message="Created the child Deployment")

    @kopf.on.update("example.com", "v1", "widgets", field="spec.replicas", backoff=0.2)
    def scale_fn(new, name, namespace, patch, **_):
        apps_api().patch_namespaced_deployment(f"{name}-child", namespace, {"spec": {"replicas": new}})
        patch.status["phase"] = f"Scaled to {new}"

    @kopf.on.delete("example.com", "v1", "widgets")
    def delete_fn(logger, **_):
        logger.info("Deleted")
    """
)

CRD = schemaless_crd("example.com", "widgets", "Widget", subresources={"status": {}})


@pytest.fixture
def operator_file(tmp_path: Path) -> Path:
    path = tmp_path / "widget_operator.py"
    path.write_text(OPERATOR)
    return path


def widget(replicas: int = 1) -> dict:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"replicas": replicas},
    }


def run_kopf(operator_file: Path) -> KopfRunner:
    return KopfRunner(kopf_run_args(operator_file), timeout=60, registry=kopf.OperatorRegistry())


def test_kopf_handles_create_update_and_delete_of_a_custom_resource(
    emulator_login: ThreadedEmulator, kube_api, operator_file: Path
):
    enable_controllers(emulator_login, deployments=False)
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(CRD)
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    apps = kubernetes.client.AppsV1Api(kube_api)
    core = kubernetes.client.CoreV1Api(kube_api)
    get = lambda: custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")  # noqa: E731
    with run_kopf(operator_file) as runner:
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget(2))
        wait_for(lambda: get().get("status", {}).get("phase") == "Created")
        child = apps.read_namespaced_deployment("w1-child", "default")
        owner = get()
        assert child.spec.replicas == 2
        assert [(r.uid, r.controller) for r in child.metadata.owner_references] == [(owner["metadata"]["uid"], True)]
        assert owner["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
        wait_for(lambda: any(e.reason == "Created" for e in core.list_namespaced_event("default").items))

        custom.patch_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w1", {"spec": {"replicas": 4}}
        )
        wait_for(lambda: get()["status"].get("phase") == "Scaled to 4")
        assert apps.read_namespaced_deployment("w1-child", "default").spec.replicas == 4

        custom.delete_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
        wait_for(lambda: not custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")["items"])
        wait_for(lambda: not apps.list_namespaced_deployment("default").items)
    assert runner.exception is None
    assert "Deleted" in runner.output
    assert "Traceback" not in runner.output


def test_kopf_converges_through_injected_conflicts_server_errors_and_timeouts(
    emulator_login: ThreadedEmulator, kube_api, operator_file: Path
):
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(CRD)
    emu = emulator_login.emulator
    faults = [
        emu.inject(method="POST", path=r"/deployments$", status=409, times=2),
        emu.inject(method="POST", path=r"/deployments$", status=500, times=2),
        emu.inject(method="PATCH", path=r"/widgets/w1/status", status=500, times=2),
    ]
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    with run_kopf(operator_file) as runner:
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget(1))
        wait_for(
            lambda: (
                custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
                .get("status", {})
                .get("phase")
                == "Created"
            ),
            timeout=30,
        )
        children = kubernetes.client.AppsV1Api(kube_api).list_namespaced_deployment("default").items
        assert [d.metadata.name for d in children] == ["w1-child"]
    assert runner.exception is None
    assert [f.hits for f in faults] == [2, 2, 2]
    assert count(emu.requests, verb="create", resource="deployments") >= 5


def test_kopf_resumes_watches_without_handling_anything_twice(
    emulator_login: ThreadedEmulator, kube_api, operator_file: Path
):
    """server_timeout=1 makes kopf re-watch from its last resourceVersion every second."""
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(CRD)
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    emu = emulator_login.emulator
    with run_kopf(operator_file) as runner:
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget(1))
        wait_for(lambda: count(emu.requests, verb="create", resource="deployments") == 1)
        watches_before = count(emu.requests, verb="watch", resource="widgets")
        wait_for(lambda: count(emu.requests, verb="watch", resource="widgets") >= watches_before + 2, timeout=10)
    assert runner.exception is None
    assert count(emu.requests, verb="create", resource="deployments") == 1
    resumed = [r for r in emu.requests if r.verb == "watch" and r.resource == "widgets"]
    assert len(resumed) >= 2


def test_kopf_peering_works_when_not_standalone(emulator_login: ThreadedEmulator, kube_api, tmp_path: Path):
    """Without --standalone kopf keeps its liveness in a ClusterKopfPeering object's status."""
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    custom.create_cluster_custom_object(
        "kopf.dev",
        "v1",
        "clusterkopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "default"}},
    )
    operator = tmp_path / "annotate.py"
    operator.write_text(
        "import kopf\n"
        "@kopf.on.create('configmaps')\n"
        "def annotate(patch, **_):\n"
        "    patch.metadata.annotations['seen'] = 'yes'\n"
    )
    core = kubernetes.client.CoreV1Api(kube_api)
    args = [a for a in kopf_run_args(operator) if a != "--standalone"]
    with KopfRunner(args, timeout=60, registry=kopf.OperatorRegistry()) as runner:
        core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
        wait_for(lambda: (core.read_namespaced_config_map("x", "default").metadata.annotations or {}).get("seen"))
        peering = custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "default")
    assert runner.exception is None
    assert len(peering.get("status") or {}) == 1, "the running operator announced itself"
