"""`neuronfleet demo --real-vllm`: one real vLLM server (CPU build, tiny model) beside the simulated replicas.

The simulated replicas speak vLLM's metric names because we wrote them to; this one does because
it is vLLM. It joins the fleet as one more scrape target with the fleet's labels (pod
`real-vllm`), so its real `vllm:*` series flow through the same Prometheus, the operator's PromQL
and the live view. It gets a thin side load of its own (a sample of the trace's requests,
shortened to its 512-token context), not the Service's traffic: a 1.3 M-parameter model on two
CPU cores is no Neuron replica, and the trace's prompts would not fit it.

It needs what the real-vLLM tests use, from a source checkout: `scripts/real-vllm.sh` (the
cached CPU virtualenv; this module never installs it, that takes minutes and gigabytes) and
`tests/realvllm/tiny_model.py` (builds the model offline). When either is missing the demo says
so and runs without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from neuronfleet.demo.clock import CompressedClock
from neuronfleet.demo.prometheus import Target, free_port
from neuronfleet.sim.trace import TraceRequest

__all__ = ["POD_NAME", "Installation", "RealVllm", "Sidecar", "find_installation", "offline_env"]

POD_NAME = "real-vllm"
INSTALL_SCRIPT = Path("scripts") / "real-vllm.sh"
TINY_MODEL = Path("tests") / "realvllm" / "tiny_model.py"
MAX_MODEL_LEN = 512


@dataclass(frozen=True)
class Installation:
    """The vLLM virtualenv's python and the tiny-model builder, or why they are not there."""

    python: Path | None
    tiny_model_script: Path | None
    reason: str = ""


def _repo_root() -> Path | None:
    for base in [Path.cwd(), *Path(__file__).resolve().parents]:
        if (base / INSTALL_SCRIPT).is_file():
            return base
    return None


