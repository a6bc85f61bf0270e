"""Install, start, stop, load and scrape a real `vllm serve` for tests.

Why it exists: the operator's two contracts with vLLM (the Prometheus metrics it reads and
the command line it writes) can only be proven against the real server. This module holds the
imperative parts the fixtures in conftest.py and the end-to-end tests share: running
scripts/real-vllm.sh, building the tiny model with the vLLM venv's python, starting one server
on loopback and stopping it by process group, sending exact-count load, parsing `/metrics`
with prometheus_client's own text parser.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from neuronfleet.demo import realvllm

__all__ = [
    "REPO",
    "InstallOutcome",
    "LoadResult",
    "MetricSampler",
    "VllmServer",
    "build_tiny_model",
    "closed_loop",
    "free_port",
    "get_json",
    "install_vllm",
    "offline_env",
    "parse_metrics",
    "prometheus_over",
    "sample_value",
    "scrape",
    "send_completions",
    "start_server",
    "stop_process_group",
]

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "real-vllm.sh"
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
# scripts/real-vllm.sh: 3 means the registry could not be reached; every other failure is a bug.
EXIT_REGISTRY_OUTAGE = 3


@dataclass(frozen=True)
class InstallOutcome:
    """The vLLM venv's python, or why there is none (`outage` True: skip; False: fail)."""

    python: Path | None
    reason: str = ""
    outage: bool = False


def install_vllm(*, timeout: float = 900.0) -> InstallOutcome:
    """Run the install script; seconds when cached, ~2.5 min cold."""
    proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode == 0:
        return InstallOutcome(python=Path(proc.stdout.strip().splitlines()[-1]))
    tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
    return InstallOutcome(
        python=None,
        reason=f"scripts/real-vllm.sh exited {proc.returncode}:\n{tail}",
        outage=proc.returncode == EXIT_REGISTRY_OUTAGE,
    )


def offline_env(home: Path) -> dict[str, str]:
    """Environment for vLLM and transformers: no hub, no telemetry, caches in the test's tmp."""
    return realvllm.offline_env(home)  # the demo's real replica runs with the same environment


def build_tiny_model(python: Path, out: Path, *, env: dict[str, str]) -> Path:
    """Build the tiny Llama with the vLLM venv's python (it has torch and transformers)."""
    proc = subprocess.run(
        [str(python), str(TINY_MODEL_SCRIPT), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tiny model build failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return out


def free_port() -> int:
    """A port the kernel just handed out on loopback (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Runs in the child before exec: its own process group, SIGTERM if pytest dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class VllmServer:
    """One running `vllm serve` and the knobs it was started with."""

    process: subprocess.Popen[bytes]
    port: int
    model_dir: Path
    served_name: str
    max_num_seqs: int
    kv_cache_bytes: int
    log_path: Path
    startup_seconds: float = 0.0
    args: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_server(
    python: Path,
    model_dir: Path,
    *,
    log_path: Path,
    env: dict[str, str],
    served_name: str = "tiny",
    max_num_seqs: int = 8,
    kv_cache_bytes: int = 16 * 1024 * 1024,
    startup_timeout: float = 300.0,
) -> VllmServer:
    """Start `vllm serve` on a free loopback port and wait for /health; raise with the log on failure."""
    port = free_port()
    vllm = python.parent / "vllm"
    # --enforce-eager: no torch.compile warm-up (startup ~50 s instead of 80-115 s).
    # A small KV cache (16 MiB = 8192 tokens of this model in float32) so kv_cache_usage_perc moves.
    # float32, not the model's bfloat16: vLLM's CPU attention takes its AMX kernel for bfloat16 only,
    # and on one of our machines that kernel's worker died of SIGILL on some runs (faulthandler:
    # "Illegal instruction" in cpu_attention_with_kv_cache) while the same server had served before.
    args = [
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        served_name,
        "--max-model-len",
        "512",
        "--dtype",
        "float32",
        "--enforce-eager",
        "--max-num-seqs",
        str(max_num_seqs),
        "--kv-cache-memory-bytes",
        str(kv_cache_bytes),
    ]
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(vllm), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent,
    )
    log.close()
    server = VllmServer(
        process=proc,
        port=port,
        model_dir=model_dir,
        served_name=served_name,
        max_num_seqs=max_num_seqs,
        kv_cache_bytes=kv_cache_bytes,
        log_path=log_path,
        args=args,
    )
    deadline = started + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited {proc.returncode} during startup:\n{server.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.base_url}/health", timeout=2) as resp,
        ):
            if resp.status == 200:
                server.startup_seconds = time.monotonic() - started
                return server
        time.sleep(0.5)
    stop_process_group(proc)
    raise RuntimeError(f"vllm serve not healthy after {startup_timeout:.0f} s:\n{server.log_tail()}")


def stop_process_group(proc: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    """SIGTERM the server's own process group (its PID), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    # EngineCore and Worker are children in the same group; make sure none outlives the test.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def get_json(url: str, body: dict[str, object] | None = None, *, timeout: float = 120.0) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def scrape(server: VllmServer, *, timeout: float = 10) -> str:
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=timeout) as resp:
        return resp.read().decode()


def parse_metrics(text: str) -> dict[str, object]:
    """Family name -> prometheus_client Metric (counters lose `_total` in the family name)."""
    return {fam.name: fam for fam in text_string_to_metric_families(text)}


def sample_value(text: str, sample_name: str, **labels: str) -> float:
    """Sum of the samples called `sample_name` whose labels include `labels`."""
    total = 0.0
    found = False
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
                found = True
    if not found:
        raise KeyError(f"no sample {sample_name}{labels or ''} in the exposition")
    return total


@dataclass(frozen=True)
class LoadResult:
    """What the test sent and what came back."""

    requests: int
    max_tokens: int
    completion_tokens: list[int]  # usage.completion_tokens of each reply
    prompt_tokens: list[int]  # usage.prompt_tokens of each reply
    started: float  # time.time() before the first request
    finished: float  # time.time() after the last response
    all_busy_until: float = 0.0  # time.time() when the first client finished: full concurrency until then

    @property
    def sent_tokens(self) -> int:
        return self.requests * self.max_tokens


def _completion_body(server: VllmServer, max_tokens: int, prompt: str) -> dict[str, object]:
    # ignore_eos: random weights emit </s> now and then; without it token counts are not exact.
    return {
        "model": server.served_name,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
    }


def send_completions(
    server: VllmServer, *, requests: int, max_tokens: int, prompt: str = "the fleet scales"
) -> LoadResult:
    """Send `requests` completions at once; `ignore_eos` makes each produce exactly `max_tokens`."""
    return closed_loop(server, workers=requests, per_worker=1, max_tokens=max_tokens, prompt=prompt)


def closed_loop(
    server: VllmServer,
    *,
    workers: int,
    per_worker: int,
    max_tokens: int,
    prompt: str = "the fleet scales",
    at_least_seconds: float = 0.0,
    until: Callable[[], bool] | None = None,
    at_most_seconds: float = 120.0,
) -> LoadResult:
    """`workers` clients, each sending its next completion as soon as the previous one returns.

    The number of requests in the server is then `workers` at (almost) every instant, which makes
    the concurrency a reader sees a known number rather than a burst that drains. Each client sends
    `per_worker` requests, and keeps sending until `at_least_seconds` have passed: how many tokens a
    machine serves in a given time varies several-fold between machines and loads, so a test that
    needs the load to last says how long, not how many requests. `until`, when given, also keeps them
    sending until it returns True or `at_most_seconds` have passed: a reader that must see the load
    (a starved 2-core machine can hide it from the gauges for a while) says what it waits for.
    """
    body = _completion_body(server, max_tokens, prompt)
    url = f"{server.base_url}/v1/completions"
    started = time.time()

    def worker(_: int) -> tuple[list[tuple[int, int]], float]:
        usages = []
        while (
            len(usages) < per_worker
            or time.time() < started + at_least_seconds
            or (until is not None and not until() and time.time() < started + at_most_seconds)
        ):
            usages.append(get_json(url, body)["usage"])
        pairs = [(int(u["completion_tokens"]), int(u["prompt_tokens"])) for u in usages]  # type: ignore[index]
        return pairs, time.time()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(worker, range(workers)))
    finished = time.time()
    counts = [pair for pairs, _ in results for pair in pairs]
    return LoadResult(
        requests=len(counts),
        max_tokens=max_tokens,
        completion_tokens=[completion for completion, _ in counts],
        prompt_tokens=[prompt for _, prompt in counts],
        started=started,
        finished=finished,
        all_busy_until=min(done for _, done in results),
    )


