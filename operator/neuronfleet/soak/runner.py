"""The soak's imperative shell: the demo's stack, two peered operators, a seeded storm, and the invariants.

Stack (as `neuronfleet demo` builds it): the API emulator in this process, with its garbage collector,
Job controller, scheduler and nodes; a real Prometheus (Debian binary); simulated replicas for every
Deployment; trace load on one fleet. The operator is `neuronfleet run`, twice, as real subprocesses
sharing one ClusterKopfPeering, each with its own kubeconfig token, so the API server's request log
says which one wrote. Each start gets a higher peering priority than any before it: a restarted
operator takes over at once, and a standby takes over from a killed one when the dead one's peering
entry expires (`--peering-lifetime`: kopf's 60 s in a long soak, 20 s in a short one).

Every second the runner copies what the API server holds into the plain timelines of
`soak.invariants`; every few seconds it runs the checkers on the timeline so far and logs new
violations. Faults follow `soak.schedule.plan`. At the end the faults stop, the fleets get up to the
convergence bound to settle, the checkers run once more, and the report is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import faulthandler
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from neuronfleet.api import constants, convert, crd, resource
from neuronfleet.autoscale import types as autoscale_types
from neuronfleet.demo import capacity
from neuronfleet.demo.app import DEFAULT_TRACE, OperatorProcess, adapt_manifest, find_manifest, service_level_window
from neuronfleet.demo.clock import CompressedClock
from neuronfleet.demo.load import TraceReplay, trace_window
from neuronfleet.demo.nodepool import NodePool
from neuronfleet.demo.prometheus import PrometheusServer, find_binary, start_prometheus
from neuronfleet.demo.router import Router
from neuronfleet.kube_emulator import Emulator, GarbageCollector, JobController, write_kubeconfig
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store, WatchEvent
from neuronfleet.neuron import planner
from neuronfleet.sim.trace import read_trace
from neuronfleet.soak import invariants as inv
from neuronfleet.soak import report as soak_report
from neuronfleet.soak import schedule

__all__ = ["SoakConfig", "SoakError", "run_soak"]

NAMESPACE = "soak"
PEERING = "neuronfleet"
OPERATORS = ("operator-a", "operator-b")
DECISION_REASONS = frozenset(r.value for r in autoscale_types.Reason)
_PEERING_RESOURCES = frozenset({"clusterkopfpeerings", "kopfpeerings"})
_NOT_CHILDREN = frozenset({("", "pods"), ("", "events"), ("batch", "jobs"), ("apps", "replicasets")})


class SoakError(RuntimeError):
    """The soak cannot start; the message says why."""


@dataclasses.dataclass(frozen=True)
class SoakConfig:
    """Options of `bench/soak.py`; times in wall seconds."""

    duration: float = 120.0  # warm-up + faults; the settle phase after it lasts up to `settle`
    seed: int = 1
    settle: float = 60.0  # T: every fleet converges within this long after the last fault touching it
    warmup: float = 25.0  # no faults before this: the fleets start
    mean_gap: float | None = None  # mean seconds between fault starts (default: from the duration)
    compression: float = 10.0  # the demo's compressed clock (replica startup, trace)
    sample_interval: float = 1.0
    check_interval: float | None = None  # seconds between checks of the timeline so far (default 10, long 30)
    rss_bound_mib_per_hour: float = 64.0
    rss_warmup: float = 120.0  # seconds of a process's life before its RSS trend counts
    rss_min_span: float = 600.0  # a process must be watched this long after warm-up to be judged
    out: Path | None = None  # report.json, report.md and soak.png go here
    workdir: Path | None = None  # None: a temporary directory, removed at the end
    manifest: Path | None = None  # the loaded fleet's ModelDeployment (default: the demo's)
    # Share of the demo trace's requests replayed: the whole trace is ~70 streamed requests per wall
    # second through one event loop that also serves the API, too much for a shared two-core machine.
    load_fraction: float = 0.25

    @property
    def long(self) -> bool:
        return self.duration >= 600

    @property
    def checks_every(self) -> float:
        if self.check_interval is not None:
            return self.check_interval
        return 30.0 if self.long else 10.0

    @property
    def peering_lifetime(self) -> int:
        """kopf's default in a long soak; 20 s in a short one, so a standby takes over within it."""
        return 60 if self.long else 20

    @property
    def gap(self) -> float:
        if self.mean_gap is not None:
            return self.mean_gap
        return 20.0 if self.long else 3.5


# -- the fleets ------------------------------------------------------------------------------------


