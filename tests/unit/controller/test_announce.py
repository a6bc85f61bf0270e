"""What a pass did to the children is announced before its status write, once per decision."""

from __future__ import annotations

import datetime

import kubernetes
import pytest

from neuronfleet.autoscale import types
from neuronfleet.controller import apply, events, reconciler
from neuronfleet.controller.kube import KubeClient
from neuronfleet.controller.metrics import OperatorMetrics
from neuronfleet.controller.state import FleetKey, Runtime, ScalingState
from neuronfleet.render.options import RenderOptions

KEY = FleetKey("ml", "llama")
BODY = {"metadata": {"namespace": "ml", "name": "llama", "uid": "u1"}}


def _runtime() -> Runtime:
    kube = KubeClient(kubernetes.client.Configuration(host="http://127.0.0.1:1"))
    return Runtime(kube=kube, render_options=RenderOptions(), metrics=OperatorMetrics())


def _state(seq: int) -> ScalingState:
    decision = types.Decision(replicas=3, reason=types.Reason("ScaledUp"), message="1 -> 3 replicas", recommended=3)
    seen = types.Observation(tokens_per_second=None, concurrency=22.0, current_replicas=1, ready_replicas=1)
    return ScalingState(decision, seen, None, {}, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), seq=seq)


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> list[events.Event]:
    found: list[events.Event] = []
    monkeypatch.setattr(events, "post", lambda body, evs: found.extend(evs))
    return found


def test_a_scale_and_a_repair_are_announced_with_their_write_metrics(posted: list[events.Event]) -> None:
    rt = _runtime()
    applied = apply.Applied(updated=["Deployment llama"], repaired=["Service llama"])
    reconciler.announce(rt, KEY, BODY, applied, _state(seq=7))
    assert [(e.reason, e.message) for e in posted] == [
        ("ChildRepaired", "Repaired Service llama, which was changed or deleted outside the operator"),
        ("ScaledUp", "1 -> 3 replicas"),
    ]
    assert rt.announced[KEY] == 7
    assert rt.metrics.writes.labels(kind="Deployment", action="patch")._value.get() == 1
    assert rt.metrics.writes.labels(kind="Service", action="patch")._value.get() == 1


def test_a_decision_already_announced_is_not_announced_again(posted: list[events.Event]) -> None:
    rt = _runtime()
    reconciler.announce(rt, KEY, BODY, apply.Applied(updated=["Deployment llama"]), _state(seq=7))
    reconciler.announce(rt, KEY, BODY, apply.Applied(updated=["Deployment llama"]), _state(seq=7))
    reconciler.announce(rt, KEY, BODY, apply.Applied(), None)
    assert [e.reason for e in posted] == ["ScaledUp"]


class _StatusKube:
    """Answers a status patch as a server does after someone changed the spec meanwhile (generation 2)."""

    def __init__(self, generation: int) -> None:
        self.generation = generation

    async def patch(self, ref: object, namespace: str, name: str, body: dict, *, subresource: str = "") -> dict:
        meta = {"namespace": namespace, "name": name, "resourceVersion": "12", "generation": self.generation}
        return {"metadata": meta, "status": body["status"]}


@pytest.mark.parametrize(("answered", "queued"), [(2, [KEY]), (1, [])])
async def test_a_status_answer_of_another_generation_queues_another_pass(answered: int, queued: list) -> None:
    """The spec changed while the status patch was in flight: its event counted as the write's echo."""
    rt = _runtime()
    rt.kube = _StatusKube(answered)  # type: ignore[assignment]
    found: list[FleetKey] = []
    rt.enqueue = found.append
    rt.cache.observe("ModelDeployment", {"metadata": {"namespace": "ml", "name": "llama", "resourceVersion": "11"}})
    assert await reconciler.write_status(rt, KEY, {}, {"observedGeneration": 1}, generation=1)
    assert found == queued