def find_installation() -> Installation:
    """Ask scripts/real-vllm.sh (--print: never installs) where the cached vLLM venv is."""
    root = _repo_root()
    if root is None:
        return Installation(None, None, "scripts/real-vllm.sh is not here (it ships with the source tree)")
    script = root / TINY_MODEL
    if not script.is_file():
        return Installation(None, None, f"{TINY_MODEL} is missing")
    proc = subprocess.run(
        ["bash", str(root / INSTALL_SCRIPT), "--print"], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return Installation(
            None, None, "the vLLM CPU virtualenv is not installed; run scripts/real-vllm.sh once (~2.5 min, ~3.4 GB)"
        )
    return Installation(Path(proc.stdout.strip().splitlines()[-1]), script)


def offline_env(home: Path) -> dict[str, str]:
    """Environment for vLLM and transformers: no hub, no telemetry, caches under `home`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VLLM_", "HF_"))}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(home / "hf"),
        VLLM_CACHE_ROOT=str(home / "vllm-cache"),
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_HOST_IP="127.0.0.1",
    )
    return env


def _own_group_and_die_with_parent() -> None:
    os.setsid()  # vLLM forks EngineCore and workers: stop them all through the group
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class RealVllm:
    """Build the tiny model, run `vllm serve` on a loopback port, feed it, stop its process group."""

    def __init__(self, installation: Installation, *, workdir: Path, served_name: str) -> None:
        assert installation.python is not None and installation.tiny_model_script is not None
        self.python = installation.python
        self.script = installation.tiny_model_script
        self.workdir = workdir
        self.served_name = served_name
        self.port = free_port()
        self.log_path = workdir / "vllm.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.sent = 0
        self.completed = 0
        self.started_pid: int | None = None  # kept after stop, for the summary
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, *, timeout: float = 400.0) -> None:
        """Blocking (run it in a thread): build the model (~10 s), start vLLM, wait for /health (~1 min)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = offline_env(self.workdir)
        model = self.workdir / "model"
        build = subprocess.run(
            [str(self.python), str(self.script), str(model)], capture_output=True, text=True, env=env, timeout=300
        )
        if build.returncode != 0:
            raise RuntimeError(f"tiny model build failed:\n{build.stderr[-2000:]}")
        # The same small settings as tests/realvllm: eager mode, a KV cache small enough that usage moves.
        command = [
            str(self.python.parent / "vllm"),
            "serve",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--served-model-name",
            self.served_name,
            "--max-model-len",
            str(MAX_MODEL_LEN),
            "--dtype",
            "bfloat16",
            "--enforce-eager",
            "--max-num-seqs",
            "8",
            "--kv-cache-memory-bytes",
            str(8 * 1024 * 1024),
        ]
        with self._lock, self.log_path.open("ab") as log:
            if self._stopped:  # the demo ended while the model was being built
                raise RuntimeError("stopped before vllm serve started")
            process = self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_own_group_and_die_with_parent,
            )
            self.started_pid = process.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"vllm serve exited {process.returncode}; see {self.log_path}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"http://{self.address}/health", timeout=2):
                return
            time.sleep(0.5)
        raise RuntimeError(f"vllm serve not healthy after {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the server's process group, then SIGKILL whatever is left."""
        with self._lock:
            self._stopped = True
            process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    async def feed(
        self, trace: tuple[TraceRequest, ...], *, clock: CompressedClock, every: int = 10, concurrency: int = 16
    ) -> None:
        """Send every `every`-th trace request at its compressed time, shortened to fit the tiny context."""
        limit = asyncio.Semaphore(concurrency)  # two CPU cores: never flood the real server
        start = clock.now()
        url = f"http://{self.address}/v1/completions"
        tasks: set[asyncio.Task[None]] = set()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:

            async def send(request: TraceRequest) -> None:
                async with limit:
                    output = max(1, min(request.output_tokens, 128))
                    prompt = max(1, min(request.prompt_tokens, MAX_MODEL_LEN - output - 8))
                    body = {"model": self.served_name, "prompt": [7] * prompt, "max_tokens": output, "ignore_eos": True}
                    self.sent += 1
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.post(url, json=body) as response:
                            await response.read()
                            self.completed += response.status == 200

            try:
                for request in trace[::every]:
                    delay = clock.wall_at(start + request.arrival) - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if limit.locked():
                        continue  # the real server is saturated: skip rather than queue without bound
                    task = asyncio.get_running_loop().create_task(send(request))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                await asyncio.gather(*list(tasks), return_exceptions=True)
            finally:
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*list(tasks), return_exceptions=True)


class Sidecar:
    """The real vLLM's life inside the demo: started in the background, fed once ready, stopped at the end."""

    def __init__(self, real: RealVllm, *, labels: dict[str, str], publish: Callable[[], None]) -> None:
        self.real = real
        self.labels = labels
        self.publish = publish
        self.ready = False
        self.error: str | None = None
        self._starting: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._starting = asyncio.get_running_loop().create_task(self._start(), name="real-vllm-start")

    async def _start(self) -> None:
        try:
            await asyncio.to_thread(self.real.start)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            self.error = str(exc)
            return
        self.ready = True
        self.publish()

    async def wait(self, stop: asyncio.Event) -> None:
        """Until the server is up, has failed, or the demo is told to stop."""
        if self._starting is None:
            return
        stopping = asyncio.get_running_loop().create_task(stop.wait())
        try:
            await asyncio.wait({self._starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()

    def target(self) -> Target | None:
        return Target(self.real.address, self.labels) if self.ready else None

    async def feed(self, trace: tuple[TraceRequest, ...], clock: CompressedClock) -> None:
        if self._starting is not None:
            await asyncio.shield(self._starting)
        if self.ready:
            await self.real.feed(trace, clock=clock)

    async def stop(self) -> None:
        await asyncio.to_thread(self.real.stop)
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting

    def status(self) -> str:
        if self.error:
            return f"failed: {self.error}"
        if not self.ready:
            return "starting (a minute or so: importing vLLM, loading the tiny model)"
        return f"up on {self.real.address}: {self.real.completed}/{self.real.sent} side requests answered"
