"""The Prometheus HTTP client against a real aiohttp server on 127.0.0.1 that answers as scripted.

The server plays Prometheus' HTTP API shapes (success, error JSON, 5xx, slowness); the PromQL itself
is exercised against a real Prometheus in tests/e2e. Sleep is injected so backoff costs no time.
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from neuronfleet import errors
from neuronfleet.autoscale import observe, prometheus, promql


def vector(*values: str, ts: float = 1700000000.0) -> dict[str, Any]:
    result = [{"metric": {"i": str(i)}, "value": [ts, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@dataclass
class FakePrometheus:
    """Answers POST /api/v1/query from a script: a list of answers, or a function of the query."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    by_query: Callable[[str], tuple[int, Any]] | None = None
    delay: float = 0.0
    requests: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.requests.append({k: str(v) for k, v in form.items()})
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body = self.by_query(str(form["query"])) if self.by_query else self.answers.pop(0)
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        return web.json_response(body, status=status)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakePrometheus, str]]:
    state = FakePrometheus()
    app = web.Application()
    app.router.add_post("/api/v1/query", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield state, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


class Sleeps:
    """An injected sleep that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def test_a_vector_answer_is_parsed_with_labels_values_and_timestamps(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.answers = [(200, vector("12.5", "NaN", ts=1700000001.5))]
    async with prometheus.PrometheusClient(url) as client:
        result = await client.query("up", at=1700000001.5)
    assert result.result_type == "vector"
    assert [s.labels for s in result.samples] == [{"i": "0"}, {"i": "1"}]
    assert result.samples[0].value == 12.5
    assert math.isnan(result.samples[1].value)
    assert result.samples[0].timestamp == 1700000001.5
    assert state.requests[0]["query"] == "up"
    assert state.requests[0]["time"] == "1700000001.500"


async def test_a_scalar_answer_is_one_sample(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.answers = [(200, {"status": "success", "data": {"resultType": "scalar", "result": [1.0, "+Inf"]}})]
    async with prometheus.PrometheusClient(url) as client:
        sample = (await client.query("scalar(up)")).single()
    assert sample is not None and sample.value == math.inf


async def test_an_empty_vector_is_no_sample_not_zero(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.answers = [(200, vector())]
    async with prometheus.PrometheusClient(url) as client:
        assert (await client.query("sum(nothing)")).single() is None


@pytest.mark.parametrize(
    "answers",
    [
        [(503, "unavailable"), (200, vector("1"))],
        [(500, {"status": "error", "errorType": "internal", "error": "boom"}), (429, "slow down"), (200, vector("1"))],
    ],
    ids=["one 503 then success", "a 500 and a 429 then success"],
)
async def test_transient_errors_are_retried_with_growing_backoff(
    fake: tuple[FakePrometheus, str], answers: list[tuple[int, Any]]
) -> None:
    state, url = fake
    state.answers = list(answers)
    sleeps = Sleeps()
    async with prometheus.PrometheusClient(url, attempts=3, backoff=0.5, sleep=sleeps, jitter=lambda: 1.0) as client:
        result = await client.query("up")
    assert result.single() is not None
    assert len(state.requests) == len(answers)
    assert sleeps.delays == [0.5, 1.0][: len(answers) - 1]


async def test_giving_up_raises_metrics_unavailable_naming_url_query_and_cause(
    fake: tuple[FakePrometheus, str],
) -> None:
    state, url = fake
    state.answers = [(503, {"status": "error", "errorType": "unavailable", "error": "tsdb not ready"})] * 3
    sleeps = Sleeps()
    async with prometheus.PrometheusClient(url, attempts=3, sleep=sleeps) as client:
        with pytest.raises(errors.MetricsUnavailable) as caught:
            await client.query("sum(vllm:num_requests_running)")
    message = str(caught.value)
    assert url in message
    assert "sum(vllm:num_requests_running)" in message
    assert "tsdb not ready" in message
    assert "3 attempts" in message
    assert len(state.requests) == 3
    assert len(sleeps.delays) == 2


async def test_a_bad_query_is_not_retried(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.answers = [(400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"})]
    async with prometheus.PrometheusClient(url, attempts=5, sleep=Sleeps()) as client:
        with pytest.raises(prometheus.PrometheusQueryError, match="bad_data: parse error") as caught:
            await client.query("sum(")
    assert not caught.value.retryable
    assert len(state.requests) == 1


async def test_a_slow_server_times_out_and_is_retried(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.delay = 1.0
    state.answers = [(200, vector("1"))] * 2
    async with prometheus.PrometheusClient(url, timeout=0.1, attempts=2, sleep=Sleeps()) as client:
        with pytest.raises(errors.MetricsUnavailable, match=r"no answer within 0.1s"):
            await client.query("up")
    assert len(state.requests) == 2


async def test_a_refused_connection_raises_metrics_unavailable() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with prometheus.PrometheusClient(f"http://127.0.0.1:{port}", attempts=2, sleep=Sleeps()) as client:
        with pytest.raises(errors.MetricsUnavailable, match="request failed"):
            await client.query("up")


@pytest.mark.parametrize(
    "answer",
    [
        (200, "<html>proxy login</html>"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}),
        (200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, 2]}]}}),
    ],
    ids=["html instead of json", "a range vector", "a value that is not a string"],
)
async def test_nonsense_answers_raise_instead_of_guessing(
    fake: tuple[FakePrometheus, str], answer: tuple[int, Any]
) -> None:
    state, url = fake
    state.answers = [answer]
    async with prometheus.PrometheusClient(url, attempts=1) as client:
        with pytest.raises(prometheus.PrometheusQueryError):
            await client.query("up")


def test_backoff_is_exponential_capped_and_half_jittered() -> None:
    low = prometheus.PrometheusClient("http://x", backoff=0.25, max_backoff=2.0, jitter=lambda: 0.0)
    high = prometheus.PrometheusClient("http://x", backoff=0.25, max_backoff=2.0, jitter=lambda: 1.0)
    assert [high.backoff_delay(n) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [low.backoff_delay(n) for n in range(5)] == [0.125, 0.25, 0.5, 1.0, 1.0]


async def test_observe_reads_every_signal_and_the_sample_time(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    queries = promql.build("ml", "m")
    answers = {
        queries.tokens_per_second: "1500",
        queries.concurrency: "40",
        queries.waiting: "4",
        queries.kv_cache_usage: "0.5",
        queries.prompt_tokens_per_second: "9000",
        queries.sampled_at: "1700000000.25",
        queries.failing_scrapes: "1",
    }
    state.by_query = lambda q: (200, vector(answers[q]))
    async with prometheus.PrometheusClient(url) as client:
        seen = await observe.observe(client, queries, current_replicas=3, ready_replicas=2)
    assert (seen.tokens_per_second, seen.concurrency, seen.waiting, seen.kv_cache_usage) == (1500.0, 40.0, 4.0, 0.5)
    assert seen.prompt_tokens_per_second == 9000.0
    assert seen.sampled_at == 1700000000.25
    assert (seen.current_replicas, seen.ready_replicas, seen.starting_replicas) == (3, 2, 1)
    assert seen.failing_scrapes == 1


async def test_observe_turns_one_failing_or_empty_signal_into_none(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    queries = promql.build("ml", "m")

    def answer(query: str) -> tuple[int, Any]:
        if query == queries.tokens_per_second:
            return 400, {"status": "error", "errorType": "bad_data", "error": "nope"}
        if query == queries.waiting:
            return 200, vector()
        if query == queries.kv_cache_usage:
            return 200, vector("NaN")
        return 200, vector("7")

    state.by_query = answer
    async with prometheus.PrometheusClient(url, attempts=1) as client:
        seen = await observe.observe(client, queries, current_replicas=2, ready_replicas=2)
    assert seen.tokens_per_second is None
    assert seen.waiting is None
    assert seen.kv_cache_usage is None
    assert seen.concurrency == 7.0


async def test_observe_queries_only_the_requested_signals(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.by_query = lambda q: (200, vector("1"))
    queries = promql.build("ml", "m")
    async with prometheus.PrometheusClient(url) as client:
        seen = await observe.observe(client, queries, current_replicas=1, ready_replicas=1, signals=["concurrency"])
    assert sorted(r["query"] for r in state.requests) == sorted(
        [queries.concurrency, queries.sampled_at, queries.failing_scrapes]
    )
    assert seen.tokens_per_second is None and seen.concurrency == 1.0


async def test_observe_raises_when_every_query_fails(fake: tuple[FakePrometheus, str]) -> None:
    state, url = fake
    state.by_query = lambda q: (503, "down")
    async with prometheus.PrometheusClient(url, attempts=1) as client:
        with pytest.raises(errors.MetricsUnavailable, match="every Prometheus query failed"):
            await observe.observe(client, promql.build("ml", "m"), current_replicas=2, ready_replicas=2)


def test_the_unavailable_observation_has_no_signal_and_no_sample_time() -> None:
    seen = observe.unavailable(current_replicas=4, ready_replicas=3)
    assert (seen.tokens_per_second, seen.concurrency, seen.sampled_at) == (None, None, None)
    assert seen.starting_replicas == 1


async def test_query_results_hands_back_every_answer_by_key_and_a_failed_one_as_none(
    fake: tuple[FakePrometheus, str],
) -> None:
    state, url = fake

    def answer(query: str) -> tuple[int, Any]:
        if query == "bad":
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        return 200, vector("1", "2") if query == "two" else vector()

    state.by_query = answer
    async with prometheus.PrometheusClient(url, attempts=1) as client:
        got = await observe.query_results(client, {"a": "two", "b": "bad", "c": "none"})
    assert set(got) == {"a", "b", "c"}
    assert got["a"] is not None and [s.value for s in got["a"].samples] == [1.0, 2.0]
    assert got["b"] is None
    assert got["c"] is not None and got["c"].samples == ()
