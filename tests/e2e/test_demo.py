"""`neuronfleet demo` end to end, plus the pure parts it is built from.

The end-to-end tests run the real command in a subprocess, as `make demo` does: the emulated API
server, the real operator (`neuronfleet run`, its own subprocess), the simulated Neuron node pool
and a real Prometheus (Debian binary; skipped loudly without it). Neuron hardware is the boundary
we cannot run: the replicas are simulated by the engine model, which is the point of the demo.
They check what a user relies on: the fleet scales up under the trace's load and back down after
it, and when the demo ends (by itself or on Ctrl-C) no process it started is alive and no port it
listened on is open.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from neuronfleet.api import convert, resource
from neuronfleet.autoscale import promql
from neuronfleet.demo import app, nodepool, prometheus, report, router, view
from neuronfleet.demo.clock import CompressedClock
from neuronfleet.demo.load import RequestOutcome, trace_window
from neuronfleet.demo.replica import SimulatedReplica, prompt_length
from neuronfleet.sim import histograms
from neuronfleet.sim.profiles import LLAMA_8B_TRN2_TP4
from neuronfleet.sim.trace import TraceRequest, read_trace

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "examples" / "demo" / "llama3-8b-trn2.yaml"


# -- the whole demo ------------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    """PIDs whose parent is `pid`, from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _fast_manifest(tmp_path: Path) -> Path:
    """The demo's ModelDeployment with a shorter scale-down window, so a test run takes seconds."""
    doc = yaml.safe_load(MANIFEST.read_text())
    doc["spec"]["autoscaling"]["behavior"]["scaleDown"] = {
        "stabilizationWindowSeconds": 6,
        "policies": [{"type": "Pods", "value": 8, "periodSeconds": 5}],
    }
    path = tmp_path / "md.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


class DemoRun:
    """`neuronfleet demo` in a subprocess; a thread collects its output, `watch` samples its children."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        command = [
            sys.executable,
            "-m",
            "neuronfleet.cli",
            "demo",
            "-f",
            str(_fast_manifest(tmp_path)),
            "--workdir",
            str(tmp_path / "work"),
            "--summary-json",
            str(tmp_path / "summary.json"),
            "--interval",
            "1",
            *args,
        ]
        self.summary_path = tmp_path / "summary.json"
        self.lines: list[str] = []
        self.children: set[int] = set()
        self.process = subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def watch(self, seconds: float, *, until: Callable[[], bool] = lambda: False) -> None:
        """Sample the demo's child PIDs for `seconds`, or until it exits or `until()` holds."""
        deadline = time.monotonic() + seconds
        while self.process.poll() is None and time.monotonic() < deadline and not until():
            self.children |= _children(self.process.pid)
            time.sleep(0.2)

    def finish(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError("the demo did not end in time:\n" + "\n".join(self.lines[-60:])) from None
        self._reader.join(5)
        return code

    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.summary_path.read_text()))


def _assert_nothing_left(summary: dict[str, Any], children: set[int]) -> None:
    assert {summary["pids"]["operator"], summary["pids"]["prometheus"]} <= children
    left = sorted(pid for pid in children if _alive(pid))
    assert not left, f"processes left behind: {left}"
    ports = summary["ports"]
    assert len(ports) >= 5, ports  # API server, Service, Prometheus, operator metrics, at least one replica
    still_open = sorted(name for name, port in ports.items() if _listening(port))
    assert not still_open, f"ports still listening: {still_open}"


