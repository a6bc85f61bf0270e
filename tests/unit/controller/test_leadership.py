"""Leadership: kopf's pause state, read and followed by the operator's own tasks."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotasks, aiotoggles
from kopf._core.engines import posting

from neuronfleet.controller import events
from neuronfleet.controller.kube import KubeError
from neuronfleet.controller.leadership import Leadership, Paused, kopf_event_posting, pause_toggles
from neuronfleet.controller.state import FleetKey


async def _paused_set() -> tuple[aiotoggles.ToggleSet, aiotoggles.Toggle]:
    toggles = aiotoggles.ToggleSet(any)  # what kopf.spawn_tasks creates
    return toggles, await toggles.make_toggle(name="neuronfleet@None")


async def test_active_follows_kopfs_toggles_and_a_paused_operator_refuses_writes() -> None:
    toggles, conflict = await _paused_set()
    leadership = Leadership()
    assert not leadership.active, "not active before kopf's state is known"
    leadership.attach(toggles)
    assert leadership.active
    leadership.check()
    await conflict.turn_to(True)
    assert not leadership.active
    with pytest.raises(Paused) as raised:
        leadership.check()
    assert isinstance(raised.value, KubeError) and raised.value.retriable  # the pass fails like an API error


async def test_listeners_hear_each_pause_and_resume_and_parked_passes_are_handed_back_once() -> None:
    toggles, conflict = await _paused_set()
    leadership = Leadership()
    heard: list[bool] = []
    leadership.subscribe(heard.append)
    task = asyncio.create_task(leadership.watch())
    leadership.attach(toggles)
    await asyncio.sleep(0.01)
    assert heard == [], "starting active is no change"
    await conflict.turn_to(True)
    await asyncio.sleep(0.01)
    leadership.park(FleetKey("ml", "a"))
    leadership.park(FleetKey("ml", "a"))
    await conflict.turn_to(False)
    await asyncio.sleep(0.01)
    assert heard == [False, True]
    assert leadership.unpark() == {FleetKey("ml", "a")}
    assert leadership.unpark() == set()
    task.cancel()


def test_an_operator_embedded_without_kopf_always_acts() -> None:
    leadership = Leadership(always_active=True)
    assert leadership.active
    leadership.check()


async def test_pause_toggles_finds_the_set_in_the_arguments_of_kopfs_daemon_killer() -> None:
    toggles, _ = await _paused_set()

    async def daemon_killer(*, operator_paused: Any) -> None:
        await asyncio.sleep(3600)

    async def guard(coro: Any) -> None:  # kopf's aiotasks.guard awaits its flag, then the coroutine
        await asyncio.sleep(3600)
        await coro

    inner = daemon_killer(operator_paused=toggles)
    other = asyncio.create_task(asyncio.sleep(3600), name="poster of events")
    killer = asyncio.create_task(guard(inner), name="daemon killer")
    await asyncio.sleep(0)
    assert pause_toggles([other, killer]) is toggles
    with pytest.raises(RuntimeError, match="kopf upgraded"):
        pause_toggles([other])
    for task in (other, killer):
        task.cancel()
    inner.close()


async def test_a_pass_started_outside_kopfs_handlers_posts_its_events_once_the_leadership_task_entered() -> None:
    """Regression (chaos soak): passes unparked on resuming run from the leadership task, where
    kopf's event queue was unset: every event of theirs failed with LookupError, and so did their
    retries. kopf's own guarded poster task, never started here, holds the queue."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    poster = aiotasks.create_guarded_task(
        posting.poster(event_queue=queue, backbone=None, settings=kopf.OperatorSettings()),  # type: ignore[arg-type]
        "poster of events",
        flag=asyncio.Event(),  # never set: the poster never runs, its arguments are what is read
    )
    body = {
        "apiVersion": "neuronfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"namespace": "ml", "name": "llama", "uid": "u1"},
    }
    scaled = events.Event("Normal", "Scaled", "Scaled from 1 to 2 replicas")

    async def a_pass() -> None:
        events.post(body, [scaled])

    with pytest.raises(LookupError):  # what the unparked passes hit before the fix
        await asyncio.get_running_loop().create_task(a_pass(), context=contextvars.Context())

    enter = kopf_event_posting([poster])

    async def leadership_task() -> None:
        enter()
        await asyncio.create_task(a_pass())  # a pass it starts inherits the queue

    await asyncio.get_running_loop().create_task(leadership_task(), context=contextvars.Context())
    posted = queue.get_nowait()
    assert (posted.reason, posted.message, posted.ref["name"]) == ("Scaled", scaled.message, "llama")
    with pytest.raises(RuntimeError, match="kopf upgraded"):
        kopf_event_posting([asyncio.create_task(asyncio.sleep(0), name="daemon killer")])
    poster.cancel()
