"""Whether this operator may act: kopf's pause, extended to everything the operator runs itself.

kopf peering pauses the lower-priority replica (and every replica of a tied priority) by stopping
its watch streams and handlers. The operator's own tasks are not kopf's: the autoscaler's loops,
the work queue's passes and their retries would go on deciding and writing from a cache that no
longer moves. `Leadership` reads kopf's own pause state, so the rest of the operator follows it:
passes are parked and no write leaves while paused; on resuming, listeners reset what went stale
(decisions, histories) and resync the cache, then the parked passes run.

kopf 1.45 does not expose its pause state to handlers. `kopf.spawn_tasks` creates one
`ToggleSet(any)` ("operator_paused": peering conflicts, a mandatory peering object missing) and
hands it to every task that honours the pause; `pause_toggles` takes it from the arguments of the
task kopf names "daemon killer" (kopf/_core/reactor/running.py). It fails loudly when a kopf
upgrade moves it, instead of letting two operators act.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Hashable
from typing import Any, Protocol

from neuronfleet.controller.kube import KubeError

__all__ = ["Leadership", "Paused", "Toggles", "kopf_event_posting", "pause_toggles"]

log = logging.getLogger(__name__)

KOPF_PAUSE_AWARE_TASK = "daemon killer"
KOPF_EVENT_POSTER_TASK = "poster of events"


class Toggles(Protocol):
    """The part of kopf's `aiotoggles.ToggleSet` used here."""

    def is_on(self) -> bool: ...

    async def wait_for(self, state: bool, /) -> None: ...


class Paused(KubeError):
    """A write refused because the operator is paused: the pass fails like one the API refused, and is parked."""

    def __init__(self) -> None:
        super().__init__(0, "Paused", "the operator is paused: another replica of the peering acts")


def _task_argument(tasks: Collection[asyncio.Task[Any]], task_name: str, argument: str) -> Any:
    """An argument kopf passed to the coroutine of its task `task_name` (inside kopf's guard), or None."""
    for task in tasks:
        if task.get_name() != task_name:
            continue
        guard = task.get_coro()
        inner = getattr(guard, "cr_frame", None) and guard.cr_frame.f_locals.get("coro")  # type: ignore[union-attr]
        frame = getattr(inner, "cr_frame", None)
        return None if frame is None else frame.f_locals.get(argument)
    return None


def pause_toggles(tasks: Collection[asyncio.Task[Any]]) -> Toggles:
    """kopf's "operator paused" toggle set, from the tasks `kopf.spawn_tasks` returned."""
    toggles = _task_argument(tasks, KOPF_PAUSE_AWARE_TASK, "operator_paused")
    if toggles is not None and hasattr(toggles, "is_on") and hasattr(toggles, "wait_for"):
        return toggles  # type: ignore[no-any-return]
    raise RuntimeError(f"kopf's pause state was not found in its {KOPF_PAUSE_AWARE_TASK!r} task (kopf upgraded?)")


def kopf_event_posting(tasks: Collection[asyncio.Task[Any]]) -> Callable[[], None]:
    """A function that lets the task calling it (and tasks it starts) post events with `kopf.event`.

    kopf sets its event queue in context variables only inside its per-object handler tasks; a
    pass started from anywhere else (the leadership task, on resuming) failed with LookupError on
    its first event, and so did its retries (found by the chaos soak). The queue is the argument
    of kopf's "poster of events" task (kopf/_core/reactor/running.py, kopf/_core/engines/posting.py).
    """
    from kopf._core.engines import posting  # kopf's own: no public API sets these

    queue = _task_argument(tasks, KOPF_EVENT_POSTER_TASK, "event_queue")
    settings = _task_argument(tasks, KOPF_EVENT_POSTER_TASK, "settings")
    if queue is None or settings is None:
        raise RuntimeError(f"kopf's event queue was not found in its {KOPF_EVENT_POSTER_TASK!r} task (kopf upgraded?)")

    def enter() -> None:
        posting.event_queue_loop_var.set(asyncio.get_running_loop())
        posting.event_queue_var.set(queue)
        posting.settings_var.set(settings)

    return enter


class Leadership:
    """Active unless kopf paused this operator; parks passes while paused and notifies on each change.

    Without toggles (unit tests, tools that embed the pass) it is always active. Before `attach`
    it is not: the operator acts only once it knows kopf's state.
    """

    def __init__(self, toggles: Toggles | None = None, *, always_active: bool = False) -> None:
        self._toggles = toggles
        self._always = always_active
        self._listeners: list[Callable[[bool], None]] = []
        self._parked: set[Hashable] = set()
        self._attached = asyncio.Event() if toggles is None and not always_active else None
        self._enter: Callable[[], None] | None = None

    def attach(self, toggles: Toggles, *, enter: Callable[[], None] | None = None) -> None:
        """Follow `toggles`; `enter` prepares the leadership task, whose listeners start passes (event posting)."""
        self._toggles = toggles
        self._enter = enter
        if self._attached is not None:
            self._attached.set()

    @property
    def active(self) -> bool:
        if self._always:
            return True
        return self._toggles is not None and not self._toggles.is_on()

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(active)` on every change (from the watch task, in the operator's loop)."""
        self._listeners.append(listener)

    def park(self, key: Hashable) -> None:
        """A pass that could not run while paused: it runs when the operator resumes."""
        self._parked.add(key)

    def unpark(self) -> set[Hashable]:
        parked, self._parked = self._parked, set()
        return parked

    def check(self) -> None:
        """Raise `Paused` unless the operator may write now."""
        if not self.active:
            raise Paused()

    async def watch(self) -> None:
        """Follow kopf's pause state until cancelled, notifying listeners of every change."""
        if self._always:
            return
        if self._attached is not None:
            await self._attached.wait()
        if self._enter is not None:
            self._enter()
        toggles = self._toggles
        assert toggles is not None
        active = self.active
        while True:
            await toggles.wait_for(active)  # paused (on) while active, off while paused: the next change
            active = not active
            log.info("%s", "Active again: resyncing and resuming" if active else "Paused: another replica acts")
            for listener in self._listeners:
                listener(active)