class MetricSampler:
    """Scrapes /metrics in a background thread and keeps every value `pick` returns."""

    def __init__(self, server: VllmServer, pick: Callable[[str], dict[str, float]], *, every: float = 0.1):
        self._server = server
        self._pick = pick
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[dict[str, float]] = []
        self.times: list[tuple[float, float]] = []  # (scrape sent, scrape answered), time.time()

    def _run(self) -> None:
        while not self._stop.is_set():
            # A busy 2-core machine can delay /metrics for seconds while the engine works; a short
            # timeout would drop exactly the samples taken under load.
            sent = time.time()
            with contextlib.suppress(OSError):
                self.samples.append(self._pick(scrape(self._server, timeout=120)))
                self.times.append((sent, time.time()))
            self._stop.wait(self._every)

    @contextlib.contextmanager
    def running(self) -> Iterator[MetricSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)

    def max(self, key: str) -> float:
        return max(s[key] for s in self.samples)

    def timeline(self, *, since: float) -> str:
        """One line per scrape, `sent->answered` in seconds from `since`: for failure messages."""
        return "\n".join(
            f"{sent - since:7.2f}->{answered - since:7.2f} {sample}"
            for (sent, answered), sample in zip(self.times, self.samples, strict=True)
        )


def prometheus_over(
    server: VllmServer, workdir: Path, *, namespace: str, fleet: str, scrape_seconds: float
) -> Iterator[Any]:
    """A real Prometheus scraping `server` with the labels a PodMonitor gives a fleet's pod (a generator
    for a module fixture: it stops Prometheus when closed). Skips when the binary is missing."""
    import pytest

    from e2e import prometheus_support

    binary = prometheus_support.find_binary()
    if binary is None:
        pytest.skip(prometheus_support.missing_binary_reason())
    labels = {"namespace": namespace, "app_kubernetes_io_instance": fleet, "pod": f"{fleet}-0"}
    target = prometheus_support.Target(f"127.0.0.1:{server.port}", labels)
    prom = prometheus_support.start_prometheus(
        [target], workdir=workdir, scrape_interval=f"{scrape_seconds:g}s", binary=binary
    )
    try:
        prom.wait_for_scrapes(3)
        yield prom
    finally:
        prom.stop()
