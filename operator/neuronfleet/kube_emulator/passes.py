"""The shape the emulator's in-loop controllers share: listen to the store, run one pass soon after.

A store listener must not write synchronously (``Store.add_listener``), so a controller that reacts
to a change asks for a pass (`_wake`), which runs once on the next loop iteration however many
changes asked for it; `_pass` then reads the store and writes what it decided. Subclasses define
`_on_event` and `_pass`, and cancel their own timers in `_stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self

from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.store import Store, WatchEvent

__all__ = ["PassController"]


class PassController:
    """Start/stop on the emulator's loop, and a debounced `_pass` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending_pass: asyncio.Handle | None = None

    def start(self) -> Self:
        """Start; call from the emulator's event loop. A first pass runs at once."""
        self._loop = asyncio.get_running_loop()
        self.store.add_listener(self._on_event)
        self._wake()
        return self

    def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.remove_listener(self._on_event)
        if self._pending_pass is not None:
            self._pending_pass.cancel()
            self._pending_pass = None
        self._stop()

    def _wake(self) -> None:
        if self._loop is None or self._pending_pass is not None:
            return
        self._pending_pass = self._loop.call_soon(self._run_pass)

    def _run_pass(self) -> None:
        self._pending_pass = None
        self._pass()

    def _on_event(self, info: ResourceInfo, event: WatchEvent) -> None:
        raise NotImplementedError

    def _pass(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        """Cancel the subclass's own timers."""
