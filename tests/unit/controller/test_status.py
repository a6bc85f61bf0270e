"""The whole status from one function: rollout, the gate, the autoscaler's decision, missing kinds, no flicker."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from neuronfleet.api import convert
from neuronfleet.api.resource import load
from neuronfleet.autoscale import types
from neuronfleet.autoscale.slo_status import SloReport
from neuronfleet.controller import artifacts, events, kinds, status
from neuronfleet.controller.state import ScalingState
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
    return next((c for c in st["conditions"] if c["type"] == type_), {})


def test_a_ready_fleet_reports_ready_and_not_progressing() -> None:
    obs = status.Observed(generation=3, plan=plan(), deployment=dep(), selector="a=b", desired_replicas=2)
    st = status.compute_status(obs, None, now=NOW)
    assert (st["observedGeneration"], st["readyReplicas"], st["selector"], st["desiredReplicas"]) == (3, 2, "a=b", 2)
    assert _cond(st, "Ready")["status"] == "True"
    assert _cond(st, "Progressing")["reason"] == "RolloutComplete"
    assert _cond(st, "Degraded")["status"] == "False"
    assert all(c["observedGeneration"] == 3 for c in st["conditions"])
    assert st["plan"]["tensorParallelSize"] == obs.plan.tensor_parallel_size


def test_a_failed_plan_keeps_the_running_plan_and_degrades() -> None:
    good = status.compute_status(
        status.Observed(generation=1, plan=plan(), deployment=dep(), desired_replicas=2), None, now=NOW
    )
    bad = status.compute_status(
        status.Observed(generation=2, plan=None, plan_failure="does not fit", deployment=dep(), desired_replicas=2),
        good,
        now=LATER,
    )
    assert bad["plan"] == good["plan"]
    degraded = _cond(bad, "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "PlanFailed", "does not fit")
    assert degraded["lastTransitionTime"] == LATER
    assert _cond(bad, "Ready")["status"] == "True"  # the running pods still serve


def test_autoscaler_fields_are_kept_until_this_process_decides() -> None:
    """After a restart no decision is in memory: the autoscaler's fields and conditions stay as they were."""
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
    obs = status.Observed(generation=1, plan=plan(), deployment=dep(), desired_replicas=2, autoscaling=True)
    st = status.compute_status(obs, previous, now=LATER)
    assert st["lastScaleTime"] == NOW and st["metrics"] == {"concurrency": 12.0}
    assert _cond(st, "ScalingActive")["status"] == "True"


def test_an_unchanged_world_produces_no_status_patch() -> None:
    obs = status.Observed(generation=1, plan=plan(), deployment=dep(), desired_replicas=2)
    first = status.compute_status(obs, None, now=NOW)
    second = status.compute_status(obs, first, now=LATER)
    assert status.status_patch(first, second) is None
    assert status.status_patch(None, first) == first


def test_events_fire_on_transitions_only() -> None:
    rolling = status.Observed(
        generation=1, plan=plan(), deployment=dep(updated=0, ready=0, available=0), desired_replicas=2
    )
    done = status.Observed(generation=1, plan=plan(), deployment=dep(), desired_replicas=2)
    s1 = status.compute_status(rolling, None, now=NOW)
    s2 = status.compute_status(done, s1, now=LATER)
    # A new fleet gets one event: its first rollout is implied by the plan.
    assert [e.reason for e in events.transitions(None, s1)] == ["Planned"]
    assert [e.reason for e in events.transitions(s1, s2)] == ["RolloutComplete"]
    assert events.transitions(s2, status.compute_status(done, s2, now=LATER)) == []
    s3 = status.compute_status(rolling, s2, now=LATER)
    assert [e.reason for e in events.transitions(s2, s3)] == ["RolloutStarted"]
    repaired = events.transitions(s2, s2, repaired=["Service llama"])
    assert [(e.type, e.reason) for e in repaired] == [("Warning", "ChildRepaired")]


