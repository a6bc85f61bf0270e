"""The operator's own status-writing path against the real CRD API server.

The operator (real kopf, the real `neuronfleet run` code path in a thread) reconciles
ModelDeployments stored by the real apiextensions-apiserver, through `front.py`. That server has
no apps/core API, so the children (Deployment, Service, PDB), Events and Namespaces live in the
in-process API emulator, with its opt-in Deployment controller standing in for kube-controller-
manager (pods become ready). Mocked boundary: only those children; every ModelDeployment read,
watch and write goes to the real server.

What this catches that the emulator cannot: a status field the operator writes but the CRD
schema lacks (the real server prunes it silently), or a value the schema refuses (422).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kubernetes import client

from contract import md
from contract.front import Front, Write, running_front
from contract.realapi import REPO, RealApiServer
from neuronfleet.api import constants
from neuronfleet.api.conditions import ConditionType, find_condition
from neuronfleet.controller import runner
from neuronfleet.controller.settings import OperatorConfig, configure_kopf
from neuronfleet.kube_emulator import DeploymentController, ThreadedEmulator, write_kubeconfig
from support.waits import wait_for

pytestmark = pytest.mark.realapi

class OperatorThread:
    """`run_operator` (what `neuronfleet run` awaits) in a thread with its own loop."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.exception: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="operator-on-real-api", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(
                runner.run_operator(self.config, stop_flag=self._stop, ready_flag=self._ready, memo=kopf.Memo())
            )
        except BaseException as exc:  # reported by the fixture
            self.exception = exc

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self._ready.is_set() or not self._thread.is_alive(), what="the operator to start")
        if self.exception is not None:
            raise RuntimeError("the operator failed to start") from self.exception

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._thread.is_alive():
            self.exception = self.exception or TimeoutError("the operator did not stop in time")


@pytest.fixture
def emulator(namespace: str) -> Iterator[ThreadedEmulator]:
    """The emulator for what the real server lacks (children, events, namespaces)."""
    with ThreadedEmulator() as emu:
        # Stand-in for kube-controller-manager: Deployments report their pods ready.
        emu.call(lambda: DeploymentController(emu.store, ready_delay=0.2).start())
        with client.ApiClient(_plain_configuration(emu.url)) as rest:
            client.CoreV1Api(rest).create_namespace({"metadata": {"name": namespace}})
        yield emu


@pytest.fixture
def front(real_api: RealApiServer, emulator: ThreadedEmulator) -> Iterator[Front]:
    with running_front(real_api.url, real_api.ssl_context(), emulator.url) as fr:
        yield fr


def _plain_configuration(url: str) -> client.Configuration:
    conf = client.Configuration()
    conf.host = url
    return conf


