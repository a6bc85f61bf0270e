"""kopf's peering CRDs and the chart's peering objects on a real Kubernetes API server.

kubernetes-validate knows built-in kinds only; whether the API server accepts the peering CRDs
the chart ships, serves the peering objects the chart renders, and keeps what kopf writes into
them (one key per operator replica under `status`, merge-patched on the object itself) is
something only a real server can say. The server is the one the contract tests use (built from
Debian packages by scripts/real-apiserver.sh, cached); without it these tests are SKIPPED with
the build script's reason. The ModelDeployment CRD is the contract tests' subject (they install
crds/, which test_generated_files.py keeps identical to the chart's copy).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from chart.conftest import Render, by_kind, one
from contract import realapi

pytestmark = pytest.mark.realapi
CLUSTER_PEERINGS = ("kopf.dev", "v1", "clusterkopfpeerings")


@pytest.fixture(scope="module")
def real_api(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Iterator[realapi.RealApiServer]:
    try:
        bindir = realapi.obtain_binaries()
    except realapi.ServerUnavailable as exc:
        pytest.skip(f"real Kubernetes API server unavailable, chart CRD test NOT run: {exc}")
    with realapi.running_server(bindir, tmp_path_factory.mktemp("realapi-chart")) as server:
        yield server


@pytest.fixture(scope="module")
def installed(real_api: realapi.RealApiServer, render: Render) -> list[str]:
    """Install the peering CRDs as `helm install` would: from the chart's crds/ (via --include-crds)."""
    crds = [
        c for c in by_kind(render(include_crds=True), "CustomResourceDefinition") if c["spec"]["group"] == "kopf.dev"
    ]
    with real_api.api_client() as api:
        try:
            return realapi.install_crds(api, crds)
        except client.ApiException as exc:
            pytest.fail(f"a real API server rejected a chart CRD: {exc.body}", pytrace=False)


def test_real_api_server_accepts_the_peering_crds_the_chart_ships(installed: list[str]):
    assert sorted(installed) == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]


def _kopf_keepalive(identity: str, priority: int) -> dict[str, Any]:
    """The merge patch kopf 1.45 sends every few seconds (kopf/_core/engines/peering.py `touch`)."""
    return {"status": {identity: {"priority": priority, "lifetime": 60, "lastseen": "2026-11-26T05:00:00+00:00"}}}


def test_cluster_peering_object_keeps_the_heartbeats_kopf_writes(
    real_api: realapi.RealApiServer, installed: list[str], render: Render
):
    peering = one(render(), "ClusterKopfPeering")
    with real_api.api_client() as api:
        objects = client.CustomObjectsApi(api)
        objects.create_cluster_custom_object(*CLUSTER_PEERINGS, peering)
        name = peering["metadata"]["name"]
        for pod, priority in (("nf-operator-a", 100), ("nf-operator-b", 7)):
            objects.patch_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", name, _kopf_keepalive(pod, priority)
            )
        status = objects.get_cluster_custom_object(*CLUSTER_PEERINGS, name)["status"]
        assert {pod: beat["priority"] for pod, beat in status.items()} == {"nf-operator-a": 100, "nf-operator-b": 7}
        # A replica that stops cleanly removes its key with a null in the merge patch.
        objects.patch_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name, {"status": {"nf-operator-a": None}}
        )
        status = objects.get_cluster_custom_object(*CLUSTER_PEERINGS, name)["status"]
        assert set(status) == {"nf-operator-b"}


def test_namespaced_peering_objects_are_served_in_each_watched_namespace(
    real_api: realapi.RealApiServer, installed: list[str], render: Render
):
    peerings = by_kind(render({"watchNamespaces": ["team-a", "team-b"]}), "KopfPeering")
    with real_api.api_client() as api:
        objects = client.CustomObjectsApi(api)
        for peering in peerings:
            ns, name = peering["metadata"]["namespace"], peering["metadata"]["name"]
            objects.create_namespaced_custom_object("kopf.dev", "v1", ns, "kopfpeerings", peering)
            objects.patch_namespaced_custom_object(
                "kopf.dev", "v1", ns, "kopfpeerings", name, _kopf_keepalive("pod-x", 1)
            )
            got = objects.get_namespaced_custom_object(
                "kopf.dev", "v1", ns, "kopfpeerings", peering["metadata"]["name"]
            )
            assert got["status"]["pod-x"]["priority"] == 1