def _decision(replicas: int, reason: str, *, recommended: int, limited: bool = False) -> types.Decision:
    return types.Decision(
        replicas=replicas, reason=types.Reason(reason), message="m", recommended=recommended, limited=limited
    )


def _scaling(decision: types.Decision, concurrency: float | None, *, error: str | None = None) -> ScalingState:
    seen = types.Observation(
        tokens_per_second=None,
        concurrency=concurrency,
        current_replicas=2,
        ready_replicas=2,
        sampled_at=None if concurrency is None else 1767225600.0,
    )
    at = datetime.datetime(2026, 1, 1, 0, 1, tzinfo=datetime.UTC)
    return ScalingState(decision, seen, error, {"concurrency": 8.0}, at, seq=1)


def _autoscaled(scaling: ScalingState, *, scaled: bool, generation: int = 4) -> status.Observed:
    return status.Observed(
        generation=generation,
        plan=plan(),
        deployment=dep(4),
        desired_replicas=4,
        autoscaling=True,
        scaling=scaling,
        scaled=scaled,
    )


def test_a_scale_up_clamped_at_max_records_the_scale_and_the_limit() -> None:
    scaling = _scaling(_decision(4, "LimitedByMaxReplicas", recommended=8, limited=True), 60.0)
    st = status.compute_status(_autoscaled(scaling, scaled=True), None, now=LATER)
    assert (st["desiredReplicas"], st["lastScaleTime"], st["lastScaleReason"]) == (
        4,
        "2026-01-01T00:01:00Z",
        "LimitedByMaxReplicas",
    )
    assert st["metrics"] == {"concurrency": 60.0, "sampledAt": NOW}
    assert st["autoscalingTargets"] == {"concurrency": 8.0}
    assert _cond(st, "ScalingLimited")["reason"] == "LimitedByMaxReplicas"
    assert _cond(st, "ScalingActive")["status"] == "True"
    assert _cond(st, "MetricsAvailable")["status"] == "True"


def test_missing_metrics_hold_and_keep_the_last_scale_time() -> None:
    previous = {"lastScaleTime": NOW, "lastScaleReason": "ScaledUp", "conditions": []}
    scaling = _scaling(_decision(2, "MetricsUnavailable", recommended=2), None, error="every Prometheus query failed")
    st = status.compute_status(_autoscaled(scaling, scaled=False), previous, now=LATER)
    assert (st["lastScaleTime"], st["lastScaleReason"]) == (NOW, "ScaledUp")
    assert _cond(st, "MetricsAvailable")["message"] == "every Prometheus query failed"
    assert _cond(st, "ScalingActive")["reason"] == "MetricsUnavailable"
    lost = [e for e in events.transitions(previous, st) if e.reason == "MetricsUnavailable"]
    assert [e.type for e in lost] == ["Warning"]
    assert events.transitions(st, status.compute_status(_autoscaled(scaling, scaled=False), st, now=LATER)) == []


def test_the_same_decision_gives_the_same_status_on_every_pass() -> None:
    """No field flickers: passes between two decisions compute the scaling fields from the same decision."""
    scaling = _scaling(_decision(4, "ScaledUp", recommended=4), 30.0)
    first = status.compute_status(_autoscaled(scaling, scaled=True), None, now=NOW)
    again = status.compute_status(_autoscaled(scaling, scaled=False), first, now=LATER)
    assert status.status_patch(first, again) is None


def test_turning_autoscaling_off_says_so_in_scaling_active() -> None:
    scaling = _scaling(_decision(4, "ScaledUp", recommended=4), 30.0)
    on = status.compute_status(_autoscaled(scaling, scaled=True), None, now=NOW)
    off = status.compute_status(
        status.Observed(generation=5, plan=plan(), deployment=dep(), desired_replicas=2, autoscaling=False),
        on,
        now=LATER,
    )
    assert _cond(off, "ScalingActive")["reason"] == "AutoscalingDisabled"


PODMONITOR = kinds.by_kind("PodMonitor")
PDB = kinds.by_kind("PodDisruptionBudget")


