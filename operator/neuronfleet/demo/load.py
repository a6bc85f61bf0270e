"""Trace replay: the requests of a real trace, sent to the fleet's Service at their compressed times.

Each trace request becomes one OpenAI `/v1/completions` call with a prompt of exactly its prompt
tokens (token ids) and `max_tokens` equal to its output tokens (`ignore_eos`, as benchmark
clients do, so the output length is the trace's). Arrivals keep the trace's spacing, divided by
the compression factor; a request is sent at its time whether or not earlier ones finished (an
open loop, like real users), so a slow fleet shows as queueing, not as fewer requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from neuronfleet.demo.clock import CompressedClock
from neuronfleet.sim.trace import TraceRequest

__all__ = ["LoadStats", "RequestOutcome", "TraceReplay", "trace_window"]


@dataclass(frozen=True)
class RequestOutcome:
    """One sent request; times in simulated seconds, `status` 0 when no HTTP answer came."""

    arrival: float  # trace time of the request
    status: int
    prompt_tokens: int
    output_tokens: int
    ttft: float | None = None  # as the replica's engine timed it
    e2e: float | None = None


@dataclass
class LoadStats:
    """Running totals the live view reads."""

    sent: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    generated_tokens: int = 0
    outcomes: list[RequestOutcome] = field(default_factory=list)


def trace_window(
    trace: Sequence[TraceRequest], *, start: float = 0.0, seconds: float | None = None
) -> tuple[TraceRequest, ...]:
    """The requests in [start, start + seconds) of the trace, re-based to start at 0."""
    end = float("inf") if seconds is None else start + seconds
    return tuple(
        TraceRequest(r.arrival - start, r.prompt_tokens, r.output_tokens) for r in trace if start <= r.arrival < end
    )


class TraceReplay:
    """Sends a trace to `url` on the compressed clock; `run()` returns when every request is answered."""

    def __init__(
        self,
        trace: Sequence[TraceRequest],
        *,
        clock: CompressedClock,
        url: str,
        model: str,
        max_model_len: int | None = None,
    ) -> None:
        self.trace = tuple(trace)
        self.clock = clock
        self.url = url.rstrip("/") + "/v1/completions"
        self.model = model
        self.max_model_len = max_model_len
        self.stats = LoadStats()
        self.started_at: float | None = None  # simulated time of trace second 0
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def trace_seconds(self) -> float:
        return self.trace[-1].arrival if self.trace else 0.0

    def trace_now(self) -> float | None:
        """Where in the trace the replay is (trace seconds), None before it starts."""
        return None if self.started_at is None else self.clock.now() - self.started_at

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            self.started_at = self.clock.now()
            try:
                for request in self.trace:
                    delay = self.clock.wall_at(self.started_at + request.arrival) - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    task = asyncio.get_running_loop().create_task(self._send(session, request))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                if self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
            finally:
                for task in list(self._tasks):
                    task.cancel()
                if self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(self, session: aiohttp.ClientSession, request: TraceRequest) -> None:
        prompt = request.prompt_tokens
        body = {
            "model": self.model,
            "prompt": [1] * prompt,
            "max_tokens": request.output_tokens,
            "ignore_eos": True,
        }
        stats = self.stats
        stats.sent += 1
        stats.in_flight += 1
        status, ttft, e2e = 0, None, None
        try:
            async with session.post(
                self.url, data=json.dumps(body, separators=(",", ":")), headers={"Content-Type": "application/json"}
            ) as response:
                status = response.status
                payload = await response.json(content_type=None) if status == 200 else None
            if payload is not None:
                timing = payload.get("neuronfleet_timing") or {}
                ttft, e2e = timing.get("ttft_seconds"), timing.get("e2e_seconds")
                stats.generated_tokens += int(payload.get("usage", {}).get("completion_tokens", 0))
        except (aiohttp.ClientError, ValueError):
            status = 0
        finally:  # a cancelled request (the demo ending) counts as failed
            stats.in_flight -= 1
            if status == 200:
                stats.completed += 1
            else:
                stats.failed += 1
            stats.outcomes.append(RequestOutcome(request.arrival, status, prompt, request.output_tokens, ttft, e2e))
