"""A real Prometheus server (the Debian `prometheus` binary) on 127.0.0.1, for the demo and the tests.

Starts `prometheus` in a directory of its own, waits for `/-/ready`, and stops it by PID. Scrape
targets come from file-based service discovery (`file_sd_configs`): `set_targets` rewrites the
targets file atomically and Prometheus picks the change up by itself (it watches the file), the
way targets come and go as pods do in a cluster. Each target carries the labels Kubernetes service
discovery plus relabeling would have given a pod (`namespace`, `pod`, the pod labels with dots
and slashes turned into underscores: see `pod_target_labels`), which is what the operator's PromQL
selects on. Queries for polling are synchronous (urllib), so scripts and tests use them without
an event loop; an asyncio caller runs them in a thread.

    server = start_prometheus([Target("127.0.0.1:18000", {"namespace": "ml"})], workdir=tmp_path)
    try:
        server.wait_for_scrapes(3)
        print(server.query("sum(vllm:num_requests_running)"))
    finally:
        server.stop()

Set NEURONFLEET_PROMETHEUS to use a binary other than the one on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BINARY_ENV",
    "JOB",
    "PrometheusServer",
    "Target",
    "config_yaml",
    "find_binary",
    "free_port",
    "missing_binary_reason",
    "pod_target_labels",
    "running_prometheus",
    "start_prometheus",
]

BINARY_ENV = "NEURONFLEET_PROMETHEUS"
JOB = "vllm"
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Target:
    """One scrape target and the labels Kubernetes relabeling would have given it."""

    address: str  # host:port on 127.0.0.1
    labels: Mapping[str, str] = field(default_factory=dict)


def pod_target_labels(namespace: str, pod: str, pod_labels: Mapping[str, str]) -> dict[str, str]:
    """The labels a `kubernetes_sd_configs` pod target ends with after the usual relabeling.

    That is `labelmap: __meta_kubernetes_pod_label_(.+)` (Prometheus sanitises label names: every
    character outside [a-zA-Z0-9_] becomes `_`, so `app.kubernetes.io/instance` becomes
    `app_kubernetes_io_instance`) plus `namespace` and `pod` from the pod's metadata; the Prometheus
    Operator's PodMonitor with `podTargetLabels` gives the same names.
    """
    labels = {_INVALID_LABEL_CHARS.sub("_", key): value for key, value in pod_labels.items()}
    labels.update(namespace=namespace, pod=pod)
    return labels


def find_binary() -> str | None:
    """The prometheus binary: $NEURONFLEET_PROMETHEUS, else `prometheus` on PATH, else None."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("prometheus")


