"""A real Prometheus server (the Debian `prometheus` binary) on 127.0.0.1, for tests and the local demo.

Starts `prometheus` in a directory of its own with a generated scrape config, waits for `/-/ready`,
and stops it by PID. Scrape targets can be changed while it runs (`set_targets`: rewrite the config,
send SIGHUP, wait until Prometheus reports the new target set). Queries for polling are synchronous
(urllib), so any test or script can use them without an event loop.

    server = start_prometheus([Target("127.0.0.1:18000", {"namespace": "ml"})], workdir=tmp_path)
    try:
        server.wait_for_scrapes(3)
        print(server.query("sum(vllm:num_requests_running)"))
    finally:
        server.stop()

Only three flags are needed: --config.file, --storage.tsdb.path, --web.listen-address.
Set NEURONFLEET_PROMETHEUS to use a binary other than the one on PATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
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
    "PrometheusServer",
    "Target",
    "find_binary",
    "free_port",
    "missing_binary_reason",
    "running_prometheus",
    "start_prometheus",
]

BINARY_ENV = "NEURONFLEET_PROMETHEUS"
JOB = "vllm"


@dataclass(frozen=True)
class Target:
    """One scrape target and the labels Kubernetes relabeling would have given it."""

    address: str  # host:port on 127.0.0.1
    labels: Mapping[str, str] = field(default_factory=dict)


def find_binary() -> str | None:
    """The prometheus binary: $NEURONFLEET_PROMETHEUS, else `prometheus` on PATH, else None."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("prometheus")


def missing_binary_reason() -> str:
    """Why tests that need Prometheus cannot run here, for pytest.skip."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return f"${BINARY_ENV}={explicit} is not an executable prometheus binary"
    return (
        "no prometheus binary (neither $" + BINARY_ENV + " nor `prometheus` on PATH): install the Debian "
        "package with `apt-get install -y --no-install-recommends prometheus` (make test does this)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_yaml(targets: Sequence[Target], *, scrape_interval: str) -> str:
    """A prometheus.yml with one static job whose targets carry their own labels."""
    static = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [{"job_name": JOB, "scrape_timeout": scrape_interval, "static_configs": static}],
    }
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer:
    """One running Prometheus process; `url` is its HTTP API base, `pid` its process id."""

    def __init__(self, *, binary: str, workdir: Path, port: int, scrape_interval: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.scrape_interval = scrape_interval
        self.url = f"http://127.0.0.1:{port}"
        self.config_path = workdir / "prometheus.yml"
        self.log_path = workdir / "prometheus.log"
        self.targets: tuple[Target, ...] = ()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def start(self, targets: Sequence[Target], *, timeout: float = 30.0) -> PrometheusServer:
        """Write the config, start the process, and return once `/-/ready` answers 200."""
        self.targets = tuple(targets)
        self.config_path.write_text(config_yaml(self.targets, scrape_interval=self.scrape_interval))
        command = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
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
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)

    def set_targets(self, targets: Sequence[Target], *, timeout: float = 15.0) -> None:
        """Replace the scrape targets (SIGHUP reload) and wait until Prometheus lists exactly them."""
        if self.pid is None:
            raise RuntimeError("prometheus is not running")
        self.targets = tuple(targets)
        self.config_path.write_text(config_yaml(self.targets, scrape_interval=self.scrape_interval))
        os.kill(self.pid, signal.SIGHUP)
        wanted = {t.address for t in self.targets}
        self._wait(lambda: self.target_health().keys() == wanted, timeout, f"targets {sorted(wanted)}")

    def logs(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def target_health(self) -> dict[str, str]:
        """Active target address -> health ("up", "down", "unknown")."""
        data = self._api("/api/v1/targets")
        return {t["labels"]["instance"]: t["health"] for t in data["activeTargets"]}

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
) -> PrometheusServer:
    """Start Prometheus on a free loopback port, retrying another port if one was taken meanwhile."""
    binary = binary or find_binary()
    if binary is None:
        raise FileNotFoundError(missing_binary_reason())
    workdir.mkdir(parents=True, exist_ok=True)
    last: Exception | None = None
    for _ in range(attempts):
        server = PrometheusServer(binary=binary, workdir=workdir, port=free_port(), scrape_interval=scrape_interval)
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
