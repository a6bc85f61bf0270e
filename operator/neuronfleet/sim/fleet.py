"""The discrete-event fleet simulator: arrivals, router, replica lifecycle, scrapes, syncs.

Lifecycle of a replica: requested -> starting (the startup scenario's delay: node, image,
weights, NEFF load or compile) -> ready -> draining (no new requests, in-flight ones finish) ->
gone; it is billed from requested to gone. Scale-down removes starting replicas first (newest
first, like a ReplicaSet deleting unready pods), then the ready replicas with the fewest
outstanding requests. The router sends each arrival to the ready replica with the least
outstanding requests (lowest id on ties); with no ready replica, arrivals wait at the router.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from neuronfleet.sim.engine import Replica, SimRequest
from neuronfleet.sim.observe import FleetView, ReplicaSample, Scrape
from neuronfleet.sim.policy import FleetPolicy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.trace import TraceRequest

__all__ = ["ReplicaRecord", "SimResult", "simulate"]

# Event kinds, in the order they run at equal times: arrivals first (a step ending at that
# instant then plans with them), free capacity next, observe last.
_STEP, _READY, _SCRAPE, _SYNC = 0, 1, 3, 4
_ARRIVAL_ORDER = -1
_KEEP_SCRAPES_SECONDS = 900.0
# A policy that never serves the last requests (e.g. stuck at zero replicas) must not hang the run.
_GIVE_UP_AFTER_SECONDS = 6 * 3600.0


@dataclass
class ReplicaRecord:
    """Billing and lifecycle times of one replica (None: not reached)."""

    id: int
    requested: float
    ready_at: float  # planned readiness (requested + startup)
    ready: float | None = None
    draining: float | None = None
    gone: float | None = None


@dataclass
class SimResult:
    """Everything a report needs: per-request timings, replica lifecycles, decisions."""

    policy: str
    profile: EngineProfile
    startup_seconds: float
    requests: list[SimRequest]
    replicas: list[ReplicaRecord]
    decisions: list[tuple[float, int, int]]  # (time, replicas before, replicas after) on change
    replica_series: list[tuple[float, int, int]]  # (time, billed, ready) after each change
    horizon: float  # billing ends here (last arrival or last finish, whichever is later)
    events: int = 0
    generation_tokens: int = 0  # sum of every replica's vllm:generation_tokens_total at the end
    prompt_tokens: int = 0  # sum of every replica's vllm:prompt_tokens_total at the end


def simulate(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    policy: FleetPolicy,
    *,
    startup_seconds: float,
    initial_replicas: int = 1,
    progress: Callable[[float, float], None] | None = None,
) -> SimResult:
    """Replay `trace` against a fleet scaled by `policy`; replicas present at t=0 start warm."""
    return _Fleet(trace, profile, policy, startup_seconds, initial_replicas, progress).run()


class _Fleet:
    def __init__(
        self,
        trace: Sequence[TraceRequest],
        profile: EngineProfile,
        policy: FleetPolicy,
        startup: float,
        initial: int,
        progress: Callable[[float, float], None] | None,
    ) -> None:
        self.profile = profile
        self.policy = policy
        self.startup = startup
        self.progress = progress
        self.requests = [SimRequest(i, r.arrival, r.prompt_tokens, r.output_tokens) for i, r in enumerate(trace)]
        self.trace_end = self.requests[-1].arrival if self.requests else 0.0
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.engines: dict[int, Replica] = {}
        self.records: list[ReplicaRecord] = []
        self.starting: dict[int, Replica] = {}
        self.ready: dict[int, Replica] = {}
        self.draining: dict[int, Replica] = {}
        self.backlog: deque[SimRequest] = deque()
        self.scrapes: deque[Scrape] = deque()
        self.desired = 0
        self.decisions: list[tuple[float, int, int]] = []
        self.series: list[tuple[float, int, int]] = []
        self.finished = 0
        self.events = 0
        for _ in range(max(0, initial)):
            self._add_replica(0.0, warm=True)
        self.desired = len(self.ready)
        self._record_series(0.0)

    # -- event plumbing -------------------------------------------------------------------
    def _push(self, at: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, kind, self.seq, a, b))

    def _record_series(self, now: float) -> None:
        billed = len(self.starting) + len(self.ready) + len(self.draining)
        self.series.append((now, billed, len(self.ready)))

    # -- lifecycle ------------------------------------------------------------------------
    def _add_replica(self, now: float, *, warm: bool = False) -> None:
        rid = len(self.records)
        engine = Replica(rid, self.profile)
        self.engines[rid] = engine
        ready_at = now if warm else now + self.startup
        self.records.append(ReplicaRecord(rid, now, ready_at))
        if warm:
            self.records[rid].ready = now
            self.ready[rid] = engine
        else:
            self.starting[rid] = engine
            self._push(ready_at, _READY, rid)

    def _on_ready(self, rid: int, now: float) -> None:
        engine = self.starting.pop(rid, None)
        if engine is None:
            return  # removed while starting
        self.records[rid].ready = now
        self.ready[rid] = engine
        self._record_series(now)
        while self.backlog:
            self._route(self.backlog.popleft(), now)

    def _gone(self, rid: int, now: float) -> None:
        self.records[rid].gone = now
        self.draining.pop(rid, None)
        self.starting.pop(rid, None)

    def _scale_to(self, desired: int, now: float) -> None:
        active = len(self.starting) + len(self.ready)
        if desired > active:
            for _ in range(desired - active):
                self._add_replica(now)
        elif desired < active:
            remove = active - desired
            for rid in sorted(self.starting, key=lambda r: -self.records[r].requested)[:remove]:
                self._gone(rid, now)
                remove -= 1
            victims = sorted(self.ready.values(), key=lambda e: (e.outstanding, -e.id))[:remove]
            for engine in victims:
                del self.ready[engine.id]
                self.records[engine.id].draining = now
                self.draining[engine.id] = engine
                if engine.outstanding == 0:
                    self._gone(engine.id, now)
        self._record_series(now)

    # -- requests -------------------------------------------------------------------------
    def _route(self, request: SimRequest, now: float) -> None:
        if not self.ready:
            self.backlog.append(request)
            return
        best = min(self.ready.values(), key=lambda e: (e.outstanding, e.id))
        end = best.enqueue(request, now)
        if end is not None:
            self._push(end, _STEP, best.id, best.version)

    def _on_step(self, rid: int, version: int, now: float) -> None:
        engine = self.engines[rid]
        if engine.version != version or not engine.busy:
            return  # superseded by a cut macro step
        done: list[SimRequest] = []
        end = engine.finish_step(now, done)
        self.finished += len(done)
        if end is not None:
            self._push(end, _STEP, rid, engine.version)
        elif rid in self.draining and engine.outstanding == 0:
            self._gone(rid, now)
            self._record_series(now)

    # -- observation and control ----------------------------------------------------------
    def _scrape(self, now: float) -> None:
        kv = getattr(self.policy, "scrape_kv", True)
        with_histograms = getattr(self.policy, "scrape_histograms", False)

        def sample(e: Replica) -> ReplicaSample:
            return ReplicaSample(
                e.running,
                len(e.waiting),
                e.kv_usage_at(now) if kv else 0.0,
                float(e.generation_tokens_at(now)),
                float(e.prompt_tokens),
                e.histograms_at(now) if with_histograms else {},
            )

        samples = {rid: sample(e) for rid, e in self.ready.items()}
        draining = {rid: sample(e) for rid, e in self.draining.items()} if with_histograms else {}
        self.scrapes.append(Scrape(now, samples, draining))
        while self.scrapes and self.scrapes[0].at < now - _KEEP_SCRAPES_SECONDS:
            self.scrapes.popleft()

    def _sync(self, now: float) -> None:
        view = FleetView(self.scrapes, self.desired, len(self.ready), len(self.starting))
        wanted = max(0, int(self.policy.desired(view, now)))
        if wanted != self.desired:
            self.decisions.append((now, self.desired, wanted))
            self.desired = wanted
        if wanted != len(self.starting) + len(self.ready):
            self._scale_to(wanted, now)

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> SimResult:
        scrape_every = self.policy.scrape_seconds
        sync_every = self.policy.sync_seconds
        self._push(0.0, _SCRAPE)
        # Syncs land between scrapes, as an unsynchronised controller's would on average.
        self._push(min(sync_every, scrape_every) / 2, _SYNC)
        requests = self.requests
        n = len(requests)
        nxt = 0
        heap = self.heap
        now = 0.0
        next_progress = 60.0
        while nxt < n or self.finished < n:
            if nxt < n and (not heap or (requests[nxt].arrival, _ARRIVAL_ORDER) < heap[0][:2]):
                request = requests[nxt]
                nxt += 1
                now = request.arrival
                self.events += 1
                self._route(request, now)
                continue
            if not heap:
                break
            now, kind, _, a, b = heapq.heappop(heap)
            if now > self.trace_end + _GIVE_UP_AFTER_SECONDS:
                raise RuntimeError(f"{self.policy.name}: {n - self.finished} requests never finished")
            self.events += 1
            if kind == _STEP:
                self._on_step(a, b, now)
            elif kind == _READY:
                self._on_ready(a, now)
            elif kind == _SCRAPE:
                self._scrape(now)
                self._push(now + scrape_every, _SCRAPE)
                if self.progress is not None and now >= next_progress:
                    self.progress(now, self.trace_end)
                    next_progress = now + 60.0
            else:
                self._sync(now)
                self._push(now + sync_every, _SYNC)
        horizon = max(now, self.trace_end)
        return SimResult(
            policy=self.policy.name,
            profile=self.profile,
            startup_seconds=self.startup,
            requests=requests,
            replicas=self.records,
            decisions=self.decisions,
            replica_series=self.series,
            horizon=horizon,
            events=self.events,
            generation_tokens=sum(e.generation_tokens for e in self.engines.values()),
            prompt_tokens=sum(e.prompt_tokens for e in self.engines.values()),
        )
