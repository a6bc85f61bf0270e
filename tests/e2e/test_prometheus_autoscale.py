"""observe() -> decide() against a real Prometheus scraping fake vLLM replicas whose load the test sets.

This is the loop the operator's timer runs (query, decide, remember the recommendation), at test
speed: scrapes every second and a decision every quarter second. The replica count is only a number
here (no Deployment): what is under test is that real PromQL on real scrapes drives the decision.
Reaction times are printed (run with -s), never asserted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica
from neuronfleet import errors
from neuronfleet.autoscale import decide, defaults, observe, prometheus, promql, step, types

pytestmark = pytest.mark.prometheus

StartReplica = Callable[..., FakeVllmReplica]
StartPrometheus = Callable[..., prometheus_support.PrometheusServer]
SCRAPE_SECONDS = 1.0
SYNC_SECONDS = 0.25
QUERIES = promql.build("ml", "llama", promql.QueryConfig(rate_window="4s"))


def policy(**overrides: object) -> types.Policy:
    fields: dict[str, object] = {
        "min_replicas": 1,
        "max_replicas": 10,
        "targets": types.Targets(tokens_per_second=1000.0, concurrency=24.0),
        "scale_up": defaults.HPA_SCALE_UP,
        "scale_down": types.ScalingRules(stabilization_seconds=0, policies=()),
        "max_metric_age_seconds": 5.0,
    }
    fields.update(overrides)
    return types.Policy(**fields)  # type: ignore[arg-type]


class Loop:
    """The operator's autoscaling loop for one fleet, with its history; replicas become ready at once."""

    def __init__(self, client: prometheus.PrometheusClient, rules: types.Policy, replicas: int) -> None:
        self.client = client
        self.policy = rules
        self.replicas = replicas
        self.history: tuple[types.HistoryEntry, ...] = ()
        self.decisions: list[tuple[float, types.Decision]] = []

    async def step(self) -> types.Decision:
        now = time.time()
        try:
            seen = await observe.observe(
                self.client, QUERIES, current_replicas=self.replicas, ready_replicas=self.replicas
            )
        except errors.MetricsUnavailable:
            seen = observe.unavailable(current_replicas=self.replicas, ready_replicas=self.replicas)
        decision, self.history = step.step(seen, self.policy, self.history, now)
        self.replicas = decision.replicas
        self.decisions.append((now, decision))
        return decision

    async def until(self, done: Callable[[types.Decision], bool], *, timeout: float = 30.0) -> types.Decision:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            decision = await self.step()
            if done(decision):
                return decision
            await asyncio.sleep(SYNC_SECONDS)
        raise AssertionError(f"no such decision within {timeout}s; last: {self.decisions[-1][1]}")


def start_fleet(
    start_replica: StartReplica,
    start_prometheus: StartPrometheus,
    count: int,
) -> tuple[list[FakeVllmReplica], prometheus_support.PrometheusServer]:
    replicas = [start_replica(model_name="llama") for _ in range(count)]
    targets = [
        prometheus_support.Target(
            r.address, {"namespace": "ml", "app_kubernetes_io_instance": "llama", "pod": f"llama-{i}"}
        )
        for i, r in enumerate(replicas)
    ]
    return replicas, start_prometheus(targets, scrape_interval=f"{SCRAPE_SECONDS:g}s")


def set_all(replicas: list[FakeVllmReplica], **load: float) -> None:
    for replica in replicas:
        replica.set_load(**load)


async def test_concurrency_rising_scales_the_fleet_up(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=20, waiting=4, tokens_per_second=950)  # 48 requests, 1900 tok/s: two replicas
    server.wait_for_scrapes(6)
    async with prometheus.PrometheusClient(server.url, timeout=2.0) as client:
        loop = Loop(client, policy(), replicas=2)
        steady = await loop.step()
        assert (steady.replicas, steady.reason) == (2, types.Reason.WITHIN_TOLERANCE), steady.message

        set_all(replicas, running=32, waiting=30)  # 124 requests: ceil(124 / 24) = 6 replicas
        started = time.monotonic()
        scaled = await loop.until(lambda d: d.replicas != 2)
        first = time.monotonic() - started
        # Replicas are scraped at different offsets, so the first decision may see only one of them
        # at the new load; the next scrape completes the picture.
        settled = await loop.until(lambda d: d.replicas == 6)
        full = time.monotonic() - started
    assert scaled.reason == types.Reason.SCALED_UP
    assert 2 < scaled.replicas <= 6
    assert settled.per_signal["concurrency"] == math.ceil(2 * 62 / 24)
    assert all(d.replicas <= 6 for _, d in loop.decisions)
    print(
        f"\nconcurrency step -> first scale-up decision: {first:.2f}s ({first / SCRAPE_SECONDS:.1f} scrapes), "
        f"full size: {full:.2f}s ({full / SCRAPE_SECONDS:.1f} scrapes)"
    )


