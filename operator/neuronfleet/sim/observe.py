"""The observation path: what an autoscaler can know about the fleet, and how late.

Policies never read engine state. They see scrapes, taken every `scrape_seconds` of every
serving replica (Prometheus scraping the vLLM /metrics endpoints), and the replica counts the
API server reports. The query helpers mirror the PromQL the real deployments use, so metric lag
(scrape interval, rate window) is part of every result.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FleetView", "ReplicaSample", "Scrape", "avg_over_time", "last_sum", "sum_rate"]


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """One scrape of one replica's vLLM metrics."""

    running: int  # vllm:num_requests_running
    waiting: int  # vllm:num_requests_waiting
    kv_cache_usage: float  # vllm:kv_cache_usage_perc
    generation_tokens: float  # vllm:generation_tokens_total
    prompt_tokens: float  # vllm:prompt_tokens_total


@dataclass(frozen=True, slots=True)
class Scrape:
    """Samples of every serving replica at one scrape time."""

    at: float
    replicas: dict[int, ReplicaSample]


@dataclass
class FleetView:
    """What a policy sees at a sync: recent scrapes plus the API server's replica counts."""

    scrapes: deque[Scrape]
    current_replicas: int  # desired count last written (the Deployment's spec.replicas)
    ready_replicas: int
    starting_replicas: int


def sum_rate(scrapes: Iterable[Scrape], now: float, window: float, field: str) -> float | None:
    """`sum(rate(counter[window]))`: per-replica slope over the window, summed.

    Like Prometheus, a series needs two samples in the window; unlike it, no extrapolation to
    the window edges (a small, documented difference). None when no series has two samples.
    """
    first: dict[int, tuple[float, float]] = {}
    last: dict[int, tuple[float, float]] = {}
    for scrape in scrapes:
        if scrape.at <= now - window or scrape.at > now:
            continue
        for rid, sample in scrape.replicas.items():
            value = getattr(sample, field)
            first.setdefault(rid, (scrape.at, value))
            last[rid] = (scrape.at, value)
    total = 0.0
    seen = False
    for rid, (t0, v0) in first.items():
        t1, v1 = last[rid]
        if t1 > t0:
            total += (v1 - v0) / (t1 - t0)
            seen = True
    return total if seen else None


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
