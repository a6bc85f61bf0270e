"""The demo's imperative shell: start every piece in order, show the fleet live, stop it all.

Start order: the API emulator (with the CRD and a kubeconfig), the fleet's Service (router), a
real Prometheus, the simulated node pool, the real operator (`neuronfleet run` as a subprocess,
exactly what a user runs), then the ModelDeployment is applied and, once the first replica is
ready, the trace replay begins. Stop order is the reverse, on `--duration`, at the end of the
trace plus cool-down, or on Ctrl-C/SIGTERM; every process started is stopped by its PID and every
port closed before `run_demo` returns, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import kubernetes
import yaml

from neuronfleet.api import constants, convert, crd, resource
from neuronfleet.autoscale import promql
from neuronfleet.demo import capacity, realvllm, report, view
from neuronfleet.demo.clock import CompressedClock
from neuronfleet.demo.load import TraceReplay, trace_window
from neuronfleet.demo.nodepool import NodePool
from neuronfleet.demo.prometheus import PrometheusServer, free_port, pod_target_labels, start_prometheus
from neuronfleet.demo.router import Router
from neuronfleet.errors import PlanError
from neuronfleet.kube_emulator import Emulator, GarbageCollector, JobController, write_kubeconfig
from neuronfleet.neuron import planner
from neuronfleet.render import labels, names
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import read_trace

__all__ = [
    "DEFAULT_TRACE",
    "DemoConfig",
    "DemoError",
    "adapt_manifest",
    "demo_slo",
    "find_manifest",
    "run_demo",
    "service_level_window",
]

DEFAULT_TRACE = Path(__file__).with_name("data") / "azure_conv_excerpt.csv"
MANIFEST_IN_REPO = Path("examples") / "demo" / "llama3-8b-trn2.yaml"


class DemoError(RuntimeError):
    """The demo cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class DemoConfig:
    """Every option of `neuronfleet demo`; times are wall seconds unless they say simulated."""

    manifest: Path
    trace: Path = DEFAULT_TRACE
    trace_start: float = 0.0  # trace seconds to skip
    trace_seconds: float | None = None  # trace seconds to replay (None: to the end)
    compression: float = 10.0
    duration: float | None = None  # load + cool-down; None: the trace, then cool down
    cooldown: float = 90.0  # longest wait after the trace for the fleet to shrink back
    startup_seconds: float = 120.0  # simulated replica startup (Neuron load from cached artifacts)
    kubeconfig_out: Path | None = None
    plot: Path | None = None
    summary_json: Path | None = None
    real_vllm: bool = False
    view_interval: float = 2.0
    scrape_interval: str = "1s"
    nodes: dict[str, int] | None = None  # instance type -> most nodes; None: the plan's type, for maxReplicas
    provisioning_delay: float = 0.0  # simulated seconds a node takes to appear (0: all nodes from the start)
    workdir: Path | None = None  # None: a temporary directory, removed at the end


@dataclass
class _Started:
    """What this run started, for the summary (and the test that checks nothing is left behind)."""

    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)


def find_manifest(start: Path | None = None) -> Path | None:
    """examples/demo/llama3-8b-trn2.yaml of the source checkout this package runs from, if any."""
    for base in [Path.cwd(), *Path(start or __file__).resolve().parents]:
        candidate = base / MANIFEST_IN_REPO
        if candidate.is_file():
            return candidate
    return None


def adapt_manifest(doc: Mapping[str, Any], *, compression: float, prometheus_url: str) -> dict[str, Any]:
    """Pure: the ModelDeployment as the demo applies it.

    A tokens/s target is per wall second for the operator, and in compressed time a replica
    makes `compression` times more tokens per wall second, so the target is scaled by the same
    factor; concurrency needs no change (requests in flight do not depend on the time scale).
    With an SLO, the derived engine-load target weighs prompt tokens/s by the step cost of a
    prompt token in simulated seconds, so the prompt-token rate is read per simulated second (the
    query divided by the compression, `spec.autoscaling.prometheus.queries`); the SLO itself and the
    replicas' latency histograms are in simulated seconds already. Prometheus is the demo's own.
    """
    md = copy.deepcopy(dict(doc))
    autoscaling = md.setdefault("spec", {}).setdefault("autoscaling", {})
    metrics = autoscaling.get("metrics") or {}
    if metrics.get("tokensPerSecondPerReplica"):
        metrics["tokensPerSecondPerReplica"] = round(metrics["tokensPerSecondPerReplica"] * compression, 3)
    prometheus = autoscaling.setdefault("prometheus", {})
    prometheus["url"] = prometheus_url
    queries = prometheus.get("queries") or {}
    if autoscaling.get("slo") and "promptTokensPerSecond" not in queries:
        rate = 'sum(rate({__name__=~"vllm[:_]prompt_tokens_total",$selector}[$window]))'
        prometheus["queries"] = {**queries, "promptTokensPerSecond": f"{rate} / {compression:g}"}
    return md


