"""Events a user must see on a ModelDeployment, emitted only on transitions.

`transitions()` is pure: it compares the status before and after a pass (plus what the pass
did to the children) and names what changed: planned, plan failed, plan fixed, rollout started,
rollout finished, child repaired. Re-running a pass that changed nothing yields no event, so
`kubectl describe md` stays readable and the API server is not flooded by resyncs.
`post()` hands them to kopf, which writes core/v1 Events in the background.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from neuronfleet.api.conditions import ConditionType, Reason
from neuronfleet.controller.status import condition_status

__all__ = ["NORMAL", "ROLLOUT_STARTED", "WARNING", "Event", "post", "transitions", "transitions_scaling"]

NORMAL = "Normal"
WARNING = "Warning"
ROLLOUT_STARTED = "RolloutStarted"


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


def transitions(
    previous: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    *,
    repaired: Sequence[str] = (),
) -> list[Event]:
    """Events for what changed between two statuses; `repaired` names children put back by this pass."""
    previous = previous or {}
    events: list[Event] = []

    old_plan = (previous.get("plan") or {}).get("summary")
    new_plan = (new.get("plan") or {}).get("summary")
    if new_plan and new_plan != old_plan:
        events.append(Event(NORMAL, Reason.PLANNED, f"Planned {new_plan}"))

    old_degraded = _condition(previous, ConditionType.DEGRADED)
    new_degraded = _condition(new, ConditionType.DEGRADED)
    if new_degraded.get("status") == "True":
        if (old_degraded.get("status"), old_degraded.get("message")) != ("True", new_degraded.get("message")):
            events.append(Event(WARNING, str(new_degraded.get("reason")), str(new_degraded.get("message"))))
    elif old_degraded.get("status") == "True":
        events.append(Event(NORMAL, Reason.RECONCILED, "The spec is served again; Degraded cleared"))

    old_progressing = condition_status(previous, ConditionType.PROGRESSING)
    new_progress = _condition(new, ConditionType.PROGRESSING)
    if new_progress.get("status") == "True" and old_progressing != "True":
        events.append(Event(NORMAL, ROLLOUT_STARTED, f"Rollout started: {new_progress.get('message')}"))
    if old_progressing == "True" and new_progress.get("status") == "False":
        events.append(Event(NORMAL, Reason.ROLLOUT_COMPLETE, f"Rollout finished: {new_progress.get('message')}"))

    for what in repaired:
        message = f"Repaired {what}, which was changed or deleted outside the operator"
        events.append(Event(WARNING, Reason.CHILD_REPAIRED, message))
    return events


def transitions_scaling(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Event]:
    """Events for the autoscaler's conditions: metrics lost (a warning) and back."""
    old = condition_status(previous, ConditionType.METRICS_AVAILABLE)
    cond = _condition(new, ConditionType.METRICS_AVAILABLE)
    if cond.get("status") == "False" and old != "False":
        return [Event(WARNING, Reason.METRICS_UNAVAILABLE, f"Holding replicas: {cond.get('message')}")]
    if cond.get("status") == "True" and old == "False":
        return [Event(NORMAL, Reason.METRICS_FRESH, "Metrics are available again")]
    return []


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or ():
        if cond.get("type") == type_:
            return cond
    return {}


def post(body: Mapping[str, Any], events: Sequence[Event]) -> None:
    """Queue the events on the ModelDeployment; kopf posts them without blocking the pass."""
    for event in events:
        kopf.event(dict(body), type=event.type, reason=event.reason, message=event.message)
