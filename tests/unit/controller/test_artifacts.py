"""The compiled-artifact gate: the compile-Job state machine over Job objects, pure.

Jobs here are the rendered Job bodies with a `status` shaped like the batch/v1 Job controller
writes it (Complete/Failed conditions, startTime, completionTime): the Job controller and the
Neuron compiler cannot run in a unit test, so the tests play the Job controller's part and check
what the operator decides at every step.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from neuronfleet.api import convert, resource
from neuronfleet.api.conditions import Reason
from neuronfleet.controller import artifacts as gate
from neuronfleet.neuron import planner
from neuronfleet.render import compile_job, deployment
from neuronfleet.render.options import RenderOptions

RENDER = RenderOptions()
T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
OPTIONS = gate.ArtifactOptions()


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_md(**spec: Any) -> resource.ModelDeployment:
    return resource.load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "llama3-8b", "namespace": "ml"},
            "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **spec},
        }
    )


def fleet(policy: str = "precompile", pvc: str | None = "neff-cache", **serving: Any):
    artifacts_spec: dict[str, Any] = {"policy": policy}
    if pvc:
        artifacts_spec["pvc"] = pvc
    else:
        artifacts_spec["path"] = "/cache"
    md = make_md(
        neuron={"instanceType": "trn2.48xlarge", "tensorParallelSize": 4, "compiledArtifacts": artifacts_spec},
        serving=serving,
    )
    plan = gate.keyed_plan(md, planner.plan(convert.plan_request(md)), RENDER)
    return md, plan


def running(job: dict[str, Any], at: datetime.datetime = T0) -> dict[str, Any]:
    job = copy.deepcopy(job)
    job["status"] = {"active": 1, "startTime": stamp(at)}
    return job


def succeeded(job: dict[str, Any], at: datetime.datetime) -> dict[str, Any]:
    job = running(job)
    job["status"] = {
        "succeeded": 1,
        "startTime": stamp(T0),
        "completionTime": stamp(at),
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": stamp(at)}],
    }
    return job


def failed(job: dict[str, Any], at: datetime.datetime, reason: str = "BackoffLimitExceeded") -> dict[str, Any]:
    job = running(job)
    job["status"] = {
        "failed": 3,
        "startTime": stamp(T0),
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": reason,
                "message": "Job has reached the specified backoff limit",
                "lastTransitionTime": stamp(at),
            }
        ],
    }
    return job


def decide(md, plan, jobs, *, now=T0, live_key="oldkey000000000", options=OPTIONS) -> gate.Decision:
    return gate.decide(md, plan, jobs, live_key=live_key, now=now, render=RENDER, options=options)


def minutes(n: float) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def test_compile_on_start_has_no_gate_no_condition_and_no_job():
    md, plan = fleet(policy="compileOnStart")
    d = decide(md, plan, [])
    assert d.may_roll_out and d.create is None and d.condition is None and d.degraded is None


def test_precompile_without_a_job_creates_the_compile_job_and_holds_the_rollout():
    md, plan = fleet()
    d = decide(md, plan, [])
    assert d.create is not None and d.create["kind"] == "Job"
    assert d.create["metadata"]["name"] == compile_job.compile_job_name(md, plan.artifact_key)
    assert not d.may_roll_out and not d.ready
    status, reason, message = d.condition
    assert (status, reason) == ("False", Reason.COMPILING)
    assert plan.artifact_key in message and "on CPU" in message
    assert "keep serving key oldkey000000000" in d.waiting


def test_a_running_compile_is_waited_for_without_a_second_job():
    md, plan = fleet()
    job = running(decide(md, plan, []).create)
    d = decide(md, plan, [job], now=T0 + minutes(7))
    assert d.create is None and d.delete == () and not d.may_roll_out
    assert "running 7 min" in d.condition[2]


def test_a_succeeded_compile_opens_the_gate_and_retires_jobs_of_older_keys():
    md, plan = fleet()
    old_md, old_plan = fleet(maxNumSeqs=8)
    old_job = succeeded(decide(old_md, old_plan, []).create, T0)
    job = succeeded(decide(md, plan, []).create, T0 + minutes(15))
    d = decide(md, plan, [old_job, job], now=T0 + minutes(16))
    assert d.ready and d.may_roll_out
    assert d.condition[:2] == ("True", Reason.ARTIFACTS_READY)
    assert d.delete == (old_job["metadata"]["name"],)
    assert d.degraded is None


def test_a_failed_compile_is_degraded_with_the_jobs_reason_and_retried_after_the_backoff():
    md, plan = fleet()
    first = failed(decide(md, plan, []).create, T0 + minutes(5), reason="DeadlineExceeded")
    waiting = decide(md, plan, [first], now=T0 + minutes(6))
    assert waiting.create is None and not waiting.may_roll_out
    assert waiting.condition[1] == Reason.COMPILE_FAILED
    assert "DeadlineExceeded" in waiting.degraded and plan.artifact_key in waiting.degraded
    assert waiting.requeue_after == pytest.approx(OPTIONS.compile_retry_seconds - 60)
    retry = decide(md, plan, [first], now=T0 + minutes(5) + datetime.timedelta(seconds=OPTIONS.compile_retry_seconds))
    assert retry.create["metadata"]["name"] == compile_job.compile_job_name(md, plan.artifact_key, 2)
    assert retry.create["metadata"]["labels"][compile_job.ATTEMPT_LABEL] == "2"
    assert retry.degraded is None and "previous one failed" in retry.condition[2]


def test_the_backoff_doubles_per_attempt():
    md, plan = fleet()
    first = failed(compile_job.compile_job(md, plan, render=RENDER, attempt=1), T0)
    second = failed(compile_job.compile_job(md, plan, render=RENDER, attempt=2), T0)
    assert decide(md, plan, [first, second], now=T0).requeue_after == 2 * OPTIONS.compile_retry_seconds


def test_after_the_last_attempt_the_operator_stops_and_says_how_to_retry():
    md, plan = fleet()
    jobs = [
        failed(compile_job.compile_job(md, plan, render=RENDER, attempt=n), T0)
        for n in range(1, OPTIONS.max_compile_attempts + 1)
    ]
    d = decide(md, plan, jobs, now=T0 + datetime.timedelta(days=1))
    assert d.create is None and d.requeue_after is None
    assert "gave up after 3 attempts" in d.degraded
    assert f"{compile_job.ARTIFACT_KEY_LABEL}={plan.artifact_key}" in d.degraded
    assert "keep serving key oldkey000000000" in d.degraded


def test_a_retry_that_succeeds_clears_the_failure():
    md, plan = fleet()
    jobs = [
        failed(compile_job.compile_job(md, plan, render=RENDER, attempt=1), T0),
        succeeded(compile_job.compile_job(md, plan, render=RENDER, attempt=2), T0 + minutes(30)),
    ]
    d = decide(md, plan, jobs, now=T0 + minutes(31))
    assert d.ready and d.degraded is None and d.create is None


def test_the_whole_precompile_lifecycle_played_pass_by_pass():
    """Passes as the operator would run them, with the test playing the Job controller."""
    md, plan = fleet()
    jobs: dict[str, dict[str, Any]] = {}
    now = T0
    seen: list[str] = []
    for step in range(12):
        d = decide(md, plan, list(jobs.values()), now=now)
        seen.append(d.condition[1])
        if d.ready:
            break
        if d.create is not None:
            name = d.create["metadata"]["name"]
            attempt = d.create["metadata"]["labels"][compile_job.ATTEMPT_LABEL]
            # The first attempt dies on a flaky node; the second one completes.
            jobs[name] = running(d.create, now) if attempt == "2" else failed(d.create, now + minutes(2))
        elif step > 2 and any("-2" in n for n in jobs):
            name = next(n for n in jobs if n.endswith("-2"))
            jobs[name] = succeeded(jobs[name], now)
        now = now + datetime.timedelta(seconds=d.requeue_after or 60)
    assert seen[0] == Reason.COMPILING
    assert Reason.COMPILE_FAILED in seen
    assert seen[-1] == Reason.ARTIFACTS_READY
    assert len(jobs) == 2


def test_require_checks_for_the_marker_and_never_compiles():
    md, plan = fleet(policy="require")
    d = decide(md, plan, [])
    assert d.create["metadata"]["labels"][compile_job.MODE_LABEL] == "check"
    assert not d.may_roll_out and d.condition[1] == Reason.WAITING_FOR_ARTIFACTS


def test_require_waits_rechecks_and_opens_the_gate_once_the_artifacts_appear():
    md, plan = fleet(policy="require")
    check = decide(md, plan, []).create
    missing = failed(check, T0, reason="BackoffLimitExceeded")
    early = decide(md, plan, [missing], now=T0 + minutes(1))
    assert early.create is None and early.delete == ()
    assert "policy require never compiles" in early.condition[2]
    assert early.degraded is None  # waiting for another party is not a failure of this fleet
    assert early.requeue_after == pytest.approx(OPTIONS.recheck_seconds - 60)
    due = decide(md, plan, [missing], now=T0 + minutes(10))
    assert due.delete == (check["metadata"]["name"],)
    found = decide(md, plan, [succeeded(check, T0 + minutes(11))], now=T0 + minutes(11))
    assert found.ready and found.may_roll_out and found.condition[1] == Reason.ARTIFACTS_READY


def test_a_compile_job_does_not_satisfy_require_only_its_marker_check_does():
    md, plan = fleet(policy="require")
    compiled = succeeded(compile_job.compile_job(md, plan, render=RENDER), T0)
    d = decide(md, plan, [compiled])
    assert not d.ready and d.create["metadata"]["labels"][compile_job.MODE_LABEL] == "check"


@pytest.mark.parametrize("policy", ["precompile", "require"])
def test_a_policy_that_needs_a_shared_cache_without_a_pvc_is_degraded(policy: str):
    md, plan = fleet(policy=policy, pvc=None)
    d = decide(md, plan, [])
    assert d.create is None and not d.may_roll_out
    assert "needs compiledArtifacts.pvc" in d.degraded


def test_jobs_without_artifact_labels_are_ignored():
    assert gate.observe_job({"metadata": {"name": "other", "labels": {}}, "status": {}}) is None


def test_a_cache_hit_shortens_the_expected_startup_and_the_startup_probe_budget():
    _, plan = fleet()
    hit = gate.with_cache_hit(plan)
    assert hit.expected_startup_seconds < plan.expected_startup_seconds
    assert hit.artifact_key == plan.artifact_key
    assert deployment.startup_budget_seconds(hit, RENDER) < deployment.startup_budget_seconds(plan, RENDER)
    engine = int(dict(hit.env)["VLLM_ENGINE_READY_TIMEOUT_S"])
    assert gate.ENGINE_READY_FLOOR_SECONDS <= engine <= int(dict(plan.env)["VLLM_ENGINE_READY_TIMEOUT_S"])
    assert engine >= hit.expected_startup_seconds


def test_the_key_follows_the_image_the_pods_will_run():
    md, plan = fleet()
    other = RenderOptions(images={"vllm-neuron": "mirror/vllm:0.25.0-neuronx-sdk2.33.0", "nxdi": "x:y"})
    assert gate.keyed_plan(md, plan, other).artifact_key != plan.artifact_key


def test_a_job_being_deleted_counts_as_absent_so_the_next_pass_starts_over():
    md, plan = fleet()
    job = failed(compile_job.compile_job(md, plan, render=RENDER), T0)
    job["metadata"]["deletionTimestamp"] = stamp(T0)
    assert gate.observe_job(job) is None
    assert decide(md, plan, [job]).create["metadata"]["name"] == job["metadata"]["name"]


def status_with(key: str, ready: str) -> dict[str, Any]:
    return {"plan": {"artifactKey": key}, "conditions": [{"type": "CompiledArtifactsReady", "status": ready}]}


HITS = {
    "ready for this key": ("precompile", True, "True", True),
    "compiling this key": ("precompile", True, "False", False),
    "ready for another key": ("precompile", False, "True", False),
    "compileOnStart never counts as a hit": ("compileOnStart", True, "True", False),
}


@pytest.mark.parametrize(("policy", "same_key", "ready", "hit"), HITS.values(), ids=HITS.keys())
def test_the_autoscaler_expects_a_cache_hit_only_when_status_says_this_key_is_ready(policy, same_key, ready, hit):
    md, plan = fleet(policy=policy)
    status = status_with(plan.artifact_key if same_key else "0" * 16, ready)
    assert gate.known_cache_hit(md, plan, status) is hit


def cond_status(reason: str, message: str = "m") -> dict[str, Any]:
    return {"conditions": [{"type": "CompiledArtifactsReady", "reason": reason, "message": message}]}


EVENTS = {
    "a compile starts": (None, cond_status("Compiling"), ["Compiling"]),
    "artifacts become ready": (cond_status("Compiling"), cond_status("ArtifactsReady"), ["ArtifactsReady"]),
    "progress within a compile is no event": (cond_status("Compiling", "1 min"), cond_status("Compiling", "2 min"), []),
    "a failure is left to the Degraded event": (cond_status("Compiling"), cond_status("CompileFailed"), []),
    "no condition no event": ({}, {}, []),
}


@pytest.mark.parametrize(("before", "after", "reasons"), EVENTS.values(), ids=EVENTS.keys())
def test_events_fire_when_the_artifact_state_changes_not_on_every_pass(before, after, reasons):
    assert [reason for _, reason, _ in gate.transitions(before, after)] == reasons
