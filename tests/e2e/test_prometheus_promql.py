"""The autoscaler's PromQL and client against a real Prometheus scraping fake vLLM replicas.

Four replica endpoints on 127.0.0.1 export vLLM's metric names and labels; Prometheus scrapes them
every second with the target labels Kubernetes relabeling gives pods (`namespace`,
`app_kubernetes_io_instance`, `pod`). Two belong to the fleet under test, two are decoys in another
ModelDeployment and another namespace, which the selector must leave out. One fleet replica
negotiates OpenMetrics like vLLM (its series land as `vllm_*`), the other answers the text format
(`vllm:*`): the queries must sum both spellings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica
from neuronfleet.autoscale import observe, prometheus, promql

pytestmark = pytest.mark.prometheus

RATE_WINDOW = "5s"
FLEET = {  # pod -> (running, waiting, kv usage, tokens/s)
    "llama-0": (5.0, 2.0, 0.4, 100.0),
    "llama-1": (3.0, 0.0, 0.6, 50.0),
}
TEXT_EXPOSITION = {"ml/llama-1", "dev/llama-0"}  # the others negotiate OpenMetrics
DECOYS = {  # (namespace, instance, pod) -> same load shape, much larger
    ("ml", "mistral", "mistral-0"): (50.0, 9.0, 0.9, 1000.0),
    ("dev", "llama", "llama-0"): (70.0, 11.0, 0.1, 3000.0),
}


@dataclass
class Fleet:
    server: prometheus_support.PrometheusServer
    replicas: dict[str, FakeVllmReplica]


@pytest.fixture(scope="module")
def fleet(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    replicas: dict[str, FakeVllmReplica] = {}
    targets = []
    loads = {("ml", "llama", pod): load for pod, load in FLEET.items()} | DECOYS
    for (namespace, instance, pod), (running, waiting, kv, tps) in loads.items():
        exposition = "text" if f"{namespace}/{pod}" in TEXT_EXPOSITION else "negotiate"
        replica = FakeVllmReplica(model_name=instance, exposition=exposition).start()
        replica.set_load(
            running=running, waiting=waiting, kv_cache_usage=kv, tokens_per_second=tps, prompt_tokens_per_second=4 * tps
        )
        replicas[f"{namespace}/{pod}"] = replica
        labels = {"namespace": namespace, "app_kubernetes_io_instance": instance, "pod": pod}
        targets.append(prometheus_support.Target(replica.address, labels))
    # One more fleet whose replica lacks the waiting gauge, to pin down what `+` does then.
    partial = FakeVllmReplica(model_name="partial", omit=["waiting"]).start()
    partial.set_load(running=4.0, tokens_per_second=10.0)
    replicas["ml/partial-0"] = partial
    targets.append(
        prometheus_support.Target(
            partial.address, {"namespace": "ml", "app_kubernetes_io_instance": "partial", "pod": "partial-0"}
        )
    )
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    server = prometheus_support.start_prometheus(targets, workdir=workdir, binary=prometheus_binary)
    try:
        # A 5 s rate window at 1 s scrapes is full after 6 scrapes; wait for a margin over that.
        server.wait_for_scrapes(8)
        yield Fleet(server, replicas)
    finally:
        server.stop()
        for replica in replicas.values():
            replica.stop()


def queries(instance: str = "llama", namespace: str = "ml") -> promql.Queries:
    return promql.build(namespace, instance, promql.QueryConfig(rate_window=RATE_WINDOW))


def test_both_metric_name_spellings_reach_prometheus(fleet: Fleet) -> None:
    # The premise of the name regex: the same library, two wire formats, two names.
    colon = fleet.server.query('vllm:num_requests_running{namespace="ml",app_kubernetes_io_instance="llama"}')
    underscore = fleet.server.query('vllm_num_requests_running{namespace="ml",app_kubernetes_io_instance="llama"}')
    assert [s["metric"]["pod"] for s in colon] == ["llama-1"]
    assert [s["metric"]["pod"] for s in underscore] == ["llama-0"]
    assert {s["metric"]["model_name"] for s in colon + underscore} == {"llama"}
    assert {s["metric"]["engine"] for s in colon + underscore} == {"0"}


def test_tokens_per_second_is_the_fleet_sum_of_counter_rates(fleet: Fleet) -> None:
    value = fleet.server.value(queries().tokens_per_second)
    expected = sum(load[3] for load in FLEET.values())
    assert value == pytest.approx(expected, rel=0.1)


def test_prompt_tokens_per_second_is_the_fleet_sum_of_prompt_counter_rates(fleet: Fleet) -> None:
    value = fleet.server.value(queries().prompt_tokens_per_second)
    assert value == pytest.approx(4 * sum(load[3] for load in FLEET.values()), rel=0.1)


def test_concurrency_is_running_plus_waiting_over_the_fleet_only(fleet: Fleet) -> None:
    assert fleet.server.value(queries().concurrency) == sum(load[0] + load[1] for load in FLEET.values())


def test_steady_gauges_grow_by_zero_and_nothing_finishes_without_requests(fleet: Fleet) -> None:
    """The arrival queries parse on a real Prometheus and read a still fleet as still: deriv of constant
    gauges is 0, and a replica that served nothing has a request-count histogram that does not move."""
    assert fleet.server.value(queries().concurrency_growth) == pytest.approx(0.0, abs=1e-9)
    assert fleet.server.value(queries().completions_per_second) == pytest.approx(0.0, abs=1e-9)


def test_waiting_and_kv_usage_are_the_fleet_sum_and_mean(fleet: Fleet) -> None:
    assert fleet.server.value(queries().waiting) == sum(load[1] for load in FLEET.values())
    assert fleet.server.value(queries().kv_cache_usage) == pytest.approx(0.5)


def test_the_same_name_in_another_namespace_is_another_fleet(fleet: Fleet) -> None:
    assert fleet.server.value(queries("llama", "dev").concurrency) == 81.0


def test_a_fleet_without_series_reads_as_missing_not_zero(fleet: Fleet) -> None:
    empty = queries("nobody")
    for name, query in empty.by_signal().items():
        if name != "failing_scrapes":
            assert fleet.server.query(query) == []
    assert fleet.server.value(empty.failing_scrapes) == 0  # no target at all: none failing


def test_concurrency_is_missing_when_a_fleet_lacks_the_waiting_gauge(fleet: Fleet) -> None:
    partial = queries("partial")
    assert fleet.server.query(partial.concurrency) == []
    assert fleet.server.value(partial.tokens_per_second) == pytest.approx(10.0, rel=0.1)


def test_sampled_at_is_the_time_of_the_newest_scrape(fleet: Fleet) -> None:
    sampled_at = fleet.server.value(queries().sampled_at)
    assert sampled_at is not None
    assert time.time() - 3.0 <= sampled_at <= time.time() + 0.5


async def test_observe_reads_the_fleet_through_the_client(fleet: Fleet) -> None:
    async with prometheus.PrometheusClient(fleet.server.url, timeout=5.0) as client:
        seen = await observe.observe(client, queries(), current_replicas=3, ready_replicas=2)
    assert seen.tokens_per_second == pytest.approx(150.0, rel=0.1)
    assert seen.concurrency == 10.0
    assert seen.waiting == 2.0
    assert seen.kv_cache_usage == pytest.approx(0.5)
    assert seen.sampled_at is not None and time.time() - seen.sampled_at < 3.0
    assert seen.starting_replicas == 1


async def test_observe_of_a_fleet_without_series_has_no_signal_and_no_sample_time(fleet: Fleet) -> None:
    async with prometheus.PrometheusClient(fleet.server.url) as client:
        seen = await observe.observe(client, queries("nobody"), current_replicas=2, ready_replicas=0)
    assert (seen.tokens_per_second, seen.concurrency, seen.sampled_at) == (None, None, None)


async def test_a_syntax_error_is_reported_by_prometheus_and_not_retried(fleet: Fleet) -> None:
    async with prometheus.PrometheusClient(fleet.server.url, attempts=3) as client:
        with pytest.raises(prometheus.PrometheusQueryError, match="bad_data") as caught:
            await client.query("sum(vllm:num_requests_running{")
    assert not caught.value.retryable
