"""The service level a fleet actually delivered, measured from vLLM's own latency histograms.

Why: targets derived from a capacity model hold the SLO only as well as the model fits the traffic.
The operator closes the loop on what users got: the share of requests within the SLO over a window,
read from the histograms every vLLM replica exports (vLLM 0.32 names; vllm-project/vllm
`vllm/v1/metrics/loggers.py`). Two pure halves, so the operator and the simulator run the same code:
`queries(...)` (PromQL per fleet, reusing `promql.selector` and its `vllm[:_]` name tolerance) and
`measure(results, slo, ...)` (Prometheus answers -> `Measurement`). The controller only does the I/O
between them.

How attainment is read from histograms. A request meets the SLO when its TTFT is within
`T0 + p / kappa` (p: its prompt tokens) and its time per output token within `1 / R`. Histograms keep
marginal distributions, not the pairs per request, so each half is estimated, then they are combined:

- Per-user rate: `vllm:request_time_per_output_token_seconds` is observed once per finished request
  (decode time / (tokens - 1)), so the share of requests with TPOT <= 1/R is its CDF at 1/R (exact at a
  bucket bound, e.g. 0.1 s for R = 10; linear inside a bucket otherwise, as `histogram_quantile` does).
- TTFT, flat budget (no kappa): the CDF of `vllm:time_to_first_token_seconds` at T0.
- TTFT, prompt-length-dependent budget: TTFT = queue time + prefill time (+ a small front-end part).
  Prefill time grows with the prompt, queueing (waiting for a slot) does not depend on it. So the
  prompt-token and prefill-time distributions (`vllm:request_prompt_tokens`,
  `vllm:request_prefill_time_seconds`) are paired quantile by quantile (the longest prompts took the
  longest prefills), each pair leaves a slack `T0 + p/kappa - prefill - overhead` for queueing, and
  the share of requests within budget is the mean over the pairs of the queue-time CDF
  (`vllm:request_queue_time_seconds`) at that slack. The overhead is what the histogram means leave
  over: mean TTFT - mean queue - mean prefill (>= 0). Where any of the three is missing, the flat T0
  check is used instead: a lower bound, since every budget is >= T0.
- Both halves: a request misses if it misses either, so misses add up at most: attainment >=
  a_ttft + a_tpot - 1, the Frechet lower bound, which is what is reported. Near the goal, where
  decisions are made, it is within the smaller miss rate of the truth.

`bench/service_level.py` measures the estimate against the exact per-request attainment in the simulator.

Samples: a share near the goal g is only known to +-(1 - g) with about g / (1 - g) requests (the
standard error sqrt(g (1 - g) / n) equals the allowed miss rate there): 99 requests in the window for a
99 % goal. With fewer, or without the histograms, the measurement says so and callers fall back to
the capacity model (`Reason.TOO_FEW_SAMPLES`, `Reason.HISTOGRAMS_MISSING`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from neuronfleet.autoscale import promql, slo_targets

if TYPE_CHECKING:  # a type only: the pure core does not import the HTTP client
    from neuronfleet.autoscale.prometheus import QueryResult

__all__ = [
    "DEFAULT_GOAL",
    "HISTOGRAMS",
    "QUANTILE_POINTS",
    "WINDOW_SECONDS",
    "Histogram",
    "Measurement",
    "Reason",
    "condition",
    "histograms",
    "measure",
    "min_samples",
    "queries",
    "status",
]

WINDOW_SECONDS = 300.0
"""Measurement window: 5 minutes, the windowed attainment of reference/autoscaling.md section 3.2."""

DEFAULT_GOAL = 0.99
"""Share of requests that must meet the SLO when the spec does not say (spec.autoscaling.slo.attainment)."""

QUANTILE_POINTS = 50
"""Pairs of (prompt, prefill) quantiles the prompt-dependent TTFT budget is checked at."""

HISTOGRAMS: Mapping[str, str] = {
    "ttft": "time_to_first_token_seconds",
    "itl": "inter_token_latency_seconds",
    "tpot": "request_time_per_output_token_seconds",
    "queue": "request_queue_time_seconds",
    "prefill": "request_prefill_time_seconds",
    "prompt_tokens": "request_prompt_tokens",
}
"""Query key -> vLLM histogram family (without the `vllm:` prefix) the measurement reads."""

_SUMS = ("ttft", "queue", "prefill", "prompt_tokens")  # families whose _sum is read too (means)


class Reason(StrEnum):
    """Where a measurement stands; also the reason of the ServiceLevelMet condition when not measured."""

    # Enough requests in the window: the attainment is measured.
    MEASURED = "Measured"
    # The histograms answered, with fewer requests than the goal needs to be judged.
    TOO_FEW_SAMPLES = "TooFewSamples"
    # No latency histogram series for the fleet (no vLLM replica scraped, or a vLLM without them).
    HISTOGRAMS_MISSING = "HistogramsMissing"


@dataclass(frozen=True)
class Histogram:
    """Increases of one histogram over the window, summed over the fleet: (le, cumulative count) pairs."""

    buckets: tuple[tuple[float, float], ...]  # sorted by le; the last le is +Inf
    sum: float | None = None

    @property
    def count(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def cdf(self, x: float) -> float:
        """Share of observations <= x, linear inside a bucket; the +Inf bucket counts as above every x."""
        total = self.count
        if total <= 0:
            return math.nan
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if math.isinf(le):
                return below / total
            if x <= le:
                inside = cumulative - below
                width = le - lower
                share = 1.0 if width <= 0 else max(0.0, (x - lower) / width)
                return (below + inside * share) / total
            lower, below = le, cumulative
        return below / total

    def quantile(self, q: float) -> float:
        """The q-quantile, as PromQL's histogram_quantile computes it (NaN without observations)."""
        total = self.count
        if total <= 0:
            return math.nan
        rank = q * total
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank and cumulative > below:
                if math.isinf(le):
                    return lower  # in the +Inf bucket: the highest finite bound
                return lower + (le - lower) * (rank - below) / (cumulative - below)
            if not math.isinf(le):
                lower = le
            below = cumulative
        return lower

    @property
    def mean(self) -> float | None:
        if self.sum is None or self.count <= 0:
            return None
        return self.sum / self.count

    def mean_square(self) -> float | None:
        """E[x^2], each bucket's observations spread evenly over it; the +Inf bucket at its lower bound."""
        total = self.count
        if total <= 0:
            return None
        lower, below, acc = 0.0, 0.0, 0.0
        for le, cumulative in self.buckets:
            inside = cumulative - below
            if math.isinf(le):
                acc += inside * lower * lower
            else:
                acc += inside * (lower * lower + lower * le + le * le) / 3.0
                lower = le
            below = cumulative
        return acc / total


