"""Events a user must see on a ModelDeployment, emitted only on transitions.

`transitions()` is pure: it compares the status before and after a pass (plus what the pass did
to the children) and names what changed: planned, plan failed, plan fixed, rollout started or
finished, a child repaired, metrics lost or back, the service level missed or met again, artifacts
compiling or ready, an optional child skipped. Re-running a pass that changed nothing yields no
event, so `kubectl describe md` stays readable and the API server is not flooded by resyncs. A new
fleet gets one event ("Planned"): its first rollout is implied, and each event is an API request.

ChildRepaired means one thing only: something other than the operator changed or deleted a child
and the pass put it back (`controller/apply.py` tells drift from the operator's own updates).

`post()` hands them to kopf, which writes core/v1 Events in the background.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from neuronfleet.api.conditions import ConditionType, Reason
from neuronfleet.autoscale import types
from neuronfleet.controller import artifacts
from neuronfleet.controller.status import condition_status
from neuronfleet.placement import capacity_status

__all__ = ["NORMAL", "ROLLOUT_STARTED", "WARNING", "Event", "capacity", "post", "repairs", "scaled", "transitions"]

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
    first = not previous.get("observedGeneration")
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
    if new_progress.get("status") == "True" and old_progressing != "True" and not first:
        events.append(Event(NORMAL, ROLLOUT_STARTED, f"Rollout started: {new_progress.get('message')}"))
    if old_progressing == "True" and new_progress.get("status") == "False":
        events.append(Event(NORMAL, Reason.ROLLOUT_COMPLETE, f"Rollout finished: {new_progress.get('message')}"))

    events += repairs(repaired)

    events += _metrics(previous, new)
    events += _service_level(previous, new)
    events += _optional(previous, new)
    events += [Event(t, r, m) for t, r, m in artifacts.transitions(previous, new)]
    return events


def repairs(repaired: Sequence[str]) -> list[Event]:
    """A ChildRepaired warning per child this pass put back."""
    message = "Repaired {}, which was changed or deleted outside the operator"
    return [Event(WARNING, Reason.CHILD_REPAIRED, message.format(what)) for what in repaired]


def capacity(
    previous: Mapping[str, Any], new: Mapping[str, Any], condition: capacity_status.CapacityCondition
) -> list[Event]:
    """Fallback activated or drained, and replicas that no node takes (placement/capacity_status.py)."""
    found = capacity_status.capacity_events(
        previous.get("capacity"),
        new.get("capacity") or {},
        _condition(previous, ConditionType.CAPACITY_AVAILABLE) or None,
        condition,
    )
    return [Event(e.type, str(e.reason), e.message) for e in found]


def scaled(decision: types.Decision) -> Event:
    """The event for a replica change the pass applied on the autoscaler's decision."""
    return Event(NORMAL, str(decision.reason), decision.message)


def _metrics(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """Metrics lost (a warning: the autoscaler holds) and back."""
    old = condition_status(previous, ConditionType.METRICS_AVAILABLE)
    cond = _condition(new, ConditionType.METRICS_AVAILABLE)
    if cond.get("status") == "False" and old != "False":
        return [Event(WARNING, Reason.METRICS_UNAVAILABLE, f"Holding replicas: {cond.get('message')}")]
    if cond.get("status") == "True" and old == "False":
        return [Event(NORMAL, Reason.METRICS_FRESH, "Metrics are available again")]
    return []


def _service_level(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """The measured service level fell below the goal (a warning), or reached it.

    Missed on every turn to False. Met on a turn to True from False or Unknown (the first judged window
    of a fleet, or after a window too quiet to judge), never from an absent condition: a status written
    by an operator without the measurement says nothing about the service level.
    """
    old = condition_status(previous, ConditionType.SERVICE_LEVEL_MET)
    cond = _condition(new, ConditionType.SERVICE_LEVEL_MET)
    if cond.get("status") == "False" and old != "False":
        return [Event(WARNING, Reason.SERVICE_LEVEL_MISSED, f"Service level below its goal: {cond.get('message')}")]
    if cond.get("status") == "True" and old in ("False", "Unknown"):
        return [Event(NORMAL, Reason.SERVICE_LEVEL_MET, f"Service level meets its goal: {cond.get('message')}")]
    return []


def _optional(previous: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """An optional child skipped for a kind the cluster lacks (a warning), and applied again."""
    old = _condition(previous, ConditionType.OPTIONAL_CHILDREN_APPLIED)
    cond = _condition(new, ConditionType.OPTIONAL_CHILDREN_APPLIED)
    if cond.get("status") == "False" and (old.get("status"), old.get("message")) != ("False", cond.get("message")):
        return [Event(WARNING, str(cond.get("reason")), str(cond.get("message")))]
    if cond.get("status") == "True" and old.get("status") == "False":
        return [Event(NORMAL, Reason.RECONCILED, f"Optional children {cond.get('message')}")]
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
