"""Two operator replicas started with the chart's own flags: exactly one acts, the other takes over.

This is the promise behind `replicaCount: 2` with `peering.enabled`. The replicas are the real
`neuronfleet run` code path (real kopf, real peering) in threads, configured by parsing the args
of the Deployment that `helm template` renders; the Kubernetes API is the project's API emulator
(the boundary: no real cluster here), with the chart's CRDs and the chart's ClusterKopfPeering
object installed. Which replica acted is read from each replica's own /metrics endpoint.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from chart.conftest import Render, by_kind, one
from neuronfleet import cli
from neuronfleet.commands import run as run_command
from neuronfleet.controller import runner
from neuronfleet.controller.settings import OperatorConfig
from neuronfleet.kube_emulator import ThreadedEmulator, write_kubeconfig
from support.waits import wait_for

NAMESPACE = "ml"
MODEL = {
    "apiVersion": "neuronfleet.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"namespace": NAMESPACE},
    "spec": {
        "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
        "neuron": {"instanceType": "inf2.48xlarge", "tensorParallelSize": 8},
        "replicas": 1,
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Replica:
    """One operator pod: `neuronfleet run` in a thread until stopped."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.exception: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(runner.run_operator(self.config, stop_flag=self._stop, ready_flag=self._ready))
        except BaseException as exc:  # reported by the test
            self.exception = exc

    def start(self) -> Replica:
        self._thread.start()
        wait_for(lambda: self._ready.is_set() or not self._thread.is_alive(), timeout=30)
        assert self.exception is None, self.exception
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def reconciles(self) -> float:
        """neuronfleet_reconcile_total summed over handlers, from this replica's /metrics."""
        url = f"http://127.0.0.1:{self.config.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("neuronfleet_reconcile_total{")
        )


def chart_config(args: list[str], kubeconfig: Path) -> OperatorConfig:
    """The operator config from the chart's container args, with ports and kubeconfig for a test."""
    local = [a for a in args if not a.startswith(("--health-port=", "--metrics-port="))]
    local += [
        f"--kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--health-port={free_port()}",
        f"--metrics-port={free_port()}",
    ]
    config = run_command.config_from_args(cli.build_parser().parse_args(local))
    knobs = {"watch_server_timeout": 30.0, "retry_delay": 0.5, "retry_delay_max": 2.0}
    return OperatorConfig(**{**config.__dict__, **knobs})


@pytest.fixture
def cluster(render: Render, tmp_path: Path) -> Iterator[tuple[kubernetes.client.ApiClient, Path]]:
    """The API emulator with what `helm install` puts there before the operator pods start."""
    with ThreadedEmulator() as emu:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", emu.url)
        config = kubernetes.client.Configuration()
        config.host = emu.url
        api = kubernetes.client.ApiClient(config)
        objects = render(include_crds=True)
        ext = kubernetes.client.ApiextensionsV1Api(api)
        for crd in by_kind(objects, "CustomResourceDefinition"):
            ext.create_custom_resource_definition(crd)
        kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        peering = one(objects, "ClusterKopfPeering")
        kubernetes.client.CustomObjectsApi(api).create_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", peering
        )
        yield api, kubeconfig
        api.close()


def _create_model(api: kubernetes.client.ApiClient, name: str) -> None:
    body: dict[str, Any] = copy.deepcopy(MODEL)
    body["metadata"]["name"] = name
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        "neuronfleet.io", "v1alpha1", NAMESPACE, "modeldeployments", body
    )


def _peers(api: kubernetes.client.ApiClient) -> dict[str, Any]:
    peering = kubernetes.client.CustomObjectsApi(api).get_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", "neuronfleet"
    )
    return dict(peering.get("status") or {})


def _deployments(api: kubernetes.client.ApiClient) -> set[str]:
    items = kubernetes.client.AppsV1Api(api).list_namespaced_deployment(NAMESPACE).items
    return {d.metadata.name for d in items}


@pytest.mark.slow
def test_two_replicas_with_the_charts_flags_act_one_at_a_time(render: Render, cluster):
    api, kubeconfig = cluster
    (container,) = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    replicas = [Replica(chart_config(container["args"], kubeconfig)).start() for _ in range(2)]
    try:
        # Like pods that have run for a while: both heartbeats are in the peering object and each
        # replica has seen the other's before any work arrives.
        wait_for(lambda: len(_peers(api)) == 2, timeout=15, what="both replicas in the peering object")
        time.sleep(1.0)
        _create_model(api, "first")
        wait_for(
            lambda: any(name.startswith("first") for name in _deployments(api)),
            timeout=15,
            what="a replica to reconcile the ModelDeployment",
        )
        counts = [r.reconciles() for r in replicas]
        assert sorted(c > 0 for c in counts) == [False, True], f"reconcile passes per replica: {counts}"

        active = replicas[counts.index(max(counts))]
        standby = replicas[1 - replicas.index(active)]
        active.stop()
        _create_model(api, "second")
        wait_for(
            lambda: any(name.startswith("second") for name in _deployments(api)),
            timeout=30,
            what="the standby replica to take over",
        )
        assert standby.reconciles() > 0
    finally:
        for replica in replicas:
            replica.stop()
    assert all(r.exception is None for r in replicas), [r.exception for r in replicas]