@dataclass(frozen=True)
class Measurement:
    """The service level of one window: attainment, latency percentiles, and whether it can be trusted."""

    reason: Reason
    message: str
    window_seconds: float
    samples: int  # requests that got a first token in the window
    attainment: float | None = None  # share within the SLO (lower bound; see the module docstring)
    ttft_attainment: float | None = None
    tpot_attainment: float | None = None
    ttft_p50: float | None = None
    ttft_p99: float | None = None
    itl_p50: float | None = None
    itl_p99: float | None = None
    # The window's prompt lengths (vllm:request_prompt_tokens): mean and mean square, for the queueing
    # bound that sizes the planned utilization (`slo_policy`). None without finished requests.
    prompt_tokens_mean: float | None = None
    prompt_tokens_mean_square: float | None = None

    @property
    def measured(self) -> bool:
        """True when the attainment is measured on enough requests to act on."""
        return self.reason is Reason.MEASURED and self.attainment is not None


def min_samples(goal: float) -> int:
    """Requests a window needs before a share near `goal` can be told from it: g / (1 - g)."""
    if not 0 < goal < 1:
        raise ValueError(f"the attainment goal must be in (0, 1), got {goal}")
    return math.ceil(goal / (1.0 - goal) - 1e-9)


def queries(
    namespace: str, name: str, config: promql.QueryConfig | None = None, *, window_seconds: float = WINDOW_SECONDS
) -> dict[str, str]:
    """PromQL per measurement input, keyed as `measure` expects: `sum by (le)` of bucket increases, and sums."""
    config = config or promql.QueryConfig()
    matchers = promql.selector(namespace, name, config)
    window = f"{round(window_seconds)}s"

    def series(metric: str) -> str:
        return f'{{__name__=~"{config.metric_prefix}{metric}",{matchers}}}'

    out = {key: f"sum by (le) (increase({series(family + '_bucket')}[{window}]))" for key, family in HISTOGRAMS.items()}
    for key in _SUMS:
        out[f"{key}_sum"] = f"sum(increase({series(HISTOGRAMS[key] + '_sum')}[{window}]))"
    return out