def test_a_missing_required_kind_degrades_and_names_it() -> None:
    missing = ((PDB.missing_reason, status.unserved_message(PDB)),)
    obs = status.Observed(generation=1, plan=plan(), deployment=dep(), desired_replicas=2, missing=missing)
    degraded = _cond(status.compute_status(obs, None, now=NOW), "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "KindNotServed")
    assert "does not serve policy/v1 PodDisruptionBudget (poddisruptionbudgets)" in degraded["message"]


def test_a_missing_optional_kind_warns_and_holds_nothing_back() -> None:
    obs = status.Observed(
        generation=1,
        plan=plan(),
        deployment=dep(),
        desired_replicas=2,
        autoscaling=False,
        skipped=(PODMONITOR,),
        wants_optional=("PodMonitor",),
    )
    st = status.compute_status(obs, None, now=NOW)
    skipped = _cond(st, "OptionalChildrenApplied")
    assert (skipped["status"], skipped["reason"]) == ("False", "KindNotServed")
    assert "Prometheus Operator" in skipped["message"]
    assert _cond(st, "Degraded")["status"] == "False"
    assert _cond(st, "Ready")["status"] == "True"
    assert [(e.type, e.reason) for e in events.transitions(st, st)] == []
    back = status.compute_status(dataclasses.replace(obs, skipped=()), st, now=LATER)
    assert _cond(back, "OptionalChildrenApplied")["status"] == "True"
    assert [e.reason for e in events.transitions(st, back)] == ["Reconciled"]
    none = status.compute_status(dataclasses.replace(obs, skipped=(), wants_optional=()), back, now=LATER)
    assert _cond(none, "OptionalChildrenApplied") == {}


def test_degraded_names_the_most_fundamental_failure_and_lists_all() -> None:
    obs = status.Observed(
        generation=1,
        plan=plan(),
        deployment=dep(),
        desired_replicas=2,
        apply_failures=("Service llama already exists and is controlled by Foo bar",),
        missing=((PDB.missing_reason, status.unserved_message(PDB)),),
        gate=gate(degraded="compile Job x failed"),
    )
    degraded = _cond(status.compute_status(obs, None, now=NOW), "Degraded")
    assert degraded["reason"] == "ApplyFailed"
    assert "controlled by Foo" in degraded["message"] and "PodDisruptionBudget" in degraded["message"]
    assert "compile Job x failed" in degraded["message"]


def gate(**decision: Any) -> artifacts.Decision:
    base = {"policy": artifacts.Policy.PRECOMPILE, "key": "k2", "ready": False, "may_roll_out": False}
    return artifacts.Decision(**{**base, **decision})


def test_a_gated_fleet_is_not_ready_while_old_replicas_fill_the_count() -> None:
    waiting = "waiting for compiled artifacts of key k2; the running replicas keep serving key k1"
    obs = status.Observed(
        generation=3,
        plan=dataclasses.replace(plan(), artifact_key="k2"),
        deployment=dep(),
        desired_replicas=2,
        gate=gate(condition=("False", "Compiling", "compiling"), waiting=waiting),
        phases="1 compiling (est. 2 of ~9 min)",
    )
    st = status.compute_status(obs, None, now=NOW)
    ready = _cond(st, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForArtifacts")
    assert "keep serving key k1" in ready["message"] and "1 compiling" in ready["message"]
    assert _cond(st, "Progressing")["status"] == "True"
    assert _cond(st, "CompiledArtifactsReady")["observedGeneration"] == 3
    assert st["plan"]["artifactKey"] == "k2"


def test_a_compile_failure_degrades_the_fleet_without_hiding_a_plan_failure() -> None:
    obs = status.Observed(generation=1, plan=plan(), deployment=dep(), gate=gate(degraded="compile Job x failed"))
    assert _cond(status.compute_status(obs, None, now=NOW), "Degraded")["reason"] == "CompileFailed"
    planless = dataclasses.replace(obs, plan=None, plan_failure="does not fit")
    assert _cond(status.compute_status(planless, None, now=NOW), "Degraded")["reason"] == "PlanFailed"


def test_compile_on_start_removes_a_stale_artifacts_condition() -> None:
    stale = {"conditions": [{"type": "CompiledArtifactsReady", "status": "True", "reason": "ArtifactsReady"}]}
    obs = status.Observed(
        generation=1,
        plan=plan(),
        deployment=dep(),
        desired_replicas=2,
        gate=gate(policy=artifacts.Policy.COMPILE_ON_START, may_roll_out=True),
    )
    st = status.compute_status(obs, stale, now=NOW)
    assert _cond(st, "CompiledArtifactsReady") == {}
    assert _cond(st, "Ready")["status"] == "True"


def test_an_open_gate_adds_replica_phases_to_a_rollout_in_progress() -> None:
    obs = status.Observed(
        generation=1,
        plan=plan(),
        deployment=dep(updated=1, ready=1, available=1),
        desired_replicas=2,
        gate=gate(may_roll_out=True, ready=True),
        phases="1 loading (est. 1 of ~3 min)",
    )
    ready = _cond(status.compute_status(obs, None, now=NOW), "Ready")
    assert ready["message"].endswith("replicas: 1 loading (est. 1 of ~3 min)")


# -- the measured service level (spec.autoscaling.slo) -------------------------------------------


def _slo_report(condition: tuple[str, str, str], *, attainment: float | None, unreachable: str | None = None):
    level = {"samples": 400, "source": "histograms", "reason": "Measured", "sampledAt": NOW}
    if attainment is not None:
        level["attainment"] = attainment
    return SloReport(
        service_level=level,
        capacity_curve={"alphaSeconds": 0.02, "source": "calibrated", "confidence": 0.75, "sloBatch": 32},
        condition=condition,
        target_scale=1.0,
        goal=0.99,
        planned_utilization=0.4,
        unreachable=unreachable,
    )


MET = ("True", "AttainmentMet", "goal 99.00%: 99.50% of requests within the SLO")
MISSED = ("False", "AttainmentBelowGoal", "goal 99.00%: 91.00% of requests within the SLO")


def _with_slo(report: SloReport | None, *, slo: bool = True, autoscaling: bool = True) -> status.Observed:
    scaling = _scaling(_decision(4, "ScaledUp", recommended=4), 30.0)
    observed = _autoscaled(dataclasses.replace(scaling, slo=report), scaled=False)
    ready = dep(4, ready=4, updated=4, available=4)
    return dataclasses.replace(observed, deployment=ready, slo=slo, autoscaling=autoscaling)


def test_the_autoscalers_slo_report_becomes_service_level_capacity_curve_and_the_condition() -> None:
    st = status.compute_status(_with_slo(_slo_report(MISSED, attainment=0.91)), None, now=NOW)
    assert st["serviceLevel"]["attainment"] == 0.91
    assert st["capacityCurve"] == {"alphaSeconds": 0.02, "source": "calibrated", "confidence": 0.75, "sloBatch": 32}
    cond = _cond(st, "ServiceLevelMet")
    assert (cond["status"], cond["reason"], cond["message"]) == MISSED
    assert _cond(st, "Ready")["status"] == "True", "the service level never gates Ready"
    unknown = status.compute_status(
        _with_slo(_slo_report(("Unknown", "TooFewSamples", "12 requests"), attainment=None)), st, now=LATER
    )
    assert _cond(unknown, "ServiceLevelMet")["status"] == "Unknown"


def test_passes_between_two_ticks_rewrite_nothing_and_a_restart_keeps_the_last_report() -> None:
    first = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), None, now=NOW)
    again = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), first, now=LATER)
    assert status.status_patch(first, again) is None
    restarted = status.compute_status(_with_slo(None), first, now=LATER)  # no decision in this process yet
    assert status.status_patch(first, restarted) is None


