"""Resync after a relist: objects deleted while a watch was down leave the cache too.

A watch that resumes from a resourceVersion the API server no longer keeps gets 410 Gone ("too old
resource version"), and the client must list again (Kubernetes API concepts, "Efficient detection
of changes"). kopf does: it lists the kind and feeds every listed object to the handlers as an
event of type None. An object deleted during the gap is simply absent from that list, so no
DELETED event ever names it, and an informer store that only applies events keeps it for good
(client-go's Reflector replaces its store with the list for this reason). Here the cache would keep
a Deployment nobody has, and the pass would never recreate it; a ModelDeployment deleted in the gap
would keep its autoscaler and its series.

kopf tells its handlers nothing about a relist beyond those type-None events, and lists by itself
when it resumes from a pause. So `Resync` watches for a listing event of a kind that was already
streaming (that is a relist, not the first fill), and then lists every kind itself: what the cache
holds, the list lacks, and is not newer than the list (`vanished`) goes through the operator's
normal deletion path, so its fleet is requeued and a child deleted by someone else is recreated as
a repair. The listing costs one LIST per kind, only after a relist or a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from neuronfleet.controller.cache import Cache, ObjectKey
from neuronfleet.controller.kube import KubeClient, KubeError
from neuronfleet.controller.refs import ResourceRef

__all__ = ["ListedKind", "Resync", "vanished"]

log = logging.getLogger(__name__)

RESYNC_DELAY = 0.5
"""Seconds from the first relisted object to the operator's own listing: kopf's relist of every kind
(a compaction or a restart of the API server cuts them all) lands inside it, so one resync covers it."""
RETRY_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class ListedKind:
    """A kind the cache holds, and how to list what the cache should hold of it."""

    kind: str
    ref: ResourceRef
    label_selector: str | None = None


def _version(body: Mapping[str, Any] | None) -> int | None:
    text = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def vanished(
    cached: Mapping[ObjectKey, Mapping[str, Any]], listed: Iterable[ObjectKey], list_version: str | None
) -> list[ObjectKey]:
    """Cached objects a fresh list no longer has, except those the cache saw after the list was taken.

    An object created (or its event received) after the list carries a newer resourceVersion than the
    list's; it is not gone. Without comparable versions every missing object counts as gone.
    """
    present = set(listed)
    at = int(list_version) if list_version and list_version.isdigit() else None
    gone = []
    for key, body in cached.items():
        if key in present:
            continue
        version = _version(body)
        if at is not None and version is not None and version > at:
            continue
        gone.append(key)
    return sorted(gone)


class Resync:
    """Lists every cached kind after a relist and hands what vanished to `gone(kind, body)`."""

    def __init__(
        self,
        kube: KubeClient,
        cache: Cache,
        kinds: Sequence[ListedKind],
        *,
        namespaces: Sequence[str],
        gone: Callable[[str, Mapping[str, Any]], None],
        delay: float = RESYNC_DELAY,
    ) -> None:
        self._kube = kube
        self._cache = cache
        self._kinds = tuple(kinds)
        self._namespaces = tuple(namespaces)  # empty: every namespace
        self._gone = gone
        self._delay = delay
        self._streaming: set[str] = set()  # kinds that had a watch event since their last listing
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.runs = 0  # completed resyncs (tests, logs)

    # -- triggers ------------------------------------------------------------------------------

    def seen(self, kind: str, event_type: str | None) -> None:
        """Every watch event's kind and type: a listed object (type None) of a streaming kind means a relist."""
        if event_type is not None:
            self._streaming.add(kind)
        elif kind in self._streaming:
            self._streaming.discard(kind)
            log.info("The %s watch was listed again (410 Gone or a restart): resyncing the cache", kind)
            self.request()

    def request(self) -> None:
        """Resync soon; requests during a pending or running resync coalesce into one more."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="resync")

    async def _run(self) -> None:
        try:
            await self.resync()
        except KubeError as exc:
            log.warning("Resync failed, retrying in %.0fs: %s", RETRY_SECONDS, exc)
            self._timer = asyncio.get_running_loop().call_later(RETRY_SECONDS, self._start)
            return
        except Exception:  # a bug: logged with its traceback; the next relist tries again
            log.exception("Resync failed")
        if self._again:
            self._again = False
            self.request()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the resync ----------------------------------------------------------------------------

    async def resync(self) -> int:
        """List every kind and drop what vanished through `gone`; returns how many objects went."""
        dropped = 0
        for listed_kind in self._kinds:
            for namespace in self._namespaces or (None,):
                dropped += await self._resync_kind(listed_kind, namespace)
        self.runs += 1
        if dropped:
            log.info("Resync: %d object(s) deleted while the watch was down are gone from the cache", dropped)
        return dropped

    async def _resync_kind(self, listed_kind: ListedKind, namespace: str | None) -> int:
        try:
            items, version = await self._kube.list_versioned(
                listed_kind.ref, namespace, label_selector=listed_kind.label_selector
            )
        except KubeError as exc:
            if exc.kind_not_served:
                return 0  # nothing of it can be cached either
            raise
        kind = listed_kind.kind
        cached = {
            key: body
            for key in self._cache
            if key[0] == kind
            and (namespace is None or key[1] == namespace)
            and (body := self._cache.get(*key)) is not None
        }
        listed = [(kind, str(i["metadata"].get("namespace") or ""), str(i["metadata"]["name"])) for i in items]
        gone = vanished(cached, listed, version)
        for key in gone:
            self._gone(kind, cached[key])
        return len(gone)
