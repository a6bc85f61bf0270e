"""Where each starting replica is: pending, downloading, compiling, loading, ready, or failing.

A Neuron replica takes minutes to start, and "0/3 ready" for twenty minutes says nothing. This
module turns the fleet's pods (as the API server returns them) into one phase per pod and a
one-line summary for the Progressing/Ready messages. Pure: pods and the clock come in as data.

Sources, most trustworthy first:
- observed from the pod: not scheduled yet (and the scheduler's message), image pull, the s3://
  fetch-weights init container running (downloading), a crash loop or a failed pod, ready;
- estimated inside the vLLM container: vLLM serves nothing, /metrics included, until the engine
  is built, so the vLLM Neuron plugin's startup gauges (`vllm_neuron:startup_time_seconds`,
  `compilation_time_seconds`, `model_load_time_seconds`) only appear after the start they
  describe. While the container runs unready, the phase is read off the planner's expected phase
  durations (neuron/startup_phases.py) from the container's start time, and the summary says
  "estimated". A cache hit (CompiledArtifactsReady) has no compile phase.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from neuronfleet.neuron import startup_phases
from neuronfleet.neuron.types import Plan

__all__ = ["ReplicaPhase", "ReplicaState", "replica_states", "signature", "summary"]

CONTAINER = "vllm"  # render/deployment.py CONTAINER_NAME
FETCH_WEIGHTS = "fetch-weights"  # the s3:// init container


class ReplicaPhase(enum.StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    COMPILING = "compiling"
    LOADING = "loading"
    READY = "ready"
    FAILING = "failing"


_ORDER = tuple(ReplicaPhase)
_ESTIMATED = {
    startup_phases.DOWNLOADING: ReplicaPhase.DOWNLOADING,
    startup_phases.COMPILING: ReplicaPhase.COMPILING,
    startup_phases.LOADING: ReplicaPhase.LOADING,
}


@dataclasses.dataclass(frozen=True)
class ReplicaState:
    pod: str
    phase: ReplicaPhase
    estimated: bool = False
    detail: str = ""
    elapsed_seconds: float | None = None  # into the phase (estimates)
    expected_seconds: float | None = None  # the phase's expected length (estimates)


def _time(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _container(statuses: Sequence[Mapping[str, Any]] | None, name: str) -> Mapping[str, Any] | None:
    return next((s for s in statuses or () if s.get("name") == name), None)


def _state(
    pod: Mapping[str, Any], phases: Sequence[startup_phases.PhaseEstimate], now: datetime.datetime
) -> ReplicaState:
    name = str((pod.get("metadata") or {}).get("name", ""))
    status = pod.get("status") or {}
    if status.get("phase") == "Failed":
        return ReplicaState(name, ReplicaPhase.FAILING, detail=str(status.get("reason") or "pod failed"))
    conditions = {c.get("type"): c for c in status.get("conditions") or ()}
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.get("status") != "True":
        return ReplicaState(name, ReplicaPhase.PENDING, detail=str(scheduled.get("message") or "not scheduled"))
    fetch = _container(status.get("initContainerStatuses"), FETCH_WEIGHTS)
    if fetch is not None and "running" in (fetch.get("state") or {}):
        return ReplicaState(name, ReplicaPhase.DOWNLOADING, detail="fetching weights from S3")
    vllm = _container(status.get("containerStatuses"), CONTAINER)
    if vllm is None:
        return ReplicaState(name, ReplicaPhase.PENDING, detail="initialising")
    state = vllm.get("state") or {}
    if "waiting" in state:
        reason = str(state["waiting"].get("reason") or "")
        if reason in ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"):
            last = ((vllm.get("lastState") or {}).get("terminated") or {}).get("exitCode")
            exit_text = f", last exit code {last}" if last is not None else ""
            return ReplicaState(
                name, ReplicaPhase.FAILING, detail=f"{reason} ({vllm.get('restartCount', 0)} restarts{exit_text})"
            )
        return ReplicaState(name, ReplicaPhase.PENDING, detail=reason or "waiting")
    if "terminated" in state:
        return ReplicaState(name, ReplicaPhase.FAILING, detail=str(state["terminated"].get("reason") or "terminated"))
    if vllm.get("ready"):
        return ReplicaState(name, ReplicaPhase.READY)
    started = _time((state.get("running") or {}).get("startedAt"))
    elapsed = 0.0 if started is None else max(0.0, (now - started).total_seconds())
    phase, into, length = startup_phases.phase_at(elapsed, phases)
    return ReplicaState(
        name,
        _ESTIMATED[phase],
        estimated=True,
        elapsed_seconds=into,
        expected_seconds=length,
    )


def replica_states(
    pods: Sequence[Mapping[str, Any]],
    *,
    plan: Plan,
    cache_hit: bool,
    downloads: bool,
    now: datetime.datetime,
) -> list[ReplicaState]:
    """One state per live pod (terminating pods are left out), in pod-name order."""
    phases = startup_phases.expected_phases(
        plan.weights_bytes, runtime=plan.runtime, cache_hit=cache_hit, downloads=downloads
    )
    live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]
    states = [_state(p, phases, now) for p in live]
    return sorted(states, key=lambda s: s.pod)


def _minutes(seconds: float) -> int:
    return max(1, round(seconds / 60)) if seconds >= 30 else 0


def summary(states: Sequence[ReplicaState]) -> str:
    """E.g. `1 ready, 1 compiling (est. 4 of ~16 min), 1 pending (0/8 nodes are available...)`."""
    counts = Counter(s.phase for s in states)
    parts: list[str] = []
    for phase in _ORDER:
        if not counts[phase]:
            continue
        group = [s for s in states if s.phase is phase]
        text = f"{counts[phase]} {phase}"
        first = group[0]
        if first.estimated and first.expected_seconds is not None:
            most = max(s.elapsed_seconds or 0.0 for s in group)
            text += f" (est. {_minutes(most)} of ~{_minutes(first.expected_seconds)} min)"
        elif first.detail:
            text += f" ({first.detail})"
        parts.append(text)
    return ", ".join(parts)


def signature(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod can change its replica phase (phase, scheduling, container states, readiness).

    A pod's status changes often (probes, timestamps); only a change of this tuple is worth a pass.
    """
    status = pod.get("status") or {}
    scheduled = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), {})
    containers = tuple(
        (
            c.get("name"),
            tuple(sorted((c.get("state") or {}).keys())),
            ((c.get("state") or {}).get("waiting") or {}).get("reason"),
            c.get("ready"),
        )
        for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    )
    return (
        status.get("phase"),
        scheduled.get("status"),
        scheduled.get("message"),
        containers,
        bool((pod.get("metadata") or {}).get("deletionTimestamp")),
    )
