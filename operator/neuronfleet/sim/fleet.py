"""The discrete-event fleet simulator: arrivals, router, replica lifecycle, scrapes, syncs.

Lifecycle of a replica: requested -> starting (the startup scenario's delay: node, image,
weights, NEFF load or compile) -> ready -> draining (no new requests, in-flight ones finish) ->
gone; it is billed from requested to gone. Scale-down removes starting replicas first (newest
first, like a ReplicaSet deleting unready pods), then the ready replicas with the fewest
outstanding requests. The router sends each arrival to the ready replica with the least
outstanding requests (lowest id on ties); with no ready replica, arrivals wait at the router.

Capacity (optional, `pools`): replicas then need nodes (`sim.nodes`). A replica that fits no
node waits for one, Unschedulable, and neither serves nor bills until it is bound; its startup
runs from the bind. Scale-down removes waiting replicas first (a ReplicaSet deletes unassigned
pods first, then not-ready ones: kubernetes pkg/controller/controller_utils.go ActivePods), then
starting, then ready ones. An outage reclaims its type's nodes: the replicas on
them stop, their in-flight requests are retried from the start at the router (the gateway's
retry; the request keeps its arrival time, so the retry counts against its SLO), and each
stopped replica's pod is replaced by one waiting for a node (the ReplicaSet keeps its count).

Variants (optional, `shapes`): several replica shapes, primary first; a policy may then return a
count per variant (`FleetPolicy.desired`), and the view carries each variant's placement as the
operator's placement functions read it (`placement.replicas.VariantObservation`).
"""

from __future__ import annotations

import datetime
import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from neuronfleet.placement.replicas import Placement, ReplicaPlacement, VariantObservation
from neuronfleet.sim.engine import Replica, SimRequest
from neuronfleet.sim.nodes import NodeRecord, Nodes
from neuronfleet.sim.observe import EPOCH, FleetView, ReplicaSample, Scrape
from neuronfleet.sim.policy import FleetPolicy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.shapes import Pool, ReplicaShape, check_shapes, single
from neuronfleet.sim.trace import TraceRequest

__all__ = ["ReplicaRecord", "SimResult", "simulate"]

# Event kinds, in the order they run at equal times: arrivals first (a step ending at that
# instant then plans with them), free capacity next, observe last.
_STEP, _READY, _CAPACITY, _SCRAPE, _SYNC = 0, 1, 2, 3, 4
# Capacity events (the `a` of a _CAPACITY event; `b` is a node id or a pool index).
_NODE_READY, _NODE_IDLE, _OUTAGE_START, _OUTAGE_END, _ROUTER_TIMEOUT = 0, 1, 2, 3, 4
_ARRIVAL_ORDER = -1
_KEEP_SCRAPES_SECONDS = 900.0
# A policy that never serves the last requests (e.g. stuck at zero replicas) must not hang the run.
_GIVE_UP_AFTER_SECONDS = 6 * 3600.0


@dataclass
class ReplicaRecord:
    """Billing and lifecycle times of one replica (None: not reached)."""

    id: int
    requested: float
    ready_at: float  # planned readiness (bound + startup; inf while waiting for a node)
    ready: float | None = None
    draining: float | None = None
    gone: float | None = None
    variant: str = "primary"
    cores: int = 0  # NeuronCores billed while bound (0: the result's profile's)
    bound: float | None = None  # got its node(s); billing starts here (None: never placed)
    stopped: bool = False  # its node was reclaimed (an outage)


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
    shapes: tuple[ReplicaShape, ...] = ()  # the variants, primary first
    nodes: list[NodeRecord] = field(default_factory=list)  # every node, with capacity pools only
    retried: int = 0  # requests restarted because their replica's node was reclaimed
    dropped: int = 0  # requests that found no ready replica for `router_timeout_seconds` (never served)


def simulate(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    policy: FleetPolicy,
    *,
    startup_seconds: float,
    initial_replicas: int | Mapping[str, int] = 1,
    progress: Callable[[float, float], None] | None = None,
    shapes: Sequence[ReplicaShape] | None = None,
    pools: Mapping[str, Pool] | None = None,
    router_timeout_seconds: float | None = None,
) -> SimResult:
    """Replay `trace` against a fleet scaled by `policy`; replicas present at t=0 start warm.

    `shapes` (primary first) replace the single shape of `profile` and `startup_seconds`; `pools` (by
    instance type) make capacity finite: replicas then wait for nodes (see the module docstring).
    `initial_replicas` is the primary's warm count, or a count per variant; warm replicas stand on
    nodes that exist at t=0 (within the pools' caps).

    `router_timeout_seconds`: a request that finds no ready replica waits at the router at most this
    long, then fails (it is never served and misses its SLO; its first token and finish are inf). None:
    it waits as long as it takes (a fleet scaling from zero, a buffering activator).
    """
    variants = tuple(shapes) if shapes else (single(profile, startup_seconds),)
    if isinstance(initial_replicas, Mapping):
        initial = {name: max(0, int(n)) for name, n in initial_replicas.items()}
    else:
        initial = {variants[0].name: max(0, int(initial_replicas))}
    return _Fleet(trace, variants, pools, policy, initial, progress, router_timeout_seconds).run()