def fleet_manifests(demo_doc: Mapping[str, Any], *, compression: float, prometheus_url: str) -> dict[str, dict]:
    """Pure: the three ModelDeployments of the soak, by role.

    `loaded` is the demo's autoscaled fleet under the trace; `spare` is autoscaled on a tokens/s
    target with no load (it sits at its minimum, so every replica change there is suspect) and takes
    the spec changes; `compiled` has a fixed replica count and precompiled artifacts (a compile Job).
    """
    base = adapt_manifest(demo_doc, compression=compression, prometheus_url=prometheus_url)
    base["metadata"] = {"name": "chat", "namespace": NAMESPACE}
    spare = copy.deepcopy(base)
    spare["metadata"] = {"name": "batch", "namespace": NAMESPACE}
    spare["spec"]["model"]["servedName"] = "batch"
    auto = spare["spec"]["autoscaling"]
    auto.pop("slo", None)
    auto.setdefault("prometheus", {}).pop("queries", None)
    auto.update(minReplicas=1, maxReplicas=3, metrics={"tokensPerSecondPerReplica": 500 * compression})
    compiled = copy.deepcopy(base)
    compiled["metadata"] = {"name": "compiled", "namespace": NAMESPACE}
    compiled["spec"]["model"]["servedName"] = "compiled"
    compiled["spec"]["autoscaling"] = {"enabled": False}
    compiled["spec"]["replicas"] = 1
    compiled["spec"]["neuron"]["compiledArtifacts"] = {"policy": "precompile", "pvc": "neuron-compile-cache"}
    return {"loaded": base, "spare": spare, "compiled": compiled}


def _key(doc: Mapping[str, Any]) -> str:
    return f"{doc['metadata']['namespace']}/{doc['metadata']['name']}"


# -- sampling the API server (pure over the store's objects) ---------------------------------------


def _condition(obj: Mapping[str, Any], kind: str) -> bool | None:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return cond.get("status") == "True"
    return None


def _rolled_out(deployment: Mapping[str, Any]) -> bool:
    spec = int((deployment.get("spec") or {}).get("replicas", 1))
    status = deployment.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(deployment["metadata"].get("generation") or 1):
        return False
    return all(int(status.get(f) or 0) == spec for f in ("replicas", "updatedReplicas", "readyReplicas"))


