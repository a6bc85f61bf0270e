"""Status reconstituted from the world: rollout verdicts, conditions, and skipping unchanged writes."""

from __future__ import annotations

from typing import Any

import pytest

from neuronfleet.api import convert
from neuronfleet.api.resource import load
from neuronfleet.controller import events, status
from neuronfleet.neuron import planner

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def plan():
    md = load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "llama"},
            "spec": {
                "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
                "neuron": {"instanceType": "inf2.48xlarge"},
            },
        }
    )
    return planner.plan(convert.plan_request(md))


def dep(
    replicas: int = 2,
    *,
    ready: int = 2,
    updated: int = 2,
    available: int = 2,
    total: int | None = None,
    generation: int = 1,
    observed: int | None = 1,
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "replicas": replicas if total is None else total,
        "readyReplicas": ready,
        "updatedReplicas": updated,
        "availableReplicas": available,
    }
    if observed is not None:
        st["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas}, "status": st}


@pytest.mark.parametrize(
    ("deployment", "complete", "message"),
    [
        pytest.param(None, False, "does not exist", id="no Deployment yet"),
        pytest.param(dep(generation=2, observed=1), False, "observe the new spec", id="controller behind"),
        pytest.param(dep(updated=1, ready=1, available=1), False, "1 of 2 replicas updated", id="rolling"),
        pytest.param(dep(total=3), False, "old replicas pending termination", id="old pods terminating"),
        pytest.param(dep(available=1), False, "1 of 2 updated replicas available", id="not yet available"),
        pytest.param(dep(), True, "2 of 2 replicas ready", id="complete"),
        pytest.param(dep(0, ready=0, updated=0, available=0), True, "0 of 0", id="scaled to zero is complete"),
    ],
)
def test_rollout_verdict_follows_kubectl_rollout_status(deployment, complete: bool, message: str) -> None:
    verdict = status.rollout_of(deployment, None)
    assert verdict.complete is complete
    assert message in verdict.message


def _cond(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in st["conditions"] if c["type"] == type_)


def test_a_ready_fleet_reports_ready_and_not_progressing() -> None:
    obs = status.Observed(generation=3, plan=plan(), failure=None, deployment=dep(), selector="a=b", desired_replicas=2)
    st = status.compute_status(obs, None, now=NOW)
    assert (st["observedGeneration"], st["readyReplicas"], st["selector"], st["desiredReplicas"]) == (3, 2, "a=b", 2)
    assert _cond(st, "Ready")["status"] == "True"
    assert _cond(st, "Progressing")["reason"] == "RolloutComplete"
    assert _cond(st, "Degraded")["status"] == "False"
    assert all(c["observedGeneration"] == 3 for c in st["conditions"])
    assert st["plan"]["tensorParallelSize"] == obs.plan.tensor_parallel_size


def test_a_failed_plan_keeps_the_running_plan_and_degrades() -> None:
    good = status.compute_status(
        status.Observed(generation=1, plan=plan(), failure=None, deployment=dep(), desired_replicas=2), None, now=NOW
    )
    bad = status.compute_status(
        status.Observed(generation=2, plan=None, failure="does not fit", deployment=dep(), desired_replicas=2),
        good,
        now=LATER,
    )
    assert bad["plan"] == good["plan"]
    degraded = _cond(bad, "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "PlanFailed", "does not fit")
    assert degraded["lastTransitionTime"] == LATER
    assert _cond(bad, "Ready")["status"] == "True"  # the running pods still serve


def test_autoscaler_fields_and_conditions_survive_a_reconcile_pass() -> None:
    previous = {
        "lastScaleTime": NOW,
        "metrics": {"concurrency": 12.0},
        "conditions": [
            {
                "type": "ScalingActive",
                "status": "True",
                "reason": "AutoscalingActive",
                "message": "",
                "lastTransitionTime": NOW,
                "observedGeneration": 1,
            }
        ],
    }
    obs = status.Observed(generation=1, plan=plan(), failure=None, deployment=dep(), desired_replicas=2)
    st = status.compute_status(obs, previous, now=LATER)
    assert st["lastScaleTime"] == NOW and st["metrics"] == {"concurrency": 12.0}
    assert _cond(st, "ScalingActive")["status"] == "True"


def test_an_unchanged_world_produces_no_status_patch() -> None:
    obs = status.Observed(generation=1, plan=plan(), failure=None, deployment=dep(), desired_replicas=2)
    first = status.compute_status(obs, None, now=NOW)
    second = status.compute_status(obs, first, now=LATER)
    assert status.status_patch(first, second) is None
    assert status.status_patch(None, first) == first


def test_events_fire_on_transitions_only() -> None:
    rolling = status.Observed(
        generation=1, plan=plan(), failure=None, deployment=dep(updated=0, ready=0, available=0), desired_replicas=2
    )
    done = status.Observed(generation=1, plan=plan(), failure=None, deployment=dep(), desired_replicas=2)
    s1 = status.compute_status(rolling, None, now=NOW)
    s2 = status.compute_status(done, s1, now=LATER)
    first = [e.reason for e in events.transitions(None, s1)]
    assert first == ["Planned", "RolloutStarted"]
    assert [e.reason for e in events.transitions(s1, s2)] == ["RolloutComplete"]
    assert events.transitions(s2, status.compute_status(done, s2, now=LATER)) == []
    repaired = events.transitions(s2, s2, repaired=["Service llama"])
    assert [(e.type, e.reason) for e in repaired] == [("Warning", "ChildRepaired")]


def _decision(replicas: int, reason: str, *, recommended: int, limited: bool = False):
    from neuronfleet.autoscale import types

    return types.Decision(
        replicas=replicas, reason=types.Reason(reason), message="m", recommended=recommended, limited=limited
    )


def _observation(concurrency: float | None):
    from neuronfleet.autoscale import types

    return types.Observation(tokens_per_second=None, concurrency=concurrency, current_replicas=2, ready_replicas=2)


def test_a_scale_up_clamped_at_max_records_the_scale_and_the_limit() -> None:
    st = status.scaling_status(
        None,
        generation=4,
        decision=_decision(4, "LimitedByMaxReplicas", recommended=8, limited=True),
        observation=_observation(60.0),
        metrics_error=None,
        scaled=True,
        now=NOW,
        sampled_at=NOW,
    )
    assert (st["desiredReplicas"], st["lastScaleTime"], st["lastScaleReason"]) == (4, NOW, "LimitedByMaxReplicas")
    assert st["metrics"] == {"concurrency": 60.0, "sampledAt": NOW}
    assert _cond(st, "ScalingLimited")["reason"] == "LimitedByMaxReplicas"
    assert _cond(st, "ScalingActive")["status"] == "True"
    assert _cond(st, "MetricsAvailable")["status"] == "True"


def test_missing_metrics_hold_and_keep_the_last_scale_time() -> None:
    previous = {"lastScaleTime": NOW, "lastScaleReason": "ScaledUp"}
    st = status.scaling_status(
        previous,
        generation=4,
        decision=_decision(2, "MetricsUnavailable", recommended=2),
        observation=_observation(None),
        metrics_error="every Prometheus query failed",
        scaled=False,
        now=LATER,
        sampled_at=None,
    )
    assert (st["lastScaleTime"], st["lastScaleReason"]) == (NOW, "ScaledUp")
    assert _cond(st, "MetricsAvailable")["message"] == "every Prometheus query failed"
    assert _cond(st, "ScalingActive")["reason"] == "MetricsUnavailable"
    assert [e.reason for e in events.transitions_scaling({"conditions": []}, st)] == ["MetricsUnavailable"]
