"""The compiled-artifact gate of a reconcile pass: the compile-Job state machine, pure.

`decide(md, plan, jobs, live_key=..., now=...)` looks at the fleet's artifact Jobs (as the API
server returns them) and says what to do: create a Job, delete one, wait, or nothing; whether
the key's artifacts are ready; the CompiledArtifactsReady condition; a Degraded message when a
compile failed; and whether the child Deployment may move to the plan's template. The reconcile
pass does the I/O.

How the operator knows a key's artifacts exist (no status field, no side channel):
- precompile: the key's compile Job succeeded. A Job only succeeds after its wrapper wrote the
  key's marker into the shared cache (render/compile_job.py), and the completed Job stays as the
  record (no TTL; it goes with the ModelDeployment). If someone deletes it, the next pass creates
  it again and the wrapper exits at once on the marker: seconds, not a compile.
- require: a check Job that succeeds only if the key's marker exists on the PVC, created by a
  precompile fleet, a CI pipeline, or a copy. While it fails, it is re-run every
  `recheck_seconds`; the operator never compiles.

Lifecycle of a precompile key:
    no Job -> create attempt 1 -> running (Compiling) -> succeeded (ArtifactsReady, roll out)
                                                      -> failed (CompileFailed + Degraded)
    failed attempt n < max -> after retry_seconds x 2^(n-1) from the failure, create attempt n+1
    failed attempt = max   -> stay Degraded; deleting the key's Jobs (or fixing the spec) retries

Rollout gating: while the key is not ready, the Deployment is not patched (`may_roll_out` False):
the old ReplicaSet, compiled for the previous key, keeps serving; a fleet without a Deployment
waits before creating one, since strict-mode replicas would fail on the missing artifacts. With
compileOnStart there is no gate and no condition: replicas compile on a miss, as before.

Jobs of other keys are deleted once the current key is ready (their artifacts stay on the PVC).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

from neuronfleet.api.conditions import ConditionStatus, Reason
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron import artifacts, planner
from neuronfleet.neuron.types import Plan
from neuronfleet.render import compile_job
from neuronfleet.render.options import RenderOptions

__all__ = [
    "ArtifactOptions",
    "Decision",
    "JobPhase",
    "ObservedJob",
    "Policy",
    "decide",
    "keyed_plan",
    "known_cache_hit",
    "observe_job",
    "transitions",
    "with_cache_hit",
]


ENGINE_READY_FLOOR_SECONDS = 600  # never below vLLM Neuron's own default compile budget


class Policy(enum.StrEnum):
    COMPILE_ON_START = "compileOnStart"
    PRECOMPILE = "precompile"
    REQUIRE = "require"


class JobPhase(enum.StrEnum):
    ACTIVE = "Active"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True)
class ArtifactOptions:
    """Operator-level knobs of the gate (the Job shapes are in `jobs`)."""

    jobs: compile_job.CompileJobOptions = dataclasses.field(default_factory=compile_job.CompileJobOptions)
    max_compile_attempts: int = 3
    """Compile Jobs per key before the operator stops retrying on its own (each has backoffLimit pods)."""
    compile_retry_seconds: float = 600.0
    """Wait after a failed compile attempt before the next, doubled per attempt."""
    recheck_seconds: float = 300.0
    """How often policy require looks for the key's artifacts again."""


@dataclasses.dataclass(frozen=True)
class ObservedJob:
    """The parts of a batch/v1 Job the gate reads."""

    name: str
    key: str
    mode: str  # "compile" | "check"
    attempt: int
    phase: JobPhase
    reason: str = ""  # the Failed condition's reason (BackoffLimitExceeded, DeadlineExceeded)
    message: str = ""
    started: datetime.datetime | None = None
    finished: datetime.datetime | None = None  # completion or failure time


