"""Two operators of one kopf peering: the paused one neither decides nor writes, and takes over when alone.

kopf pauses only its own watchers and handlers; the autoscaler's loops and the work queue are the
operator's. Each operator gets its own token, which the emulator records as the requests' user, so
the request log tells who wrote what. Real Prometheus scrapes a fake vLLM replica whose load the
test moves, so both operators have a reason to decide and write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from operator_support import (
    SCALE_ON_CONCURRENCY,
    Cluster,
    OperatorThread,
    make_md,
    operator_config,
    scraped_replica,
    stop_all,
)

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica
from neuronfleet.kube_emulator import write_kubeconfig
from support.crds import schemaless_crd
from support.waits import wait_for

pytestmark = pytest.mark.prometheus

PEERING_CRD = schemaless_crd(
    "kopf.dev", "clusterkopfpeerings", "ClusterKopfPeering", scope="Cluster", status_schema=True
)
SYNC_SECONDS = 0.5
AUTOSCALING = SCALE_ON_CONCURRENCY


@pytest.fixture
def peered(
    cluster: Cluster, kube_api: kubernetes.client.ApiClient, crd: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[..., OperatorThread]]:
    """Start operators in the peering "neuronfleet", each with its own token (its user in the request log)."""
    kubernetes.client.ApiextensionsV1Api(kube_api).create_custom_resource_definition(
        PEERING_CRD, _preload_content=False
    )
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "neuronfleet"}}
    kubernetes.client.CustomObjectsApi(kube_api).create_cluster_custom_object(
        "kopf.dev", "v1", "clusterkopfpeerings", peering
    )
    started: list[OperatorThread] = []

    def start(user: str, priority: int, *extra: str) -> OperatorThread:
        cluster.emu.emulator.tokens[f"token-{user}"] = user
        kubeconfig = write_kubeconfig(tmp_path / f"kubeconfig-{user}", cluster.emu.url, token=f"token-{user}")
        config = operator_config(
            kubeconfig, "--peering", "neuronfleet", "--priority", str(priority), *extra, autoscale_interval=SYNC_SECONDS
        )
        op = OperatorThread(config).start()
        started.append(op)
        return op

    yield start
    stop_all(started)


@pytest.fixture
def replica(
    start_replica: Callable[..., FakeVllmReplica],
    start_prometheus: Callable[..., prometheus_support.PrometheusServer],
) -> tuple[FakeVllmReplica, prometheus_support.PrometheusServer]:
    def prepare(r: FakeVllmReplica) -> None:
        r.set_load(running=4, waiting=0, tokens_per_second=100)

    return scraped_replica(start_replica, start_prometheus, scrape_seconds=1.0, prepare=prepare)


def _writes(cluster: Cluster, user: str, since: int) -> list[str]:
    """Writes by `user` after the `since`-th request, except kopf's peering keep-alives (its liveness)."""
    return [
        f"{r.verb} {r.path}"
        for r in cluster.emu.requests[since:]
        if r.user == user and r.write and r.resource != "clusterkopfpeerings"
    ]


def _scale_to(cluster: Cluster, replica: FakeVllmReplica, want: int) -> None:
    replica.set_load(running=8 * want - 2, waiting=0)
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == want, timeout=30, interval=0.02)


def test_the_paused_operator_neither_decides_nor_writes_and_takes_over_when_the_active_one_stops(
    peered: Callable[..., OperatorThread],
    cluster: Cluster,
    replica: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    load, prom = replica
    # The low-priority operator starts alone: it is the active one, and its autoscaler runs for the fleet.
    low = peered("low", 10, "--prometheus-url", prom.url)
    cluster.create_md(make_md("llama", replicas=1, autoscaling=AUTOSCALING))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)
    _scale_to(cluster, load, 2)
    assert _writes(cluster, "low", 0), "the lone operator acted"

    # A higher priority joins: kopf pauses the first one. From then on only the new one may write.
    high = peered("high", 20, "--prometheus-url", prom.url)
    wait_for(lambda: not low.memo.leadership.active, timeout=30, what="the low-priority operator paused")
    since = len(cluster.emu.requests)
    for want in (3, 1, 3):  # three decisions, each one a Deployment patch and status writes by the active one
        _scale_to(cluster, load, want)
    wait_for(lambda: len(_writes(cluster, "high", since)) >= 3)
    assert high.memo.leadership.active
    assert _writes(cluster, "low", since) == []
    assert low.memo.runtime.decisions == {}, "a paused operator keeps no decision to apply later"

    # The active one stops (withdrawing from the peering object): the paused one resumes and decides.
    high.stop()
    wait_for(lambda: low.memo.leadership.active, timeout=30, what="the standby took over")
    resumed = len(cluster.emu.requests)
    _scale_to(cluster, load, 4)  # up: a fresh history holds only scale-down
    assert _writes(cluster, "low", resumed), "the standby writes once it is the active one"
