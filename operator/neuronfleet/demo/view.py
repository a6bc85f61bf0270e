"""The live view: what the operator decided and why, read the way a user reads it.

Everything about the fleet's desired state and its measured service level (status.serviceLevel,
ServiceLevelMet, when the spec states an SLO) comes from the ModelDeployment's status and its
Events, fetched through the official kubernetes client against the emulator (what
`kubectl get md -w` and `kubectl describe md` show); only the load figures come from the load
generator itself. Reading is blocking, so the demo runs `FleetReader.read` in a worker thread.
Formatting is pure.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import kubernetes

from neuronfleet.api import constants

__all__ = [
    "EventLine",
    "FleetReader",
    "FleetSnapshot",
    "Sample",
    "arrival_rate",
    "format_event",
    "format_sample",
    "format_service_level",
    "snapshot_from",
]


@dataclass(frozen=True)
class FleetSnapshot:
    """The parts of a ModelDeployment's status the view shows."""

    desired: int | None
    replicas: int | None
    ready: int | None
    tokens_per_second: float | None  # as Prometheus sees it: per wall second
    concurrency: float | None
    last_scale_reason: str | None
    last_scale_time: str | None
    conditions: Mapping[str, tuple[str, str, str]]  # type -> (status, reason, message)
    attainment: float | None = None  # status.serviceLevel.attainment: measured from vLLM's histograms
    service_level_met: str | None = None  # ServiceLevelMet: True, False, Unknown; None without an SLO


@dataclass(frozen=True)
class EventLine:
    """One Event of the ModelDeployment."""

    time: str
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Sample:
    """One row of the timeline the summary and the plot are made of."""

    wall: float  # seconds since the load started
    trace_time: float | None  # trace seconds replayed so far
    load: float  # trace arrivals per (trace) second over the last minute of trace
    in_flight: int
    desired: int | None
    ready: int | None
    pods: int
    pods_ready: int
    tokens_per_second: float | None  # simulated seconds
    concurrency: float | None
    attainment: float | None = None  # the operator's measured service level (status.serviceLevel)
    service_level_met: str | None = None  # ServiceLevelMet's status


def snapshot_from(md: Mapping[str, Any]) -> FleetSnapshot:
    """Pure: the view's fields from a ModelDeployment object."""
    status = md.get("status") or {}
    metrics = status.get("metrics") or {}
    conditions = {
        str(c.get("type")): (str(c.get("status")), str(c.get("reason", "")), str(c.get("message", "")))
        for c in status.get("conditions") or ()
    }
    level = status.get("serviceLevel") or {}
    met = conditions.get("ServiceLevelMet")
    return FleetSnapshot(
        desired=status.get("desiredReplicas"),
        replicas=status.get("replicas"),
        ready=status.get("readyReplicas"),
        tokens_per_second=metrics.get("tokensPerSecond"),
        concurrency=metrics.get("concurrency"),
        last_scale_reason=status.get("lastScaleReason"),
        last_scale_time=status.get("lastScaleTime"),
        conditions=conditions,
        attainment=level.get("attainment"),
        service_level_met=None if met is None else met[0],
    )


def arrival_rate(arrivals: Sequence[float], now: float, *, window: float = 60.0) -> float:
    """Requests per second in the trace window (now - window, now]; `arrivals` sorted."""
    if now <= 0:
        return 0.0
    span = min(window, now)
    count = bisect.bisect_right(arrivals, now) - bisect.bisect_right(arrivals, now - span)
    return count / span


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:d}:{seconds % 60:02d}"


def format_service_level(attainment: float | None, met: str | None) -> str:
    """The measured service level as the live view shows it: `SLO 99.6% met`, `SLO - (Unknown)`, or nothing."""
    if met is None and attainment is None:
        return ""
    verdict = {"True": "met", "False": "MISSED"}.get(met or "", f"({met or 'not measured'})")
    share = "-" if attainment is None else f"{100 * attainment:.1f}%"
    return f"  | SLO {share:>6} {verdict}"


def format_sample(sample: Sample) -> str:
    """One status line of the live view."""
    trace = "-" if sample.trace_time is None else _clock(sample.trace_time)
    return (
        f"{_clock(sample.wall):>6}  trace {trace:>6}  load {sample.load:5.2f} req/s  in flight {sample.in_flight:4d}"
        f"  | replicas {_num(sample.desired):>2} desired {_num(sample.ready):>2} ready"
        f" ({sample.pods} pods)  | {_num(sample.tokens_per_second):>6} tok/s"
        f"  concurrency {_num(sample.concurrency, '.1f'):>5}"
        f"{format_service_level(sample.attainment, sample.service_level_met)}"
    )


def format_event(event: EventLine) -> str:
    """One Event as the view prints it, set apart from the status lines."""
    marker = "!!" if event.type == "Warning" else ">>"
    return f"  {marker} {event.reason}: {event.message}"


class FleetReader:
    """Reads one ModelDeployment and the Events about it that were not shown yet (blocking calls)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
        self.custom = kubernetes.client.CustomObjectsApi(api)
        self.core = kubernetes.client.CoreV1Api(api)
        self.api = api
        self.namespace = namespace
        self.name = name
        self._seen: dict[str, int] = {}  # event uid -> count already shown

    def read(self) -> tuple[FleetSnapshot | None, list[EventLine]]:
        try:
            md = self.custom.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, self.namespace, constants.PLURAL, self.name
            )
        except kubernetes.client.ApiException:
            md = None
        fresh: list[EventLine] = []
        try:
            events = self.core.list_namespaced_event(self.namespace).items
        except kubernetes.client.ApiException:
            events = []
        for event in sorted(events, key=lambda e: int(e.metadata.resource_version or 0)):
            involved = event.involved_object
            if involved is None or involved.name != self.name or involved.kind != constants.KIND:
                continue
            uid, count = event.metadata.uid or event.metadata.name, event.count or 1
            if self._seen.get(uid, 0) >= count:
                continue
            self._seen[uid] = count
            when = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
            fresh.append(EventLine(str(when or ""), event.type or "Normal", event.reason or "", event.message or ""))
        return (snapshot_from(md) if md else None), fresh