def histograms(results: Mapping[str, QueryResult | None]) -> dict[str, Histogram]:
    """Parse the answers to `queries`: one Histogram per family that returned buckets (others left out)."""
    out: dict[str, Histogram] = {}
    for key in HISTOGRAMS:
        result = results.get(key)
        if result is None:
            continue
        pairs: list[tuple[float, float]] = []
        for sample in result.samples:
            le = sample.labels.get("le")
            if le is None or not math.isfinite(sample.value):
                continue
            pairs.append((float(le), sample.value))
        if not pairs or not any(math.isinf(le) for le, _ in pairs):
            continue
        pairs.sort()
        # increase() of each bucket is extrapolated separately, so cumulative counts can dip: keep them monotone.
        running = 0.0
        monotone = []
        for le, value in pairs:
            running = max(running, value)
            monotone.append((le, running))
        total = None
        if key in _SUMS:
            summed = results.get(f"{key}_sum")
            single = summed.single() if summed is not None and len(summed.samples) == 1 else None
            total = single.value if single is not None and math.isfinite(single.value) else None
        out[key] = Histogram(tuple(monotone), total)
    return out


def measure(
    results: Mapping[str, QueryResult | None],
    slo: slo_targets.ServiceLevel,
    *,
    goal: float = DEFAULT_GOAL,
    window_seconds: float = WINDOW_SECONDS,
) -> Measurement:
    """The service level in the window the `results` (answers to `queries`, by key) cover.

    A key whose query failed may be missing or None: the measurement uses what answered and says so.
    """
    found = histograms(results)
    ttft = found.get("ttft")
    tpot = found.get("tpot")
    if ttft is None or tpot is None:
        missing = [HISTOGRAMS[k] for k in ("ttft", "tpot") if k not in found]
        return Measurement(
            Reason.HISTOGRAMS_MISSING,
            f"no vllm:{' or vllm:'.join(missing)} series for this fleet: the capacity model alone sizes it",
            window_seconds,
            0,
        )
    samples = round(ttft.count)
    finished = round(tpot.count)
    prompts = found.get("prompt_tokens")
    percentiles: dict[str, float | None] = {
        "prompt_tokens_mean": prompts.mean if prompts is not None else None,
        "prompt_tokens_mean_square": prompts.mean_square() if prompts is not None else None,
        "ttft_p50": _finite(ttft.quantile(0.5)),
        "ttft_p99": _finite(ttft.quantile(0.99)),
        "itl_p50": _finite(found["itl"].quantile(0.5)) if "itl" in found else None,
        "itl_p99": _finite(found["itl"].quantile(0.99)) if "itl" in found else None,
    }
    needed = min_samples(goal)
    if min(samples, finished) < needed:
        return Measurement(
            Reason.TOO_FEW_SAMPLES,
            f"{samples} first tokens and {finished} finished requests in {window_seconds:.0f}s; a {goal:.2%} goal "
            f"needs {needed} of each to be judged: the capacity model alone sizes the fleet",
            window_seconds,
            samples,
            **percentiles,
        )
    tpot_share = tpot.cdf(1.0 / slo.per_user_tokens_per_second)
    ttft_share, how = _ttft_share(found, ttft, slo.ttft_seconds, slo.ttft_prompt_tokens_per_second)
    attainment = max(0.0, ttft_share + tpot_share - 1.0)
    return Measurement(
        Reason.MEASURED,
        f"{attainment:.2%} of requests within the SLO over {window_seconds:.0f}s ({samples} requests; TTFT "
        f"{ttft_share:.2%} {how}, per-user rate {tpot_share:.2%})",
        window_seconds,
        samples,
        attainment=attainment,
        ttft_attainment=ttft_share,
        tpot_attainment=tpot_share,
        **percentiles,
    )