@pytest.mark.slow
def test_the_demo_scales_up_under_the_trace_and_back_down_and_leaves_nothing_behind(
    prometheus_binary: str, tmp_path: Path
) -> None:
    plot = tmp_path / "demo.png"
    demo = DemoRun(
        tmp_path,
        *("--compression", "20", "--trace-seconds", "200", "--startup", "60", "--cooldown", "45", "--plot", str(plot)),
    )
    demo.watch(110)
    code = demo.finish(timeout=30)
    output = demo.output
    assert code == 0, output
    summary = demo.summary()
    replicas = summary["replicas"]
    assert replicas["scaled_up"], output
    assert replicas["max_desired"] >= 2, output
    assert replicas["scaled_down"], output
    assert replicas["last_desired"] == replicas["min_replicas"] == 1, output
    assert summary["replicas_started"] >= replicas["max_desired"]
    requests = summary["requests"]
    assert requests["sent"] > 800
    assert requests["completed"] >= 0.95 * requests["sent"], requests
    # Prometheus scraped the replicas with the labels the operator's PromQL selects on.
    assert summary["prometheus"]["max_concurrency"] > 0, summary["prometheus"]
    assert summary["prometheus"]["max_tokens_per_second"] > 0, summary["prometheus"]
    # The operator told the user why it scaled, and the view showed it.
    assert summary["scale_events"], summary["events"]
    assert any(line.startswith("  >> ") for line in demo.lines)
    # The fleet is sized by an SLO: the operator measured its service level from the replicas' vLLM
    # histograms, the live view showed it, and the summary sets it beside the per-request truth.
    level = summary["service_level"]
    assert level["measured_samples"] > 0, output
    assert 0.0 <= level["measured_min"] <= 1.0 and 0.0 <= level["measured_last"] <= 1.0
    assert level["goal"] == 0.99 and level["window_seconds"] == 300
    assert level["per_request"] is not None and 0.0 < level["per_request"] <= 1.0
    assert "service level   goal 99.0 %; measured by the operator" in output
    assert any("| SLO " in line and "%" in line for line in demo.lines), output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _assert_nothing_left(summary, demo.children)


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_cleanly_in_the_middle_of_the_load(prometheus_binary: str, tmp_path: Path) -> None:
    """Also asks for --real-vllm where none is installed (an empty cache): the demo says so and goes on."""
    demo = DemoRun(
        tmp_path,
        *("--compression", "10", "--startup", "20", "--duration", "600", "--no-plot", "--real-vllm"),
        env={"NEURONFLEET_CACHE": str(tmp_path / "empty-cache")},
    )
    # The first live-view line means the load is on.
    demo.watch(60, until=lambda: any(line.startswith("  0:0") for line in demo.lines))
    assert demo.process.poll() is None, demo.output
    demo.watch(2)
    os.kill(demo.process.pid, signal.SIGINT)
    code = demo.finish(timeout=45)
    assert code == 0, demo.output
    summary = demo.summary()
    assert summary["interrupted"] is True
    assert summary["real_vllm"]["available"] is False
    assert "Real vLLM    unavailable: the vLLM CPU virtualenv is not installed" in demo.output
    assert not (tmp_path / "neuronfleet-demo.png").exists()
    assert summary["requests"]["sent"] > 0
    assert not (tmp_path / "work" / "prometheus" / "targets" / "vllm.json").read_text().strip("[]\n ")
    _assert_nothing_left(summary, demo.children)


# -- a replica, as a client and Prometheus see it ------------------------------------------------