def service_level_window(compression: float) -> float:
    """The operator's measurement window in wall seconds: five simulated minutes, at least 10 s."""
    return max(10.0, 300.0 / compression)


def demo_slo(md: resource.ModelDeployment) -> Slo | None:
    """spec.autoscaling.slo as the per-request check the summary's truth uses (simulated seconds)."""
    slo = md.spec.autoscaling.slo
    if slo is None:
        return None
    return Slo(
        ttft_base=slo.time_to_first_token_seconds,
        ttft_tokens_per_second=slo.ttft_prompt_tokens_per_second or 0.0,
        min_tokens_per_second=slo.per_user_tokens_per_second,
    )


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"cannot read {path}: {exc}") from exc
    for doc in docs:
        if doc.get("kind") == constants.KIND:
            return doc
    raise DemoError(f"{path} holds no {constants.KIND}")


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class OperatorProcess:
    """`neuronfleet run` in a subprocess of its own, logging to a file; stopped by PID."""

    def __init__(
        self,
        *,
        kubeconfig: Path,
        prometheus_url: str,
        metrics_port: int,
        log_path: Path,
        service_level_window: float = 300.0,
        peering: str | None = None,
        priority: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        # The demo's one operator runs standalone; the soak runs two that share a peering object.
        scope = ["--standalone"] if peering is None else ["--peering", peering]
        if priority is not None:
            scope += ["--priority", str(priority)]
        self.command = [
            sys.executable,
            "-m",
            "neuronfleet.cli",
            "run",
            "--kubeconfig",
            str(kubeconfig),
            *scope,
            "--prometheus-url",
            prometheus_url,
            "--bind-address",
            "127.0.0.1",
            "--health-port",
            "0",
            "--metrics-port",
            str(metrics_port),
            "--service-level-window",
            f"{service_level_window:g}",
            *extra_args,
        ]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.log_path.parent,  # never the source tree: its operator/ folder is not a module
                start_new_session=True,  # Ctrl-C reaches only the demo, which stops this in order
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _install(api: kubernetes.client.ApiClient, namespace: str) -> None:
    """What `kubectl apply -f crds/` and `kubectl create namespace` would do."""
    kubernetes.client.ApiextensionsV1Api(api).create_custom_resource_definition(crd.crd())
    with contextlib.suppress(kubernetes.client.ApiException):  # already there (default)
        kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})


def _apply(api: kubernetes.client.ApiClient, md: Mapping[str, Any], namespace: str) -> None:
    kubernetes.client.CustomObjectsApi(api).create_namespaced_custom_object(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, dict(md)
    )


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, text: str) -> None:
        print(text, file=self.out, flush=True)


