"""A fake vLLM replica's /metrics endpoint on 127.0.0.1, with load the test sets.

It exports the series the autoscaler reads exactly as vLLM's Prometheus logger names and labels them
(vllm-project/vllm `vllm/v1/metrics/loggers.py`; docs `usage/metrics.md`): gauges
`vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc` (0..1) and
counters `vllm:prompt_tokens` / `vllm:generation_tokens` (exposed with the `_total` suffix), all
labelled `model_name` (the served model name) and `engine` (engine index). It uses prometheus-client,
as vLLM does, with a registry per replica so several replicas live in one process.

Exposition: by default the endpoint negotiates the format with the scraper, as vLLM's does
(prometheus-client's app). Prometheus asks for OpenMetrics, and prometheus-client 0.26 then writes
the sample names with `_` for `:` (`vllm_num_requests_running`; prometheus/client_python#1177).
`exposition="text"` always answers the classic text format, which keeps the colons: the two spellings
a real fleet can land in Prometheus with.

The generation-token counter advances at `tokens_per_second` of a clock (time.monotonic by default):
it is brought up to date on every scrape, so Prometheus' rate() over it returns the set rate.

It also exports the latency and size histograms the operator's service level and capacity fit read,
with vLLM 0.32's names and default buckets (the same table the simulator uses,
`neuronfleet.sim.histograms`: `vllm/v1/metrics/loggers.py` and `buckets.py`):
`vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`,
`vllm:request_time_per_output_token_seconds`, `vllm:request_queue_time_seconds`,
`vllm:request_prefill_time_seconds`, `vllm:request_prompt_tokens` and `vllm:iteration_tokens_total`.
`set_service(...)` says what the requests get: they finish at `requests_per_second`, each observed as
vLLM observes a finished request (its TTFT, queue and prefill time, prompt tokens, time per output
token), and the engine steps every `itl_seconds` with the batch Little's law gives
(requests/s x output tokens x step time), each step observed in the ITL and iteration-token histograms.

    replica = FakeVllmReplica(model_name="llama3-8b").start()
    replica.set_load(running=12, waiting=3, kv_cache_usage=0.4, tokens_per_second=900)
    replica.set_service(requests_per_second=5, ttft_seconds=0.3, itl_seconds=0.05)
    ... scrape http://{replica.address}/metrics ...
    replica.stop()
"""

from __future__ import annotations

import dataclasses
import threading
import time
import wsgiref.simple_server
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, make_wsgi_app
from prometheus_client.core import HistogramMetricFamily, Metric

from neuronfleet.sim import histograms as vllm_histograms

__all__ = ["METRICS", "FakeVllmReplica", "Service"]

METRICS = ("running", "waiting", "kv_cache_usage", "generation_tokens", "prompt_tokens", "histograms")
"""Names accepted by `omit=` (to simulate a replica or version that lacks a series)."""


@dataclasses.dataclass(frozen=True)
class Service:
    """What the replica's requests get: finished per second, and the latencies each one saw."""

    requests_per_second: float = 0.0
    ttft_seconds: float = 0.1
    itl_seconds: float = 0.05  # one engine step: every token after the first waits one
    prompt_tokens: int = 1000
    output_tokens: int = 100
    queue_seconds: float = 0.0  # part of the TTFT spent waiting for a slot (the rest is prefill)

    @property
    def batch(self) -> float:
        """Sequences decoding at once (Little's law: tokens/s x step time)."""
        return self.requests_per_second * self.output_tokens * self.itl_seconds


