"""The observation path: what an autoscaler can know about the fleet, and how late.

Policies never read engine state. They see scrapes, taken every `scrape_seconds` of every
serving replica (Prometheus scraping the vLLM /metrics endpoints), and the replica counts the
API server reports. The query helpers mirror the PromQL the real deployments use, so metric lag
(scrape interval, rate window) is part of every result.
"""

from __future__ import annotations

import datetime
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from neuronfleet.placement.replicas import VariantObservation
from neuronfleet.sim.histograms import Snapshot

__all__ = [
    "EPOCH",
    "FleetView",
    "ReplicaSample",
    "Scrape",
    "avg_over_time",
    "histogram_increase",
    "last_sum",
    "per_replica",
    "sum_rate",
    "sum_slope",
]


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One scrape of one replica's vLLM metrics."""

    running: int  # vllm:num_requests_running
    waiting: int  # vllm:num_requests_waiting
    kv_cache_usage: float  # vllm:kv_cache_usage_perc
    generation_tokens: float  # vllm:generation_tokens_total
    prompt_tokens: float  # vllm:prompt_tokens_total
    # vLLM's histograms by family (neuronfleet.sim.histograms.FAMILIES), when the policy reads them.
    histograms: Mapping[str, Snapshot] = field(default_factory=dict)
    requests_finished: float = 0.0  # vllm:request_prompt_tokens_count: requests finished


@dataclass(frozen=True, slots=True)
class Scrape:
    """Samples of every serving replica at one scrape time.

    `replicas` are the ready ones (what the gauges and counters above are summed over). `draining`
    replicas still finish their requests and Prometheus keeps scraping them until they are gone, so the
    histogram queries read them too; the other signals leave them out, as before.
    """

    at: float
    replicas: dict[int, ReplicaSample]
    draining: dict[int, ReplicaSample] = field(default_factory=dict)


EPOCH = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
"""Wall-clock time of simulated t=0, for the operator's functions that take datetimes (placement)."""


@dataclass
class FleetView:
    """What a policy sees at a sync: recent scrapes plus the API server's replica counts."""

    scrapes: deque[Scrape]
    current_replicas: int  # desired count last written (the Deployment's spec.replicas; all variants)
    ready_replicas: int
    starting_replicas: int  # requested and not ready: starting, or waiting for a node
    # Each variant's Deployment and pods, as placement.replicas.observe reads them (with variants or
    # finite capacity; None otherwise).
    placement: Mapping[str, VariantObservation] | None = None


def sum_rate(scrapes: Iterable[Scrape], now: float, window: float, field: str) -> float | None:
    """`sum(rate(counter[window]))`: per-replica slope over the window, summed.

    Like Prometheus, a series needs two samples in the window; unlike it, no extrapolation to
    the window edges (a small, documented difference). None when no series has two samples.
    """
    return sum_slope(scrapes, now, window, (field,))


def sum_slope(scrapes: Iterable[Scrape], now: float, window: float, fields: tuple[str, ...]) -> float | None:
    """`sum(deriv(gauge[window]))` over `fields` (or `rate` of one counter): each replica's change per second.

    Per series, like `deriv` and `rate`, so a replica that joins or leaves the fleet is not a jump of the
    sum; from the window's first and last samples (Prometheus fits a least-squares line for `deriv`, and
    handles counter resets for `rate`: simulated counters never reset). None when no series has two samples.
    """
    first: dict[int, tuple[float, float]] = {}
    last: dict[int, tuple[float, float]] = {}
    for scrape in scrapes:
        if scrape.at <= now - window or scrape.at > now:
            continue
        for rid, sample in scrape.replicas.items():
            value = float(sum(getattr(sample, f) for f in fields))
            first.setdefault(rid, (scrape.at, value))
            last[rid] = (scrape.at, value)
    slopes = [(last[rid][1] - v0) / (last[rid][0] - t0) for rid, (t0, v0) in first.items() if last[rid][0] > t0]
    return sum(slopes) if slopes else None


def last_sum(scrapes: deque[Scrape], fields: tuple[str, ...]) -> float | None:
    """Fleet sum of gauges at the newest scrape (`sum(a + b)`); None before the first scrape."""
    if not scrapes:
        return None
    newest = scrapes[-1]
    return float(sum(getattr(s, f) for s in newest.replicas.values() for f in fields))


def avg_over_time(
    scrapes: Iterable[Scrape], now: float, window: float, fields: tuple[str, ...]
) -> tuple[float, float] | None:
    """Mean over the window of the fleet sum of gauges, and of the serving replica count."""
    total = 0.0
    pods = 0.0
    count = 0
    for scrape in scrapes:
        if scrape.at <= now - window or scrape.at > now:
            continue
        total += sum(getattr(s, f) for s in scrape.replicas.values() for f in fields)
        pods += len(scrape.replicas)
        count += 1
    if not count:
        return None
    return total / count, pods / count


def _series(scrapes: Iterable[Scrape], now: float, window: float) -> dict[int, list[tuple[float, ReplicaSample]]]:
    """Samples of each replica (ready or draining) inside (now - window, now], oldest first."""
    out: dict[int, list[tuple[float, ReplicaSample]]] = {}
    for scrape in scrapes:
        if scrape.at <= now - window or scrape.at > now:
            continue
        for group in (scrape.replicas, scrape.draining):
            for rid, sample in group.items():
                out.setdefault(rid, []).append((scrape.at, sample))
    return out


def histogram_increase(
    scrapes: Iterable[Scrape], now: float, window: float, family: str
) -> tuple[tuple[tuple[float, float], ...], float] | None:
    """`sum by (le) (increase(family_bucket[window]))` and `sum(increase(family_sum[window]))`.

    Per replica: last minus first sample in the window (a series needs two, as in Prometheus; no
    extrapolation to the window edges), summed over replicas. Returns ((le, cumulative), ...) with
    +Inf last, and the sum's increase; None when no replica has two samples of the family.
    """
    buckets: list[float] | None = None
    bounds: tuple[float, ...] = ()
    total = 0.0
    for samples in _series(scrapes, now, window).values():
        first = samples[0][1].histograms.get(family)
        last = samples[-1][1].histograms.get(family)
        if first is None or last is None or len(samples) < 2:
            continue
        if buckets is None:
            bounds = last.bounds
            buckets = [0.0] * len(last.cumulative)
        for i, (a, b) in enumerate(zip(first.cumulative, last.cumulative, strict=True)):
            buckets[i] += b - a
        total += last.sum - first.sum
    if buckets is None:
        return None
    return tuple(zip((*bounds, math.inf), buckets, strict=True)), total


def per_replica(
    scrapes: Iterable[Scrape], now: float, window: float
) -> dict[int, tuple[tuple[float, ReplicaSample], ...]]:
    """Each ready replica's samples inside the window (for per-instance queries: `... by (instance)`)."""
    out: dict[int, list[tuple[float, ReplicaSample]]] = {}
    for scrape in scrapes:
        if scrape.at <= now - window or scrape.at > now:
            continue
        for rid, sample in scrape.replicas.items():
            out.setdefault(rid, []).append((scrape.at, sample))
    return {rid: tuple(samples) for rid, samples in out.items()}
