"""`neuronfleet run` as users start it: a subprocess with a kubeconfig, JSON logs, SIGTERM; and peering.

The subprocess test is the only one that goes through `main()`, kopf's logging setup and signal
handling; the peering test runs two operators sharing one kopf peering object, as two replicas
of the Helm chart's Deployment would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
from operator_support import REPO, Cluster, OperatorThread, free_port, make_md

from support.crds import schemaless_crd
from support.waits import wait_for

PEERING_CRD = schemaless_crd(
    "kopf.dev", "clusterkopfpeerings", "ClusterKopfPeering", scope="Cluster", status_schema=True
)


def test_neuronfleet_run_reconciles_logs_json_and_exits_cleanly_on_sigterm(
    emulator_kubeconfig: Path, crd: dict[str, Any], cluster: Cluster, tmp_path: Path
) -> None:
    log_path = tmp_path / "operator.log"
    cmd = [
        sys.executable, "-m", "neuronfleet.cli", "run", "--kubeconfig", str(emulator_kubeconfig), "--standalone",
        "--log-format", "json", "--bind-address", "127.0.0.1",
        "--health-port", str(free_port()), "--metrics-port", str(free_port()),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            cluster.create_md(make_md("llama"))
            wait_for(lambda: cluster.deployment("llama"), timeout=30)
            wait_for(lambda: cluster.status("llama").get("observedGeneration") == 1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is a JSON object
    assert any("Created Deployment llama" in r.get("message", "") for r in records)


def test_two_peered_operators_let_only_one_act_and_the_other_takes_over(
    start_operator: Callable[..., OperatorThread], cluster: Cluster, kube_api: kubernetes.client.ApiClient
) -> None:
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(
        PEERING_CRD, _preload_content=False
    )
    custom = kubernetes.client.CustomObjectsApi(kube_api)
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "neuronfleet"}}
    custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)
    # Explicit priorities make the outcome deterministic; by default each replica draws a random one.
    low = start_operator("--peering", "neuronfleet", "--priority", "10")
    high = start_operator("--peering", "neuronfleet", "--priority", "20")
    wait_for(lambda: len(custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", "neuronfleet")
                          .get("status") or {}) == 2)  # fmt: skip

    def passes(op: OperatorThread) -> float:
        counter = op.memo.runtime.metrics.reconciles.labels(handler="reconcile")
        return counter._value.get()

    cluster.create_md(make_md("first"))
    wait_for(lambda: cluster.status("first").get("observedGeneration") == 1)
    assert passes(high) >= 1
    assert passes(low) == 0

    high.stop()  # a graceful stop withdraws from the peering object: the standby resumes at once
    cluster.create_md(make_md("second"))
    wait_for(lambda: cluster.status("second").get("observedGeneration") == 1, timeout=30)
    assert passes(low) >= 1


def test_an_operator_limited_to_a_namespace_leaves_the_others_alone(
    start_operator: Callable[..., OperatorThread], cluster: Cluster
) -> None:
    cluster.core.create_namespace({"metadata": {"name": "other"}}, _preload_content=False)
    start_operator("--namespace", "ml")
    cluster.create_md(make_md("theirs", namespace="other"))
    cluster.create_md(make_md("ours"))
    wait_for(lambda: cluster.status("ours").get("observedGeneration") == 1)
    assert cluster.deployment("theirs", namespace="other") is None
    assert cluster.status("theirs", namespace="other") == {}