class _HistogramCollector:
    """vLLM's histograms, from cumulative bucket counts kept by the replica."""

    def __init__(self, replica: FakeVllmReplica) -> None:
        self._replica = replica

    def collect(self) -> Iterator[Metric]:
        r = self._replica
        with r._lock:
            r._advance()
            snapshots = {name: h.snapshot() for name, h in r._histograms.items()}
        for name, snap in snapshots.items():
            family = HistogramMetricFamily(f"vllm:{name}", vllm_histograms.HELP[name], labels=("model_name", "engine"))
            bounds = [*(repr(float(b)) for b in snap.bounds), "+Inf"]
            family.add_metric(
                [r.model_name, r.engine], buckets=list(zip(bounds, snap.cumulative, strict=True)), sum_value=snap.sum
            )
            yield family


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeVllmReplica:
    """One replica's metrics endpoint; thread-safe setters, started and stopped explicitly."""

    def __init__(
        self,
        *,
        model_name: str = "llama3-8b",
        engine: str = "0",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        omit: Iterable[str] = (),
        exposition: str = "negotiate",
    ) -> None:
        if exposition not in ("negotiate", "text"):
            raise ValueError(f"exposition must be 'negotiate' or 'text', not {exposition!r}")
        self.exposition = exposition
        unknown = set(omit) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics to omit: {sorted(unknown)}")
        self.model_name = model_name
        self.engine = engine
        self._host = host
        self._port = port
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens_per_second = 0.0
        self._prompt_tokens_per_second = 0.0
        self._last_advance = clock()
        self._generated = 0.0
        self._service = Service()
        self._requests_due = 0.0  # finished requests not observed yet (fractions carry over)
        self._steps_due = 0.0
        self._histograms: dict[str, vllm_histograms.Histogram] = {}
        self._server: wsgiref.simple_server.WSGIServer | None = None
        self._thread: threading.Thread | None = None

        self.registry = CollectorRegistry()
        labels = ("model_name", "engine")
        values = (model_name, engine)
        omitted = set(omit)

        def child(metric: Gauge | Counter, name: str) -> Any:
            # A labelled metric exports no sample until its child exists: omitting = never creating it.
            return None if name in omitted else metric.labels(*values)

        self._running = child(
            Gauge(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                labels,
                registry=self.registry,
            ),
            "running",
        )
        self._waiting = child(
            Gauge(
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                labels,
                registry=self.registry,
            ),
            "waiting",
        )
        self._kv = child(
            Gauge(
                "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels, registry=self.registry
            ),
            "kv_cache_usage",
        )
        self._generation = child(
            Counter("vllm:generation_tokens", "Number of generation tokens processed.", labels, registry=self.registry),
            "generation_tokens",
        )
        self._prompt = child(
            Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", labels, registry=self.registry),
            "prompt_tokens",
        )
        if "histograms" not in omitted:
            self._histograms = {n: vllm_histograms.Histogram(b) for n, b in vllm_histograms.FAMILIES.items()}
            self.registry.register(_HistogramCollector(self))
        self._app = make_wsgi_app(self.registry)

    @property
    def address(self) -> str:
        """host:port being served (after start)."""
        if self._server is None:
            raise RuntimeError("replica exporter not started")
        return f"{self._host}:{self._server.server_port}"

    @property
    def url(self) -> str:
        """The /metrics URL."""
        return f"http://{self.address}/metrics"

    def start(self) -> FakeVllmReplica:
        """Bind and serve in a daemon thread."""
        self._server = wsgiref.simple_server.make_server(
            self._host, self._port, self._serve, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"vllm-exporter-{self.address}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (Prometheus then marks its series stale)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_load(
        self,
        *,
        running: float | None = None,
        waiting: float | None = None,
        kv_cache_usage: float | None = None,
        tokens_per_second: float | None = None,
        prompt_tokens_per_second: float | None = None,
    ) -> None:
        """Change any part of the load; counters keep what they accrued at the previous rate."""
        with self._lock:
            self._advance()
            if running is not None and self._running is not None:
                self._running.set(running)
            if waiting is not None and self._waiting is not None:
                self._waiting.set(waiting)
            if kv_cache_usage is not None and self._kv is not None:
                self._kv.set(kv_cache_usage)
            if tokens_per_second is not None:
                self._tokens_per_second = float(tokens_per_second)
            if prompt_tokens_per_second is not None:
                self._prompt_tokens_per_second = float(prompt_tokens_per_second)

    def set_service(self, **fields: float) -> None:
        """Change what the requests get from now on (any `Service` field); the histograms keep the past."""
        with self._lock:
            self._advance()
            self._service = dataclasses.replace(self._service, **fields)

    def generation_tokens(self) -> float:
        """The counter's value now."""
        with self._lock:
            self._advance()
            return self._generated

    def _advance(self) -> None:
        now = self._clock()
        elapsed, self._last_advance = now - self._last_advance, now
        if elapsed > 0:
            if self._generation is not None and self._tokens_per_second:
                self._generated += self._tokens_per_second * elapsed
                self._generation.inc(self._tokens_per_second * elapsed)
            if self._prompt is not None and self._prompt_tokens_per_second:
                self._prompt.inc(self._prompt_tokens_per_second * elapsed)
            if self._histograms:
                self._observe(elapsed)

    def _observe(self, elapsed: float) -> None:
        """The requests that finished and the engine steps that ran in `elapsed` seconds, as vLLM records them."""
        service, h = self._service, self._histograms
        self._requests_due += service.requests_per_second * elapsed
        done = int(self._requests_due)
        self._requests_due -= done
        if done:
            prefill = max(0.0, service.ttft_seconds - service.queue_seconds)
            h["time_to_first_token_seconds"].observe(service.ttft_seconds, done)
            h["request_queue_time_seconds"].observe(service.queue_seconds, done)
            h["request_prefill_time_seconds"].observe(prefill, done)
            h["request_prompt_tokens"].observe(float(service.prompt_tokens), done)
            h["request_time_per_output_token_seconds"].observe(service.itl_seconds, done)
        batch = service.batch
        if batch <= 0 or service.itl_seconds <= 0:
            return
        self._steps_due += elapsed / service.itl_seconds
        steps = int(self._steps_due)
        self._steps_due -= steps
        if steps:
            h["iteration_tokens_total"].observe(batch, steps)
            h["inter_token_latency_seconds"].observe(service.itl_seconds, round(batch * steps))

    def _serve(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            self._advance()
        if self.exposition == "text" and environ.get("PATH_INFO", "/") in ("/", "/metrics"):
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")])
            return [generate_latest(self.registry)]
        return self._app(environ, start_response)