class _Fleet:
    def __init__(
        self,
        trace: Sequence[TraceRequest],
        shapes: tuple[ReplicaShape, ...],
        pools: Mapping[str, Pool] | None,
        policy: FleetPolicy,
        initial: Mapping[str, int],
        progress: Callable[[float, float], None] | None,
        router_timeout: float | None = None,
    ) -> None:
        check_shapes(shapes)
        unknown = set(initial) - {s.name for s in shapes}
        if unknown:
            raise ValueError(f"initial replicas for unknown variants: {sorted(unknown)}")
        self.shapes = shapes
        self.by_name = {s.name: s for s in shapes}
        self.primary = shapes[0]
        self.profile = self.primary.profile
        self.policy = policy
        self.startup = self.primary.startup_seconds
        self.progress = progress
        self.nodes = Nodes(pools, shapes) if pools is not None else None
        # With several variants or finite capacity the view carries each variant's placement.
        self.placement_view = self.nodes is not None or len(shapes) > 1 or getattr(policy, "wants_placement", False)
        self.requests = [SimRequest(i, r.arrival, r.prompt_tokens, r.output_tokens) for i, r in enumerate(trace)]
        self.trace_end = self.requests[-1].arrival if self.requests else 0.0
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.engines: dict[int, Replica] = {}
        self.records: list[ReplicaRecord] = []
        self.starting: dict[int, Replica] = {}
        self.ready: dict[int, Replica] = {}
        self.draining: dict[int, Replica] = {}
        self.waiting: dict[int, tuple[float, str]] = {}  # waiting for a node: since, scheduler's message
        self.replica_nodes: dict[int, tuple[NodeRecord, ...]] = {}
        self.backlog: deque[SimRequest] = deque()
        self.router_timeout = router_timeout
        self.backlogged: dict[int, float] = {}  # request index -> when it started waiting at the router
        self.dropped = 0
        self.scrapes: deque[Scrape] = deque()
        self.asked: dict[str, int] = {s.name: 0 for s in shapes}  # each variant's Deployment spec.replicas
        self.desired = 0
        self.decisions: list[tuple[float, int, int]] = []
        self.series: list[tuple[float, int, int]] = []
        self.finished = 0
        self.events = 0
        self.retried = 0
        if self.nodes is not None:
            for index, pool in enumerate(self.nodes.pools.values()):
                shape = self.nodes.shapes[pool.instance_type]
                warm = self.nodes.nodes_for(shape, initial.get(shape.name, 0))
                for node in self.nodes.warm(pool.instance_type, warm + pool.initial_nodes, 0.0):
                    self._node_empty(node, 0.0)
                for start, end in pool.outages:
                    self._push(start, _CAPACITY, _OUTAGE_START, index)
                    self._push(end, _CAPACITY, _OUTAGE_END, index)
        for shape in shapes:
            for _ in range(initial.get(shape.name, 0)):
                self._add_replica(0.0, shape, warm=True)
            self.asked[shape.name] = initial.get(shape.name, 0)
        self.desired = sum(self.asked.values())
        self._record_series(0.0)

    # -- event plumbing -------------------------------------------------------------------
    def _push(self, at: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, kind, self.seq, a, b))

    def _record_series(self, now: float) -> None:
        billed = len(self.starting) + len(self.ready) + len(self.draining)
        self.series.append((now, billed, len(self.ready)))

    # -- lifecycle ------------------------------------------------------------------------
    def _add_replica(self, now: float, shape: ReplicaShape, *, warm: bool = False) -> None:
        rid = len(self.records)
        engine = Replica(rid, shape.profile)
        self.engines[rid] = engine
        self.records.append(ReplicaRecord(rid, now, math.inf, variant=shape.name, cores=shape.cores))
        if self.nodes is None:
            self._bind(rid, (), now, warm=warm)
            return
        nodes = self.nodes.find(shape)
        if nodes is None:
            self.waiting[rid] = (now, self.nodes.message(shape))
            self._provision(shape, now)
        else:
            self._bind(rid, nodes, now, warm=warm)

    def _bind(self, rid: int, nodes: Sequence[NodeRecord], now: float, *, warm: bool = False) -> None:
        """The replica got its node(s): billing and its startup begin (a warm one is ready at once)."""
        record = self.records[rid]
        engine = self.engines[rid]
        if nodes:
            Nodes.take(nodes)
            self.replica_nodes[rid] = tuple(nodes)
        record.bound = now
        record.ready_at = now if warm else now + self.by_name[record.variant].startup_seconds
        if warm:
            record.ready = now
            self.ready[rid] = engine
        else:
            self.starting[rid] = engine
            self._push(record.ready_at, _READY, rid)

    def _on_ready(self, rid: int, now: float) -> None:
        engine = self.starting.pop(rid, None)
        if engine is None:
            return  # removed while starting
        self.records[rid].ready = now
        self.ready[rid] = engine
        self._record_series(now)
        while self.backlog:
            request = self.backlog.popleft()
            if request.dropped:
                continue
            self.backlogged.pop(request.index, None)
            self._route(request, now)

    def _gone(self, rid: int, now: float) -> None:
        self.records[rid].gone = now
        self.draining.pop(rid, None)
        self.starting.pop(rid, None)
        self.waiting.pop(rid, None)
        nodes = self.replica_nodes.pop(rid, ())
        if nodes:
            for node in Nodes.free(nodes):
                self._node_empty(node, now)
            self._bind_waiting(nodes[0].instance_type, now)

    def _variant_ids(self, ids: Mapping[int, object], name: str) -> list[int]:
        return [rid for rid in ids if self.records[rid].variant == name]

    def _scale_to(self, desired: Mapping[str, int], now: float) -> None:
        for name, count in desired.items():
            self.asked[name] = count
            self._scale_variant(self.by_name[name], count, now)
        self._record_series(now)

    def _scale_variant(self, shape: ReplicaShape, desired: int, now: float) -> None:
        single_variant = len(self.shapes) == 1
        waiting = self._variant_ids(self.waiting, shape.name)
        starting = list(self.starting) if single_variant else self._variant_ids(self.starting, shape.name)
        ready = list(self.ready) if single_variant else self._variant_ids(self.ready, shape.name)
        active = len(waiting) + len(starting) + len(ready)
        if desired > active:
            for _ in range(desired - active):
                self._add_replica(now, shape)
        elif desired < active:
            remove = active - desired
            for rid in sorted(waiting, key=lambda r: -self.records[r].requested)[:remove]:
                self._gone(rid, now)
                remove -= 1
            for rid in sorted(starting, key=lambda r: -self.records[r].requested)[:remove]:
                self._gone(rid, now)
                remove -= 1
            victims = sorted((self.ready[r] for r in ready), key=lambda e: (e.outstanding, -e.id))[:remove]
            for engine in victims:
                del self.ready[engine.id]
                self.records[engine.id].draining = now
                self.draining[engine.id] = engine
                if engine.outstanding == 0:
                    self._gone(engine.id, now)

    # -- capacity -------------------------------------------------------------------------
    def _provision(self, shape: ReplicaShape, now: float) -> None:
        assert self.nodes is not None
        waiting = len(self._variant_ids(self.waiting, shape.name))
        for node in self.nodes.launch(shape, waiting, now):
            self._push(node.ready_at, _CAPACITY, _NODE_READY, node.id)

    def _bind_waiting(self, instance_type: str, now: float) -> None:
        """Bind waiting replicas of the type, oldest first, while they fit; launch nodes for the rest."""
        if self.nodes is None:
            return
        shape = self.nodes.shapes[instance_type]
        for rid in self._variant_ids(self.waiting, shape.name):
            nodes = self.nodes.find(shape)
            if nodes is None:
                self._provision(shape, now)
                return
            del self.waiting[rid]
            self._bind(rid, nodes, now)

    def _node_empty(self, node: NodeRecord, now: float) -> None:
        assert self.nodes is not None
        delay = self.nodes.pools[node.instance_type].consolidate_after_seconds
        self._push(now + delay, _CAPACITY, _NODE_IDLE, node.id * 1_000_000 + node.idle_version)

    def _on_capacity(self, what: int, which: int, now: float) -> None:
        if what == _ROUTER_TIMEOUT:
            self._time_out(which, now)
            return
        assert self.nodes is not None
        if what == _NODE_READY:
            node = self.nodes.records[which]
            if Nodes.register(node, now):
                self._node_empty(node, now)
                self._bind_waiting(node.instance_type, now)
        elif what == _NODE_IDLE:
            node = self.nodes.records[which // 1_000_000]
            self.nodes.consolidate(node, which % 1_000_000, now)
        else:
            instance_type = list(self.nodes.pools)[which]
            if what == _OUTAGE_START:
                self._reclaim(instance_type, now)
            else:
                self._bind_waiting(instance_type, now)
        self._record_series(now)

    def _time_out(self, index: int, now: float) -> None:
        """A request waited at the router `router_timeout` with no ready replica: it fails, unserved."""
        since = self.backlogged.get(index)
        if since is None or self.router_timeout is None or now < since + self.router_timeout - 1e-9:
            return  # routed since, or waiting again from a later time
        del self.backlogged[index]
        request = self.requests[index]
        request.dropped = True
        request.first_token = request.finish = math.inf
        self.dropped += 1
        self.finished += 1

    def _reclaim(self, instance_type: str, now: float) -> None:
        """The type's nodes go: their replicas stop, requests retry, pods wait for a node again."""
        assert self.nodes is not None
        gone = {n.id for n in self.nodes.reclaim(instance_type, now)}
        shape = self.nodes.shapes[instance_type]
        hit = [rid for rid, nodes in self.replica_nodes.items() if any(n.id in gone for n in nodes)]
        retry: list[SimRequest] = []
        for rid in hit:
            engine = self.engines[rid]
            retry.extend(_stop(engine))
            record = self.records[rid]
            record.stopped = True
            replace = rid not in self.draining
            self.ready.pop(rid, None)
            record.gone = now
            self.starting.pop(rid, None)
            self.draining.pop(rid, None)
            self.replica_nodes.pop(rid, None)
            if replace:
                self._add_replica(now, shape)
        self.retried += len(retry)
        for request in sorted(retry, key=lambda r: r.index):
            self._route(request, now)

    def _placement(self) -> dict[str, VariantObservation]:
        """Each variant as the operator's placement functions see it (pods by where they stand)."""
        out = {}
        for shape in self.shapes:
            unschedulable = tuple(
                ReplicaPlacement(
                    f"{shape.name}-{rid}",
                    shape.name,
                    Placement.UNSCHEDULABLE,
                    since=EPOCH + datetime.timedelta(seconds=since),
                    message=message,
                )
                for rid, (since, message) in self.waiting.items()
                if self.records[rid].variant == shape.name
            )
            out[shape.name] = VariantObservation(
                name=shape.name,
                asked=self.asked[shape.name],
                ready=len(self._variant_ids(self.ready, shape.name)),
                starting=len(self._variant_ids(self.starting, shape.name)),
                unschedulable=unschedulable,
            )
        return out

    # -- requests -------------------------------------------------------------------------
    def _route(self, request: SimRequest, now: float) -> None:
        if not self.ready:
            self.backlog.append(request)
            if self.router_timeout is not None:
                self.backlogged[request.index] = now
                self._push(now + self.router_timeout, _CAPACITY, _ROUTER_TIMEOUT, request.index)
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
                float(e.requests_finished),
            )

        samples = {rid: sample(e) for rid, e in self.ready.items()}
        draining = {rid: sample(e) for rid, e in self.draining.items()} if with_histograms else {}
        self.scrapes.append(Scrape(now, samples, draining))
        while self.scrapes and self.scrapes[0].at < now - _KEEP_SCRAPES_SECONDS:
            self.scrapes.popleft()

    def _sync(self, now: float) -> None:
        view = FleetView(
            self.scrapes,
            self.desired,
            len(self.ready),
            len(self.starting) + len(self.waiting),
            self._placement() if self.placement_view else None,
        )
        answer = self.policy.desired(view, now)
        if isinstance(answer, Mapping):
            per_variant = {name: max(0, int(count)) for name, count in answer.items()}
        else:
            per_variant = {self.primary.name: max(0, int(answer))}
        wanted = sum(per_variant.values())
        if wanted != self.desired:
            self.decisions.append((now, self.desired, wanted))
            self.desired = wanted
        active = len(self.starting) + len(self.ready) + len(self.waiting)
        if per_variant != {k: v for k, v in self.asked.items() if k in per_variant} or wanted != active:
            self._scale_to(per_variant, now)

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
            elif kind == _CAPACITY:
                self._on_capacity(a, b, now)
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
            shapes=self.shapes,
            nodes=list(self.nodes.records) if self.nodes is not None else [],
            retried=self.retried,
            dropped=self.dropped,
        )


def _stop(engine: Replica) -> list[SimRequest]:
    """Stop an engine whose node went; its unfinished requests, reset to be served again from scratch."""
    requests = [*engine.waiting, *engine.prefilling, *(r for _, _, r in engine.decoding)]
    engine.waiting.clear()
    engine.prefilling.clear()
    engine.decoding.clear()
    engine.busy = False
    engine.version += 1  # its pending step end no longer applies
    engine.kv_reserved = 0
    for request in requests:
        request.replica = -1
        request.first_token = math.nan
        request.finish = math.nan
        request.prefill_left = 0
        request.decode_start_step = 0
        request.enqueued = math.nan
        request.admitted = math.nan
    return requests
