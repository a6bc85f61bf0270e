"""A replica that looks like vLLM on Neuron from the outside, timed by the simulator's engine model.

What a client, a kubelet and Prometheus can observe is what vLLM's OpenAI server shows them:

- ``GET /health``: 503 while the replica starts (download, compile, load; compressed in time),
  then 200; 503 again once it is told to stop.
- ``POST /v1/completions``: the OpenAI completions shape (``id``, ``object``, ``choices``,
  ``usage``); ``prompt`` is a string or a list of token ids; ``max_tokens`` tokens are generated
  (the engine model has no end-of-sequence, as with vLLM's ``ignore_eos``), with the timing of
  one continuous-batching engine (``neuronfleet.sim.engine.Replica``: step cost, chunked prefill,
  ``max_num_seqs``, KV capacity), compressed like everything else in the demo. ``"stream": true``
  answers with server-sent events (a chunk at the first token, the rest at the last, ``[DONE]``).
  ``GET /v1/models`` lists the served name.
- ``GET /metrics``: vLLM's own series names, types and labels (``model_name``, ``engine``), as
  recorded from a real vLLM 0.32 server: gauges ``vllm:num_requests_running``,
  ``vllm:num_requests_waiting``, ``vllm:kv_cache_usage_perc``; counters
  ``vllm:generation_tokens_total``, ``vllm:prompt_tokens_total``,
  ``vllm:request_success_total{finished_reason}``; histograms
  ``vllm:e2e_request_latency_seconds`` and every histogram the operator's measured service level
  and capacity fit read, from the engine model as vLLM observes them
  (``neuronfleet.sim.histograms``: ``vllm:time_to_first_token_seconds``,
  ``vllm:inter_token_latency_seconds``, ``vllm:request_time_per_output_token_seconds``,
  ``vllm:request_queue_time_seconds``, ``vllm:request_prefill_time_seconds``,
  ``vllm:request_prompt_tokens``, ``vllm:iteration_tokens_total``), all with vLLM's buckets. The
  exposition format is negotiated the way prometheus-client (which vLLM uses) does
  it, so Prometheus receives the same bytes it would from vLLM. Latencies are in simulated seconds.

Replicas are asyncio servers in the demo's own process (one loopback port each), not OS
processes: a process per replica would cost more than the two cores a laptop or CI runner can
spare. Prompts given as text count one token per whitespace-separated word (no tokenizer).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from neuronfleet.demo.clock import CompressedClock
from neuronfleet.sim import histograms as vllm_histograms
from neuronfleet.sim.engine import Replica, SimRequest
from neuronfleet.sim.profiles import EngineProfile

__all__ = ["E2E_BUCKETS", "TTFT_BUCKETS", "CompletionResult", "SimulatedReplica", "prompt_length"]

# vLLM 0.32's buckets (vllm/v1/metrics/loggers.py and buckets.py), as a real server exports them.
TTFT_BUCKETS = vllm_histograms.TTFT_BUCKETS
E2E_BUCKETS = vllm_histograms.REQUEST_LATENCY_BUCKETS
_LABELS = ("model_name", "engine")
_ids = itertools.count(1)


@dataclass(frozen=True)
class CompletionResult:
    """One finished request, times in simulated seconds."""

    prompt_tokens: int
    completion_tokens: int
    arrival: float
    first_token: float
    finish: float


def prompt_length(prompt: Any) -> int:
    """Tokens in an OpenAI `prompt`: a string (one token per word) or a list of token ids."""
    if isinstance(prompt, str):
        return max(1, len(prompt.split()))
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return max(1, len(prompt))
    raise ValueError("prompt must be a string or a list of token ids (batched prompts are not supported)")


class _EngineCollector:
    """Reads the engine state at scrape time: vLLM's gauges and token counters."""

    def __init__(self, replica: SimulatedReplica) -> None:
        self._replica = replica

    def collect(self) -> Iterator[Metric]:
        r = self._replica
        r.advance()
        engine, now = r.engine, r.clock.now()
        values = [r.served_name, r.engine_index]
        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", engine.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", len(engine.waiting)),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", engine.kv_usage_at(now)),
        )
        for name, doc, value in gauges:
            family = GaugeMetricFamily(name, doc, labels=_LABELS)
            family.add_metric(values, float(value))
            yield family
        counters = (
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.prompt_tokens),
            ("vllm:generation_tokens", "Number of generation tokens processed.", engine.generation_tokens_at(now)),
        )
        for name, doc, value in counters:
            family = CounterMetricFamily(name, doc, labels=_LABELS)
            family.add_metric(values, float(value))
            yield family
        for name, snap in engine.histograms_at(now).items():
            histogram = HistogramMetricFamily(f"vllm:{name}", vllm_histograms.HELP[name], labels=_LABELS)
            bounds = [*(repr(float(b)) for b in snap.bounds), "+Inf"]
            histogram.add_metric(values, list(zip(bounds, snap.cumulative, strict=True)), snap.sum)
            yield histogram


