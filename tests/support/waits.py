"""Waiting for the world instead of sleeping: poll a condition, or wait for activity to stop.

A test that sleeps a fixed time and then asserts that something did NOT happen is flaky on a busy
machine (the thing happens later) and slow on an idle one. `wait_quiet` waits for a counter that
grows with activity (an API server's request log, a list of events) to stop growing for a while,
so an absence asserted afterwards holds for a world that has settled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["poll_until", "wait_for", "wait_quiet"]

_T = TypeVar("_T")


def wait_for(predicate: Callable[[], _T], *, timeout: float = 15.0, interval: float = 0.05, what: str = "") -> _T:
    """Poll `predicate` until it returns something truthy and return it; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    about = f" ({what})" if what else ""
    raise AssertionError(f"condition not met within {timeout}s{about}; last value: {last!r}")


def poll_until(
    get: Callable[[], _T], done: Callable[[_T], bool], *, timeout: float = 15.0, interval: float = 0.2
) -> _T:
    """Poll `get` until `done` holds or the timeout passes; return the last value either way (the caller asserts)."""
    deadline = time.monotonic() + timeout
    value = get()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = get()
    return value


def wait_quiet(count: Callable[[], int], *, quiet: float = 1.0, timeout: float = 30.0) -> int:
    """Wait until `count()` has not changed for `quiet` seconds; return it. Fails if it never settles."""
    deadline = time.monotonic() + timeout
    seen, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(min(0.05, quiet / 4))
        now = count()
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return seen
    raise AssertionError(f"activity did not settle within {timeout}s (count still moving: {seen})")