async def test_tokens_per_second_rising_scales_up_after_the_rate_window_sees_it(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=20, waiting=4, tokens_per_second=950)
    server.wait_for_scrapes(6)
    async with prometheus.PrometheusClient(server.url, timeout=2.0) as client:
        loop = Loop(client, policy(), replicas=2)
        assert (await loop.step()).replicas == 2

        set_all(replicas, tokens_per_second=2400)  # 4800 tok/s over 1000 per replica: 5 replicas
        started = time.monotonic()
        scaled = await loop.until(lambda d: d.replicas != 2)
        first = time.monotonic() - started
        settled = await loop.until(lambda d: d.per_signal.get("tokens_per_second") == 5)
        full = time.monotonic() - started
    assert scaled.reason in (types.Reason.SCALED_UP, types.Reason.RATE_LIMITED)
    assert scaled.replicas > 2
    assert settled.replicas == 5
    print(
        f"\ntokens/s step -> first scale-up: {first:.2f}s ({first / SCRAPE_SECONDS:.1f} scrapes); "
        f"full size once the 4s rate window fills: {full:.2f}s ({full / SCRAPE_SECONDS:.1f} scrapes)"
    )


async def test_load_falling_scales_down_only_after_the_stabilization_window(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    window = 4
    rules = policy(scale_down=types.ScalingRules(stabilization_seconds=window, policies=()))
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=48, waiting=0, tokens_per_second=200)  # 96 requests: 4 replicas
    server.wait_for_scrapes(6)
    async with prometheus.PrometheusClient(server.url, timeout=2.0) as client:
        loop = Loop(client, rules, replicas=4)
        await loop.until(lambda d: d.reason == types.Reason.WITHIN_TOLERANCE and d.replicas == 4)
        # Fill the window, so the history covers it and a restart guard is not what holds us.
        await loop.until(lambda d: loop.history[0].at <= time.time() - window)

        set_all(replicas, running=12, waiting=0)  # 24 requests: 1 replica
        down = await loop.until(lambda d: d.replicas < 4)
        down_at = loop.decisions[-1][0]
        if down.replicas > 1:
            await loop.until(lambda d: d.replicas == 1)
    high = [at for at, d in loop.decisions if d.recommended >= 4]
    assert down.reason == types.Reason.SCALED_DOWN
    assert down_at >= high[-1] + window
    # HPA semantics: down to the highest recommendation still inside the window (a scrape can catch
    # one replica before the drop and one after, recommending in between).
    assert down.replicas == max(d.recommended for at, d in loop.decisions if down_at - window < at <= down_at)
    held = [d for at, d in loop.decisions if high[-1] < at < down_at]
    assert held and all(d.reason == types.Reason.STABILIZING and d.replicas == 4 for d in held)
    reached_one = next(d for _, d in loop.decisions if d.replicas == 1)
    assert reached_one.reason == types.Reason.SCALED_DOWN


async def test_stopping_prometheus_holds_the_count_instead_of_falling_to_min(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=2, waiting=0, tokens_per_second=100)  # demand for one replica
    server.wait_for_scrapes(6)
    async with prometheus.PrometheusClient(server.url, timeout=1.0, attempts=2, backoff=0.05) as client:
        trusted = Loop(client, policy(), replicas=4)
        assert (await trusted.step()).replicas == 1  # with metrics, low load does shrink the fleet

        pid = server.pid
        server.stop()
        assert pid is not None and server.pid is None
        with pytest.raises(errors.MetricsUnavailable, match=server.url):
            await client.query(QUERIES.concurrency)
        loop = Loop(client, policy(), replicas=4)
        held = await loop.step()
    assert (held.replicas, held.reason) == (4, types.Reason.METRICS_UNAVAILABLE)


async def test_replica_endpoints_vanishing_reads_as_missing_and_holds(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=2, waiting=0, tokens_per_second=100)
    server.wait_for_scrapes(6)
    for replica in replicas:
        replica.stop()
    # Failed scrapes write staleness markers: the gauges vanish from instant queries.
    server.wait_for('count({__name__=~"vllm[:_]num_requests_running",namespace="ml"})', lambda v: v is None)
    async with prometheus.PrometheusClient(server.url, timeout=2.0) as client:
        seen = await observe.observe(client, QUERIES, current_replicas=4, ready_replicas=4)
        held = decide.decide(seen, policy(), (), time.time())
    assert (seen.concurrency, seen.sampled_at) == (None, None)
    assert (held.replicas, held.reason) == (4, types.Reason.METRICS_UNAVAILABLE)


async def test_a_replica_whose_scrapes_fail_holds_scale_down_until_it_answers_again(
    start_replica: StartReplica, start_prometheus: StartPrometheus
) -> None:
    """Fleet totals summed without a replica that is too busy to be scraped undercount: never shrink on them."""
    replicas, server = start_fleet(start_replica, start_prometheus, 2)
    set_all(replicas, running=2, waiting=0, tokens_per_second=100)  # demand for one replica
    server.wait_for_scrapes(6)
    replicas[1].stop()  # its scrapes fail from now on (up == 0) and its series go stale
    server.wait_for(QUERIES.failing_scrapes, lambda v: v == 1)
    async with prometheus.PrometheusClient(server.url, timeout=2.0) as client:
        held = await Loop(client, policy(), replicas=2).step()
    assert (held.replicas, held.reason) == (2, types.Reason.METRICS_UNAVAILABLE), held.message
    assert "1 replica(s) whose scrapes fail" in held.message
