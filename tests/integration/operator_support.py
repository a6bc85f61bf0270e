"""Helpers for the operator's integration tests: run the real operator, build and read objects.

Plain functions and classes (no pytest magic), imported by conftest.py (fixtures) and the tests.
The operator is the real `neuronfleet run` code path (`controller.runner.run_operator`, real
kopf, the official `kubernetes` client) in a background thread with its own event loop, the
same way kopf's own KopfRunner runs it; `OperatorThread.exception` holds what killed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf
import kubernetes

from neuronfleet.api import constants
from neuronfleet.commands import run as run_command
from neuronfleet.controller import runner
from neuronfleet.controller.settings import OperatorConfig
from neuronfleet.kube_emulator import ThreadedEmulator
from support.crds import load_crd
from support.waits import wait_for

__all__ = [
    "NAMESPACE",
    "REPO",
    "Cluster",
    "OperatorThread",
    "alternations",
    "free_port",
    "http_text",
    "load_crd",
    "make_md",
    "operator_config",
    "scraped_replica",
    "writes",
]

REPO = Path(__file__).resolve().parents[2]


NAMESPACE = "ml"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorThread:
    """The operator running in a thread until `stop()`; `exception` holds what killed it, if anything."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.memo = kopf.Memo()
        self.exception: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(runner.run_operator(self.config, stop_flag=self._stop, ready_flag=self._ready, memo=self.memo))
        except BaseException as exc:  # surfaced to the test through `exception`
            self.exception = exc

    def start(self, timeout: float = 20.0) -> OperatorThread:
        self._thread.start()
        wait_for(lambda: self._ready.is_set() or not self._thread.is_alive(), timeout=timeout)
        if self.exception is not None:
            raise RuntimeError("the operator failed to start") from self.exception
        return self

    def stop(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.exception = self.exception or TimeoutError("the operator did not stop in time")

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def stop_all(started: list[OperatorThread]) -> None:
    """Fixture teardown: stop every operator started, then fail if any of them crashed."""
    for op in started:
        if op.alive:
            op.stop()
    for op in started:
        assert op.exception is None, f"the operator crashed: {op.exception!r}"


def operator_config(kubeconfig: Path, *extra: str, **overrides: Any) -> OperatorConfig:
    """A config built by the real `neuronfleet run` argument parser, then test knobs applied."""
    from neuronfleet import cli

    args = cli.build_parser().parse_args(
        [
            "run",
            "--kubeconfig",
            str(kubeconfig),
            *(() if "--peering" in extra else ("--standalone",)),
            "--bind-address",
            "127.0.0.1",
            "--health-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            *extra,
        ]
    )
    config = run_command.config_from_args(args)
    knobs = {"watch_server_timeout": 30.0, "retry_delay": 0.5, "retry_delay_max": 2.0, **overrides}
    return OperatorConfig(**{**config.__dict__, **knobs})


BASE_SPEC: dict[str, Any] = {
    "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
    "neuron": {"instanceType": "inf2.48xlarge", "tensorParallelSize": 8},
    "replicas": 2,
}


def make_md(name: str, namespace: str = NAMESPACE, **spec_overrides: Any) -> dict[str, Any]:
    """A ModelDeployment that plans on inf2.48xlarge; keyword arguments replace spec fields."""
    spec = copy.deepcopy(BASE_SPEC)
    spec.update(spec_overrides)
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class Cluster:
    """The world as a user sees it, through the official client (no operator internals)."""

    def __init__(self, api: kubernetes.client.ApiClient, emu: ThreadedEmulator) -> None:
        self.api = api
        self.emu = emu
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.apps = kubernetes.client.AppsV1Api(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.policy = kubernetes.client.PolicyV1Api(api)

    def create_md(self, body: dict[str, Any]) -> dict[str, Any]:
        ns = body["metadata"].get("namespace", NAMESPACE)
        return self.custom.create_namespaced_custom_object(
            constants.GROUP, constants.VERSION, ns, constants.PLURAL, body
        )

    def md(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        with contextlib.suppress(kubernetes.client.ApiException):
            return self.custom.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
            )
        return None

    def patch_md(self, name: str, patch: dict[str, Any], namespace: str = NAMESPACE) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(
            constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name, patch
        )

    def delete_md(self, name: str, namespace: str = NAMESPACE) -> None:
        self.custom.delete_namespaced_custom_object(
            constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
        )

    def status(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        return (self.md(name, namespace) or {}).get("status") or {}

    def condition(self, name: str, type_: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        for cond in self.status(name, namespace).get("conditions") or ():
            if cond.get("type") == type_:
                return cond
        return {}

    def deployment(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        with contextlib.suppress(kubernetes.client.ApiException):
            return self.api.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, namespace))
        return None

    def deployments(self, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items = self.apps.list_namespaced_deployment(namespace).items
        return [self.api.sanitize_for_serialization(d) for d in items]

    def service(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any] | None:
        with contextlib.suppress(kubernetes.client.ApiException):
            return self.api.sanitize_for_serialization(self.core.read_namespaced_service(name, namespace))
        return None

    def events(self, name: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(namespace).items
        return [
            self.api.sanitize_for_serialization(e)
            for e in items
            if e.involved_object is not None and e.involved_object.name == name
        ]


SCALE_ON_CONCURRENCY: dict[str, Any] = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": 4,
    "metrics": {"concurrencyPerReplica": 8},
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}},
}
"""Autoscaling on concurrency alone (8 per replica, 1-4 replicas, no scale-down window): a test moves
the replica's load and reads the decision at once."""


def scraped_replica(
    start_replica: Callable[..., Any],
    start_prometheus: Callable[..., Any],
    *,
    scrape_seconds: float,
    prepare: Callable[[Any], None] = lambda replica: None,
) -> tuple[Any, Any]:
    """A fake vLLM replica of fleet ml/llama (`prepare` sets its load before the first scrape), labelled as
    a PodMonitor labels it, and a real Prometheus scraping it; returns once two scrapes are in."""
    from e2e import prometheus_support
    from neuronfleet.demo.prometheus import pod_target_labels

    replica = start_replica()
    prepare(replica)
    pod = {"app.kubernetes.io/instance": "llama", "app.kubernetes.io/name": "vllm"}
    target = prometheus_support.Target(replica.address, pod_target_labels("ml", "llama-0", pod))
    server = start_prometheus([target], scrape_interval=f"{scrape_seconds:g}s")
    server.wait_for_scrapes(2)
    return replica, server


def http_text(url: str) -> str:
    """GET a page of the operator (its metrics, its health) as text."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.read().decode()


def writes(emu: ThreadedEmulator) -> int:
    """Mutating requests the emulator has answered so far: what grows while the operator acts.

    Tests read through GETs, so waiting for this to stop growing (`support.waits.wait_quiet`) waits
    for the operator to go idle without the test's own polling keeping it busy.
    """
    return sum(1 for r in list(emu.requests) if r.verb not in ("get", "list", "watch"))


def alternations(statuses: list[dict[str, Any]]) -> list[str]:
    """Status fields that went back to an earlier value after changing (A -> B -> A): flicker.

    Top-level fields are compared whole, conditions by (status, reason, message) per type.
    """
    series: dict[str, list[Any]] = {}
    for status in statuses:
        for key, value in status.items():
            if key in ("conditions", "kopf"):
                continue
            series.setdefault(key, []).append(repr(value))
        for cond in status.get("conditions") or ():
            series.setdefault(f"conditions[{cond['type']}]", []).append(
                repr((cond.get("status"), cond.get("reason"), cond.get("message")))
            )
    found = []
    for field, values in series.items():
        runs = [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
        if len(runs) != len(set(runs)):
            found.append(f"{field}: {' -> '.join(runs)}")
    return found
