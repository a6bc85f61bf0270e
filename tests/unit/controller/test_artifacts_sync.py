"""The pure parts of the artifact gate's shell: holding the rollout and laying the gate over status."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from neuronfleet.api.conditions import find_condition
from neuronfleet.controller import artifacts, artifacts_sync
from plan_builders import TRN2_TP4, make_plan

PLAN = make_plan(TRN2_TP4, expected_startup_seconds=180, artifact_key="k2")
CHILDREN = [{"kind": "Service"}, {"kind": "PodDisruptionBudget"}, {"kind": "Deployment"}]
NOW = "2026-01-01T00:00:00Z"


def gate(**decision) -> artifacts_sync.Gate:
    base = {"policy": artifacts.Policy.PRECOMPILE, "key": "k2", "ready": False, "may_roll_out": False}
    return artifacts_sync.Gate(PLAN, artifacts.Decision(**{**base, **decision}))


def computed_status() -> dict:
    """What compute_status would have written for a fleet whose old replicas are all ready."""
    return {
        "plan": {"artifactKey": None},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "2 of 2 replicas ready"},
            {"type": "Progressing", "status": "False", "reason": "RolloutComplete", "message": "2 of 2"},
            {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "ok"},
        ],
    }


@pytest.mark.parametrize(("open_", "kinds"), [(True, 3), (False, 2)], ids=["gate open", "gate closed"])
def test_a_closed_gate_leaves_the_deployment_out_and_everything_else_in(open_: bool, kinds: int):
    kept = artifacts_sync.hold_rollout(CHILDREN, gate(may_roll_out=open_))
    assert len(kept) == kinds
    assert ("Deployment" in [c["kind"] for c in kept]) is open_


def test_a_gated_fleet_is_not_ready_while_old_replicas_fill_the_count():
    status = computed_status()
    waiting = "waiting for compiled artifacts of key k2; the running replicas keep serving key k1"
    g = gate(condition=("False", "Compiling", "compiling"), waiting=waiting)
    artifacts_sync.annotate_status(status, g, generation=3, now=NOW, phases="1 compiling (est. 2 of ~9 min)")
    ready = find_condition(status["conditions"], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForArtifacts")
    assert "keep serving key k1" in ready["message"] and "1 compiling" in ready["message"]
    assert find_condition(status["conditions"], "Progressing")["status"] == "True"
    assert find_condition(status["conditions"], "CompiledArtifactsReady")["observedGeneration"] == 3
    assert status["plan"]["artifactKey"] == "k2"


def test_a_compile_failure_degrades_the_fleet_without_hiding_a_plan_failure():
    status = computed_status()
    artifacts_sync.annotate_status(status, gate(degraded="compile Job x failed"), generation=1, now=NOW)
    assert find_condition(status["conditions"], "Degraded")["reason"] == "CompileFailed"
    status = computed_status()
    status["conditions"][2] = {"type": "Degraded", "status": "True", "reason": "ApplyFailed", "message": "refused"}
    artifacts_sync.annotate_status(status, gate(degraded="compile Job x failed"), generation=1, now=NOW)
    assert find_condition(status["conditions"], "Degraded")["reason"] == "ApplyFailed"


def test_compile_on_start_removes_a_stale_artifacts_condition():
    status = computed_status()
    status["conditions"].append({"type": "CompiledArtifactsReady", "status": "True", "reason": "ArtifactsReady"})
    g = gate(policy=artifacts.Policy.COMPILE_ON_START, may_roll_out=True)
    artifacts_sync.annotate_status(status, g, generation=1, now=NOW)
    assert find_condition(status["conditions"], "CompiledArtifactsReady") is None
    assert find_condition(status["conditions"], "Ready")["status"] == "True"


def test_an_open_gate_adds_replica_phases_to_a_rollout_in_progress():
    status = computed_status()
    status["conditions"][0] = {
        "type": "Ready",
        "status": "False",
        "reason": "RolloutInProgress",
        "message": "1 of 2 replicas updated",
    }
    g = dataclasses.replace(gate(may_roll_out=True, ready=True), plan=PLAN)
    artifacts_sync.annotate_status(status, g, generation=1, now=NOW, phases="1 loading (est. 1 of ~3 min)")
    assert find_condition(status["conditions"], "Ready")["message"].endswith("replicas: 1 loading (est. 1 of ~3 min)")


async def test_a_later_requeue_fires_after_its_delay_without_blocking_the_queue():
    fired: list[str] = []
    requeue = artifacts_sync.later(fired.append)
    requeue("fleet", 0.01)
    assert fired == []
    await asyncio.sleep(0.05)
    assert fired == ["fleet"]
