"""One vLLM replica with continuous batching, advanced event by event instead of step by step.

Stepping every engine iteration costs about a million Python iterations per fleet-hour. Here a
replica plans one step at a time while prefill work is pending (those steps all differ), but
once only decodes remain the batch cannot change before the next request finishes, so all the
identical steps up to that finish become one "macro step". An arrival in the middle cuts the macro
step at the next step boundary, exactly where vLLM's scheduler would admit it. Token counters
are interpolated inside a macro step, so a scrape sees what a real /metrics endpoint would. Each
replica also keeps vLLM's latency and size histograms (`neuronfleet.sim.histograms`), observed when
vLLM observes them.

Scheduling follows vLLM V1 with chunked prefill: running decodes take one token each from the
step's token budget, the rest goes to prompts in arrival order; admission needs a free sequence
slot and KV room. Simplification: admission reserves the request's final KV footprint
(prompt + output), so no preemption happens; vLLM admits on the prompt alone and preempts later.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, field

from neuronfleet.sim import histograms as vllm_histograms
from neuronfleet.sim.profiles import EngineProfile

__all__ = ["Replica", "SimRequest"]

NAN = math.nan


@dataclass(slots=True, eq=False)
class SimRequest:
    """A request in flight and, once done, its timings."""

    index: int
    arrival: float
    prompt_tokens: int
    output_tokens: int
    replica: int = -1
    first_token: float = NAN
    finish: float = NAN
    prefill_left: int = 0
    decode_start_step: int = 0  # replica step count when its first token came out
    enqueued: float = NAN  # arrival at the replica (vLLM's arrival time)
    admitted: float = NAN  # first prefill chunk scheduled (vLLM's scheduled time: the end of its queue time)
    dropped: bool = False  # failed at the router: no replica was ready in time (never served)


@dataclass(eq=False)
class Replica:
    """Engine state of one replica; the fleet owns its lifecycle (requested .. gone)."""

    id: int
    profile: EngineProfile
    waiting: deque[SimRequest] = field(default_factory=deque)
    prefilling: list[SimRequest] = field(default_factory=list)
    decoding: list[tuple[int, int, SimRequest]] = field(default_factory=list)  # heap by finish step
    steps: int = 0  # engine steps completed
    kv_reserved: int = 0
    generation_tokens: int = 0  # vllm:generation_tokens_total at the last step boundary
    prompt_tokens: int = 0  # vllm:prompt_tokens_total at the last step boundary
    # The step (or macro step of `step_count` identical decode steps) in progress.
    busy: bool = False
    step_start: float = 0.0
    step_seconds: float = 0.0
    step_count: int = 0
    step_chunks: list[tuple[SimRequest, int]] = field(default_factory=list)
    version: int = 0  # bumped when the pending step-end event is replaced
    # vLLM's histograms by family name (without `vllm:`), cumulative since the replica started.
    histograms: dict[str, vllm_histograms.Histogram] = field(
        default_factory=lambda: {n: vllm_histograms.Histogram(b) for n, b in vllm_histograms.FAMILIES.items()}
    )

    @property
    def outstanding(self) -> int:
        """Requests routed here and not finished: what the least-outstanding router compares."""
        return len(self.waiting) + len(self.prefilling) + len(self.decoding)

    @property
    def running(self) -> int:
        """vllm:num_requests_running: scheduled requests (prefilling or decoding)."""
        return len(self.prefilling) + len(self.decoding)

    @property
    def requests_finished(self) -> int:
        """vllm:request_prompt_tokens_count, the series completions/s reads: one observation per finished request."""
        return sum(self.histograms["request_prompt_tokens"].counts)

    def _steps_done_at(self, now: float) -> int:
        if not self.busy or self.step_count <= 1 or self.step_seconds <= 0:
            return 0
        return min(self.step_count, int((now - self.step_start) / self.step_seconds))

    def generation_tokens_at(self, now: float) -> int:
        """The generation-token counter at `now`, inside a macro step too."""
        if self.step_chunks:
            return self.generation_tokens
        return self.generation_tokens + len(self.decoding) * self._steps_done_at(now)

    def histograms_at(self, now: float) -> dict[str, vllm_histograms.Snapshot]:
        """Every histogram as a scrape at `now` reads it, inside a macro step too."""
        steps = 0 if self.step_chunks else self._steps_done_at(now)
        batch = len(self.decoding)
        out = {}
        for name, histogram in self.histograms.items():
            if name == "inter_token_latency_seconds":
                out[name] = histogram.snapshot(self.step_seconds, batch * steps)
            elif name == "iteration_tokens_total":
                out[name] = histogram.snapshot(float(batch), steps)
            else:
                out[name] = histogram.snapshot()
        return out

    def kv_usage_at(self, now: float) -> float:
        """vllm:kv_cache_usage_perc: tokens held now (not reserved) over capacity."""
        steps = self.steps + self._steps_done_at(now)
        used = sum(r.prompt_tokens - r.prefill_left for r in self.prefilling)
        used += sum(r.prompt_tokens + steps - r.decode_start_step + 1 for _, _, r in self.decoding)
        return min(1.0, used / self.profile.kv_cache_tokens)

    def enqueue(self, request: SimRequest, now: float) -> float | None:
        """Accept a routed request; return a new step-end time when the pending one changed."""
        request.replica = self.id
        request.prefill_left = request.prompt_tokens
        request.enqueued = now
        self.waiting.append(request)
        if not self.busy:
            # An empty step ending now: requests arriving at this same instant join the first plan.
            self.busy = True
            self.step_start = now
            self.step_seconds = 0.0
            self.step_count = 0
            self.step_chunks = []
            self.version += 1
            return now
        if self.step_chunks or self.step_count <= 1:
            return None  # a prefill or single step is running: admitted at its end
        done = int((now - self.step_start) / self.step_seconds) + 1
        if done >= self.step_count:
            return None
        self.step_count = done
        self.version += 1
        return self.step_start + done * self.step_seconds

    def finish_step(self, now: float, finished: list[SimRequest]) -> float | None:
        """Apply the step that ends at `now`; append finished requests; plan the next step."""
        self.steps += self.step_count
        batch = len(self.decoding)
        self.generation_tokens += batch * self.step_count
        h = self.histograms
        h["inter_token_latency_seconds"].observe(self.step_seconds, batch * self.step_count)
        first_tokens = 0
        chunk_tokens = 0
        for request, tokens in self.step_chunks:
            request.prefill_left -= tokens
            self.prompt_tokens += tokens
            chunk_tokens += tokens
            if request.prefill_left == 0:
                self.prefilling.remove(request)
                request.first_token = now
                self.generation_tokens += 1
                first_tokens += 1
                h["time_to_first_token_seconds"].observe(now - request.enqueued)
                if request.output_tokens <= 1:
                    request.finish = now
                    self.kv_reserved -= request.prompt_tokens + request.output_tokens
                    self._observe_finished(request)
                    finished.append(request)
                else:
                    request.decode_start_step = self.steps
                    end = self.steps + request.output_tokens - 1
                    heapq.heappush(self.decoding, (end, request.index, request))
        if self.step_chunks:
            h["iteration_tokens_total"].observe(float(batch + chunk_tokens + first_tokens))
        else:
            h["iteration_tokens_total"].observe(float(batch), self.step_count)
        heap = self.decoding
        while heap and heap[0][0] <= self.steps:
            _, _, request = heapq.heappop(heap)
            request.finish = now
            self.kv_reserved -= request.prompt_tokens + request.output_tokens
            self._observe_finished(request)
            finished.append(request)
        self.busy = False
        return self._plan(now)

    def _observe_finished(self, request: SimRequest) -> None:
        """The per-request histograms vLLM fills when a request finishes."""
        h = self.histograms
        h["request_queue_time_seconds"].observe(request.admitted - request.enqueued)
        h["request_prefill_time_seconds"].observe(request.first_token - request.admitted)
        h["request_prompt_tokens"].observe(float(request.prompt_tokens))
        decode = request.finish - request.first_token
        tpot = decode / (request.output_tokens - 1) if request.output_tokens > 1 else 0.0
        h["request_time_per_output_token_seconds"].observe(tpot)

    def _plan(self, now: float) -> float | None:
        p = self.profile
        while self.waiting and self.running < p.max_num_seqs:
            need = self.waiting[0].prompt_tokens + self.waiting[0].output_tokens
            if self.kv_reserved + need > p.kv_cache_tokens and self.running > 0:
                break  # a request larger than the whole cache still runs alone
            request = self.waiting.popleft()
            self.kv_reserved += need
            self.prefilling.append(request)
        batch = len(self.decoding)
        budget = p.max_num_batched_tokens - batch
        chunks: list[tuple[SimRequest, int]] = []
        prefill = 0
        for request in self.prefilling:
            if budget <= 0:
                break
            take = min(request.prefill_left, budget)
            if request.prefill_left == request.prompt_tokens:
                request.admitted = now  # first chunk scheduled: vLLM's queue time ends here
            chunks.append((request, take))
            budget -= take
            prefill += take
        self.step_chunks = chunks
        if prefill:
            self.step_count = 1
        elif batch:
            self.step_count = self.decoding[0][0] - self.steps
        else:
            self.busy = False
            return None
        self.busy = True
        self.step_start = now
        self.step_seconds = p.step_seconds(batch, prefill)
        self.version += 1
        return now + self.step_count * self.step_seconds