def missing_binary_reason() -> str:
    """Why Prometheus cannot run here, and how to fix it."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return f"${BINARY_ENV}={explicit} is not an executable prometheus binary"
    return (
        "no prometheus binary (neither $" + BINARY_ENV + " nor `prometheus` on PATH): install the Debian "
        "package with `apt-get install -y --no-install-recommends prometheus` (make setup does this)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_yaml(
    targets_file: Path,
    *,
    scrape_interval: str,
    extra_jobs: Mapping[str, Sequence[str]] = {},
) -> str:
    """A prometheus.yml: job `vllm` from the file-SD targets file, plus static jobs by name."""
    jobs: list[dict[str, Any]] = [
        {
            "job_name": JOB,
            "scrape_timeout": scrape_interval,
            # The file is watched; the refresh is only a fallback should a change notification be lost.
            "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
        }
    ]
    for name, addresses in extra_jobs.items():
        jobs.append(
            {"job_name": name, "scrape_timeout": scrape_interval, "static_configs": [{"targets": list(addresses)}]}
        )
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": jobs,
    }
    return yaml.safe_dump(config, sort_keys=False)


def _targets_json(targets: Sequence[Target]) -> str:
    return json.dumps([{"targets": [t.address], "labels": dict(t.labels)} for t in targets], indent=1)


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the process that started us dies (Linux), so nothing outlives it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PrometheusServer:
    """One running Prometheus process; `url` is its HTTP API base, `pid` its process id."""

    def __init__(
        self,
        *,
        binary: str,
        workdir: Path,
        port: int,
        scrape_interval: str,
        extra_jobs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.scrape_interval = scrape_interval
        self.extra_jobs = dict(extra_jobs or {})
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = workdir / "prometheus.yml"
        self.targets_path = workdir / "targets" / f"{JOB}.json"
        self.log_path = workdir / "prometheus.log"
        self.targets: tuple[Target, ...] = ()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def start(self, targets: Sequence[Target], *, timeout: float = 30.0) -> PrometheusServer:
        """Write the config and targets, start the process, and return once `/-/ready` answers 200."""
        self.write_targets(targets)
        self.config_path.write_text(
            config_yaml(self.targets_path, scrape_interval=self.scrape_interval, extra_jobs=self.extra_jobs)
        )
        command = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches only our caller, who stops us in order
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._process.returncode}:\n{self.logs()[-2000:]}")
            if self._get("/-/ready", quiet=True) is not None:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.logs()[-2000:]}")

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop this process (SIGTERM, then SIGKILL) by its PID; a no-op when not running."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)

    def write_targets(self, targets: Sequence[Target]) -> None:
        """Replace the file-SD targets atomically (never a half-written file); returns at once."""
        self.targets = tuple(targets)
        self.targets_path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.targets_path.with_name(f".{self.targets_path.name}.tmp")
        scratch.write_text(_targets_json(self.targets))
        os.replace(scratch, self.targets_path)

    def set_targets(self, targets: Sequence[Target], *, timeout: float = 15.0) -> None:
        """Replace the scrape targets and wait until Prometheus lists exactly them."""
        if self.pid is None:
            raise RuntimeError("prometheus is not running")
        self.write_targets(targets)
        wanted = {t.address for t in self.targets}
        self._wait(lambda: self.target_health().keys() == wanted, timeout, f"targets {sorted(wanted)}")

    def logs(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def target_health(self, job: str = JOB) -> dict[str, str]:
        """Active target address of `job` -> health ("up", "down", "unknown")."""
        data = self._api("/api/v1/targets?state=active")
        return {t["labels"]["instance"]: t["health"] for t in data["activeTargets"] if t["labels"].get("job") == job}

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result list (vector elements), via the HTTP API."""
        data = self._api("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if data["resultType"] != "vector":
            raise ValueError(f"expected a vector, got {data['resultType']}")
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The single value of an aggregated query, None when empty."""
        result = self.query(promql)
        if len(result) > 1:
            raise ValueError(f"{promql} returned {len(result)} series")
        return float(result[0]["value"][1]) if result else None

    def wait_for_scrapes(self, count: int, *, timeout: float = 60.0) -> None:
        """Wait until every target is up and has been scraped at least `count` times."""
        wanted = {t.address for t in self.targets}
        query = f'min(count_over_time(up{{job="{JOB}"}}[1h]))'

        def ready() -> bool:
            health = self.target_health()
            if health.keys() != wanted or any(h != "up" for h in health.values()):
                return False
            scrapes = self.value(query)
            return scrapes is not None and scrapes >= count

        self._wait(ready, timeout, f"{count} scrapes of {sorted(wanted)}")

    def wait_for(
        self, promql: str, predicate: Callable[[float | None], bool], *, timeout: float = 30.0
    ) -> float | None:
        """Poll an aggregated query until `predicate(value)` holds; return that value."""
        seen: list[float | None] = []

        def check() -> bool:
            seen.append(self.value(promql))
            return predicate(seen[-1])

        self._wait(check, timeout, f"{promql} (last value {seen[-1:]})")
        return seen[-1]

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.pid is None:
                raise RuntimeError(f"prometheus stopped while waiting for {what}:\n{self.logs()[-2000:]}")
            if condition():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout}s for {what}; log:\n{self.logs()[-2000:]}")
            time.sleep(0.1)

    def _api(self, path: str) -> Any:
        body = self._get(path)
        assert body is not None
        payload = json.loads(body)
        if payload.get("status") != "success":
            raise RuntimeError(f"prometheus answered {payload}")
        return payload["data"]

    def _get(self, path: str, *, quiet: bool = False) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return bytes(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if quiet:
                return None
            raise


def start_prometheus(
    targets: Sequence[Target],
    *,
    workdir: Path,
    scrape_interval: str = "1s",
    binary: str | None = None,
    attempts: int = 3,
    extra_jobs: Mapping[str, Sequence[str]] | None = None,
) -> PrometheusServer:
    """Start Prometheus on a free loopback port, retrying another port if one was taken meanwhile."""
    binary = binary or find_binary()
    if binary is None:
        raise FileNotFoundError(missing_binary_reason())
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        server = PrometheusServer(
            binary=binary, workdir=workdir, port=free_port(), scrape_interval=scrape_interval, extra_jobs=extra_jobs
        )
        try:
            return server.start(targets)
        except RuntimeError as error:  # most likely the port was taken between free_port() and bind
            last = error
    raise RuntimeError(f"prometheus did not start in {attempts} attempts") from last


@contextlib.contextmanager
def running_prometheus(
    targets: Sequence[Target], *, workdir: Path, scrape_interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """`start_prometheus` as a context manager that always stops the process."""
    server = start_prometheus(targets, workdir=workdir, scrape_interval=scrape_interval)
    try:
        yield server
    finally:
        server.stop()
