"""A small async client for Prometheus' instant-query HTTP API, with the failure modes made explicit.

The autoscaler asks a handful of instant queries every sync period. What matters is not features but
failures: a timeout on every request, retries with exponential backoff and jitter for what may pass
(connection errors, timeouts, 429, 5xx), no retry for what will not (a 400 bad query), and one error
type, `PrometheusQueryError` (a `neuronfleet.errors.MetricsUnavailable`), naming the URL, the query
and the cause, so the caller can hold the fleet and say why.

Endpoint: `POST /api/v1/query` (form-encoded, so long selectors never hit URL limits), answered with
`{"status": "success", "data": {"resultType": "vector" | "scalar", "result": ...}}`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

from neuronfleet import errors

__all__ = ["PrometheusClient", "PrometheusQueryError", "QueryResult", "Sample"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Sample:
    """One series of an instant-query result; `timestamp` is Prometheus' (unix seconds)."""

    labels: Mapping[str, str]
    value: float  # may be NaN or +-Inf, as Prometheus returned it
    timestamp: float


@dataclass(frozen=True)
class QueryResult:
    """An instant-query result: a vector (zero or more samples) or a scalar (exactly one)."""

    result_type: str
    samples: tuple[Sample, ...] = field(default_factory=tuple)

    def single(self) -> Sample | None:
        """The one sample of an aggregated query, or None when the result is empty."""
        if not self.samples:
            return None
        if len(self.samples) > 1:
            raise ValueError(f"expected at most one series, got {len(self.samples)}: aggregate the query")
        return self.samples[0]


class PrometheusQueryError(errors.MetricsUnavailable):
    """A query that could not be answered: Prometheus unreachable, slow, erroring, or answering nonsense."""

    def __init__(self, message: str, *, url: str, query: str, retryable: bool) -> None:
        super().__init__(f"{message} (url={url}, query={query!r})")
        self.detail = message
        self.url = url
        self.query = query
        self.retryable = retryable


class PrometheusClient:
    """Instant queries against one Prometheus; use as an async context manager, or call `close()`."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._jitter = jitter
        self._session = session
        self._owns_session = session is None
        self._headers = dict(headers or {})

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def backoff_delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (0-based): exponential, capped, half of it jittered."""
        ceiling = min(self.max_backoff, self.backoff * 2**retry)
        return ceiling / 2 + ceiling / 2 * self._jitter()

    async def query(self, promql: str, *, at: float | None = None) -> QueryResult:
        """Evaluate `promql` at `at` (unix seconds; default: Prometheus' now); retries what may pass."""
        endpoint = f"{self.url}/api/v1/query"
        form = {"query": promql, "timeout": f"{self.timeout:g}"}
        if at is not None:
            form["time"] = f"{at:.3f}"
        last: PrometheusQueryError | None = None
        for attempt in range(self.attempts):
            if attempt:
                await self._sleep(self.backoff_delay(attempt - 1))
            try:
                return await self._query_once(endpoint, form, promql)
            except PrometheusQueryError as error:
                if not error.retryable:
                    raise
                last = error
        assert last is not None
        raise PrometheusQueryError(
            f"gave up after {self.attempts} attempts, last: {last.detail}",
            url=self.url,
            query=promql,
            retryable=True,
        ) from last

    async def _query_once(self, endpoint: str, form: Mapping[str, str], promql: str) -> QueryResult:
        session = self._ensure_session()
        try:
            async with session.post(
                endpoint, data=form, headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                status = response.status
                body = await response.text()
        except TimeoutError as error:  # aiohttp's timeouts subclass it
            raise self._error(f"no answer within {self.timeout:g}s", promql, retryable=True) from error
        except aiohttp.ClientError as error:
            raise self._error(f"request failed: {error!r}", promql, retryable=True) from error
        payload = _json(body)
        if status != 200 or payload is None or payload.get("status") != "success":
            detail = _describe_error(status, payload, body)
            raise self._error(detail, promql, retryable=status == 429 or status >= 500)
        try:
            return _parse(payload["data"])
        except (KeyError, TypeError, ValueError) as error:
            raise self._error(f"unexpected answer: {error}", promql, retryable=False) from error

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _error(self, message: str, promql: str, *, retryable: bool) -> PrometheusQueryError:
        return PrometheusQueryError(message, url=self.url, query=promql, retryable=retryable)


def _json(body: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _describe_error(status: int, payload: dict[str, Any] | None, body: str) -> str:
    """Prometheus' own errorType/error when it sent them, else the start of the body."""
    if payload is not None and "error" in payload:
        return f"HTTP {status}, {payload.get('errorType', 'error')}: {payload['error']}"
    return f"HTTP {status}: {body[:200]!r}"


def _parse(data: Mapping[str, Any]) -> QueryResult:
    """`data` of a success answer -> QueryResult; only instant-query shapes are accepted."""
    result_type = data["resultType"]
    result = data["result"]
    if result_type == "scalar":
        timestamp, value = result
        return QueryResult("scalar", (Sample({}, _float(value), float(timestamp)),))
    if result_type == "vector":
        samples = tuple(
            Sample(dict(item["metric"]), _float(item["value"][1]), float(item["value"][0])) for item in result
        )
        return QueryResult("vector", samples)
    raise ValueError(f"result type {result_type!r} is not an instant vector or scalar")


def _float(text: str) -> float:
    """Prometheus sends values as strings, including 'NaN', '+Inf' and '-Inf' (all parse as floats)."""
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)
