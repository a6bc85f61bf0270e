"""What Prometheus would answer to the operator's queries, computed from the simulator's scrapes.

Why: the simulated operator must read the simulated replicas through the operator's own parsing and
arithmetic (`neuronfleet.autoscale.service_level.measure`, `neuronfleet.autoscale.capacity_fit`), which
take Prometheus answers (`autoscale.prometheus.QueryResult`) keyed like the queries they come with.
This module is the simulator's Prometheus for those keys: it evaluates what each PromQL expression
means over the scrapes (`increase` without extrapolation to the window edges, a documented
difference, see `sim.observe`) and returns the answer in Prometheus' shape: a vector of samples with
the `le` label for `sum by (le)`, the `instance` label for `by (instance)`, or one sample for a sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from neuronfleet.autoscale import service_level
from neuronfleet.autoscale.prometheus import QueryResult, Sample
from neuronfleet.sim.observe import ReplicaSample, Scrape, histogram_increase

__all__ = ["capacity_fit_results", "le_label", "service_level_results"]


def le_label(bound: float) -> str:
    """The `le` label value as Prometheus client libraries write it ("+Inf", "0.1", "1.0")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def service_level_results(
    scrapes: Iterable[Scrape], now: float, *, window_seconds: float = service_level.WINDOW_SECONDS
) -> dict[str, QueryResult]:
    """The answers to `service_level.queries(...)` at `now`, by the same keys; an empty vector for no data."""
    scrapes = tuple(scrapes)
    out: dict[str, QueryResult] = {}
    for key, family in service_level.HISTOGRAMS.items():
        increase = histogram_increase(scrapes, now, window_seconds, family)
        if increase is None:
            out[key] = QueryResult("vector", ())
            out[f"{key}_sum"] = QueryResult("vector", ())
            continue
        buckets, total = increase
        out[key] = QueryResult("vector", tuple(Sample({"le": le_label(le)}, value, now) for le, value in buckets))
        out[f"{key}_sum"] = QueryResult("vector", (Sample({}, total, now),))
    return out


def capacity_fit_results(
    scrapes: Iterable[Scrape], now: float, *, window_seconds: float = 60.0
) -> dict[str, QueryResult]:
    """The answers to `capacity_fit.queries(...)` at `now`: per-replica increases labelled `instance`."""
    series: dict[int, list[ReplicaSample]] = {}
    for scrape in scrapes:
        if scrape.at <= now - window_seconds or scrape.at > now:
            continue
        for group in (scrape.replicas, scrape.draining):
            for rid, sample in group.items():
                series.setdefault(rid, []).append(sample)
    keys = (
        "steps",
        "generation_tokens",
        "prompt_tokens",
        "itl_sum",
        "itl_count",
        "prefill_sum",
        "prefill_count",
        "prefill_prompt_tokens",
    )
    rows: dict[str, list[Sample]] = {key: [] for key in keys}
    for rid, samples in series.items():
        first, last = samples[0], samples[-1]
        if len(samples) < 2 or not first.histograms or not last.histograms:
            continue
        labels = {"instance": f"replica-{rid}"}
        steps = last.histograms["iteration_tokens_total"].count - first.histograms["iteration_tokens_total"].count
        itl_a, itl_b = first.histograms["inter_token_latency_seconds"], last.histograms["inter_token_latency_seconds"]
        pre_a, pre_b = first.histograms["request_prefill_time_seconds"], last.histograms["request_prefill_time_seconds"]
        tok_a, tok_b = first.histograms["request_prompt_tokens"], last.histograms["request_prompt_tokens"]
        values = {
            "prefill_sum": pre_b.sum - pre_a.sum,
            "prefill_count": float(pre_b.count - pre_a.count),
            "prefill_prompt_tokens": tok_b.sum - tok_a.sum,
            "steps": float(steps),
            "generation_tokens": last.generation_tokens - first.generation_tokens,
            "prompt_tokens": last.prompt_tokens - first.prompt_tokens,
            "itl_sum": itl_b.sum - itl_a.sum,
            "itl_count": float(itl_b.count - itl_a.count),
        }
        for key in keys:
            rows[key].append(Sample(labels, values[key], now))
    return {key: QueryResult("vector", tuple(rows[key])) for key in keys}
