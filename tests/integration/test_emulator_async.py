"""The emulator runs inside the caller's event loop too (how the demo embeds it).

An aiohttp client talks to it; stopping the emulator ends open watch streams and frees the port.
"""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp

from neuronfleet.kube_emulator import Emulator, Store

CM_PATH = "/api/v1/namespaces/default/configmaps"


async def test_an_in_loop_emulator_streams_a_watch_and_frees_its_port_on_stop():
    emu = await Emulator().start()
    port = emu.port
    async with aiohttp.ClientSession(emu.url) as session, session.get(CM_PATH, params={"watch": "true"}) as watch:
        async with session.post(CM_PATH, json={"metadata": {"name": "a"}}) as created:
            assert created.status == 201
        line = await asyncio.wait_for(watch.content.readline(), 5)
        event = json.loads(line)
        assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "a")
        await asyncio.wait_for(emu.stop(), 5)
        assert await asyncio.wait_for(watch.content.read(), 5) == b"", "stop ends the stream"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "nothing is left listening"


async def test_a_store_can_be_prepared_before_serving_it():
    store = Store()
    store.create(store.resource("", "v1", "configmaps"), "default", {"metadata": {"name": "seeded"}})
    async with (
        Emulator(store) as emu,
        aiohttp.ClientSession(emu.url) as session,
        session.get(f"{CM_PATH}/seeded") as response,
    ):
        body = await response.json()
    assert body["metadata"]["name"] == "seeded"
    assert body["kind"] == "ConfigMap"


async def test_a_watch_asking_for_bookmarks_gets_the_current_resource_version():
    async with Emulator(bookmark_interval=0.2) as emu, aiohttp.ClientSession(emu.url) as session:
        async with session.post(CM_PATH, json={"metadata": {"name": "a"}}) as created:
            rv = (await created.json())["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "1"}
        async with session.get(CM_PATH, params=params) as watch:
            events = [json.loads(line) for line in (await watch.read()).splitlines()]
    assert events, "at least one bookmark within the timeout"
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert all(e["object"]["metadata"]["resourceVersion"] == rv for e in events)


async def test_no_bookmark_is_sent_past_events_still_waiting_in_the_queue():
    """Regression: a bookmark computed while events were queued made kopf skip those events."""
    emu = Emulator()
    info = emu.store.resource("", "v1", "configmaps")
    watcher = emu.store.watch(info, "default", resource_version=str(emu.store.rv))
    assert emu._bookmark(info, watcher) is not None
    emu.store.create(info, "default", {"metadata": {"name": "late"}})
    assert emu._bookmark(info, watcher) is None
    watcher.queue.get_nowait()
    idle = json.loads(emu._bookmark(info, watcher))
    assert idle["object"]["metadata"]["resourceVersion"] == str(emu.store.rv)
