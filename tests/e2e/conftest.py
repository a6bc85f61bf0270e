"""Fixtures for end-to-end tests: a real Prometheus (Debian binary) and fake vLLM replica endpoints.

Tests that need Prometheus take `prometheus_binary` (directly or through `start_prometheus`); without
the binary they are skipped with the reason and the install command, never passed silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import prometheus_support
from e2e.vllm_exporter import FakeVllmReplica


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Path of the prometheus binary, or a loud skip naming what to install."""
    binary = prometheus_support.find_binary()
    if binary is None:
        pytest.skip(prometheus_support.missing_binary_reason())
    return binary


@pytest.fixture
def start_prometheus(
    prometheus_binary: str, tmp_path: Path
) -> Iterator[Callable[..., prometheus_support.PrometheusServer]]:
    """Factory: start_prometheus(targets, scrape_interval="1s") -> server; all stopped at teardown."""
    servers: list[prometheus_support.PrometheusServer] = []

    def start(
        targets: list[prometheus_support.Target], *, scrape_interval: str = "1s"
    ) -> prometheus_support.PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(servers)}"
        server = prometheus_support.start_prometheus(
            targets, workdir=workdir, scrape_interval=scrape_interval, binary=prometheus_binary
        )
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def start_replica() -> Iterator[Callable[..., FakeVllmReplica]]:
    """Factory: start_replica(model_name=..., omit=...) -> a started FakeVllmReplica; stopped at teardown."""
    replicas: list[FakeVllmReplica] = []

    def start(**options: Any) -> FakeVllmReplica:
        replica = FakeVllmReplica(**options).start()
        replicas.append(replica)
        return replica

    yield start
    for replica in replicas:
        replica.stop()
