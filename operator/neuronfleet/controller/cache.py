"""What the operator knows of the world between passes: the newest body of every object it watches.

An informer's store, as client-go and controller-runtime keep one: kopf's watch streams feed it
(`observe`), every write the operator makes feeds it the API server's answer (`record_write`), and a
reconcile pass reads its ModelDeployment, children and pods from here instead of asking the API
server. A pass that finds nothing to change therefore costs no request at all, and a steady create
costs exactly its writes.

Freshness: a body replaces the cached one only if its resourceVersion is not older. Without that
rule, a watch event that was already in flight when the operator patched a child would put the
pre-patch body back, and the next pass would "repair" the operator's own write. resourceVersions
are opaque by the API conventions, but every server this runs against (etcd revisions behind
kube-apiserver, the emulator) hands out increasing integers; for anything else the newest arrival
wins, which is what an informer does.

Echoes: `record_write` remembers the resourceVersion each write produced, so the watch event that
echoes it (`Change.own`) need not start another pass; `record_delete` does the same for deletions.
The echo often arrives before the write's answer (the server sends both at once), so a write is
announced with `writing` first: an event for an object with a write in flight is taken in but
starts no pass, and its resourceVersion is kept. When the answer comes, `record_write` compares: an
event in flight that was neither this write's echo nor an earlier write's was someone else's change,
made just before or after the write (an annotation, a hand edit of a field the write does not
touch, a spec edit), and `record_write` says so, so that the writer looks again. Without that, a
change landing on the server just before the operator's write had its event swallowed as an echo.
A child deleted by someone else leaves a tombstone (`deleted_by_others`) until the operator writes
it again, so the pass that recreates it can say it repaired it; only while its owner (by uid) is
cached, since the garbage collector deletes the children of a deleted owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Cache", "Change", "ObjectKey"]

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name)."""

INSTANCE_LABEL = "app.kubernetes.io/instance"
"""Objects are also indexed by this label (pods belong to a fleet through it, not through an owner)."""


@dataclasses.dataclass(frozen=True)
class Change:
    """What one watch event did to the cache."""

    previous: Mapping[str, Any] | None
    current: Mapping[str, Any] | None  # None: deleted
    own: bool = False  # the echo of this operator's own write or deletion
    stale: bool = False  # older than what the cache holds: ignored

    @property
    def changed(self) -> bool:
        """True when someone else changed the object and the cache took it in."""
        return not (self.own or self.stale)