async def run_demo(config: DemoConfig, *, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Run the demo to its end; return the summary (also printed, and written where asked)."""
    say = _Printer(out)
    if config.compression <= 0:
        raise DemoError("--compression must be positive")
    try:
        trace = trace_window(read_trace(config.trace), start=config.trace_start, seconds=config.trace_seconds)
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read the trace {config.trace}: {exc}") from exc
    if not trace:
        raise DemoError(f"{config.trace}: no requests in the chosen window")
    doc = _load_manifest(config.manifest)
    try:
        md_model = resource.load(copy.deepcopy(doc))
    except Exception as exc:  # pydantic's ValidationError, with the field named
        raise DemoError(f"{config.manifest}: not a valid {constants.KIND}: {exc}") from exc
    try:
        primary_plan = planner.plan(convert.plan_request(md_model))
    except PlanError as exc:
        raise DemoError(f"{config.manifest}: cannot be planned: {exc}") from exc
    max_replicas = (
        md_model.spec.autoscaling.max_replicas if md_model.spec.autoscaling.enabled else md_model.spec.replicas
    )
    node_counts = config.nodes or capacity.default_nodes(primary_plan, max_replicas)
    if config.provisioning_delay < 0:
        raise DemoError("--provisioning-delay must be >= 0")
    namespace = md_model.namespace or "default"
    md_name = md_model.name
    slo = demo_slo(md_model)
    goal = convert.attainment_goal(md_model.spec.autoscaling.slo) if md_model.spec.autoscaling.slo else 0.99
    deployment = names.deployment_name(md_model)
    min_replicas = (
        md_model.spec.autoscaling.min_replicas if md_model.spec.autoscaling.enabled else md_model.spec.replicas
    )

    started = _Started()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    own_workdir = config.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="neuronfleet-demo-")) if own_workdir else Path(config.workdir or ".")
    workdir.mkdir(parents=True, exist_ok=True)
    clock = CompressedClock(config.compression)
    samples: list[view.Sample] = []
    events: list[view.EventLine] = []
    replay: TraceReplay | None = None
    seen_by_prometheus: dict[str, Any] = {}
    real_note: dict[str, Any] = {"available": False, "reason": "not asked for (--real-vllm)"}
    sidecar_ref: list[realvllm.Sidecar] = []
    nodepool: NodePool | None = None
    cores = 1
    try:
        async with contextlib.AsyncExitStack() as stack:
            # 1. The API server, the CRD, a kubeconfig.
            emulator = await Emulator().start()
            stack.push_async_callback(emulator.stop)
            # kube-controller-manager's garbage collector, so `kubectl delete md` takes the fleet with it.
            collector = GarbageCollector(emulator.store).start()
            stack.callback(collector.stop)
            # Its Job controller, reduced to outcomes: a ModelDeployment applied with
            # compiledArtifacts.policy precompile gets its compile Job "run" in a startup's time.
            jobs = JobController(emulator.store, run_seconds=config.startup_seconds / config.compression).start()
            stack.callback(jobs.stop)
            started.ports["kube-apiserver"] = emulator.port
            kubeconfig = config.kubeconfig_out or workdir / "kubeconfig"
            write_kubeconfig(kubeconfig, emulator.url, namespace=namespace)
            api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
            stack.callback(api.close)
            await asyncio.to_thread(_install, api, namespace)
            say(f"API server   {emulator.url} (emulated; CRD {constants.CRD_NAME} installed)")
            say(f"             export KUBECONFIG={kubeconfig}; kubectl get md -n {namespace} -w")

            # 2. The fleet's Service.
            router = await Router().start()
            stack.push_async_callback(router.stop)
            started.ports["service"] = router.port

            # 3. Prometheus, scraping the replicas (file SD) and the operator.
            operator_metrics = free_port()
            try:
                prometheus: PrometheusServer = await asyncio.to_thread(
                    start_prometheus,
                    [],
                    workdir=workdir / "prometheus",
                    scrape_interval=config.scrape_interval,
                    extra_jobs={"neuronfleet-operator": [f"127.0.0.1:{operator_metrics}"]},
                )
            except FileNotFoundError as exc:
                raise DemoError(str(exc)) from exc
            stack.push_async_callback(asyncio.to_thread, prometheus.stop)
            started.ports["prometheus"] = prometheus.port
            started.pids["prometheus"] = prometheus.pid or 0
            say(f"Prometheus   {prometheus.url} (pid {prometheus.pid}, scrape every {config.scrape_interval})")

            sidecar: realvllm.Sidecar | None = None

            def publish() -> None:
                """Prometheus' file-SD targets: every pod of the pool, plus the real vLLM once it is up."""
                extra = sidecar.target() if sidecar is not None else None
                pool = nodepool.targets() if nodepool is not None else []
                prometheus.write_targets([*pool, *([extra] if extra else [])])

            # 4. Nodes and kube-scheduler (or Karpenter adding nodes), then the simulated node pool whose
            #    pods they place: a replica no node has room for stays Pending with the scheduler's reason.
            placed = capacity.start_capacity(
                emulator.store, node_counts, delay_wall_seconds=config.provisioning_delay / config.compression
            )
            stack.callback(placed.stop)
            say(f"Nodes        {capacity.describe(node_counts, config.provisioning_delay)}")
            nodepool = NodePool(
                emulator.store,
                clock=clock,
                startup_seconds=config.startup_seconds,
                router_for=lambda ns, name: router if (ns, name) == (namespace, deployment) else None,
                on_targets=lambda _targets: publish(),
                grace_seconds=min(5.0, 30.0 / config.compression),
                scheduled=True,
            ).start()
            stack.push_async_callback(nodepool.stop)

            # 5. The real operator.
            operator = OperatorProcess(
                kubeconfig=Path(kubeconfig),
                prometheus_url=prometheus.url,
                metrics_port=operator_metrics,
                log_path=workdir / "operator.log",
                service_level_window=service_level_window(config.compression),
            ).start()
            stack.push_async_callback(asyncio.to_thread, operator.stop)
            started.pids["operator"] = operator.process.pid if operator.process else 0
            started.ports["operator-metrics"] = operator_metrics
            say(f"Operator     neuronfleet run (pid {started.pids['operator']}), log {operator.log_path}")

            # 5b. Optionally, one real vLLM beside the simulated replicas.
            if config.real_vllm:
                installation = await asyncio.to_thread(realvllm.find_installation)
                if installation.python is None:
                    real_note = {"available": False, "reason": installation.reason}
                    say(f"Real vLLM    unavailable: {installation.reason}; going on without it")
                else:
                    real = realvllm.RealVllm(
                        installation,
                        workdir=workdir / "real-vllm",
                        served_name=md_model.spec.model.served_name or md_name,
                    )
                    pod_labels = labels.pod_labels(md_model)
                    sidecar = realvllm.Sidecar(
                        real,
                        labels=pod_target_labels(namespace, realvllm.POD_NAME, pod_labels),
                        publish=publish,
                    )
                    sidecar.start()
                    stack.push_async_callback(sidecar.stop)
                    real_note = {"available": True}
                    say(f"Real vLLM    starting vllm serve (CPU, tiny model) on {real.address}, log {real.log_path}")

            # 6. The ModelDeployment.
            md = adapt_manifest(doc, compression=config.compression, prometheus_url=prometheus.url)
            await asyncio.to_thread(_apply, api, md, namespace)
            say(f"Applied      {constants.KIND} {namespace}/{md_name} from {config.manifest}")
            tps = ((md["spec"].get("autoscaling") or {}).get("metrics") or {}).get("tokensPerSecondPerReplica")
            if tps:
                say(
                    f"             tokensPerSecondPerReplica x{config.compression:g} = {tps:g} per wall second "
                    "(compressed time makes every replica that much faster on the wall clock)"
                )

            # 7. Wait for the first ready replica.
            budget = (config.startup_seconds + config.provisioning_delay) / config.compression + 60.0
            say(f"Waiting      for the first replica (startup {config.startup_seconds:g} s simulated)")
            deadline = time.monotonic() + budget
            while not router.endpoints:
                if stop.is_set():
                    break
                if not operator.alive:
                    raise DemoError(f"the operator exited; its log ends with:\n{operator.log_tail()}")
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"no replica became ready within {budget:.0f} s; operator log:\n{operator.log_tail()}"
                    )
                await asyncio.sleep(0.1)
            if sidecar is not None and not stop.is_set():
                # Started first, so its minute of imports and model loading does not compete with the load.
                say("Waiting      for the real vLLM (a minute or two: importing vLLM, loading the tiny model)")
                await sidecar.wait(stop)
                say(f"Real vLLM    {sidecar.status()}")
            reader = view.FleetReader(api, namespace, md_name)
            plan = (await asyncio.to_thread(_md_status, api, namespace, md_name)).get("plan") or {}
            cores = int(plan.get("coresPerReplica") or 1)

            # 8. Replay the trace; show the fleet; stop when it is time.
            replay = TraceReplay(
                trace,
                clock=clock,
                url=router.url,
                model=md_model.spec.model.served_name or md_name,
                max_model_len=md_model.spec.serving.max_model_len,
            )
            trace_wall = replay.trace_seconds / config.compression
            say(
                f"Load         {len(trace)} requests, {replay.trace_seconds:.0f} s of {config.trace.name} "
                f"in {trace_wall:.0f} s (x{config.compression:g}) against {router.url}"
            )
            if not stop.is_set():
                if sidecar is not None:
                    sidecar_ref.append(sidecar)
                await _run_load(
                    config,
                    replay,
                    reader,
                    nodepool,
                    namespace,
                    deployment,
                    min_replicas,
                    stop,
                    samples,
                    events,
                    say,
                    sidecar=sidecar,
                )
            seen_by_prometheus = await asyncio.to_thread(_prometheus_figures, prometheus, namespace, md_name)
            say("Stopping     load, operator, Prometheus, replicas, Service, API server")
            await stack.aclose()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    if nodepool is not None:
        for address in sorted(nodepool.addresses_used):
            started.ports[f"replica {address}"] = int(address.rsplit(":", 1)[1])
    summary = report.summarize(
        samples,
        replay.stats.outcomes if replay is not None else [],
        events,
        compression=config.compression,
        cores_per_replica=cores,
        min_replicas=min_replicas,
        slo=slo,
        goal=goal,
        window_seconds=service_level_window(config.compression) * config.compression,
        extra={
            "trace": str(config.trace),
            "interrupted": stop.is_set(),
            "pids": started.pids,
            "ports": started.ports,
            "replicas_started": nodepool.started_replicas if nodepool else 0,
            "prometheus": seen_by_prometheus,
            "real_vllm": _real_note(real_note, sidecar_ref),
        },
    )
    say(report.format_summary(summary))
    if config.plot is not None:
        try:
            report.plot(
                samples,
                config.plot,
                compression=config.compression,
                title=f"neuronfleet demo: {namespace}/{md_name}, {config.trace.name}, time x{config.compression:g}",
                goal=goal if slo is not None else None,
            )
            say(f"plot            {config.plot}")
        except ImportError:
            say("plot            skipped: matplotlib is not installed (pip install 'neuronfleet[plot]')")
    if config.summary_json is not None:
        Path(config.summary_json).write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _real_note(note: dict[str, Any], sidecars: list[realvllm.Sidecar]) -> dict[str, Any]:
    if not sidecars:
        return note
    real = sidecars[0].real
    return {
        **note,
        "ready": sidecars[0].ready,
        "pid": real.started_pid,
        "error": sidecars[0].error,
        "sent": real.sent,
        "completed": real.completed,
    }