async def test_a_simulated_replica_answers_like_vllm_health_completions_and_metrics() -> None:
    clock = CompressedClock(50)
    replica = await SimulatedReplica(
        profile=LLAMA_8B_TRN2_TP4, clock=clock, served_name="llama3-8b", startup_seconds=10, max_model_len=4096
    ).start()
    base = f"http://{replica.address}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health") as response:
                assert response.status == 503  # still "loading"
            await asyncio.wait_for(replica.ready_event.wait(), timeout=5)
            async with session.get(f"{base}/health") as response:
                assert response.status == 200
            body = {"model": "llama3-8b", "prompt": [1] * 500, "max_tokens": 40, "ignore_eos": True}
            async with session.post(f"{base}/v1/completions", json=body) as response:
                assert response.status == 200
                answer = await response.json()
            assert answer["object"] == "text_completion"
            assert answer["usage"] == {"prompt_tokens": 500, "completion_tokens": 40, "total_tokens": 540}
            assert answer["choices"][0]["finish_reason"] == "length"
            timing = answer["neuronfleet_timing"]
            # One prefill step, then 39 decode steps of the calibrated profile (batch of one).
            step = LLAMA_8B_TRN2_TP4.step_seconds(0, 500)
            decode = LLAMA_8B_TRN2_TP4.step_seconds(1, 0)
            assert timing["ttft_seconds"] == pytest.approx(step, rel=1e-6)
            assert timing["e2e_seconds"] == pytest.approx(step + 39 * decode, rel=1e-6)
            too_long = {"model": "llama3-8b", "prompt": [1] * 4090, "max_tokens": 10}
            async with session.post(f"{base}/v1/completions", json=too_long) as response:
                assert response.status == 400
            async with session.get(
                f"{base}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            ) as response:
                exposition = await response.text()
            async with session.get(f"{base}/metrics", headers={"Accept": "text/plain"}) as response:
                classic = await response.text()
    finally:
        await replica.stop()
    labels = '{engine="0",model_name="llama3-8b"}'
    assert f"vllm:generation_tokens_total{labels} 40.0" in classic
    assert f"vllm:prompt_tokens_total{labels} 500.0" in classic
    assert f"vllm:num_requests_running{labels} 0.0" in classic
    assert f"vllm:num_requests_waiting{labels} 0.0" in classic
    assert 'vllm:request_success_total{engine="0",finished_reason="length",model_name="llama3-8b"} 1.0' in classic
    assert "vllm:time_to_first_token_seconds_bucket" in classic
    # Every histogram the operator's service level and capacity fit read, with vLLM's names and buckets.
    for family in histograms.FAMILIES:
        assert f"# TYPE vllm:{family} histogram" in classic, family
    assert 'vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="llama3-8b"} 1.0' in classic
    assert f"vllm:request_prompt_tokens_sum{labels} 500.0" in classic
    assert f"vllm:request_time_per_output_token_seconds_count{labels} 1.0" in classic
    assert f"vllm:inter_token_latency_seconds_count{labels} 39.0" in classic  # one per token after the first
    # OpenMetrics negotiation writes underscores, as prometheus-client does for vLLM itself.
    assert f"vllm_generation_tokens_total{labels} 40.0" in exposition


async def test_a_hung_replica_leaves_metrics_unanswered_until_it_resumes_and_still_serves_health() -> None:
    replica = await SimulatedReplica(
        profile=LLAMA_8B_TRN2_TP4, clock=CompressedClock(50), served_name="m", startup_seconds=1
    ).start()
    base = f"http://{replica.address}"
    try:
        await asyncio.wait_for(replica.ready_event.wait(), timeout=5)
        async with aiohttp.ClientSession() as session:
            replica.hang()
            with pytest.raises(TimeoutError):
                async with session.get(f"{base}/metrics", timeout=aiohttp.ClientTimeout(total=0.5)):
                    pass
            async with session.get(f"{base}/health") as response:
                assert response.status == 200
            replica.resume()
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert "vllm:num_requests_running" in await response.text()
    finally:
        await replica.stop()


async def test_a_streamed_completion_sends_the_first_token_through_the_router_while_decoding_goes_on() -> None:
    clock = CompressedClock(10)
    replica = await SimulatedReplica(
        profile=LLAMA_8B_TRN2_TP4, clock=clock, served_name="llama3-8b", startup_seconds=0
    ).start()
    service = await router.Router().start()
    try:
        await replica.ready_event.wait()
        service.set_endpoint("pod-a", replica.address)
        body = {
            "model": "llama3-8b",
            "prompt": [1] * 100,
            "max_tokens": 400,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events: list[str] = []
        running_at_first_chunk = None
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{service.url}/v1/completions", json=body) as response,
        ):
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for line in response.content:
                text = line.decode().strip()
                if not text:
                    continue
                if running_at_first_chunk is None:
                    replica.advance()
                    running_at_first_chunk = replica.engine.running
                events.append(text)
    finally:
        await service.stop()
        await replica.stop()
    assert running_at_first_chunk == 1  # the first token arrived while the other 399 were still being made
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "length"]
    assert "".join(c["choices"][0]["text"] for c in chunks).split() == ["tok"] * 400
    assert chunks[-1]["usage"] == {"prompt_tokens": 100, "completion_tokens": 400, "total_tokens": 500}


async def test_requests_beyond_max_num_seqs_wait_and_show_as_waiting() -> None:
    clock = CompressedClock(50)
    profile = nodepool.replica_settings(
        {"spec": {"containers": [{"args": ["vllm", "serve", "x", "--max-num-seqs", "2"]}]}}
    ).profile
    replica = await SimulatedReplica(profile=profile, clock=clock, served_name="x", startup_seconds=0).start()
    try:
        await replica.ready_event.wait()
        tasks = [asyncio.create_task(replica.complete(100, 500)) for _ in range(5)]
        await asyncio.sleep(0.05)
        replica.advance()
        assert (replica.engine.running, len(replica.engine.waiting)) == (2, 3)
        results = await asyncio.gather(*tasks)
    finally:
        await replica.stop()
    firsts = sorted(r.first_token for r in results)
    assert firsts[2] > firsts[1]  # the third request got its slot only when one of the first two ended