def _ttft_share(found: Mapping[str, Histogram], ttft: Histogram, base: float, kappa: float | None) -> tuple[float, str]:
    """Share of requests within their TTFT budget, and how it was read."""
    if not kappa:
        return ttft.cdf(base), f"within {base:g}s"
    queue, prefill, prompts = found.get("queue"), found.get("prefill"), found.get("prompt_tokens")
    if queue is None or prefill is None or prompts is None or min(queue.count, prefill.count, prompts.count) <= 0:
        return ttft.cdf(base), f"within {base:g}s (lower bound: no queue/prefill/prompt histograms)"
    overhead = 0.0
    if ttft.mean is not None and queue.mean is not None and prefill.mean is not None:
        overhead = max(0.0, ttft.mean - queue.mean - prefill.mean)
    total = 0.0
    for i in range(QUANTILE_POINTS):
        q = (i + 0.5) / QUANTILE_POINTS
        slack = base + prompts.quantile(q) / kappa - prefill.quantile(q) - overhead
        total += queue.cdf(slack) if slack > 0 else 0.0
    return total / QUANTILE_POINTS, f"within {base:g}s + prompt/{kappa:g} tok/s"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def condition(measurement: Measurement, goal: float) -> tuple[str, str, str]:
    """(status, reason, message) of the ServiceLevelMet condition for this measurement.

    True/AttainmentMet at or above `goal`, False/AttainmentBelowGoal under it, Unknown with the
    measurement's reason (TooFewSamples, HistogramsMissing) when it cannot be judged. The reasons are
    members of `neuronfleet.api.conditions.Reason`.
    """
    if not measurement.measured or measurement.attainment is None:
        return "Unknown", str(measurement.reason), measurement.message
    if measurement.attainment >= goal:
        return "True", "AttainmentMet", f"goal {goal:.2%}: {measurement.message}"
    return "False", "AttainmentBelowGoal", f"goal {goal:.2%}: {measurement.message}"


def status(measurement: Measurement) -> dict[str, object]:
    """`status.serviceLevel` as plain data (camelCase keys; absent values left out)."""
    fields: Sequence[tuple[str, object]] = (
        ("attainment", measurement.attainment),
        ("ttftAttainment", measurement.ttft_attainment),
        ("tpotAttainment", measurement.tpot_attainment),
        ("ttftP50Seconds", measurement.ttft_p50),
        ("ttftP99Seconds", measurement.ttft_p99),
        ("itlP50Seconds", measurement.itl_p50),
        ("itlP99Seconds", measurement.itl_p99),
        ("windowSeconds", measurement.window_seconds),
        ("samples", measurement.samples),
        ("source", "histograms" if measurement.measured else "model"),
        ("reason", str(measurement.reason)),
        ("message", measurement.message),
    )
    return {key: value for key, value in fields if value is not None}