def _owner(obj: Mapping[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("kind") == constants.KIND:
            return str(ref.get("uid"))
    return None


def snapshot(t: float, mds: list[dict[str, Any]], children: list[tuple[str, dict[str, Any]]]) -> inv.Snapshot:
    """Pure: a Snapshot from ModelDeployments and (kind, object) of everything a ModelDeployment owns."""
    by_owner: dict[str, list[inv.Child]] = {}
    for kind, obj in children:
        owner = _owner(obj)
        if owner is None:
            continue
        replicas = (obj.get("spec") or {}).get("replicas") if kind == "Deployment" else None
        child = inv.Child(
            kind,
            obj["metadata"]["name"],
            obj["metadata"]["uid"],
            owner,
            None if replicas is None else int(replicas),
            _rolled_out(obj) if kind == "Deployment" else True,
        )
        by_owner.setdefault(owner, []).append(child)
    fleets = []
    for md in mds:
        meta = md["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        auto = (md.get("spec") or {}).get("autoscaling") or {}
        enabled = bool(auto.get("enabled"))
        fleets.append(
            inv.Fleet(
                key=f"{meta.get('namespace', '')}/{meta['name']}",
                uid=meta["uid"],
                generation=int(meta.get("generation") or 1),
                observed_generation=(md.get("status") or {}).get("observedGeneration"),
                ready=_condition(md, "Ready"),
                min_replicas=int(auto.get("minReplicas", 1)) if enabled else None,
                max_replicas=int(auto["maxReplicas"]) if enabled and "maxReplicas" in auto else None,
                children=tuple(by_owner.pop(meta["uid"], ())),
            )
        )
    orphans = tuple(c for owned in by_owner.values() for c in owned)
    return inv.Snapshot(t, tuple(fleets), orphans)


# -- a Job controller whose Jobs can be made to fail -----------------------------------------------


class _CompileJobs:
    """Marks the Jobs created while `failing` as doomed: the emulator's Job controller fails them."""

    def __init__(self, store: Store, jobs: JobController) -> None:
        self.store = store
        self.jobs = jobs
        self.failing = False
        self.failed: list[str] = []
        self._info = store.resource("batch", "v1", "jobs")
        store.add_listener(self._on_event)

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        if info.storage_key == self._info.storage_key and event.type == "ADDED" and self.failing:
            name = event.obj["metadata"]["name"]
            self.jobs.fail = frozenset(self.jobs.fail | {name})
            self.failed.append(name)


# -- the run ---------------------------------------------------------------------------------------


class _Operators:
    """The two operator processes; every start gets a priority above all before it."""

    def __init__(
        self, workdir: Path, kubeconfigs: Mapping[str, Path], prometheus_url: str, window: float, lifetime: int
    ) -> None:
        self.lifetime = lifetime
        self.workdir = workdir
        self.kubeconfigs = kubeconfigs
        self.prometheus_url = prometheus_url
        self.window = window
        self.procs: dict[str, OperatorProcess] = {}
        self.process_names: dict[str, str] = {}  # user -> "user#n" of its current process
        self.logs: dict[str, Path] = {}  # process name -> log
        self.pids: dict[str, int] = {}
        self.starts = 0
        self.down: set[str] = set()  # killed by a fault, restarted by it

    def start(self, user: str) -> str:
        self.down.discard(user)
        self.starts += 1
        count = sum(1 for name in self.logs if name.startswith(f"{user}#")) + 1
        name = f"{user}#{count}"
        log = self.workdir / f"{user}.{count}.log"
        proc = OperatorProcess(
            kubeconfig=self.kubeconfigs[user],
            prometheus_url=self.prometheus_url,
            metrics_port=0,
            log_path=log,
            service_level_window=self.window,
            peering=PEERING,
            priority=100 + self.starts,
            extra_args=("--peering-lifetime", str(self.lifetime)),
        ).start()
        self.procs[user] = proc
        self.process_names[user] = name
        self.logs[name] = log
        self.pids[name] = proc.process.pid if proc.process else 0
        return name

    def restart_exited(self) -> list[str]:
        """Start again every operator that exited by itself (a kubelet restarts a crashed container)."""
        restarted = []
        for user, proc in list(self.procs.items()):
            if user in self.down or proc.alive:
                continue
            code = proc.process.returncode if proc.process is not None else None
            restarted.append(f"{self.process_names[user]} exited (code {code}); started {self.start(user)}")
        return restarted

    def kill(self, user: str) -> None:
        self.down.add(user)
        proc = self.procs.get(user)
        if proc is not None and proc.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.process.pid, signal.SIGKILL)
            proc.process.wait(timeout=10)
            proc.process = None

    def alive(self, user: str) -> bool:
        proc = self.procs.get(user)
        return proc is not None and proc.alive

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.stop()


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class _Soak:
    def __init__(self, config: SoakConfig, say: Callable[[str], None]) -> None:
        self.config = config
        self.say = say
        self.t0 = time.time()
        self.snapshots: list[inv.Snapshot] = []
        self.decisions: list[inv.Decision] = []
        self._decision_uids: set[str] = set()
        self.writes: list[inv.Write] = []
        self._request_index = 0
        self.rss: list[inv.RssSample] = []
        self.log_lines: list[inv.LogLine] = []
        self._log_offsets: dict[str, int] = {}
        self.spans: list[inv.Span] = []
        self.active: dict[int, tuple[str, float, tuple[str, ...]]] = {}
        self.gaps: list[inv.MetricsGap] = []
        self.open_gaps: dict[int, tuple[float, tuple[str, ...], str]] = {}
        self.violations: dict[tuple[str, str, int], inv.Violation] = {}
        self.injected: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.loop_lag: list[float] = []  # seconds each sampling wake-up came late
        self._tokens = itertools.count()

    def now(self) -> float:
        return time.time() - self.t0

    # -- observation ------------------------------------------------------------------------

    def sample(self, store: Store) -> None:
        t = self.now()
        md_info = store.resource(constants.GROUP, constants.VERSION, constants.PLURAL)
        mds = [o for o in store.objects(md_info) if o["metadata"].get("namespace") == NAMESPACE]
        children: list[tuple[str, dict[str, Any]]] = []
        seen: set[tuple[str, str]] = set()
        for info in list(store.resources.values()):
            if info.storage_key in seen or info.storage_key in _NOT_CHILDREN or not info.namespaced:
                continue
            seen.add(info.storage_key)
            for obj in store.objects(info):
                if obj["metadata"].get("namespace") == NAMESPACE and _owner(obj) is not None:
                    children.append((info.kind, obj))
        self.snapshots.append(snapshot(t, mds, children))
        events = store.objects(store.resource("", "v1", "events"))
        for event in events:
            uid = event["metadata"]["uid"]
            involved = event.get("involvedObject") or event.get("regarding") or {}
            if uid in self._decision_uids or involved.get("kind") != constants.KIND:
                continue
            if event.get("reason") in DECISION_REASONS:
                self._decision_uids.add(uid)
                key = f"{involved.get('namespace', NAMESPACE)}/{involved.get('name')}"
                self.decisions.append(inv.Decision(t, key, str(event["reason"]), str(event.get("message", ""))))

    def collect_requests(self, emulator: Emulator) -> None:
        records = emulator.requests
        for record in records[self._request_index :]:
            if record.write and record.user in OPERATORS and record.resource not in _PEERING_RESOURCES:
                name = record.name or record.resource
                self.writes.append(inv.Write(record.at - self.t0, record.user, record.verb, record.rbac_resource, name))
        self._request_index = len(records)

    def collect_process(self, operators: _Operators) -> None:
        t = self.now()
        for user, name in operators.process_names.items():
            if operators.alive(user):
                rss = _rss(operators.pids[name])
                if rss is not None:
                    self.rss.append(inv.RssSample(t, name, rss))
        for name, path in operators.logs.items():
            offset = self._log_offsets.get(name, 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except OSError:
                continue
            complete = data.rfind(b"\n") + 1
            self._log_offsets[name] = offset + complete
            for line in data[:complete].decode(errors="replace").splitlines():
                self.log_lines.append(inv.LogLine(t, name, line))

    # -- faults as spans --------------------------------------------------------------------

    def begin(self, kind: str, fleets: tuple[str, ...]) -> int:
        token = next(self._tokens)
        self.active[token] = (kind, self.now(), fleets)
        return token

    def end(self, token: int) -> None:
        kind, start, fleets = self.active.pop(token)
        self.spans.append(inv.Span(kind, start, self.now(), fleets))

    def gap_begin(self, fleets: tuple[str, ...], why: str) -> int:
        token = next(self._tokens)
        self.open_gaps[token] = (self.now(), fleets, why)
        return token

    def gap_end(self, token: int) -> None:
        start, fleets, why = self.open_gaps.pop(token)
        self.gaps.append(inv.MetricsGap(start, self.now(), fleets, why))

    def spans_so_far(self) -> list[inv.Span]:
        t = self.now()
        return [*self.spans, *(inv.Span(k, s, t, f) for k, s, f in self.active.values())]

    def gaps_so_far(self) -> list[inv.MetricsGap]:
        t = self.now()
        return [*self.gaps, *(inv.MetricsGap(s, t, f, w) for s, f, w in self.open_gaps.values())]

    # -- checking ---------------------------------------------------------------------------

    def check(self) -> list[inv.Violation]:
        c = self.config
        spans = self.spans_so_far()
        found = soak_report.all_violations(
            self.snapshots,
            spans,
            self.gaps_so_far(),
            self.decisions,
            self.writes,
            self.rss,
            self.log_lines,
            settle=c.settle,
            rss_bound=c.rss_bound_mib_per_hour * 2**20,
            rss_warmup=c.rss_warmup,
            rss_min_span=c.rss_min_span,
        )
        fresh = []
        for violation in found:
            key = (violation.invariant, violation.subject, int(violation.t))
            if key not in self.violations:
                self.violations[key] = violation
                fresh.append(violation)
                self.say(
                    f"  VIOLATION t={violation.t:7.1f} {violation.invariant} {violation.subject}: "
                    f"{violation.evidence.splitlines()[0] if violation.evidence else ''}"
                )
        return fresh


async def run_soak(config: SoakConfig, *, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the soak to its end; return the report (also written under `config.out`)."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    if find_binary() is None:
        from neuronfleet.demo.prometheus import missing_binary_reason

        raise SoakError(missing_binary_reason())
    manifest = config.manifest or find_manifest()
    if manifest is None:
        raise SoakError("cannot find examples/demo/llama3-8b-trn2.yaml; pass --manifest")
    demo_doc = next(d for d in yaml.safe_load_all(Path(manifest).read_text()) if d and d.get("kind") == constants.KIND)
    if not 0 < config.load_fraction <= 1:
        raise SoakError("--load-fraction must be in (0, 1]")
    full = trace_window(read_trace(DEFAULT_TRACE))
    trace = full[:: max(1, round(1 / config.load_fraction))]
    own_workdir = config.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="neuronfleet-soak-")) if own_workdir else Path(config.workdir or ".")
    workdir.mkdir(parents=True, exist_ok=True)
    soak = _Soak(config, say)
    clock = CompressedClock(config.compression)
    operators: _Operators | None = None
    prom_box: list[PrometheusServer] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            emulator = await Emulator().start()
            stack.push_async_callback(emulator.stop)
            store = emulator.store
            collector = GarbageCollector(store).start()
            stack.callback(collector.stop)
            jobs = JobController(store, run_seconds=120.0 / config.compression).start()
            stack.callback(jobs.stop)
            compile_jobs = _CompileJobs(store, jobs)
            kubeconfigs = {}
            for user in OPERATORS:
                emulator.tokens[f"token-{user}"] = user
                kubeconfigs[user] = write_kubeconfig(
                    workdir / f"kubeconfig-{user}", emulator.url, namespace=NAMESPACE, token=f"token-{user}"
                )
            store.create(store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, crd.crd())
            store.create(store.resource("", "v1", "namespaces"), None, {"metadata": {"name": NAMESPACE}})
            store.create(
                store.resource("kopf.dev", "v1", "clusterkopfpeerings"),
                None,
                {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
            )
            say(f"API server   {emulator.url} (emulated), namespace {NAMESPACE}, workdir {workdir}")

            router = await Router().start()
            stack.push_async_callback(router.stop)
            prom_workdir = workdir / "prometheus"
            prometheus = await asyncio.to_thread(start_prometheus, [], workdir=prom_workdir, scrape_interval="1s")
            prom_box.append(prometheus)
            stack.push_async_callback(lambda: asyncio.to_thread(prom_box[0].stop))
            say(f"Prometheus   {prometheus.url} (pid {prometheus.pid})")
            docs = fleet_manifests(demo_doc, compression=config.compression, prometheus_url=prometheus.url)
            roles = schedule.Roles(_key(docs["loaded"]), _key(docs["spare"]), _key(docs["compiled"]))
            loaded_md = resource.load(copy.deepcopy(docs["loaded"]))
            plan = planner.plan(convert.plan_request(loaded_md))
            nodes = capacity.default_nodes(plan, 8 + 3 + 1 + 4)
            placed = capacity.start_capacity(store, nodes, delay_wall_seconds=0)
            stack.callback(placed.stop)
            pool_box: list[NodePool] = []

            def publish() -> None:
                if pool_box and prom_box:
                    prom_box[0].write_targets(pool_box[0].targets())

            nodepool = NodePool(
                store,
                clock=clock,
                startup_seconds=120.0,
                router_for=lambda ns, name: router if (ns, name) == (NAMESPACE, "chat") else None,
                on_targets=lambda _targets: publish(),
                grace_seconds=min(5.0, 30.0 / config.compression),
                scheduled=True,
            ).start()
            pool_box.append(nodepool)
            stack.push_async_callback(nodepool.stop)

            md_info = store.resource(constants.GROUP, constants.VERSION, constants.PLURAL)
            for doc in docs.values():
                store.create(md_info, NAMESPACE, copy.deepcopy(doc))
            say(f"Fleets       {', '.join(_key(d) for d in docs.values())} (loaded, spare, compiled)")

            operators = _Operators(
                workdir,
                kubeconfigs,
                prometheus.url,
                service_level_window(config.compression),
                config.peering_lifetime,
            )
            stack.callback(operators.stop_all)
            for user in OPERATORS:
                # One after the other, as a rolling update starts them: the first acts before the
                # second (higher priority) arrives and takes over, rather than both starting at once.
                name = operators.start(user)
                say(
                    f"Operator     {name}: neuronfleet run --peering {PEERING} "
                    f"--peering-lifetime {config.peering_lifetime} (pid {operators.pids[name]})"
                )
                if user != OPERATORS[-1]:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not any(
                        r.write and r.user == user for r in emulator.requests
                    ):
                        await asyncio.sleep(0.2)

            faults = schedule.plan(
                config.seed,
                start=config.warmup,
                end=max(config.warmup, config.duration),
                roles=roles,
                mean_gap=config.gap,
                long=config.long,
            )
            say(f"Faults       {len(faults)} planned (seed {config.seed}), convergence bound {config.settle:g} s")
            soak.t0 = time.time()  # the soak's clock starts with both operators up
            context = _Context(emulator, store, operators, compile_jobs, prom_box, nodepool, docs, soak, config)
            tasks = [
                asyncio.create_task(_observe(soak, emulator, store, operators), name="observe"),
                asyncio.create_task(_load(trace, clock, router.url), name="load"),
                asyncio.create_task(_inject_all(faults, context), name="faults"),
            ]
            try:
                await asyncio.sleep(max(0.0, config.duration - soak.now()))
                await _wait_injections(context, tasks[2])
                await _settle(soak, config)
                soak.collect_requests(emulator)
                soak.collect_process(operators)
                soak.sample(store)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            say("Stopping     operators, replicas, Prometheus, API server")
            operators.stop_all()
            result = soak_report.build(
                soak.snapshots,
                soak.spans,
                soak.gaps,
                soak.decisions,
                soak.writes,
                soak.rss,
                soak.log_lines,
                injected=soak.injected,
                settle=config.settle,
                rss_bound=config.rss_bound_mib_per_hour * 2**20,
                rss_warmup=config.rss_warmup,
                rss_min_span=config.rss_min_span,
                extra={
                    "seed": config.seed,
                    "duration_s": round(soak.now(), 1),
                    "fault_phase_s": config.duration,
                    "compile_jobs_failed": list(compile_jobs.failed),
                    "operator_processes": dict(operators.pids),
                    "notes": soak.notes,
                    "replicas_started": nodepool.started_replicas,
                    "loop_lag_s": {
                        "p50": soak_report.percentile(soak.loop_lag, 0.5),
                        "p95": soak_report.percentile(soak.loop_lag, 0.95),
                        "max": max(soak.loop_lag, default=None),
                        "over_5s": sum(1 for lag in soak.loop_lag if lag > 5),
                    },
                },
            )
    finally:
        if operators is not None:
            operators.stop_all()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    say(soak_report.format_text(result))
    if config.out is not None:
        config.out.mkdir(parents=True, exist_ok=True)
        (config.out / "report.json").write_text(json.dumps(result, indent=2, default=str))
        (config.out / "report.md").write_text(soak_report.markdown(result))
        with (config.out / "timeline.jsonl").open("w") as timeline:  # the evidence behind every figure
            for snap in soak.snapshots:
                timeline.write(json.dumps(dataclasses.asdict(snap), separators=(",", ":")) + "\n")
            for decision in soak.decisions:
                timeline.write(json.dumps({"decision": dataclasses.asdict(decision)}) + "\n")
        try:
            soak_report.plot(result, soak.snapshots, config.out / "soak.png")
        except ImportError:
            say("plot skipped: matplotlib is not installed (pip install 'neuronfleet[plot]')")
        say(f"Report       {config.out / 'report.md'}")
    return result


@dataclasses.dataclass
class _Context:
    emulator: Emulator
    store: Store
    operators: _Operators
    compile_jobs: _CompileJobs
    prom_box: list[PrometheusServer]
    nodepool: NodePool
    docs: dict[str, dict[str, Any]]
    soak: _Soak
    config: SoakConfig
    running: set[asyncio.Task[None]] = dataclasses.field(default_factory=set)


async def _observe(soak: _Soak, emulator: Emulator, store: Store, operators: _Operators) -> None:
    last_check = time.monotonic()
    last_process = 0.0
    stalls = (operators.workdir / "loop-stalls.txt").open("a")
    try:
        await _observe_loop(soak, emulator, store, operators, last_check, last_process, stalls)
    finally:
        faulthandler.cancel_dump_traceback_later()
        stalls.close()


async def _observe_loop(
    soak: _Soak,
    emulator: Emulator,
    store: Store,
    operators: _Operators,
    last_check: float,
    last_process: float,
    stalls: TextIO,
) -> None:
    """Sample every `sample_interval`; how late each wake-up comes is the event loop's lag.

    The emulator, the replicas and the load share this loop: a loop that stalls answers the
    operators late. Each stall over 10 s dumps every thread's stack into loop-stalls.txt.
    """
    while True:
        soak.sample(store)
        soak.collect_requests(emulator)
        if time.monotonic() - last_process >= 5.0:
            soak.collect_process(operators)
            for note in operators.restart_exited():
                soak.notes.append(f"t={soak.now():.1f} {note}")
                soak.say(f"  NOTE {note}")
            last_process = time.monotonic()
        if time.monotonic() - last_check >= soak.config.checks_every:
            soak.check()
            last_check = time.monotonic()
        asleep = time.monotonic()
        faulthandler.dump_traceback_later(soak.config.sample_interval + 5.0, file=stalls)
        await asyncio.sleep(soak.config.sample_interval)
        faulthandler.cancel_dump_traceback_later()
        soak.loop_lag.append(max(0.0, time.monotonic() - asleep - soak.config.sample_interval))


async def _load(trace: list[Any], clock: CompressedClock, url: str) -> None:
    """The trace on the loaded fleet, over and over."""
    while True:
        replay = TraceReplay(trace, clock=clock, url=url, model="chat", max_model_len=8192)
        await replay.run()


def settled(snapshots: list[inv.Snapshot], *, after: float, fleets: int) -> bool:
    """Pure: the last sample, taken after `after`, shows every fleet converged with every child kind it had."""
    if not snapshots or snapshots[-1].t <= after:
        return False
    last = snapshots[-1]
    had: dict[str, set[str]] = {}
    for snap in snapshots:
        for fleet in snap.fleets:
            had.setdefault(fleet.uid, set()).update(c.kind for c in fleet.children)
    return len(last.fleets) == fleets and all(
        f.converged and had[f.uid] <= {c.kind for c in f.children} for f in last.fleets
    )


async def _settle(soak: _Soak, config: SoakConfig) -> None:
    """After the faults: wait until every fleet has settled, or the convergence bound has passed.

    A child still missing keeps the soak going until the bound, so that the checkers can judge it.
    """
    last = max((s.end for s in soak.spans), default=0.0)
    deadline = max(last, config.warmup) + config.settle + 2 * config.sample_interval
    while soak.now() < deadline:
        if settled(soak.snapshots, after=last + 2, fleets=3):
            break
        await asyncio.sleep(config.sample_interval)


async def _wait_injections(context: _Context, planner_task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await planner_task
    if context.running:
        await asyncio.gather(*list(context.running), return_exceptions=True)


async def _inject_all(faults: list[schedule.PlannedFault], context: _Context) -> None:
    soak = context.soak
    locks = {group: asyncio.Lock() for group in schedule.EXCLUSIVE}
    for fault in faults:
        delay = fault.at - soak.now()
        if delay > 0:
            await asyncio.sleep(delay)
        group = next((g for g in schedule.EXCLUSIVE if fault.kind in g), None)
        injection = _inject(fault, context) if group is None else _serially(locks[group], fault, context)
        task = asyncio.create_task(injection, name=f"fault-{fault.kind}")
        context.running.add(task)
        task.add_done_callback(context.running.discard)


async def _serially(lock: asyncio.Lock, fault: schedule.PlannedFault, context: _Context) -> None:
    """Faults that must not overlap wait for each other when a slow loop made one run late."""
    async with lock:
        await _inject(fault, context)


def _active_operator(soak: _Soak, operators: _Operators) -> str:
    """The operator that wrote last (among those alive), else the latest started."""
    for write in reversed(soak.writes):
        if operators.alive(write.user):
            return write.user
    alive = [u for u in OPERATORS if operators.alive(u)]
    return alive[-1] if alive else OPERATORS[0]


async def _inject(fault: schedule.PlannedFault, context: _Context) -> None:
    soak = context.soak
    fleets = (fault.fleet,) if fault.fleet else ()
    token = soak.begin(fault.kind, fleets)
    detail: dict[str, Any] = {"t": round(soak.now(), 1), "kind": fault.kind, "fleet": fault.fleet}
    try:
        detail.update(await _do(fault, context))
    except Exception as exc:  # a fault that could not be injected is reported, never fatal
        detail["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        soak.end(token)
        detail["end"] = round(soak.now(), 1)
        soak.injected.append(detail)
        soak.say(f"  fault t={detail['t']:7.1f} {fault.kind} {fault.fleet} {_brief(detail)}")


def _brief(detail: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in detail.items() if k not in ("t", "kind", "fleet"))


def _md_info(store: Store) -> ResourceInfo:
    return store.resource(constants.GROUP, constants.VERSION, constants.PLURAL)


def _patch_md(store: Store, key: str, patch: dict[str, Any]) -> None:
    namespace, name = key.split("/")
    store.patch(_md_info(store), namespace, name, PatchType.MERGE, patch)


async def _do(fault: schedule.PlannedFault, context: _Context) -> dict[str, Any]:
    soak, store, emulator = context.soak, context.store, context.emulator
    kind = fault.kind
    if kind == "api_errors":
        status, times, method = fault.param("status"), fault.param("times"), fault.param("method")
        # A real server answers a merge patch without a resourceVersion (kopf's peering keep-alive) by
        # retrying its update on a conflict (k8s.io/apiserver's patch handler, maxRetryWhenPatchConflicts),
        # all but never with 409 Conflict; kopf takes one there as fatal and stops the operator.
        path = r"^/apis?/(?!kopf\.dev/)" if status == 409 else r"^/apis?/"
        armed = emulator.inject(method=method, path=path, times=times, status=status)
        await asyncio.sleep(fault.seconds)
        armed.times = armed.hits  # the burst ends: what it did not use is disarmed
        return {"status": status, "method": method, "hits": armed.hits}
    if kind == "api_timeouts":
        times, method = fault.param("times"), fault.param("method")
        # Longer than the operator's client timeout (15 s): each hit is a timeout for the client.
        # kopf's peering keep-alive is no lease with fencing: a keep-alive held past the lifetime lets
        # the standby act while the active one still does. The long soak lets timeouts hit it and
        # reports what follows; the short one (make test, 20 s lifetime) spares kopf.dev, whose
        # keep-alive runs only 5-10 s ahead of its expiry there.
        path = r"^/apis?/" if context.config.long else r"^/apis?/(?!kopf\.dev/)"
        armed = emulator.inject(method=method, path=path, times=times, status=None, delay=18.0)
        await asyncio.sleep(fault.seconds)
        return {"method": method, "hits": armed.hits}
    if kind == "watch_cut":
        return {"streams": emulator.cut_watches()}
    if kind == "watch_expired":
        # Watches go down (cut, and re-watches refused) while a child is deleted; the log is compacted
        # past the deletion, so every resume gets 410 Gone and must relist to learn of it.
        blocked = emulator.inject(method="GET", path=r"[?&]watch=(true|1)", times=1_000_000, status=503)
        streams = emulator.cut_watches()
        victim = _key(context.docs[fault.param("victim", "spare")])
        namespace, name = victim.split("/")
        what = fault.param("delete", "workload")
        info = (
            store.resource("apps", "v1", "deployments") if what == "workload" else store.resource("", "v1", "services")
        )
        deleted = None
        with contextlib.suppress(ApiError):
            store.delete(info, namespace, name)
            deleted = f"{info.kind} {victim}"
        await asyncio.sleep(fault.seconds)
        emulator.compact()
        blocked.times = blocked.hits
        return {
            "streams": streams,
            "deleted_in_gap": deleted,
            "rewatches_refused": blocked.hits,
            "compacted_at_rv": store.rv,
        }
    if kind == "operator_kill":
        victim = _active_operator(soak, context.operators)
        killed = context.operators.process_names.get(victim, victim)
        context.operators.kill(victim)
        await asyncio.sleep(fault.seconds)
        restarted = context.operators.start(victim)
        return {"killed": killed, "restarted": restarted, "down_s": fault.seconds}
    if kind == "prometheus_outage":
        old = context.prom_box[0]
        gap = soak.gap_begin((), "Prometheus down")
        try:
            await asyncio.to_thread(old.stop)
            await asyncio.sleep(fault.seconds)
            shutil.rmtree(old.workdir / "data", ignore_errors=True)
            fresh = PrometheusServer(
                binary=old.binary, workdir=old.workdir, port=old.port, scrape_interval=old.scrape_interval
            )
            await asyncio.to_thread(fresh.start, context.nodepool.targets())
            context.prom_box[0] = fresh
        finally:
            soak.gap_end(gap)
        return {"down_s": fault.seconds, "data": "wiped"}
    namespace, name = fault.fleet.split("/") if fault.fleet else (NAMESPACE, "")
    pods = [p for p in context.nodepool.pods.values() if (p.namespace, p.deployment) == (namespace, name)]
    if kind == "replica_crash":
        ready = [p for p in pods if p.ready] or pods
        if not ready:
            return {"skipped": "no replica"}
        victim = ready[0]
        with contextlib.suppress(ApiError):
            store.delete(store.resource("", "v1", "pods"), namespace, victim.name)
        return {"pod": victim.name}
    if kind == "replica_hang":
        live = [p for p in pods if p.replica is not None and p.ready]
        if not live:
            return {"skipped": "no ready replica"}
        victim = live[0]
        assert victim.replica is not None
        victim.replica.hang()
        await asyncio.sleep(2.0)  # Prometheus' scrape timeout (1 s) and the next scrape
        gap = soak.gap_begin((fault.fleet,), f"replica {victim.name} hung")
        try:
            await asyncio.sleep(max(0.0, fault.seconds - 2.0))
        finally:
            soak.gap_end(gap)
            victim.replica.resume()
        return {"pod": victim.name}
    if kind == "child_edit":
        action = fault.param("action")
        deployments = store.resource("apps", "v1", "deployments")
        if store.try_get(deployments, namespace, name) is None:
            return {"skipped": "no Deployment"}
        if action == "scale":
            store.patch(deployments, namespace, name, PatchType.MERGE, {"spec": {"replicas": 6}})
        elif action == "template":
            store.patch(
                deployments,
                namespace,
                name,
                PatchType.MERGE,
                {"spec": {"template": {"metadata": {"labels": {"edited-by": "hand"}}}}},
            )
        elif action == "delete_workload":
            store.delete(deployments, namespace, name)
        else:
            services = store.resource("", "v1", "services")
            with contextlib.suppress(ApiError):
                store.delete(services, namespace, name)
        return {"action": action}
    if kind == "spec_update":
        _patch_md(store, fault.fleet, {"spec": {"serving": {"maxNumSeqs": 16}}})
        await asyncio.sleep(fault.seconds)  # the rollout of the first change is under way
        _patch_md(store, fault.fleet, {"spec": {"serving": {"maxNumSeqs": 32}}})
        return {"maxNumSeqs": "32 -> 16 -> 32"}
    if kind == "spec_unplannable":
        _patch_md(store, fault.fleet, {"spec": {"neuron": {"tensorParallelSize": 1}}})
        await asyncio.sleep(fault.seconds)
        _patch_md(store, fault.fleet, {"spec": {"neuron": {"tensorParallelSize": 4}}})
        return {"tensorParallelSize": "4 -> 1 (no plan fits) -> 4"}
    if kind == "compile_failure":
        context.compile_jobs.failing = True
        try:
            _patch_md(store, fault.fleet, {"spec": {"serving": {"maxModelLen": 4096}}})
            await asyncio.sleep(fault.seconds)
        finally:
            context.compile_jobs.failing = False
            _patch_md(store, fault.fleet, {"spec": {"serving": {"maxModelLen": 8192}}})
        return {"failing_jobs": len(context.compile_jobs.failed)}
    if kind == "md_recreate":
        doc = next(d for d in context.docs.values() if _key(d) == fault.fleet)
        store.delete(_md_info(store), namespace, name)
        deadline = time.monotonic() + 30
        while store.try_get(_md_info(store), namespace, name) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(fault.seconds)
        store.create(_md_info(store), namespace, copy.deepcopy(doc))
        return {"recreated": fault.fleet}
    raise ValueError(f"unknown fault kind {kind!r}")