@pytest.mark.parametrize(
    ("prompt", "tokens"),
    [("four words of text", 4), ([7, 8, 9], 3), ("", 1)],
    ids=["text counts words", "token ids count themselves", "empty prompt is one token"],
)
def test_prompt_length_counts_tokens_of_either_prompt_form(prompt: Any, tokens: int) -> None:
    assert prompt_length(prompt) == tokens


def test_a_batched_prompt_is_refused() -> None:
    with pytest.raises(ValueError, match="batched"):
        prompt_length([[1, 2], [3]])


# -- the pure parts --------------------------------------------------------------------------------

P = nodepool.PodView


@pytest.mark.parametrize(
    ("pods", "desired", "max_unavailable", "removed"),
    [
        ([P("a", "new", True, 1), P("b", "new", True, 2)], 2, 1, []),
        ([P("a", "new", True, 1), P("b", "new", False, 2), P("c", "new", True, 3)], 1, 1, ["b", "c"]),
        ([P("a", "old", True, 1), P("b", "old", True, 2)], 2, 1, ["b"]),
        ([P("a", "old", False, 1), P("b", "old", True, 2)], 2, 1, ["a"]),
        ([P("a", "old", True, 1), P("b", "new", False, 2)], 2, 1, []),
        ([P("a", "old", True, 1), P("b", "old", True, 2), P("c", "old", True, 3)], 3, 2, ["c", "b"]),
    ],
    ids=[
        "a fleet at its size keeps every pod",
        "scale-down takes not-ready pods first, then the youngest",
        "a rollout replaces one old pod at a time, youngest first",
        "an old pod that is not ready goes first at no cost",
        "a rollout waits while a new pod is still starting",
        "maxUnavailable 2 replaces two at once",
    ],
)
def test_pods_to_remove_follows_the_deployment_controllers_order(
    pods: list[nodepool.PodView], desired: int, max_unavailable: int, removed: list[str]
) -> None:
    assert (
        nodepool.pods_to_remove(pods, desired=desired, current_hash="new", max_unavailable=max_unavailable) == removed
    )


