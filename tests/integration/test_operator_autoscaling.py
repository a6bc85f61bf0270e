"""The built-in autoscaler end to end: real Prometheus (Debian binary) scraping fake vLLM replicas.

The replicas are metric endpoints whose load the test sets (tests/e2e/vllm_exporter.py); they are
not pods of the Deployment (the emulator runs no pods), so the replica count the operator writes
changes nothing in the load: the test moves the load itself. The emulator's Deployment status
stand-in marks the Deployment's replicas ready shortly after each change. Skipped, loudly, when
the prometheus binary is missing. The reaction time, from the load step to the child Deployment's
`spec.replicas` changing, is printed (run with -s) in scrape and sync intervals, never asserted.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable

import pytest
from emulator_support import enable_cluster, enable_controllers
from operator_support import (
    SCALE_ON_CONCURRENCY,
    Cluster,
    OperatorThread,
    alternations,
    http_text,
    make_md,
    scraped_replica,
)

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica
from neuronfleet.controller.state import FleetKey
from support.waits import wait_for

pytestmark = pytest.mark.prometheus

SCRAPE_SECONDS = 1.0
SYNC_SECONDS = 0.5

AUTOSCALING = SCALE_ON_CONCURRENCY


@pytest.fixture
def fleet_metrics(
    start_replica: Callable[..., FakeVllmReplica],
    start_prometheus: Callable[..., prometheus_support.PrometheusServer],
) -> tuple[FakeVllmReplica, prometheus_support.PrometheusServer]:
    def prepare(r: FakeVllmReplica) -> None:
        r.set_load(running=2, waiting=0, tokens_per_second=100)

    return scraped_replica(start_replica, start_prometheus, scrape_seconds=SCRAPE_SECONDS, prepare=prepare)


def test_load_scales_the_fleet_and_the_decision_shows_in_status_events_and_metrics(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    replica, prom = fleet_metrics
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2)
    op = start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    cluster.create_md(make_md("llama", replicas=1, autoscaling=AUTOSCALING))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)
    assert cluster.deployment("llama")["spec"]["replicas"] == 1

    stepped = time.monotonic()
    replica.set_load(running=40, waiting=20)  # 60 requests at 8 per replica: 8 wanted, 4 allowed
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] > 1, timeout=30, interval=0.02)
    first = time.monotonic() - stepped
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 4, timeout=30, interval=0.02)
    full = time.monotonic() - stepped
    print(
        f"\nload step -> child Deployment scaled: {first:.2f}s ({first / SCRAPE_SECONDS:.1f} scrapes, "
        f"{first / SYNC_SECONDS:.1f} syncs); at 4 replicas: {full:.2f}s ({full / SCRAPE_SECONDS:.1f} scrapes)"
    )
    status = wait_for(lambda: (s := cluster.status("llama")).get("lastScaleReason") and s)
    assert status["desiredReplicas"] == 4
    assert status["metrics"]["concurrency"] == 60
    limited = wait_for(lambda: (c := cluster.condition("llama", "ScalingLimited")).get("status") == "True" and c)
    assert limited["reason"] == "LimitedByMaxReplicas"
    assert cluster.condition("llama", "ScalingActive")["status"] == "True"
    assert any("-> 4" in e["message"] for e in cluster.events("llama"))

    exported = http_text(f"http://127.0.0.1:{op.config.metrics_port}/metrics")
    assert 'neuronfleet_autoscaler_desired_replicas{name="llama",namespace="ml"} 4.0' in exported
    limited_series = 'neuronfleet_autoscaler_decisions_total{name="llama",namespace="ml",reason="LimitedByMaxReplicas"}'
    assert limited_series in exported
    assert 'neuronfleet_reconcile_total{handler="reconcile"}' in exported
    http_text(f"http://127.0.0.1:{op.config.health_port}/healthz")  # kopf's liveness probe answers 200

    replica.set_load(running=4, waiting=0)  # 4 requests: one replica is enough
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 1, timeout=40)


def test_without_metrics_the_autoscaler_holds_and_says_why(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    replica, prom = fleet_metrics
    replica.set_load(running=16)  # exactly two replicas' worth
    start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    # The default scale-down window (minutes) keeps 2 even if an older, lighter sample is read first.
    steady = {k: v for k, v in AUTOSCALING.items() if k != "behavior"}
    cluster.create_md(make_md("llama", replicas=2, autoscaling=steady))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)
    prom.stop()
    lost = wait_for(lambda: (c := cluster.condition("llama", "MetricsAvailable")).get("status") == "False" and c)
    assert lost["reason"] == "MetricsUnavailable"
    assert cluster.condition("llama", "ScalingActive")["status"] == "False"
    assert cluster.deployment("llama")["spec"]["replicas"] == 2
    # The event is posted after the condition is written: wait for it, not for any event.
    wait_for(lambda: "MetricsUnavailable" in [e["reason"] for e in cluster.events("llama")])


FAST = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": 4,
    "metrics": {"concurrencyPerReplica": 8},
    "behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 10, "periodSeconds": 1}]},
        "scaleDown": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 10, "periodSeconds": 1}]},
    },
}


def _scale_events(cluster: Cluster) -> list[dict]:
    return [e for e in cluster.events("llama") if e["reason"] in ("ScaledUp", "ScaledDown", "LimitedByMaxReplicas")]


def test_ten_scale_decisions_repair_nothing_and_one_hand_edit_is_one_repair(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    """The autoscaler decides, the pass applies through the one apply path: a scale is an update, never drift.

    The load flips between one and three replicas' worth; each flip is a decision that changes the
    Deployment's replicas. Then one edit by hand (the container image) is exactly one ChildRepaired.
    """
    replica, prom = fleet_metrics
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.1)
    op = start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    replica.set_load(running=4, waiting=0)
    cluster.create_md(make_md("llama", replicas=1, autoscaling=FAST))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)

    for flip in range(10):
        want = 3 if flip % 2 == 0 else 1
        replica.set_load(running=8 * want - 2, waiting=0)
        wait_for(lambda want=want: cluster.deployment("llama")["spec"]["replicas"] == want, timeout=30, interval=0.02)
    wait_for(lambda: len(_scale_events(cluster)) >= 10, what="an event per scale decision")
    reasons = [e["reason"] for e in cluster.events("llama")]
    assert "ChildRepaired" not in reasons, reasons

    image = cluster.deployment("llama")["spec"]["template"]["spec"]["containers"][0]["image"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "evil:latest"}]}}}}
    cluster.apps.patch_namespaced_deployment("llama", "ml", patch)
    wait_for(lambda: cluster.deployment("llama")["spec"]["template"]["spec"]["containers"][0]["image"] == image)
    wait_for(lambda: "ChildRepaired" in [e["reason"] for e in cluster.events("llama")])
    after = _decisions(op)  # a few more decisions (and passes) after the repair: still exactly one
    wait_for(lambda: _decisions(op) >= after + 4, timeout=30)
    assert [e["reason"] for e in cluster.events("llama")].count("ChildRepaired") == 1


def test_a_steady_autoscaled_fleet_status_never_flickers(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    """One writer of status: between decisions every pass computes the same fields, so no field goes
    back and forth (A -> B -> A) across the status writes of a fleet under steady load."""
    replica, prom = fleet_metrics
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.1)
    replica.set_load(running=16, waiting=0, tokens_per_second=100)  # exactly two replicas' worth
    store = cluster.emu.store
    written: list[dict] = []

    def listen(info, event) -> None:  # type: ignore[no-untyped-def]
        if info.plural == "modeldeployments" and event.obj["metadata"]["name"] == "llama":
            written.append(dict(event.obj.get("status") or {}))

    cluster.emu.call(store.add_listener, listen)
    op = start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    cluster.create_md(make_md("llama", replicas=2, autoscaling=FAST))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)
    steady, first = len(written), _decisions(op)
    ticks = 16
    wait_for(lambda: _decisions(op) >= first + ticks, timeout=ticks * SYNC_SECONDS * 4, what=f"{ticks} decisions")
    assert cluster.deployment("llama")["spec"]["replicas"] == 2
    assert alternations(written[steady:]) == []
    assert len(written) > steady  # sampledAt moves: the status is written, by one writer


def _decisions(op: OperatorThread) -> int:
    state = op.memo.runtime.decisions.get(FleetKey("ml", "llama"))
    return 0 if state is None else state.seq


def test_an_autoscaler_decision_sees_replicas_that_cannot_be_placed(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    """One inf2.48xlarge node holds three replicas; the load wants five. Uses the emulator's scheduler,
    nodes and pod-creating Deployment controller (`enable_cluster`); the operator's clock is moved
    past the 10-minute deadline instead of waiting it out."""
    replica, prom = fleet_metrics
    enable_cluster(cluster.emu, node_pool={"inf2.48xlarge": 1})
    op = start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    replica.set_load(running=36, waiting=0)  # 36 requests at 8 per replica: 5 replicas
    cluster.create_md(make_md("llama", replicas=1, autoscaling={**FAST, "maxReplicas": 6}))
    wait_for(lambda: (d := cluster.deployment("llama")) and d["spec"]["replicas"] == 5, timeout=30)
    wait_for(lambda: cluster.condition("llama", "CapacityAvailable").get("reason") == "WaitingForNodes", timeout=30)
    assert cluster.condition("llama", "ScalingLimited").get("reason") != "LimitedByCapacity"  # still on their way

    shifted = datetime.timedelta(minutes=11)
    op.memo.runtime.clock = lambda: datetime.datetime.now(datetime.UTC) + shifted
    limited = wait_for(
        lambda: (c := cluster.condition("llama", "ScalingLimited")).get("reason") == "LimitedByCapacity" and c
    )
    assert "cannot be placed" in limited["message"]
    assert cluster.condition("llama", "CapacityAvailable")["reason"] == "InsufficientNeuronCapacity"
    # The two replicas without a node no longer count as capacity on its way; none was deleted, also by
    # the decisions after the shift, which hold (the samples look 11 minutes old) what was asked.
    seen = _decisions(op)
    wait_for(lambda: _decisions(op) >= seen + 3, timeout=30, what="three more decisions")
    assert cluster.deployment("llama")["spec"]["replicas"] >= 5
    assert cluster.condition("llama", "ScalingLimited").get("reason") == "LimitedByCapacity"


def test_a_scale_is_announced_even_when_the_status_write_fails(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    """The event and the write metric of a scale do not wait for the status: while every status patch is
    answered 500 or 409, the pass that scales still announces it, and the retries (which find the
    Deployment already scaled) announce it no second time."""
    replica, prom = fleet_metrics
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.1)
    op = start_operator("--prometheus-url", prom.url, autoscale_interval=SYNC_SECONDS)
    replica.set_load(running=4, waiting=0)
    cluster.create_md(make_md("llama", replicas=1, autoscaling=FAST))
    wait_for(lambda: cluster.condition("llama", "MetricsAvailable").get("status") == "True", timeout=30)
    updates = op.memo.runtime.metrics.writes.labels(kind="Deployment", action="patch")
    before, earlier = updates._value.get(), _scale_events(cluster)

    status_path = "/modeldeployments/llama/status"
    failed = [
        cluster.emu.inject(method="PATCH", path=status_path, status=code, times=n)
        for code, n in ((409, 3), (500, 10_000))
    ]
    replica.set_load(running=22, waiting=0)  # three replicas' worth
    wait_for(lambda: cluster.deployment("llama")["spec"]["replicas"] == 3, timeout=30, interval=0.02)
    wait_for(lambda: any("-> 3" in e["message"] for e in _scale_events(cluster)), timeout=15, what="the scale's event")
    announced = [e for e in _scale_events(cluster) if e not in earlier]
    assert sum(f.hits for f in failed) >= 1, "status writes failed"
    assert cluster.status("llama").get("desiredReplicas") != 3, "no status write got through"
    assert updates._value.get() - before == len(announced), "one Deployment update counted per scale announced"

    cluster.emu.emulator.faults.clear()
    wait_for(lambda: cluster.status("llama").get("desiredReplicas") == 3, timeout=30)
    after = _decisions(op)  # a few more decisions and passes after the status got through
    wait_for(lambda: _decisions(op) >= after + 4, timeout=30)
    assert [e for e in _scale_events(cluster) if e not in earlier] == announced, "the retries announce nothing again"
