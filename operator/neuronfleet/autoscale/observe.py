"""Reading one fleet's signals from Prometheus into an `Observation` for `decide`.

The imperative half of the autoscaler: it does the I/O and nothing else. Queries run concurrently;
a signal whose query fails or returns no series becomes None (and `decide` never scales down on
partial data), so one flaky query does not stop scaling on the others. Only when every query fails
is Prometheus itself unavailable: `MetricsUnavailable` is raised, and the caller holds the fleet with
`unavailable(...)` as the observation. `query_results` asks a whole set of keyed queries the same way
(the service level's histograms, the capacity fit's increases) and hands back the raw answers, a failed
query as None, for the pure steps that parse them.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Protocol

from neuronfleet import errors
from neuronfleet.autoscale import prometheus, promql, types

__all__ = ["QueryClient", "observe", "query_results", "unavailable"]


class QueryClient(Protocol):
    """What `observe` needs of a client: `PrometheusClient` or anything answering the same way."""

    async def query(self, promql: str, *, at: float | None = None) -> prometheus.QueryResult: ...


async def observe(
    client: QueryClient,
    queries: promql.Queries,
    *,
    current_replicas: int,
    ready_replicas: int,
    starting_replicas: int | None = None,
    signals: Iterable[str] | None = None,
    at: float | None = None,
    logger: logging.Logger | None = None,
) -> types.Observation:
    """Query the signals (all, or only `signals`) and the sample freshness; raise only if all fail."""
    wanted = {name: query for name, query in queries.by_signal().items() if query}
    if signals is not None:
        keep = set(signals) | {"sampled_at", "failing_scrapes"}
        wanted = {name: query for name, query in wanted.items() if name in keep}
    names = list(wanted)
    outcomes = await asyncio.gather(*(client.query(wanted[n], at=at) for n in names), return_exceptions=True)

    values: dict[str, float | None] = {}
    failures: list[BaseException] = []
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if not isinstance(outcome, BaseException):
            try:
                values[name] = _value(outcome)
                continue
            except ValueError as error:  # several series: an override that does not aggregate
                outcome = error
        failures.append(outcome)
        values[name] = None
        if logger is not None:
            logger.warning("Failed to query signal %s: %s", name, outcome, extra={"signal": name})
    if len(failures) == len(names):
        raise errors.MetricsUnavailable(f"every Prometheus query failed; first: {failures[0]}") from failures[0]

    starting = max(0, current_replicas - ready_replicas) if starting_replicas is None else starting_replicas
    failing = values.get("failing_scrapes")
    return types.Observation(
        failing_scrapes=None if failing is None else int(failing),
        tokens_per_second=values.get("tokens_per_second"),
        concurrency=values.get("concurrency"),
        waiting=values.get("waiting"),
        kv_cache_usage=values.get("kv_cache_usage"),
        prompt_tokens_per_second=values.get("prompt_tokens_per_second"),
        completions_per_second=values.get("completions_per_second"),
        concurrency_growth=values.get("concurrency_growth"),
        rate_window_seconds=queries.rate_window_seconds,
        sampled_at=values.get("sampled_at"),
        current_replicas=current_replicas,
        ready_replicas=ready_replicas,
        starting_replicas=starting,
    )


async def query_results(
    client: QueryClient,
    queries: Mapping[str, str],
    *,
    at: float | None = None,
    logger: logging.Logger | None = None,
) -> dict[str, prometheus.QueryResult | None]:
    """Every query's answer by key, concurrently; a failed query is None (never raises but for cancellation)."""
    keys = list(queries)
    outcomes = await asyncio.gather(*(client.query(queries[k], at=at) for k in keys), return_exceptions=True)
    answers: dict[str, prometheus.QueryResult | None] = {}
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, asyncio.CancelledError):
            raise outcome
        if isinstance(outcome, BaseException):
            answers[key] = None
            if logger is not None:
                logger.warning("Failed to query %s: %s", key, outcome, extra={"signal": key})
        else:
            answers[key] = outcome
    return answers


def unavailable(
    *, current_replicas: int, ready_replicas: int, starting_replicas: int | None = None
) -> types.Observation:
    """The observation to decide on when Prometheus cannot be read at all: every signal missing."""
    starting = max(0, current_replicas - ready_replicas) if starting_replicas is None else starting_replicas
    return types.Observation(
        tokens_per_second=None,
        concurrency=None,
        sampled_at=None,
        current_replicas=current_replicas,
        ready_replicas=ready_replicas,
        starting_replicas=starting,
    )


def _value(result: prometheus.QueryResult) -> float | None:
    """The aggregated value, or None for no series or a non-finite value (NaN from 0/0, for one)."""
    sample = result.single()
    if sample is None or not math.isfinite(sample.value):
        return None
    return sample.value
