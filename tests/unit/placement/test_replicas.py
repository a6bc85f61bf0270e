"""Each pod by where it stands with the scheduler; counts per variant from pods and Deployments."""

from __future__ import annotations

import datetime
from typing import Any

from neuronfleet.placement import replicas
from neuronfleet.placement.replicas import Placement

MESSAGE = "0/8 nodes are available: 8 Insufficient aws.amazon.com/neuron."


def pod(name: str, *, variant: str | None = None, node: str | None = None, conditions=(), deleting=False) -> dict:
    meta: dict[str, Any] = {"name": name, "labels": {replicas.VARIANT_LABEL: variant} if variant else {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": {"conditions": list(conditions)}}


UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": MESSAGE,
    "lastTransitionTime": "2026-01-01T00:10:00Z",
}
READY = {"type": "Ready", "status": "True"}


def test_an_unschedulable_pod_carries_the_schedulers_reason_and_since_when():
    state = replicas.classify(pod("a", conditions=[UNSCHEDULABLE]))
    assert (state.placement, state.message, state.variant) == (Placement.UNSCHEDULABLE, MESSAGE, "primary")
    now = datetime.datetime(2026, 1, 1, 0, 15, tzinfo=datetime.UTC)
    assert state.waited_seconds(now) == 300


def test_bound_and_ready_pods():
    assert replicas.classify(pod("a", node="n1")).placement is Placement.STARTING
    assert replicas.classify(pod("a", node="n1", conditions=[READY])).placement is Placement.READY


def test_a_pod_the_scheduler_has_not_judged_is_waiting():
    assert replicas.classify(pod("a")).placement is Placement.WAITING
    scheduling_error = {**UNSCHEDULABLE, "reason": "SchedulerError"}
    assert replicas.classify(pod("a", conditions=[scheduling_error])).placement is Placement.WAITING


def test_counts_per_variant_include_replicas_without_a_pod_and_skip_terminating_ones():
    pods = [
        pod("p1", node="n1", conditions=[READY]),
        pod("p2", conditions=[UNSCHEDULABLE]),
        pod("p3", node="n2", deleting=True),
        pod("f1", variant="trn1-32xlarge", node="n3"),
    ]
    seen = replicas.observe(pods, {"primary": 4, "trn1-32xlarge": 1}, ["primary", "trn1-32xlarge"])
    primary = seen["primary"]
    assert (primary.ready, primary.starting, primary.waiting, len(primary.unschedulable)) == (1, 0, 2, 1)
    assert seen["trn1-32xlarge"].starting == 1
