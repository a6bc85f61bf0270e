"""Per-replica startup phases from pod objects: observed states first, estimates inside vLLM.

Pods are written the way the kubelet reports them (conditions, init/container statuses); no
kubelet or Neuron device runs here, so the tests feed those shapes directly.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from neuronfleet.controller import replica_phases as rp
from neuronfleet.neuron import startup_phases
from plan_builders import TRN2_TP4

NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
PLAN = TRN2_TP4


def stamp(seconds_ago: float) -> str:
    return (NOW - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, scheduled: bool = True, init: dict | None = None, vllm: dict | None = None, **extra) -> dict:
    status: dict[str, Any] = {
        "phase": "Pending" if vllm is None else "Running",
        "conditions": [{"type": "PodScheduled", "status": "True" if scheduled else "False"}],
    }
    if not scheduled:
        status["conditions"][0]["message"] = "0/3 nodes are available: 3 Insufficient aws.amazon.com/neuroncore."
    if init is not None:
        status["initContainerStatuses"] = [{"name": "fetch-weights", **init}]
    if vllm is not None:
        status["containerStatuses"] = [{"name": "vllm", "restartCount": 0, **vllm}]
    return {"metadata": {"name": name, **extra}, "status": status}


def running(seconds_ago: float, ready: bool = False) -> dict:
    return {"ready": ready, "state": {"running": {"startedAt": stamp(seconds_ago)}}}


def states(pods, *, cache_hit=False, downloads=True):
    return rp.replica_states(pods, plan=PLAN, cache_hit=cache_hit, downloads=downloads, now=NOW)


COLD = startup_phases.expected_phases(PLAN.weights_bytes, runtime="vllm-neuron", cache_hit=False)
DOWNLOAD_S = COLD[0].seconds

CASES = {
    "unscheduled pod is pending with the scheduler's reason": (
        pod("a", scheduled=False),
        rp.ReplicaPhase.PENDING,
        False,
    ),
    "s3 fetch-weights init container running is downloading": (
        pod("a", init={"state": {"running": {}}}),
        rp.ReplicaPhase.DOWNLOADING,
        False,
    ),
    "image pull is pending": (
        pod("a", vllm={"state": {"waiting": {"reason": "ContainerCreating"}}}),
        rp.ReplicaPhase.PENDING,
        False,
    ),
    "crash loop is failing": (
        pod(
            "a",
            vllm={
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1}},
            },
        ),
        rp.ReplicaPhase.FAILING,
        False,
    ),
    "ready container is ready": (pod("a", vllm=running(900, ready=True)), rp.ReplicaPhase.READY, False),
    "just started is downloading (estimated)": (pod("a", vllm=running(5)), rp.ReplicaPhase.DOWNLOADING, True),
    "past the download is compiling (estimated)": (
        pod("a", vllm=running(DOWNLOAD_S + 60)),
        rp.ReplicaPhase.COMPILING,
        True,
    ),
}


@pytest.mark.parametrize(("obj", "phase", "estimated"), CASES.values(), ids=CASES.keys())
def test_each_pod_gets_one_phase_and_says_whether_it_is_estimated(obj, phase, estimated):
    (state,) = states([obj])
    assert (state.phase, state.estimated) == (phase, estimated)


def test_with_a_cache_hit_a_starting_replica_is_never_estimated_as_compiling():
    seen = {states([pod("a", vllm=running(t))], cache_hit=True, downloads=False)[0].phase for t in range(0, 3000, 30)}
    assert rp.ReplicaPhase.COMPILING not in seen
    assert seen == {rp.ReplicaPhase.LOADING}


def test_terminating_pods_are_left_out():
    gone = pod("old", vllm=running(10_000, ready=True), deletionTimestamp=stamp(1))
    assert [s.pod for s in states([gone, pod("new", vllm=running(1))])] == ["new"]


def test_the_summary_counts_phases_in_startup_order_with_estimates_and_reasons():
    text = rp.summary(
        states(
            [
                pod("c", vllm=running(900, ready=True)),
                pod("b", vllm=running(DOWNLOAD_S + 240)),
                pod("a", scheduled=False),
            ]
        )
    )
    compile_min = round(COLD[1].seconds / 60)
    assert text.startswith("1 pending (0/3 nodes are available")
    assert f"1 compiling (est. 4 of ~{compile_min} min)" in text
    assert text.endswith("1 ready")