class SimulatedReplica:
    """One replica endpoint on 127.0.0.1; start, then `stop()` (draining in-flight requests)."""

    def __init__(
        self,
        *,
        profile: EngineProfile,
        clock: CompressedClock,
        served_name: str,
        startup_seconds: float,
        max_model_len: int = 8192,
        engine_index: str = "0",
        host: str = "127.0.0.1",
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.served_name = served_name
        self.startup_seconds = startup_seconds
        self.max_model_len = max_model_len
        self.engine_index = engine_index
        self.host = host
        self.port = 0
        self.engine = Replica(id=0, profile=profile)
        self.started = False
        self.stopping = False
        self.ready_event = asyncio.Event()
        self._answering = asyncio.Event()  # cleared by `hang`: /metrics requests wait, unanswered
        self._answering.set()
        self._next_step: float | None = None  # simulated time of the pending step end
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: dict[int, asyncio.Future[SimRequest]] = {}
        self._first_waiters: dict[int, tuple[SimRequest, asyncio.Future[None]]] = {}
        self._runner: web.AppRunner | None = None
        self._startup: asyncio.TimerHandle | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_EngineCollector(self))
        self._success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            (*_LABELS, "finished_reason"),
            registry=self.registry,
        )
        self._e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            _LABELS,
            buckets=E2E_BUCKETS,
            registry=self.registry,
        )
        # vLLM creates every child at startup, so each series exists at 0 before the first request.
        self._success.labels(served_name, engine_index, "length")
        self._e2e.labels(served_name, engine_index)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def outstanding(self) -> int:
        return self.engine.outstanding

    async def start(self) -> SimulatedReplica:
        """Listen now; report healthy after the (compressed) startup time."""
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        loop = asyncio.get_running_loop()
        self._startup = loop.call_later(self.clock.wall_seconds(self.startup_seconds), self._become_ready)
        return self

    @property
    def hung(self) -> bool:
        return not self._answering.is_set()

    def hang(self) -> None:
        """Stop answering /metrics (requests wait until `resume`): a replica too wedged to be scraped.

        Prometheus then marks the target down at its scrape timeout (``up == 0``), which is what the
        operator's partial-data rule watches; serving and health are left alone.
        """
        self._answering.clear()

    def resume(self) -> None:
        """Answer /metrics again, the waiting requests included."""
        self._answering.set()

    def _become_ready(self) -> None:
        if not self.stopping:
            self.started = True
            self.ready_event.set()

    async def stop(self, *, grace: float = 2.0) -> None:
        """Refuse new work, let in-flight requests finish for `grace` wall seconds, then close."""
        self.stopping = True
        if self._startup is not None:
            self._startup.cancel()
        deadline = time.monotonic() + grace
        while self.engine.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for future in [*self._waiters.values(), *(f for _, f in self._first_waiters.values())]:
            if not future.done():
                future.cancel()
        self._waiters.clear()
        self._first_waiters.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- engine driving ---------------------------------------------------------------------

    def advance(self) -> None:
        """Apply every engine step that has ended by now (timers may run late on a busy loop)."""
        now = self.clock.now()
        while self._next_step is not None and self._next_step <= now:
            self._finish_step(self._next_step)
        self._arm()

    def _finish_step(self, at: float) -> None:
        finished: list[SimRequest] = []
        self._next_step = self.engine.finish_step(at, finished)
        for request in finished:
            self._e2e.labels(self.served_name, self.engine_index).observe(request.finish - request.arrival)
            self._success.labels(self.served_name, self.engine_index, "length").inc()
            future = self._waiters.pop(request.index, None)
            if future is not None and not future.done():
                future.set_result(request)
        for index, (request, first) in list(self._first_waiters.items()):
            if not math.isnan(request.first_token):
                del self._first_waiters[index]
                if not first.done():
                    first.set_result(None)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._next_step is not None:
            delay = max(0.0, self.clock.wall_at(self._next_step) - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self.advance)

    async def complete(
        self, prompt_tokens: int, output_tokens: int, *, first_token: asyncio.Future[None] | None = None
    ) -> CompletionResult:
        """Run one request through the engine and wait for its last token; `first_token` resolves at the first."""
        self.advance()
        now = self.clock.now()
        request = SimRequest(next(_ids), now, prompt_tokens, max(1, output_tokens))
        future: asyncio.Future[SimRequest] = asyncio.get_running_loop().create_future()
        self._waiters[request.index] = future
        if first_token is not None:
            self._first_waiters[request.index] = (request, first_token)
        step_end = self.engine.enqueue(request, now)
        if step_end is not None:
            self._next_step = step_end
            self._arm()
        try:
            done = await future
        finally:
            self._waiters.pop(request.index, None)
            self._first_waiters.pop(request.index, None)
        return CompletionResult(done.prompt_tokens, done.output_tokens, done.arrival, done.first_token, done.finish)

    # -- HTTP -------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.started and not self.stopping else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._answering.wait()
        if not self.started:
            return web.Response(status=503, text="starting\n")
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.registry), headers={"Content-Type": content_type})

    async def _models(self, request: web.Request) -> web.Response:
        if not self.started:
            return web.Response(status=503)
        model = {"id": self.served_name, "object": "model", "created": int(time.time()), "owned_by": "vllm"}
        return web.json_response({"object": "list", "data": [{**model, "max_model_len": self.max_model_len}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if not self.started or self.stopping:
            return _error(503, "the server is not ready", "ServiceUnavailableError")
        try:
            body = await request.json()
            prompt = prompt_length(body.get("prompt"))
            max_tokens = int(body.get("max_tokens") or 16)
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, str(exc), "BadRequestError")
        model = body.get("model") or self.served_name
        if model != self.served_name:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if max_tokens < 1 or prompt + max_tokens > self.max_model_len:
            return _error(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                f"{prompt + max_tokens} tokens ({prompt} in the messages, {max_tokens} in the completion).",
                "BadRequestError",
            )
        if body.get("stream"):
            return await self._stream(request, body, prompt, max_tokens)
        try:
            result = await self.complete(prompt, max_tokens)
        except asyncio.CancelledError:
            if self.stopping:
                return _error(503, "the server is shutting down", "ServiceUnavailableError")
            raise
        return web.json_response(
            {
                "id": f"cmpl-{next(_ids):x}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": self.served_name,
                "choices": [
                    {
                        "index": 0,
                        "text": " tok" * result.completion_tokens,
                        "logprobs": None,
                        "finish_reason": "length",
                        "stop_reason": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                },
                # Not in OpenAI's shape: the simulated timings, so the load generator can report them.
                "neuronfleet_timing": {
                    "ttft_seconds": _finite(result.first_token - result.arrival),
                    "e2e_seconds": _finite(result.finish - result.arrival),
                },
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], prompt: int, max_tokens: int
    ) -> web.StreamResponse:
        """Server-sent events as vLLM sends them: a chunk at the first token, the rest at the end, [DONE].

        The engine model advances decodes in macro steps, so tokens between the first and the last
        arrive together in the final chunk; TTFT and end-to-end time are exact.
        """
        ident, created = f"cmpl-{next(_ids):x}", int(time.time())

        def chunk(text: str, finish: str | None, usage: dict[str, int] | None = None) -> bytes:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
            payload: dict[str, Any] = {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": self.served_name,
                "choices": [choice],
            }
            if usage is not None:
                payload["usage"] = usage
            return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()

        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        work = asyncio.ensure_future(self.complete(prompt, max_tokens, first_token=first))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        try:
            await response.prepare(request)
            await asyncio.wait({first, work}, return_when=asyncio.FIRST_COMPLETED)
            await response.write(chunk(" tok", None))
            result = await work
            usage = None
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": result.prompt_tokens,
                    "completion_tokens": result.completion_tokens,
                    "total_tokens": result.prompt_tokens + result.completion_tokens,
                }
            await response.write(chunk(" tok" * (result.completion_tokens - 1), "length", usage))
            await response.write(b"data: [DONE]\n\n")
        finally:
            work.cancel()
            first.cancel()
        return response


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _error(status: int, message: str, kind: str) -> web.Response:
    """vLLM's error body (an OpenAI ErrorResponse)."""
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}, status=status
    )
