"""Integration fixtures: the API emulator on 127.0.0.1, the CRD from crds/, and the real operator.

The test talks to the emulator through the official client and asserts the state of the world
there; helpers live in operator_support.py. `OperatorThread.exception` must be None at the end of
every test (checked in the `start_operator` fixture's teardown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import emulator_fixtures
import kubernetes
import pytest
from operator_support import NAMESPACE, Cluster, OperatorThread, load_crd, operator_config, stop_all

from e2e import conftest as e2e_fixtures
from neuronfleet.kube_emulator import ThreadedEmulator

# The emulator engineer's fixtures, made visible to every test in this folder.
emulator = emulator_fixtures.emulator
kube_api = emulator_fixtures.kube_api
emulator_kubeconfig = emulator_fixtures.emulator_kubeconfig
emulator_login = emulator_fixtures.emulator_login
# Real Prometheus and fake vLLM metric endpoints, shared with the end-to-end tests.
prometheus_binary = e2e_fixtures.prometheus_binary
start_prometheus = e2e_fixtures.start_prometheus
start_replica = e2e_fixtures.start_replica


@pytest.fixture
def crd(kube_api: kubernetes.client.ApiClient) -> dict[str, Any]:
    """The ModelDeployment CRD that ships in crds/, installed through the API."""
    doc = load_crd()
    api = kubernetes.client.ApiextensionsV1Api(kube_api)
    api.create_custom_resource_definition(doc, _preload_content=False)  # parsing the answer costs seconds
    core = kubernetes.client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    return doc


@pytest.fixture
def start_operator(emulator_kubeconfig: Path, crd: dict[str, Any]) -> Iterator[Callable[..., OperatorThread]]:
    """Start operators (one or more; they are stopped at teardown and must not have crashed)."""
    started: list[OperatorThread] = []

    def start(*extra: str, **overrides: Any) -> OperatorThread:
        op = OperatorThread(operator_config(emulator_kubeconfig, *extra, **overrides)).start()
        started.append(op)
        return op

    yield start
    stop_all(started)


@pytest.fixture
def operator(start_operator: Callable[..., OperatorThread]) -> OperatorThread:
    return start_operator()


@pytest.fixture
def cluster(kube_api: kubernetes.client.ApiClient, emulator: ThreadedEmulator) -> Cluster:
    return Cluster(kube_api, emulator)
