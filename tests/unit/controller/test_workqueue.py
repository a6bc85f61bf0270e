"""The work queue every pass goes through: coalescing per fleet, retries with capped backoff, bugs logged loudly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from neuronfleet.controller.kube import KubeError
from neuronfleet.controller.state import FleetKey
from neuronfleet.controller.workqueue import WorkQueue, later

A = FleetKey("ml", "a")
B = FleetKey("ml", "b")


async def test_a_burst_of_events_for_one_fleet_runs_one_pass() -> None:
    runs: list[FleetKey] = []

    async def run(key: FleetKey) -> None:
        runs.append(key)

    queue = WorkQueue(run, delay=0.01)
    for _ in range(20):
        queue.add(A)
    queue.add(B)
    await asyncio.sleep(0.1)
    assert sorted(runs, key=lambda k: k.name) == [A, B]
    await queue.close()


async def test_a_failing_pass_is_retried_with_doubling_delays_up_to_the_cap() -> None:
    attempts: list[FleetKey] = []

    async def run(key: FleetKey) -> None:
        attempts.append(key)
        if len(attempts) < 4:
            raise RuntimeError("API server unavailable")

    queue = WorkQueue(run, delay=0.0, retry=0.01, retry_max=0.025)
    requested: list[float | None] = []
    add = queue.add

    def recording_add(key: FleetKey, delay: float | None = None) -> None:
        requested.append(delay)
        add(key, delay)

    queue.add = recording_add  # type: ignore[method-assign]
    queue.add(A)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(attempts) >= 4 and queue.pending() == 0:
            break
    assert len(attempts) == 4
    assert requested == [None, 0.01, 0.02, 0.025]  # the first add, then three retries
    await queue.close()


async def test_closing_cancels_pending_passes() -> None:
    runs: list[FleetKey] = []

    async def run(key: FleetKey) -> None:
        runs.append(key)

    queue = WorkQueue(run, delay=0.05)
    queue.add(A)
    await queue.close()
    queue.add(B)
    await asyncio.sleep(0.1)
    assert runs == []


@pytest.mark.parametrize(
    ("error", "level", "traceback"),
    [
        pytest.param(
            KubeError(503, "ServiceUnavailable", "etcd"), logging.WARNING, False, id="an API error is one line"
        ),
        pytest.param(KeyError("plan"), logging.ERROR, True, id="a bug is logged with its traceback"),
    ],
)
async def test_failures_are_retried_and_logged_by_meaning(
    caplog: pytest.LogCaptureFixture, error: Exception, level: int, traceback: bool
) -> None:
    attempts: list[FleetKey] = []

    async def run(key: FleetKey) -> None:
        attempts.append(key)
        if len(attempts) == 1:
            raise error

    queue = WorkQueue(run, retry=0.01)
    with caplog.at_level(logging.WARNING, logger="neuronfleet.controller.workqueue"):
        queue.add(A)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(attempts) == 2:
                break
    await queue.close()
    assert attempts == [A, A]
    (record,) = caplog.records
    assert record.levelno == level
    assert (record.exc_info is not None) is traceback
    assert queue.failures(A) == 0


async def test_a_later_requeue_fires_after_its_delay_without_blocking_the_queue() -> None:
    fired: list[str] = []
    requeue = later(fired.append)
    requeue("fleet", 0.01)
    assert fired == []
    await asyncio.sleep(0.05)
    assert fired == ["fleet"]