@dataclasses.dataclass(frozen=True)
class Decision:
    """What a pass does about compiled artifacts, and what status says about them."""

    policy: Policy
    key: str
    ready: bool
    may_roll_out: bool
    create: Mapping[str, Any] | None = None  # a Job to create
    delete: tuple[str, ...] = ()  # Job names to delete
    condition: tuple[str, str, str] | None = None  # (status, reason, message); None: no condition
    degraded: str | None = None  # a compile failure, for the Degraded condition
    waiting: str | None = None  # why the rollout waits, for Progressing
    requeue_after: float | None = None  # seconds until a pass must look again (retry, recheck)


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def observe_job(job: Mapping[str, Any]) -> ObservedJob | None:
    """An artifact Job as the gate sees it; None for a Job without the artifact labels or being deleted."""
    meta = job.get("metadata") or {}
    labels = meta.get("labels") or {}
    key = labels.get(compile_job.ARTIFACT_KEY_LABEL)
    mode = labels.get(compile_job.MODE_LABEL)
    if not key or mode not in ("compile", "check") or meta.get("deletionTimestamp"):
        return None  # not ours, or on its way out: a deleted Job counts as absent (retry)
    status = job.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in conditions:
        phase, cond = JobPhase.SUCCEEDED, conditions["Complete"]
    elif "Failed" in conditions:
        phase, cond = JobPhase.FAILED, conditions["Failed"]
    else:
        phase, cond = JobPhase.ACTIVE, {}
    finished = _time(status.get("completionTime")) or _time(cond.get("lastTransitionTime"))
    try:
        attempt = int(labels.get(compile_job.ATTEMPT_LABEL, "1"))
    except ValueError:
        attempt = 1
    return ObservedJob(
        name=str(meta.get("name", "")),
        key=str(key),
        mode=str(mode),
        attempt=attempt,
        phase=phase,
        reason=str(cond.get("reason") or ""),
        message=str(cond.get("message") or ""),
        started=_time(status.get("startTime")),
        finished=finished if phase is not JobPhase.ACTIVE else None,
    )


def keyed_plan(md: ModelDeployment, plan: Plan, render: RenderOptions) -> Plan:
    """`plan` with its artifact key, for the image the renderer will use."""
    image = md.spec.serving.image or render.image_for(plan.runtime)
    return artifacts.keyed(
        plan, image=image, revision=md.spec.model.revision, quantization=md.spec.serving.quantization
    )


def with_cache_hit(plan: Plan) -> Plan:
    """`plan` when its artifacts are known to exist: startup is download + load, no compile.

    This is what the startup probe budget and the autoscaler's time-to-ready then use. vLLM's
    engine-ready timeout, sized by the planner for a cold compile, shrinks to twice the cache-hit
    estimate (at least 10 minutes): replicas of a ready key serve in strict no-compile mode, so a
    replica stuck far beyond a load is restarted in minutes, not after a compile's budget.
    """
    seconds = planner.expected_startup_seconds(plan.weights_bytes, runtime=plan.runtime, cache_hit=True)
    env = dict(plan.env)
    if "VLLM_ENGINE_READY_TIMEOUT_S" in env:
        budget = max(ENGINE_READY_FLOOR_SECONDS, math.ceil(2 * seconds / 300) * 300)
        env["VLLM_ENGINE_READY_TIMEOUT_S"] = str(min(int(env["VLLM_ENGINE_READY_TIMEOUT_S"]), budget))
    return dataclasses.replace(plan, expected_startup_seconds=seconds, env=tuple(env.items()))


def known_cache_hit(md: ModelDeployment, plan: Plan, status: Mapping[str, Any] | None) -> bool:
    """Whether a new replica of `plan` will find its compiled artifacts, from the last status written.

    True only when the policy manages artifacts, the status describes the same key and its
    CompiledArtifactsReady is True. With compileOnStart nobody knows what the cache holds, so a
    new replica is expected to compile (the conservative side for time-to-ready).
    """
    if md.spec.neuron.compiled_artifacts.policy == Policy.COMPILE_ON_START or not plan.artifact_key:
        return False
    status = status or {}
    if ((status.get("plan") or {}).get("artifactKey")) != plan.artifact_key:
        return False
    for cond in status.get("conditions") or ():
        if cond.get("type") == "CompiledArtifactsReady":
            return cond.get("status") == ConditionStatus.TRUE
    return False