def _prometheus_figures(prometheus: PrometheusServer, namespace: str, name: str) -> dict[str, Any]:
    """Peaks of the fleet's signals over the run, through the operator's own PromQL."""
    queries = promql.build(namespace, name, promql.QueryConfig(rate_window="10s"))
    figures: dict[str, Any] = {}
    for key, query in (("max_concurrency", queries.concurrency), ("max_tokens_per_second", queries.tokens_per_second)):
        try:
            figures[key] = prometheus.value(f"max_over_time(({query})[1h:1s])")
        except (OSError, RuntimeError, ValueError) as exc:
            figures[key] = None
            figures.setdefault("errors", []).append(f"{key}: {exc}")
    try:
        figures["targets"] = len(prometheus.target_health())
    except (OSError, RuntimeError, ValueError):
        figures["targets"] = None
    return figures


def _md_status(api: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    md = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
    )
    return dict(md.get("status") or {})


async def _run_load(
    config: DemoConfig,
    replay: TraceReplay,
    reader: view.FleetReader,
    nodepool: NodePool,
    namespace: str,
    deployment: str,
    min_replicas: int,
    stop: asyncio.Event,
    samples: list[view.Sample],
    events: list[view.EventLine],
    say: _Printer,
    *,
    sidecar: realvllm.Sidecar | None = None,
) -> None:
    """Replay, sample, print; return on --duration, at the end of trace + cool-down, or on a stop signal."""
    arrivals = [r.arrival for r in replay.trace]
    replaying = asyncio.get_running_loop().create_task(replay.run(), name="trace-replay")
    feeding = None
    if sidecar is not None:
        feeding = asyncio.get_running_loop().create_task(sidecar.feed(replay.trace, replay.clock), name="real-vllm")
    shown_sidecar = ""
    began = time.monotonic()
    trace_done_at: float | None = None
    say("")
    try:
        while True:
            snapshot, fresh = await asyncio.to_thread(reader.read)
            pods, ready = nodepool.counts(namespace, deployment)
            trace_now = replay.trace_now()
            tps = snapshot.tokens_per_second if snapshot else None
            sample = view.Sample(
                wall=time.monotonic() - began,
                trace_time=None if trace_now is None else min(trace_now, replay.trace_seconds),
                load=view.arrival_rate(arrivals, trace_now or 0.0) if not replaying.done() else 0.0,
                in_flight=replay.stats.in_flight,
                desired=snapshot.desired if snapshot else None,
                ready=snapshot.ready if snapshot else None,
                pods=pods,
                pods_ready=ready,
                tokens_per_second=None if tps is None else tps / config.compression,
                concurrency=snapshot.concurrency if snapshot else None,
                attainment=snapshot.attainment if snapshot else None,
                service_level_met=snapshot.service_level_met if snapshot else None,
            )
            samples.append(sample)
            say(view.format_sample(sample))
            for event in fresh:
                events.append(event)
                say(view.format_event(event))
            if (
                sidecar is not None
                and sidecar.status() != shown_sidecar
                and (len(samples) % 5 == 1 or not sidecar.ready)
            ):
                shown_sidecar = sidecar.status()
                say(f"  real vLLM {shown_sidecar}")
            now = time.monotonic()
            if replaying.done() and trace_done_at is None:
                trace_done_at = now
                say("  -- trace replayed; the fleet cools down")
            if config.duration is not None:
                if now - began >= config.duration:
                    break
            elif trace_done_at is not None:
                settled = sample.desired is not None and sample.desired <= min_replicas and pods <= min_replicas
                if settled or now - trace_done_at >= config.cooldown:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=config.view_interval)
            if stop.is_set():
                say("  -- interrupted")
                break
    finally:
        for task in (replaying, feeding):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