def test_deployment_status_counts_pods_and_leaves_zeros_out() -> None:
    deployment = {"metadata": {"name": "llama", "generation": 3}, "spec": {"replicas": 3}}
    pods = [P("a", "new", True, 1), P("b", "old", True, 2), P("c", "new", False, 3)]
    status = nodepool.deployment_status(deployment, pods, current_hash="new", previous={}, now="T")
    assert status["observedGeneration"] == 3
    assert (status["replicas"], status["updatedReplicas"], status["readyReplicas"]) == (3, 2, 2)
    assert status["unavailableReplicas"] == 1
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "ReplicaSetUpdated"),
    }
    done = nodepool.deployment_status(
        deployment, [P(n, "new", True, i) for i, n in enumerate("abc")], current_hash="new", previous=status, now="U"
    )
    assert "unavailableReplicas" not in {k for k, v in done.items() if v is not None}
    progressing = next(c for c in done["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["lastTransitionTime"] == "T"  # status stayed True: no transition


def test_replica_settings_follow_the_rendered_vllm_arguments() -> None:
    from neuronfleet.api import convert, resource
    from neuronfleet.neuron import planner
    from neuronfleet.render import children
    from neuronfleet.render.options import RenderOptions

    md = resource.load(yaml.safe_load(MANIFEST.read_text()))
    plan = planner.plan(convert.plan_request(md))
    rendered = {c["kind"]: c for c in children.desired(md, plan, replicas=1, options=RenderOptions())}
    settings = nodepool.replica_settings(rendered["Deployment"]["spec"]["template"])
    assert settings.profile.name == "llama-3.1-8b-trn2-tp4"
    assert settings.served_name == "llama3-8b"
    assert settings.max_model_len == 8192
    assert settings.profile.max_num_seqs == 32


def test_prometheus_target_labels_are_what_kubernetes_relabeling_yields() -> None:
    labels = prometheus.pod_target_labels(
        "demo", "llama3-8b-abc", {"app.kubernetes.io/instance": "llama3-8b", "pod-template-hash": "1"}
    )
    assert labels == {
        "app_kubernetes_io_instance": "llama3-8b",
        "pod_template_hash": "1",
        "namespace": "demo",
        "pod": "llama3-8b-abc",
    }


@pytest.mark.parametrize(
    ("outstanding", "chosen"),
    [({}, None), ({"a": 3, "b": 1, "c": 1}, "b"), ({"a": 0}, "a")],
    ids=["no endpoint, no choice", "fewest outstanding wins, first on ties", "a single endpoint"],
)
def test_the_router_picks_the_endpoint_with_the_fewest_requests(
    outstanding: dict[str, int], chosen: str | None
) -> None:
    assert router.pick_least_outstanding(outstanding) == chosen


def test_the_manifest_is_adapted_to_the_time_scale_and_the_demos_prometheus() -> None:
    doc = yaml.safe_load(MANIFEST.read_text())
    doc["spec"]["autoscaling"]["metrics"] = {"tokensPerSecondPerReplica": 450, "concurrencyPerReplica": 24}
    md = app.adapt_manifest(doc, compression=20, prometheus_url="http://127.0.0.1:9")
    metrics = md["spec"]["autoscaling"]["metrics"]
    assert metrics["tokensPerSecondPerReplica"] == 20 * 450
    assert metrics["concurrencyPerReplica"] == 24
    assert md["spec"]["autoscaling"]["prometheus"]["url"] == "http://127.0.0.1:9"
    assert "url" not in doc["spec"]["autoscaling"].get("prometheus", {})  # the input is untouched


def test_with_an_slo_the_prompt_token_rate_is_read_per_simulated_second() -> None:
    """The shipped manifest states an SLO: the engine-load target's prompt tokens/s must be simulated."""
    doc = yaml.safe_load(MANIFEST.read_text())
    assert doc["spec"]["autoscaling"]["slo"] and not doc["spec"]["autoscaling"].get("metrics")
    md = app.adapt_manifest(doc, compression=20, prometheus_url="http://127.0.0.1:9")
    query = md["spec"]["autoscaling"]["prometheus"]["queries"]["promptTokensPerSecond"]
    assert query.endswith(" / 20")
    built = promql.build("demo", "llama3-8b", convert.query_config(resource.load(md).spec.autoscaling))
    assert built.prompt_tokens_per_second == (
        'sum(rate({__name__=~"vllm[:_]prompt_tokens_total",namespace="demo",app_kubernetes_io_instance="llama3-8b"}'
        "[10s])) / 20"
    )
    without = {**doc, "spec": {**doc["spec"], "autoscaling": {**doc["spec"]["autoscaling"], "slo": None}}}
    assert (
        "queries"
        not in app.adapt_manifest(without, compression=20, prometheus_url="x")["spec"]["autoscaling"]["prometheus"]
    )
    assert app.service_level_window(10) == 30 and app.service_level_window(100) == 10


def test_the_summary_sets_the_measured_service_level_beside_the_per_request_truth() -> None:
    slo = app.demo_slo(resource.load(yaml.safe_load(MANIFEST.read_text())))
    assert slo is not None and (slo.ttft_base, slo.ttft_tokens_per_second, slo.min_tokens_per_second) == (1, 4000, 10)
    outcomes = [
        RequestOutcome(0.0, 200, 1000, 11, ttft=0.5, e2e=1.5),  # 100 ms per token after the first: met
        RequestOutcome(1.0, 200, 1000, 11, ttft=1.5, e2e=2.0),  # 1.5 s > 1 s + 1000/4000: late
        RequestOutcome(2.0, 200, 4000, 11, ttft=1.9, e2e=2.5),  # 1.9 s <= 1 s + 4000/4000: met
        RequestOutcome(3.0, 503, 10, 1),  # never answered: not judged
    ]
    assert report.per_request_attainment(outcomes, slo) == pytest.approx(2 / 3)

    def sample(wall: float, attainment: float | None, met: str | None) -> view.Sample:
        return view.Sample(wall, wall, 1.0, 3, 2, 2, 2, 2, 100.0, 3.0, attainment=attainment, service_level_met=met)

    samples = [sample(0, None, "Unknown"), sample(1, 0.97, "False"), sample(2, 0.995, "True"), sample(3, 0.996, "True")]
    summary = report.summarize(
        samples, outcomes, [], compression=10, cores_per_replica=4, min_replicas=1, slo=slo, window_seconds=300
    )
    level = summary["service_level"]
    assert (level["measured_last"], level["measured_min"], level["measured_samples"]) == (0.996, 0.97, 3)
    assert level["met_share"] == pytest.approx(2 / 3)
    text = report.format_summary(summary)
    assert "service level   goal 99.0 %; measured by the operator" in text
    assert "last window (300 s) 99.6 %, lowest 97.0 %, goal met in 66.7 % of the judged samples" in text
    assert "per request over the whole run 66.7 %" in text
    assert "service_level" not in report.summarize(
        samples, outcomes, [], compression=10, cores_per_replica=4, min_replicas=1
    )


@pytest.mark.parametrize(
    ("attainment", "met", "shown"),
    [
        (0.9962, "True", "SLO  99.6% met"),
        (0.91, "False", "SLO  91.0% MISSED"),
        (None, "Unknown", "SLO      - (Unknown)"),
        (None, None, ""),
    ],
    ids=["met", "missed", "not judged yet", "no SLO in the spec"],
)
def test_the_live_view_shows_the_measured_service_level(attainment, met, shown) -> None:
    line = view.format_sample(
        view.Sample(60, 60, 1.0, 3, 2, 2, 2, 2, 100.0, 3.0, attainment=attainment, service_level_met=met)
    )
    assert line.endswith(shown) if shown else "SLO" not in line
    snapshot = view.snapshot_from(
        {
            "status": {
                "serviceLevel": {"attainment": 0.99},
                "conditions": [{"type": "ServiceLevelMet", "status": "True"}],
            }
        }
    )
    assert (snapshot.attainment, snapshot.service_level_met) == (0.99, "True")


def test_the_shipped_trace_excerpt_is_a_readable_azure_trace() -> None:
    trace = read_trace(app.DEFAULT_TRACE)
    assert 5000 < len(trace) < 10000
    assert 14 * 60 < trace[-1].arrival <= 15 * 60
    assert app.DEFAULT_TRACE.stat().st_size < 300_000
    assert "CC-BY-4.0" in (app.DEFAULT_TRACE.parent / "README.md").read_text()


def test_a_trace_window_is_rebased_to_start_at_zero() -> None:
    trace = tuple(TraceRequest(float(t), 10, 5) for t in range(10))
    window = trace_window(trace, start=3, seconds=4)
    assert [r.arrival for r in window] == [0.0, 1.0, 2.0, 3.0]


def test_the_arrival_rate_looks_back_one_window() -> None:
    arrivals = [0.5, 1.0, 1.5, 59.0, 61.0, 119.0]
    assert view.arrival_rate(arrivals, 60.0) == pytest.approx(4 / 60)
    assert view.arrival_rate(arrivals, 120.0) == pytest.approx(2 / 60)
    assert view.arrival_rate(arrivals, 2.0) == pytest.approx(3 / 2)  # shorter than a window so far


@pytest.mark.parametrize(
    ("message", "scaled"),
    [
        ("1 -> 5 replicas: scale-up to 21 limited by the scale-up policies", True),
        ("8 -> 2 replicas: demand below target for the whole stabilization window", True),
        ("Holding replicas: 1 -> 1 replicas: metrics unavailable, holding", False),
        ("Rollout finished: 5 of 5 replicas ready", False),
    ],
    ids=["a limited scale-up", "a scale-down", "a hold is no scale", "a rollout is no scale"],
)
def test_scale_decisions_are_told_apart_from_other_events(message: str, scaled: bool) -> None:
    assert report.is_scale_event(view.EventLine("", "Normal", "Any", message)) is scaled


def test_every_demo_module_exports_names_that_exist() -> None:
    import importlib
    import pkgutil

    import neuronfleet.demo

    for module_info in pkgutil.iter_modules(neuronfleet.demo.__path__):
        module = importlib.import_module(f"neuronfleet.demo.{module_info.name}")
        assert module.__doc__, module_info.name
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module_info.name}: {missing}"