def _key(kind: str, body: Mapping[str, Any]) -> ObjectKey:
    meta = body.get("metadata") or {}
    return (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _version(body: Mapping[str, Any] | None) -> int | None:
    text = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def _older(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    a, b = _version(new), _version(old)
    return a is not None and b is not None and a < b


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy without managedFields, which nobody reads and which doubles an object's size."""
    out = {k: v for k, v in body.items()}
    meta = dict(out.get("metadata") or {})
    meta.pop("managedFields", None)
    out["metadata"] = meta
    return out


class Cache:
    """Objects by (kind, namespace, name), with an index of children by controlling owner name."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._by_owner: dict[tuple[str, str, str], set[str]] = {}  # (kind, namespace, owner) -> names
        self._own: dict[ObjectKey, str] = {}  # resourceVersion of our last write
        self._deleted_by_us: set[ObjectKey] = set()
        self._tombstones: dict[ObjectKey, str] = {}  # deleted by someone else -> controlling owner name
        self._by_label: dict[tuple[str, str, str], set[str]] = {}  # (kind, namespace, instance) -> names
        self._in_flight: dict[ObjectKey, int] = {}  # writes sent and not answered yet
        self._seen_in_flight: dict[ObjectKey, set[str]] = {}  # resourceVersions of events during a write

    # -- feeding -----------------------------------------------------------------------------

    def observe(self, kind: str, body: Mapping[str, Any], *, deleted: bool = False) -> Change:
        """Take in a watch event (or a listed object) for `body`."""
        key = _key(kind, body)
        previous = self._objects.get(key)
        flying = key in self._in_flight
        if deleted:
            own = key in self._deleted_by_us or flying
            self._deleted_by_us.discard(key)
            if previous is not None and _older(body, previous):
                return Change(previous, previous, stale=True)  # an old object's deletion: ours is newer
            self._drop(key)
            self._own.pop(key, None)
            owner = _controller_name(body)
            if not own and owner is not None and self._owner_cached(key[1], owner, body):
                self._tombstones[key] = owner
            return Change(previous, None, own=own)
        if _older(body, previous):
            return Change(previous, previous, stale=True)
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        echo = bool(rv) and self._own.get(key) == rv
        if flying and not echo and rv:
            self._seen_in_flight.setdefault(key, set()).add(rv)  # judged when the write is answered
        own = flying or echo
        current = _slim(body)
        self._store(key, current)
        return Change(previous, current, own=own)

    @contextlib.contextmanager
    def writing(self, kind: str, namespace: str, name: str) -> Iterator[None]:
        """Mark a write to the object as in flight for the duration of the request."""
        key = (kind, namespace, name)
        if not self._in_flight.get(key):
            self._seen_in_flight.pop(key, None)  # left over from a write that failed
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]

    def record_write(self, kind: str, body: Mapping[str, Any]) -> bool:
        """The API server's answer to a create or patch by this operator.

        False when someone else changed the object while the write was in flight: the cache already
        holds a newer version, or an event other than this write's echo arrived meanwhile (a change
        made just before the write, which the write's answer includes but no pass has looked at).
        The writer must look again.
        """
        key = _key(kind, body)
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        seen = self._seen_in_flight.get(key, set())
        if not self._in_flight.get(key):  # no other write of it still in flight: this one closes the record
            self._seen_in_flight.pop(key, None)
        if _older(body, self._objects.get(key)):
            return False
        self._store(key, _slim(body))
        self._tombstones.pop(key, None)
        if rv:
            self._own[key] = rv
        return not (seen - {rv})

    def record_delete(self, kind: str, namespace: str, name: str) -> None:
        """This operator is deleting the object (call it before the request): drop it; its DELETED event is an echo."""
        key = (kind, namespace, name)
        self._drop(key)
        self._own.pop(key, None)
        self._deleted_by_us.add(key)

    def forget_owner(self, namespace: str, owner: str) -> None:
        """The owner is gone: drop the tombstones and echo records of its children (their objects go by GC)."""
        for key in [k for k, o in self._tombstones.items() if k[1] == namespace and o == owner]:
            del self._tombstones[key]
        for key in [k for k in self._own if k[1] == namespace and k[0] != "ModelDeployment"]:
            body = self._objects.get(key)
            if body is None or _controller_name(body) == owner:
                del self._own[key]
        self._own.pop(("ModelDeployment", namespace, owner), None)

    # -- reading -----------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get((kind, namespace, name))

    def deleted_by_others(self, kind: str, namespace: str, name: str) -> bool:
        """Whether someone other than this operator deleted the object since the operator last wrote it."""
        return (kind, namespace, name) in self._tombstones

    def owned(self, kind: str, namespace: str, owner: str) -> list[dict[str, Any]]:
        """Objects of `kind` whose controller ownerReference names `owner` (a ModelDeployment)."""
        names = self._by_owner.get((kind, namespace, owner), set())
        return [self._objects[(kind, namespace, n)] for n in sorted(names) if (kind, namespace, n) in self._objects]

    def matching(self, kind: str, namespace: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Objects of `kind` in `namespace` carrying every label in `labels`, which must name the instance."""
        names = self._by_label.get((kind, namespace, labels[INSTANCE_LABEL]), set())
        found = []
        for name in sorted(names):
            body = self._objects[(kind, namespace, name)]
            have = (body.get("metadata") or {}).get("labels") or {}
            if all(have.get(key) == value for key, value in labels.items()):
                found.append(body)
        return found

    def __iter__(self) -> Iterator[ObjectKey]:
        return iter(list(self._objects))

    def __len__(self) -> int:
        return len(self._objects)

    # -- internals ---------------------------------------------------------------------------

    def _owner_cached(self, namespace: str, owner: str, child: Mapping[str, Any]) -> bool:
        """Whether the child's controlling ModelDeployment (that very object, by uid) is still cached.

        A child whose owner is gone was removed by the garbage collector, or is the leftover of an
        owner deleted and recreated under the same name: not a deletion for the operator to repair.
        """
        md = self._objects.get(("ModelDeployment", namespace, owner))
        if md is None:
            return False
        uid = _controller_uid(child)
        return uid is None or uid == (md.get("metadata") or {}).get("uid")

    def _store(self, key: ObjectKey, body: dict[str, Any]) -> None:
        self._unindex(key)
        self._objects[key] = body
        owner = _controller_name(body)
        if owner is not None:
            self._by_owner.setdefault((key[0], key[1], owner), set()).add(key[2])
        instance = _instance(body)
        if instance is not None:
            self._by_label.setdefault((key[0], key[1], instance), set()).add(key[2])

    def _drop(self, key: ObjectKey) -> None:
        self._unindex(key)
        self._objects.pop(key, None)

    def _unindex(self, key: ObjectKey) -> None:
        old = self._objects.get(key)
        if old is None:
            return
        for index, value in ((self._by_owner, _controller_name(old)), (self._by_label, _instance(old))):
            if value is None:
                continue
            names = index.get((key[0], key[1], value))
            if names is not None:
                names.discard(key[2])
                if not names:
                    del index[(key[0], key[1], value)]


def _instance(body: Mapping[str, Any]) -> str | None:
    value = ((body.get("metadata") or {}).get("labels") or {}).get(INSTANCE_LABEL)
    return None if value is None else str(value)


def _controller_uid(body: Mapping[str, Any]) -> str | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "ModelDeployment":
            return None if ref.get("uid") is None else str(ref.get("uid"))
    return None


def _controller_name(body: Mapping[str, Any]) -> str | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") == "ModelDeployment":
            return str(ref.get("name"))
    return None