@pytest.fixture
def operator(front: Front, namespace: str, tmp_path: Path) -> Iterator[OperatorThread]:
    """The operator, watching only this test's namespace (the real server is shared by the session)."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", front.url)
    config = OperatorConfig(
        kubeconfig=str(kubeconfig),
        namespaces=(namespace,),
        standalone=True,
        peering=None,
        health_port=None,
        metrics_port=None,
        bind_address="127.0.0.1",
        # An int: kopf sends str(server_timeout) as timeoutSeconds, and a real server refuses "30.0"
        # (see the test at the end of this module).
        watch_server_timeout=30,
        retry_delay=0.5,
        retry_delay_max=2.0,
    )
    op = OperatorThread(config)
    op.start()
    yield op
    op.stop()
    assert op.exception is None, f"the operator crashed: {op.exception!r}"


def _pruned(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of what a merge patch `sent` that the server did not store (null means 'delete')."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path or "."]
        out = []
        for key, value in sent.items():
            sub = f"{path}.{key}"
            if value is None:
                if key in stored:
                    out.append(f"{sub} (not deleted)")
            elif key not in stored:
                out.append(sub)
            else:
                out.extend(_pruned(value, stored[key], sub))
        return out
    return [] if sent == stored else [f"{path}: sent {sent!r}, stored {stored!r}"]


def _status_writes(front: Front, name: str) -> list[Write]:
    return [
        w for w in list(front.writes) if w.path.endswith(f"/{constants.PLURAL}/{name}/status") and w.method == "PATCH"
    ]


def _example(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())
    doc["metadata"].pop("namespace", None)
    return doc


@pytest.mark.parametrize(
    "example", ["llama3-8b-inf2", "llama33-70b-trn2", "gpt-oss-120b-trn2"], ids=lambda e: f"example {e}"
)
def test_everything_the_operator_writes_into_status_is_stored_unpruned(
    api: client.ApiClient,
    namespace: str,
    front: Front,
    operator: OperatorThread,
    example: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = _example(example)
    name = body["metadata"]["name"]
    md.create(api, namespace, body)

    def ready() -> dict[str, Any] | None:
        status = md.get(api, namespace, name).get("status") or {}
        cond = find_condition(status.get("conditions"), ConditionType.READY)
        return status if cond and cond["status"] == "True" and status.get("observedGeneration") == 1 else None

    status = wait_for(ready, timeout=60, what=f"{name} to become Ready on the real server")

    writes = _status_writes(front, name)
    assert writes, "the operator wrote no status through the real server"
    for write in writes:
        assert write.status == 200, f"the real server refused a status write: {write.status} {write.stored}"
        assert _pruned(write.sent, write.stored) == [], (
            f"the real server pruned what the operator wrote to {write.path}"
        )
    # Everything the operator promised users is there, as the real server stores it.
    assert {"observedGeneration", "replicas", "readyReplicas", "selector", "plan", "conditions"} <= set(status)
    assert status["plan"]["instanceType"] == body["spec"]["neuron"]["instanceType"]
    assert status["readyReplicas"] == status["replicas"] == status["desiredReplicas"] >= 1
    # kopf's own merge-patch check agrees (it warns when the server drops what it sent).
    assert not [r for r in caplog.records if "inconsistencies" in r.getMessage()]


def test_a_spec_the_planner_rejects_is_reported_degraded_on_the_real_server(
    api: client.ApiClient, namespace: str, front: Front, operator: OperatorThread
) -> None:
    """The invalid example that passes admission: the Degraded condition must survive the schema."""
    path = REPO / "examples" / "invalid" / "tp-not-legal-on-trn2.yaml"
    body = yaml.safe_load(path.read_text())
    name = body["metadata"]["name"]
    md.create(api, namespace, body)

    def degraded() -> dict[str, Any] | None:
        conds = (md.get(api, namespace, name).get("status") or {}).get("conditions")
        cond = find_condition(conds, ConditionType.DEGRADED)
        return dict(cond) if cond and cond["status"] == "True" else None

    cond = wait_for(degraded, timeout=60, what=f"{name} to become Degraded")
    assert cond["reason"] == "PlanFailed"
    assert "tensorParallelSize 24 is not legal on trn2.48xlarge" in cond["message"]
    for write in _status_writes(front, name):
        assert write.status == 200, write.stored
        assert _pruned(write.sent, write.stored) == []


def test_a_failed_pass_is_retried_and_only_status_is_ever_written_on_the_real_server(
    api: client.ApiClient, namespace: str, front: Front, emulator: ThreadedEmulator, operator: OperatorThread
) -> None:
    """The operator writes nothing but status to a ModelDeployment, even through failures.

    The first Deployment create fails (an injected 500 on the emulator side): the pass still writes
    the status it can (Service and PDB applied), the work queue retries it, and the fleet converges.
    kopf keeps no handler progress or last-handled annotation in the object (settings.py), so every
    write that reaches the real server is a status write, and nothing in it is pruned.
    """
    emulator.emulator.inject(method="POST", path="/deployments", status=500, times=1)
    body = _example("llama3-8b-inf2")
    name = body["metadata"]["name"]
    md.create(api, namespace, body)

    def ready() -> bool:
        conds = (md.get(api, namespace, name).get("status") or {}).get("conditions")
        cond = find_condition(conds, ConditionType.READY)
        return bool(cond) and cond["status"] == "True"

    wait_for(ready, timeout=60, what=f"{name} to become Ready after the retry")
    writes = [w for w in list(front.writes) if f"/{constants.PLURAL}/{name}" in w.path]
    assert writes, "the operator wrote no status"
    assert all(w.path.endswith("/status") for w in writes), [w.path for w in writes]
    for write in writes:
        assert write.status == 200, write.stored
        assert _pruned(write.sent, write.stored) == []
    stored = md.get(api, namespace, name)
    assert "kopf" not in (stored.get("status") or {})
    assert not [k for k in stored["metadata"].get("annotations") or {} if k.startswith("neuronfleet.io/")]


def test_the_watch_timeout_the_operator_gives_kopf_is_accepted_by_a_real_server(api: client.ApiClient) -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, OperatorConfig())  # the production defaults of `neuronfleet run`
    timeout = str(settings.watching.server_timeout)  # what kopf puts in the URL (kopf watching.py)
    path = f"/apis/{constants.GROUP}/{constants.VERSION}/{constants.PLURAL}?limit=1&timeoutSeconds={timeout}"
    try:
        resp = api.call_api("GET", api.configuration.host + path)
        resp.read()
        status = resp.status
    except client.ApiException as exc:
        status = exc.status
    assert status == 200, f"timeoutSeconds={timeout} refused with {status}"