@pytest.mark.parametrize(
    ("slo", "autoscaling"),
    [pytest.param(False, True, id="the SLO removed"), pytest.param(True, False, id="autoscaling turned off")],
)
def test_removing_the_slo_deletes_its_fields_and_condition_with_the_patch(slo: bool, autoscaling: bool) -> None:
    before = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), None, now=NOW)
    after = status.compute_status(_with_slo(None, slo=slo, autoscaling=autoscaling), before, now=LATER)
    assert "serviceLevel" not in after and "capacityCurve" not in after
    assert _cond(after, "ServiceLevelMet") == {}
    patch = status.status_patch(before, after)
    assert patch is not None and patch["serviceLevel"] is None and patch["capacityCurve"] is None


def test_an_slo_no_fleet_can_meet_on_the_fitted_curve_degrades_the_fleet() -> None:
    why = "spec.autoscaling.slo cannot be met on the fleet's capacity curve: one user alone gets 8.2 tokens/s"
    st = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995, unreachable=why)), None, now=NOW)
    degraded = _cond(st, "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "PlanFailed", why)
    fixed = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), st, now=LATER)
    assert _cond(fixed, "Degraded")["status"] == "False"


def test_service_level_events_fire_on_flips_only() -> None:
    def reasons(before, after) -> list[tuple[str, str]]:
        return [(e.type, e.reason) for e in events.transitions(before, after) if "ServiceLevel" in e.reason]

    unknown = status.compute_status(
        _with_slo(_slo_report(("Unknown", "TooFewSamples", "m"), attainment=None)), None, now=NOW
    )
    met = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), unknown, now=NOW)
    missed = status.compute_status(_with_slo(_slo_report(MISSED, attainment=0.91)), met, now=NOW)
    worse = status.compute_status(
        _with_slo(_slo_report(("False", "AttainmentBelowGoal", "80%"), attainment=0.8)), missed, now=NOW
    )
    quiet = status.compute_status(
        _with_slo(_slo_report(("Unknown", "TooFewSamples", "m"), attainment=None)), worse, now=NOW
    )
    back = status.compute_status(_with_slo(_slo_report(MET, attainment=0.995)), missed, now=NOW)
    assert reasons(unknown, met) == [("Normal", "ServiceLevelMet")]
    assert reasons(met, missed) == [("Warning", "ServiceLevelMissed")]
    assert reasons(missed, worse) == [], "still missed: one warning per miss, not one per window"
    assert reasons(worse, quiet) == []
    assert reasons(missed, back) == [("Normal", "ServiceLevelMet")]
    assert reasons(met, met) == []
    assert "91.00%" in next(e.message for e in events.transitions(met, missed) if e.reason == "ServiceLevelMissed")
    no_condition = {k: v for k, v in met.items() if k != "conditions"}
    assert reasons(no_condition, met) == [], "no Met event from a status written without the measurement"


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 applied, as the API server applies a merge patch (for checking `status_patch`)."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            {"autoscalingTargets": {"concurrencyPerReplica": 8.0, "engineLoad": 0.7}},
            {"autoscalingTargets": {"concurrencyPerReplica": 8.0}},
            id="a derived target dropped with the SLO",
        ),
        pytest.param(
            {"serviceLevel": {"attainment": 0.9, "samples": 400, "reason": "Measured"}},
            {"serviceLevel": {"samples": 20, "reason": "TooFewSamples"}},
            id="an attainment no longer judged",
        ),
        pytest.param({"serviceLevel": {"samples": 1}, "replicas": 2}, {"replicas": 2}, id="a whole field removed"),
        pytest.param(
            {"capacity": {"variants": [{"name": "a"}, {"name": "b"}]}}, {"capacity": {"variants": []}}, id="a list"
        ),
        pytest.param({"metrics": {"waiting": 1.0}}, {"metrics": {}}, id="a map emptied"),
    ],
)
def test_the_status_patch_turns_the_stored_status_into_the_new_one_at_any_depth(before, after) -> None:
    patch = status.status_patch(before, after)
    assert patch is not None
    assert _merge(before, patch) == after
    assert status.status_patch(after, after) is None