def transitions(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(type, reason, message) events when CompiledArtifactsReady changes reason (failures are
    already announced by the Degraded event)."""

    def find(status: Mapping[str, Any] | None) -> Mapping[str, Any]:
        for cond in (status or {}).get("conditions") or ():
            if cond.get("type") == "CompiledArtifactsReady":
                return cond
        return {}

    old, cur = find(previous), find(new)
    reason = cur.get("reason")
    if not cur or (old.get("reason"), old.get("message")) == (reason, cur.get("message")):
        return []
    if reason == Reason.ARTIFACTS_READY and old.get("reason") != reason:
        return [("Normal", str(reason), str(cur.get("message")))]
    if reason in (Reason.COMPILING, Reason.WAITING_FOR_ARTIFACTS) and old.get("reason") != reason:
        return [("Normal", str(reason), str(cur.get("message")))]
    return []


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


def _since(moment: datetime.datetime | None, now: datetime.datetime) -> float:
    return 0.0 if moment is None else max(0.0, (now - moment).total_seconds())


def decide(
    md: ModelDeployment,
    plan: Plan,
    jobs: Sequence[Mapping[str, Any]],
    *,
    live_key: str | None,
    now: datetime.datetime,
    render: RenderOptions,
    options: ArtifactOptions | None = None,
    keep_keys: frozenset[str] = frozenset(),
) -> Decision:
    """The gate for `plan.artifact_key` given the fleet's artifact Jobs (see the module docstring).

    `live_key` is the key the live Deployment serves (its artifact-key annotation), None when there
    is no Deployment yet. `keep_keys` are other keys still in use (the fleet's fallback variants):
    their Jobs are never retired as stale.
    """
    options = options or ArtifactOptions()
    spec = md.spec.neuron.compiled_artifacts
    policy = Policy(spec.policy)
    key = plan.artifact_key
    if policy is Policy.COMPILE_ON_START:
        return Decision(policy, key, ready=False, may_roll_out=True)
    if not key:
        raise ValueError("the plan has no artifact key; use keyed_plan first")
    if not spec.pvc:
        message = (
            f"compiledArtifacts.policy {policy} needs compiledArtifacts.pvc: a path alone is local to each pod, "
            "so no compile Job could fill it"
        )
        return Decision(
            policy,
            key,
            ready=False,
            may_roll_out=False,
            condition=(ConditionStatus.FALSE, Reason.WAITING_FOR_ARTIFACTS, message),
            degraded=message,
            waiting=message,
        )
    observed = [j for j in (observe_job(job) for job in jobs) if j is not None]
    mine = sorted((j for j in observed if j.key == key), key=lambda j: j.attempt)
    stale = tuple(j.name for j in observed if j.key != key and j.key not in keep_keys)
    serving = f"; the running replicas keep serving key {live_key}" if live_key and live_key != key else ""
    if policy is Policy.PRECOMPILE:
        decision = _precompile(md, plan, [j for j in mine if j.mode == "compile"], now, render, options, serving)
    else:
        decision = _require(md, plan, [j for j in mine if j.mode == "check"], now, render, options, serving)
    if decision.ready and stale:
        decision = dataclasses.replace(decision, delete=decision.delete + stale)
    return decision


def _precompile(
    md: ModelDeployment,
    plan: Plan,
    jobs: list[ObservedJob],
    now: datetime.datetime,
    render: RenderOptions,
    options: ArtifactOptions,
    serving: str,
) -> Decision:
    key = plan.artifact_key
    estimate = planner.expected_startup_seconds(plan.weights_bytes, runtime=plan.runtime, cache_hit=False)
    where = "on CPU" if compile_job.uses_cpu_compile(plan, options.jobs) else f"on {plan.instance_type}"

    def compiling(message: str, **kw: Any) -> Decision:
        return Decision(
            Policy.PRECOMPILE,
            key,
            ready=False,
            may_roll_out=False,
            condition=(ConditionStatus.FALSE, Reason.COMPILING, message),
            waiting=f"waiting for compiled artifacts of key {key}{serving}",
            **kw,
        )

    done = next((j for j in jobs if j.phase is JobPhase.SUCCEEDED), None)
    if done is not None:
        message = f"artifacts for key {key} compiled by Job {done.name}"
        return Decision(
            Policy.PRECOMPILE,
            key,
            ready=True,
            may_roll_out=True,
            condition=(ConditionStatus.TRUE, Reason.ARTIFACTS_READY, message),
        )
    if not jobs:
        job = compile_job.compile_job(md, plan, render=render, options=options.jobs, attempt=1)
        name = job["metadata"]["name"]
        return compiling(f"compiling key {key} {where} in Job {name} (cold compile ~{_minutes(estimate)})", create=job)
    last = jobs[-1]
    if last.phase is JobPhase.ACTIVE:
        elapsed = _since(last.started, now)
        return compiling(
            f"compiling key {key} {where} in Job {last.name} (attempt {last.attempt}, running "
            f"{_minutes(elapsed)} of ~{_minutes(estimate)})"
        )
    why = f"{last.reason}: {last.message}" if last.reason or last.message else "the Job failed"
    failure = f"compile Job {last.name} for key {key} failed ({why})"
    if last.attempt >= options.max_compile_attempts:
        message = (
            f"{failure}; gave up after {last.attempt} attempts{serving}. Check the Job's pod logs, fix the spec, "
            f"or delete the Jobs labelled {compile_job.ARTIFACT_KEY_LABEL}={key} to retry"
        )
        return Decision(
            Policy.PRECOMPILE,
            key,
            ready=False,
            may_roll_out=False,
            condition=(ConditionStatus.FALSE, Reason.COMPILE_FAILED, message),
            degraded=message,
            waiting=f"waiting for compiled artifacts of key {key}{serving}",
        )
    delay = options.compile_retry_seconds * 2 ** (last.attempt - 1)
    remaining = delay - _since(last.finished, now)
    if remaining > 0:
        attempts = f"attempt {last.attempt + 1} of {options.max_compile_attempts}"
        message = f"{failure}; retrying in {_minutes(remaining)} ({attempts}){serving}"
        return Decision(
            Policy.PRECOMPILE,
            key,
            ready=False,
            may_roll_out=False,
            condition=(ConditionStatus.FALSE, Reason.COMPILE_FAILED, message),
            degraded=message,
            waiting=f"waiting for compiled artifacts of key {key}{serving}",
            requeue_after=remaining,
        )
    job = compile_job.compile_job(md, plan, render=render, options=options.jobs, attempt=last.attempt + 1)
    return compiling(
        f"compiling key {key} {where} in Job {job['metadata']['name']} (attempt {last.attempt + 1} of "
        f"{options.max_compile_attempts}; the previous one failed: {why})",
        create=job,
    )


def _require(
    md: ModelDeployment,
    plan: Plan,
    jobs: list[ObservedJob],
    now: datetime.datetime,
    render: RenderOptions,
    options: ArtifactOptions,
    serving: str,
) -> Decision:
    key = plan.artifact_key
    pvc = md.spec.neuron.compiled_artifacts.pvc
    waiting = f"waiting for compiled artifacts of key {key} on PVC {pvc}{serving}"

    def wait(message: str, **kw: Any) -> Decision:
        return Decision(
            Policy.REQUIRE,
            key,
            ready=False,
            may_roll_out=False,
            condition=(ConditionStatus.FALSE, Reason.WAITING_FOR_ARTIFACTS, message),
            waiting=waiting,
            **kw,
        )

    last = jobs[-1] if jobs else None
    if last is None:
        job = compile_job.check_job(md, plan, render=render, options=options.jobs)
        return wait(f"checking PVC {pvc} for the artifacts of key {key} (Job {job['metadata']['name']})", create=job)
    if last.phase is JobPhase.SUCCEEDED:
        return Decision(
            Policy.REQUIRE,
            key,
            ready=True,
            may_roll_out=True,
            condition=(ConditionStatus.TRUE, Reason.ARTIFACTS_READY, f"artifacts for key {key} found on PVC {pvc}"),
        )
    if last.phase is JobPhase.ACTIVE:
        return wait(f"checking PVC {pvc} for the artifacts of key {key} (Job {last.name})")
    missing = (
        f"no compiled artifacts for key {key} on PVC {pvc} (marker "
        f"{artifacts.marker_path(md.spec.neuron.compiled_artifacts.path or render.compiled_artifacts_path, key)}); "
        "policy require never compiles: compile them with a precompile fleet of the same spec or copy them there"
    )
    remaining = options.recheck_seconds - _since(last.finished, now)
    if remaining > 0:
        return wait(f"{missing}; checking again in {_minutes(remaining)}", requeue_after=remaining)
    return wait(f"{missing}; checking again now", delete=(last.name,), requeue_after=1.0)
