"""The measured service level end to end: a real Prometheus scraping a fake vLLM replica's histograms.

The replica (tests/e2e/vllm_exporter.py) exports vLLM 0.32's latency histograms with their real names
and buckets; the test moves what its requests get (first-token latency above, then within, the SLO's
budget) and reads what a user reads: status.serviceLevel, status.capacityCurve, the ServiceLevelMet
condition and its events, and the operator's own gauges. The operator measures over a 10 s window
(`--service-level-window`), so a change shows within seconds instead of the default five minutes.
Skipped, loudly, when the prometheus binary is missing. The time from the latency change to
ServiceLevelMet=True is printed (run with -s), never asserted: it is about the window plus a scrape
and a tick, since 99 % of the window's requests must be good ones. The replica is not a pod of the Deployment
(the emulator runs no pods): the replica count the operator writes changes nothing in the load.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from emulator_support import enable_controllers
from operator_support import Cluster, OperatorThread, http_text, make_md, scraped_replica

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica
from neuronfleet.demo.prometheus import pod_target_labels
from support.waits import wait_for

pytestmark = pytest.mark.prometheus

SCRAPE_SECONDS = 1.0
SYNC_SECONDS = 0.5
WINDOW_SECONDS = 10

SLO = {"perUserTokensPerSecond": 10, "timeToFirstTokenSeconds": 1}
AUTOSCALING = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": 2,
    "metrics": {"concurrencyPerReplica": 8},  # wins over the derived concurrency target
    "slo": SLO,
    "prometheus": {"rateWindow": "10s"},
}
# 20 requests/s: 200 in a 10 s window, twice what a 99 % goal needs to be judged. 20 output tokens at
# a 50 ms step: a batch of 20 and 400 tokens/s (Little's law), which the counters are set to match.
SERVICE = {"requests_per_second": 20.0, "itl_seconds": 0.05, "output_tokens": 20, "prompt_tokens": 100}


@pytest.fixture
def fleet_metrics(
    start_replica: Callable[..., FakeVllmReplica],
    start_prometheus: Callable[..., prometheus_support.PrometheusServer],
) -> tuple[FakeVllmReplica, prometheus_support.PrometheusServer]:
    def prepare(r: FakeVllmReplica) -> None:
        r.set_load(running=4, waiting=0, tokens_per_second=400, prompt_tokens_per_second=2000)
        r.set_service(**SERVICE, ttft_seconds=2.5, queue_seconds=2.0)  # every first token 1.5 s late

    return scraped_replica(start_replica, start_prometheus, scrape_seconds=SCRAPE_SECONDS, prepare=prepare)


def _met(cluster: Cluster, status: str) -> dict | None:
    cond = cluster.condition("llama", "ServiceLevelMet")
    return cond if cond.get("status") == status else None


def test_the_service_level_goes_below_its_goal_and_back_in_status_condition_events_and_metrics(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    fleet_metrics: tuple[FakeVllmReplica, prometheus_support.PrometheusServer],
) -> None:
    replica, prom = fleet_metrics
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2)
    op = start_operator(
        "--prometheus-url", prom.url, "--service-level-window", str(WINDOW_SECONDS), autoscale_interval=SYNC_SECONDS
    )
    cluster.create_md(make_md("llama", replicas=1, autoscaling=AUTOSCALING))

    missed = wait_for(lambda: _met(cluster, "False"), timeout=60, what="ServiceLevelMet=False")
    assert missed["reason"] == "AttainmentBelowGoal"
    level = cluster.status("llama")["serviceLevel"]
    assert level["source"] == "histograms" and level["reason"] == "Measured"
    assert level["attainment"] < 0.5, level  # no first token within 1 s
    assert level["samples"] >= 99 and level["windowSeconds"] == WINDOW_SECONDS
    assert 1.0 < level["ttftP50Seconds"] <= 2.5, level  # the bucket (1, 2.5] holds every first token
    assert level["itlP99Seconds"] <= 0.05
    assert 0 < level["utilization"] <= 1 and level["feedback"]
    assert cluster.condition("llama", "Ready")["status"] == "True", "the service level never gates Ready"
    wait_for(lambda: "ServiceLevelMissed" in [e["reason"] for e in cluster.events("llama")])
    warning = next(e for e in cluster.events("llama") if e["reason"] == "ServiceLevelMissed")
    assert warning["type"] == "Warning"

    # The curve is learned from the replica's own steps (iteration tokens, ITL) within a few ticks.
    curve = wait_for(lambda: (c := cluster.status("llama").get("capacityCurve")) and c["source"] == "fitted" and c)
    assert curve["samples"] > 0 and 0 <= curve["confidence"] <= 1 and curve["sloBatch"] >= 1
    assert curve["alphaSeconds"] > 0 and curve["betaSeconds"] > 0 and curve["gammaSeconds"] > 0

    exported = http_text(f"http://127.0.0.1:{op.config.metrics_port}/metrics")
    assert 'neuronfleet_service_level_met{name="llama",namespace="ml"} 0.0' in exported
    assert 'neuronfleet_service_level_ttft_seconds{name="llama",namespace="ml",quantile="0.99"}' in exported
    assert 'neuronfleet_capacity_step_seconds{name="llama",namespace="ml",term="alpha"}' in exported
    assert 'neuronfleet_autoscaler_planned_utilization{name="llama",namespace="ml"}' in exported

    replica.set_service(ttft_seconds=0.3, queue_seconds=0.1)  # every first token well within 1 s
    moved = time.monotonic()
    met = wait_for(lambda: _met(cluster, "True"), timeout=WINDOW_SECONDS * 6, what="ServiceLevelMet=True")
    back = time.monotonic() - moved
    print(
        f"\nlatency fixed -> ServiceLevelMet=True: {back:.1f}s "
        f"({back / WINDOW_SECONDS:.2f} windows of {WINDOW_SECONDS}s)"
    )
    assert met["reason"] == "AttainmentMet"
    assert cluster.status("llama")["serviceLevel"]["attainment"] >= 0.99
    wait_for(lambda: "ServiceLevelMet" in [e["reason"] for e in cluster.events("llama")])
    wait_for(
        lambda: (
            'neuronfleet_service_level_met{name="llama",namespace="ml"} 1.0'
            in http_text(f"http://127.0.0.1:{op.config.metrics_port}/metrics")
        )
    )

    # Without the SLO the fields, the condition and the gauges go; the explicit target still scales.
    cluster.patch_md("llama", {"spec": {"autoscaling": {"slo": None}}})
    wait_for(lambda: "serviceLevel" not in cluster.status("llama"), what="status.serviceLevel removed")
    assert "capacityCurve" not in cluster.status("llama")
    assert cluster.condition("llama", "ServiceLevelMet") == {}
    # The next decision drops the derived engine-load target.
    wait_for(lambda: cluster.status("llama").get("autoscalingTargets") == {"concurrencyPerReplica": 8.0})
    wait_for(
        lambda: (
            "neuronfleet_service_level_attainment{"
            not in http_text(f"http://127.0.0.1:{op.config.metrics_port}/metrics")
        )
    )


def test_without_histograms_the_capacity_model_alone_sizes_the_fleet_and_the_status_says_so(
    start_operator: Callable[..., OperatorThread],
    cluster: Cluster,
    start_replica: Callable[..., FakeVllmReplica],
    start_prometheus: Callable[..., prometheus_support.PrometheusServer],
) -> None:
    """A replica without the latency histograms (an older vLLM): Unknown/HistogramsMissing, the model's targets."""
    replica = start_replica(omit=("histograms",))
    replica.set_load(running=4, waiting=0, tokens_per_second=400)
    labels = pod_target_labels(
        "ml", "llama-0", {"app.kubernetes.io/instance": "llama", "app.kubernetes.io/name": "vllm"}
    )
    prom = start_prometheus([prometheus_support.Target(replica.address, labels)], scrape_interval="1s")
    prom.wait_for_scrapes(2)
    start_operator("--prometheus-url", prom.url, "--service-level-window", "10", autoscale_interval=SYNC_SECONDS)
    cluster.create_md(make_md("llama", replicas=1, autoscaling=AUTOSCALING))
    unknown = wait_for(lambda: _met(cluster, "Unknown"), timeout=60, what="ServiceLevelMet=Unknown")
    assert unknown["reason"] == "HistogramsMissing"
    level = cluster.status("llama")["serviceLevel"]
    assert (level["source"], level["reason"]) == ("model", "HistogramsMissing")
    assert "targets from the model unchanged" in level["feedback"]
    assert cluster.status("llama")["capacityCurve"]["source"] in ("calibrated", "roofline")
    assert "ServiceLevelMissed" not in [e["reason"] for e in cluster.events("llama")]
