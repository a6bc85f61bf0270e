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

__all__ = ["Leadership", "Paused", "Toggles", "pause_toggles"]

log = logging.getLogger(__name__)

KOPF_PAUSE_AWARE_TASK = "daemon killer"


class Toggles(Protocol):
    """The part of kopf's `aiotoggles.ToggleSet` used here."""

    def is_on(self) -> bool: ...

    async def wait_for(self, state: bool, /) -> None: ...


class Paused(KubeError):
    """A write refused because the operator is paused: the pass fails like one the API refused, and is parked."""

    def __init__(self) -> None:
        super().__init__(0, "Paused", "the operator is paused: another replica of the peering acts")


def pause_toggles(tasks: Collection[asyncio.Task[Any]]) -> Toggles:
    """kopf's "operator paused" toggle set, from the tasks `kopf.spawn_tasks` returned."""
    for task in tasks:
        if task.get_name() != KOPF_PAUSE_AWARE_TASK:
            continue
        guard = task.get_coro()
        inner = getattr(guard, "cr_frame", None) and guard.cr_frame.f_locals.get("coro")  # type: ignore[union-attr]
        frame = getattr(inner, "cr_frame", None)
        toggles = None if frame is None else frame.f_locals.get("operator_paused")
        if toggles is not None and hasattr(toggles, "is_on") and hasattr(toggles, "wait_for"):
            return toggles  # type: ignore[no-any-return]
    raise RuntimeError(f"kopf's pause state was not found in its {KOPF_PAUSE_AWARE_TASK!r} task (kopf upgraded?)")


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

    def attach(self, toggles: Toggles) -> None:
        self._toggles = toggles
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
        toggles = self._toggles
        assert toggles is not None
        active = self.active
        while True:
            await toggles.wait_for(active)  # paused (on) while active, off while paused: the next change
            active = not active
            log.info("%s", "Active again: resyncing and resuming" if active else "Paused: another replica acts")
            for listener in self._listeners:
                listener(active)
