"""The work queue: every reason to look at a fleet becomes one pending pass for its key.

A watch event of the ModelDeployment or of any child, an autoscaling decision, a retry, a timer
for a compile's backoff: each only adds the fleet's key. Keys coalesce (one pending pass absorbs
every trigger that arrives before it starts, as client-go's workqueue does), passes of different
fleets run concurrently, and a failed pass is retried with capped exponential backoff.

Failures are split by meaning: an API error (`KubeError`) is the world being briefly unhappy and
is logged in one line; anything else is a bug in the operator and is logged with its traceback.
Both are retried, and neither reaches a user as a status message (only `PlanError` does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from neuronfleet.controller.kube import KubeError

__all__ = ["PassRunner", "WorkQueue", "later"]

log = logging.getLogger(__name__)

PassRunner = Callable[[Hashable], Awaitable[None]]


class WorkQueue:
    """Passes keyed by fleet: coalesced (one pending run per key), retried with capped backoff."""

    def __init__(self, run: PassRunner, *, delay: float = 0.0, retry: float = 1.0, retry_max: float = 30.0) -> None:
        self._run = run
        self._delay = delay
        self._retry = retry
        self._retry_max = retry_max
        self._pending: dict[Hashable, asyncio.TimerHandle] = {}
        self._failures: dict[Hashable, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def add(self, key: Hashable, delay: float | None = None) -> None:
        """Run a pass for `key` after `delay`; a pass already pending absorbs this one."""
        if self._closed or key in self._pending:
            return
        loop = asyncio.get_running_loop()
        self._pending[key] = loop.call_later(self._delay if delay is None else delay, self._start, key)

    def _start(self, key: Hashable) -> None:
        self._pending.pop(key, None)
        task = asyncio.get_running_loop().create_task(self._attempt(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, key: Hashable) -> None:
        try:
            await self._run(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            delay = min(self._retry * 2 ** (count - 1), self._retry_max)
            if isinstance(exc, KubeError):
                log.warning("Requeued a pass for %s in %.1fs: %s", _name(key), delay, exc)
            else:
                log.error("A pass for %s failed; retrying in %.1fs", _name(key), delay, exc_info=exc)
            self.add(key, delay)
        else:
            self._failures.pop(key, None)

    def failures(self, key: Hashable) -> int:
        """Consecutive failed passes of `key` (0 once one succeeds)."""
        return self._failures.get(key, 0)

    def pending(self) -> int:
        return len(self._pending) + len(self._tasks)

    async def close(self) -> None:
        self._closed = True
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _name(key: Hashable) -> str:
    namespace, name = getattr(key, "namespace", None), getattr(key, "name", None)
    return f"{namespace}/{name}" if name is not None else str(key)


def later(add: Callable[[Hashable], None]) -> Callable[[Hashable, float], None]:
    """A requeue that queues a pass after `delay` without blocking earlier ones.

    The queue coalesces a key's passes into the one pending; handing it a ten-minute delay directly
    would swallow every event until then (a Job deleted to retry now, say). A timer that adds the
    key when it fires keeps both.
    """

    def requeue(key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, add, key)

    return requeue
