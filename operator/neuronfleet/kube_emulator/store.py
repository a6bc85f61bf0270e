"""The API server's storage and watch semantics, in memory, with no HTTP in sight.

The storage is what makes a fake API server honest for an operator: resourceVersions from one
global counter, uid/creationTimestamp/generation set by the server, optimistic concurrency
(409 on a stale resourceVersion), status kept apart from the main endpoint for kinds with a
status subresource, finalizers holding deletion, and watches that resume from a
resourceVersion out of a bounded event log (410 Gone when it is too old).

It is NOT a controller manager: nothing here creates Pods, garbage-collects dependents or
fills in Deployment status (see ``controllers`` for opt-in stand-ins). Two server-side
behaviours that the real API server does synchronously are done here too: a Namespace gets
``status.phase: Active`` and a CRD gets ``Established``/``NamesAccepted`` conditions and is
served at once.

All methods must be called from one thread (the event loop's, when served over HTTP).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime
import json
import secrets
import string
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from neuronfleet.kube_emulator import patches, resources, schema
from neuronfleet.kube_emulator.resources import ResourceInfo
from neuronfleet.kube_emulator.selectors import FieldSelector, LabelSelector, label_selector_string

__all__ = [
    "ApiError",
    "Listener",
    "PatchType",
    "Store",
    "WatchEvent",
    "Watcher",
    "utc_now",
]

_PROTECTED_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "namespace",
    "name",
)

_CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
_NAMESPACE_KEY = ("", "namespaces")
# Kinds whose whole spec is immutable after create. ResourceClaimTemplate: "spec ... This field is
# immutable" (resource.k8s.io API reference); the message is apimachinery's ValidateImmutableField
# ("field is immutable"); how the server prints a struct value there is not reproduced [INFERRED].
_IMMUTABLE_SPEC = frozenset({("resource.k8s.io", "resourceclaimtemplates")})


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """An error the API server reports as a ``Status`` object with an HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        info: ResourceInfo | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.info = info

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.info is not None:
            details["group"] = self.info.group
            details["kind"] = self.info.plural
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


def _not_found(info: ResourceInfo, name: str) -> ApiError:
    what = f"{info.plural}.{info.group}" if info.group else info.plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found', name=name, info=info)


def _conflict(info: ResourceInfo, name: str) -> ApiError:
    what = f"{info.plural}.{info.group}" if info.group else info.plural
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {what} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name=name,
        info=info,
    )


class PatchType:
    """Content types of PATCH requests."""

    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


@dataclasses.dataclass
class WatchEvent:
    """One committed change. ``old`` is the previous state (None for ADDED)."""

    rv: int
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None
    _lines: dict[tuple[str, str], bytes] = dataclasses.field(default_factory=dict, repr=False)

    def line(self, event_type: str, api_version: str) -> bytes:
        """The event as one JSON line, serialised once per (type, apiVersion) for all watchers."""
        key = (event_type, api_version)
        cached = self._lines.get(key)
        if cached is None:
            obj = self.obj
            if obj.get("apiVersion") != api_version:
                obj = {**obj, "apiVersion": api_version}
            cached = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self._lines[key] = cached
        return cached


class _Log:
    """A bounded per-resource event log; ``compacted_rv`` is the newest event dropped."""

    def __init__(self, size: int) -> None:
        self.events: collections.deque[WatchEvent] = collections.deque()
        self.size = size
        self.compacted_rv = 0

    def append(self, event: WatchEvent) -> None:
        self.events.append(event)
        if len(self.events) > self.size:
            self.compacted_rv = self.events.popleft().rv

    def since(self, rv: int) -> list[WatchEvent]:
        # Walk backwards: resumes are almost always from a recent resourceVersion.
        found: list[WatchEvent] = []
        for event in reversed(self.events):
            if event.rv <= rv:
                break
            found.append(event)
        found.reverse()
        return found


class Watcher:
    """One open watch: a queue of (type, event) filtered by namespace and selectors."""

    def __init__(
        self,
        info: ResourceInfo,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
    ) -> None:
        self.info = info
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.queue: asyncio.Queue[tuple[str, WatchEvent] | None] = asyncio.Queue()

    def _matches(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.labels.matches(obj) and self.fields.matches(obj)

    def translate(self, event: WatchEvent) -> str | None:
        """The event type this watcher sees: selectors turn edits into ADDED/DELETED."""
        now = self._matches(event.obj)
        if event.type == "DELETED":
            return "DELETED" if now else None
        before = event.type == "MODIFIED" and self._matches(event.old)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None

    def offer(self, event: WatchEvent) -> None:
        seen = self.translate(event)
        if seen is not None:
            self.queue.put_nowait((seen, event))

    def close(self) -> None:
        self.queue.put_nowait(None)


Listener = Callable[[ResourceInfo, WatchEvent], None]


def _strip_for_generation(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    current: Any = obj
    for step in path.strip(".").split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    steps = path.strip(".").split(".")
    current = obj
    for step in steps[:-1]:
        nxt = current.get(step)
        if not isinstance(nxt, dict):
            nxt = {}
            current[step] = nxt
        current = nxt
    current[steps[-1]] = value


class Store:
    """Objects, resourceVersions and watches of one emulated API server."""

    def __init__(
        self,
        *,
        log_size: int = 50_000,
        require_namespaces: bool = True,
        validate_custom_resources: bool = True,
        clock: Callable[[], datetime.datetime] = utc_now,
        default_namespaces: Iterable[str] = ("default", "kube-system", "kube-public"),
    ) -> None:
        self.log_size = log_size
        self.require_namespaces = require_namespaces
        self.validate_custom_resources = validate_custom_resources
        self.clock = clock
        self.rv = 0
        self.resources: dict[tuple[str, str, str], ResourceInfo] = {}
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._logs: dict[tuple[str, str], _Log] = {}
        self._watchers: dict[tuple[str, str], set[Watcher]] = {}
        self._listeners: list[Listener] = []
        self.uids: dict[str, tuple[ResourceInfo, str, str]] = {}
        self._dry_run = False
        for info in resources.BUILTIN_RESOURCES:
            self.serve(info)
        ns_info = self.resource("", "v1", "namespaces")
        for name in default_namespaces:
            self.create(ns_info, None, {"metadata": {"name": name}})

    # -- resource registry ------------------------------------------------------------------

    def serve(self, info: ResourceInfo) -> None:
        """Start serving a resource (a CRD's version, or an extra built-in for a test)."""
        self.resources[(info.group, info.version, info.plural)] = info
        self._objects.setdefault(info.storage_key, {})
        self._logs.setdefault(info.storage_key, _Log(self.log_size))
        self._watchers.setdefault(info.storage_key, set())

    def unserve(self, group: str, plural: str) -> None:
        for key in [k for k in self.resources if (k[0], k[2]) == (group, plural)]:
            del self.resources[key]

    def resource(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self.resources.get((group, version, plural))
        if info is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return info

    def find(self, api_version: str, kind: str) -> ResourceInfo:
        """Look a resource up by apiVersion and kind, as a manifest names it."""
        group, _, version = api_version.rpartition("/")
        for info in self.resources.values():
            if (info.group, info.version, info.kind) == (group, version, kind):
                return info
        raise ApiError(404, "NotFound", f"no resource for {api_version} {kind}")

    @contextlib.contextmanager
    def dry_run(self) -> Iterator[None]:
        """Writes inside this block answer as usual but store nothing (``?dryRun=All``)."""
        self._dry_run = True
        try:
            yield
        finally:
            self._dry_run = False

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(info, event)`` after every commit; it must not write synchronously."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    # -- reads ------------------------------------------------------------------------------

    def _key(self, info: ResourceInfo, namespace: str | None) -> str:
        return (namespace or "") if info.namespaced else ""

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._objects[info.storage_key].get((self._key(info, namespace), name))
        if obj is None:
            raise _not_found(info, name)
        return self.as_version(obj, info)

    def try_get(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects[info.storage_key].get((self._key(info, namespace), name))

    def as_version(self, obj: dict[str, Any], info: ResourceInfo) -> dict[str, Any]:
        """The object as the given version serves it (no conversion: only apiVersion differs)."""
        if obj.get("apiVersion") == info.api_version:
            return obj
        return {**obj, "apiVersion": info.api_version}

    def list(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> dict[str, Any]:
        """A ``<Kind>List`` with the current global resourceVersion, sorted like etcd keys."""
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        items = [
            self.as_version(obj, info)
            for (ns, _), obj in sorted(self._objects[info.storage_key].items())
            if (namespace is None or not info.namespaced or ns == namespace)
            and labels.matches(obj)
            and fields.matches(obj)
        ]
        return {
            "apiVersion": info.api_version,
            "kind": info.list_kind,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def objects(self, info: ResourceInfo) -> list[dict[str, Any]]:
        """Every stored object of a resource (all namespaces), for tests and controllers."""
        return list(self._objects[info.storage_key].values())

    # -- watches ----------------------------------------------------------------------------

    def watch(
        self,
        info: ResourceInfo,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        resource_version: str | None = None,
    ) -> Watcher:
        """Open a watch; the initial events (synthetic ADDED or replay) are queued already.

        Raises ApiError 410 when ``resource_version`` is older than the retained log.
        """
        watcher = Watcher(
            info, namespace if info.namespaced else None, labels or LabelSelector(), fields or FieldSelector()
        )
        log = self._logs[info.storage_key]
        if resource_version in (None, "", "0"):
            for obj in sorted(
                self._objects[info.storage_key].values(), key=lambda o: int(o["metadata"]["resourceVersion"])
            ):
                watcher.offer(WatchEvent(int(obj["metadata"]["resourceVersion"]), "ADDED", obj, None))
        else:
            try:
                since = int(resource_version)
            except ValueError as exc:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {resource_version!r}") from exc
            if since < log.compacted_rv:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({log.compacted_rv})")
            for event in log.since(since):
                watcher.offer(event)
        self._watchers[info.storage_key].add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers[watcher.info.storage_key].discard(watcher)

    def close_watches(self) -> int:
        """End every open watch stream; returns how many were open.

        A real API server ends watches on its own: each one at a timeout (a random duration
        between ``--min-request-timeout`` and twice it, 1800 s by default) and all of them when it
        restarts. Clients are expected to re-watch from the last resourceVersion they saw
        (Kubernetes API concepts, "Efficient detection of changes").
        """
        closed = 0
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.close()
                closed += 1
            watchers.clear()
        return closed

    def compact(self) -> None:
        """Drop every retained event up to the current resourceVersion, as etcd compaction does.

        A watch that resumes from an older resourceVersion then gets 410 Gone, reason Expired
        ("too old resource version: X (Y)"), and the client must list again: "When the requested
        watch operations fail because the historical version of that resource is not available,
        clients must handle the case by recognizing the status code 410 Gone, clearing their local
        cache, performing a new get or list operation, and starting the watch from the
        resourceVersion that was returned" (Kubernetes API concepts, "Efficient detection of
        changes"). etcd is compacted every five minutes by default (kube-apiserver
        ``--etcd-compaction-interval``). A watch from exactly
        the current resourceVersion still works: it asks only for later events.
        """
        for log in self._logs.values():
            log.events.clear()
            log.compacted_rv = self.rv

    # -- writes -----------------------------------------------------------------------------

    def _commit(
        self,
        info: ResourceInfo,
        event_type: str,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        if self._dry_run:
            return obj  # validated and defaulted like a real write, but nothing is stored
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        store = self._objects[info.storage_key]
        if event_type == "DELETED":
            store.pop(key, None)
            self.uids.pop(obj["metadata"]["uid"], None)
        else:
            store[key] = obj
            self.uids[obj["metadata"]["uid"]] = (info, key[0], key[1])
        event = WatchEvent(self.rv, event_type, obj, old)
        self._logs[info.storage_key].append(event)
        for watcher in self._watchers[info.storage_key]:
            watcher.offer(event)
        for listener in list(self._listeners):
            listener(info, event)
        if info.storage_key == _CRD_KEY:
            self._crd_changed(event)
        return obj

    def create(self, info: ResourceInfo, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        obj = patches.clone(dict(body))
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError(
                    422,
                    "Invalid",
                    f"{info.kind} is invalid: metadata.name: Required value: name or generateName is required",
                )
            alphabet = string.ascii_lowercase + string.digits
            meta["name"] = prefix + "".join(secrets.choice(alphabet) for _ in range(5))
        name = meta["name"]
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            namespace = namespace or body_ns
            if not namespace:
                raise ApiError(400, "BadRequest", "a namespaced object needs a namespace")
            if self.require_namespaces and info.storage_key != _NAMESPACE_KEY:
                ns_info = self.resource("", "v1", "namespaces")
                if self.try_get(ns_info, None, namespace) is None:
                    raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', name=namespace, info=ns_info)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if self.try_get(info, namespace, name) is not None:
            what = f"{info.plural}.{info.group}" if info.group else info.plural
            raise ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', name=name, info=info)
        for field in (
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "managedFields",
            "selfLink",
        ):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _timestamp(self.clock())
        meta["generation"] = 1
        if info.status:
            obj.pop("status", None)
            if info.builtin:
                obj["status"] = {}  # built-in kinds always serialise an (empty) status
        obj = self._admit(info, obj)
        if info.storage_key == _NAMESPACE_KEY:
            obj["status"] = {"phase": "Active"}
        elif info.storage_key == _CRD_KEY:
            self._validate_crd(obj)
            obj["status"] = self._crd_status(obj)
        return self._commit(info, "ADDED", obj, None)

    def replace(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PUT: replace the object (or only its status through ``/status``)."""
        old = self.get(info, namespace, name)
        if not isinstance(body, Mapping) or not isinstance(body.get("metadata", {}), Mapping):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        expected = meta.get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise _conflict(info, name)
        return self._update(info, old, patches.clone(dict(body)), subresource)

    def patch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """PATCH with any of the :class:`PatchType` content types."""
        ctype = patch_type.split(";")[0].strip()
        if ctype == PatchType.APPLY:
            existing = self.try_get(info, namespace, name)
            if existing is None and subresource is None:
                if not isinstance(body, Mapping):
                    raise ApiError(400, "BadRequest", "an apply patch must be an object")
                applied = {**body, "metadata": {**(body.get("metadata") or {}), "name": name}}
                return self.create(info, namespace, applied)
        old = self.get(info, namespace, name)
        base = patches.clone(old)  # patch results share unpatched branches with their input
        try:
            if ctype == PatchType.JSON:
                patched = patches.json_patch(base, body)
            elif ctype == PatchType.MERGE:
                patched = patches.merge_patch(base, body)
            elif ctype in (PatchType.STRATEGIC, PatchType.APPLY):
                if not info.builtin and ctype == PatchType.STRATEGIC:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "strategic merge patch is not supported for custom resources",
                    )
                if not isinstance(body, Mapping):
                    raise ApiError(400, "BadRequest", "a strategic merge patch must be an object")
                patched = patches.strategic_merge_patch(base, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"the media type {ctype!r} is not supported")
        except patches.PatchTestFailed as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
                name=name,
                info=info,
            ) from exc
        except patches.PatchError as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
                name=name,
                info=info,
            ) from exc
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the patch produced an invalid object", name=name, info=info)
        expected = patched["metadata"].get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            raise _conflict(info, name)
        return self._update(info, old, patched, subresource)

    def _update(
        self,
        info: ResourceInfo,
        old: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        if subresource == "status":
            if not info.status:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            status = new.get("status")
            new = {k: v for k, v in old.items() if k != "status"}
            if status is not None:
                new["status"] = patches.clone(status)
            new["metadata"] = patches.clone(old["metadata"])
        elif subresource is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        else:
            if info.status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
            meta = new.setdefault("metadata", {})
            for field in _PROTECTED_METADATA:
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
                else:
                    meta.pop(field, None)
            meta.pop("managedFields", None)
        new["apiVersion"] = old["apiVersion"]
        new["kind"] = old["kind"]
        if info.storage_key in _IMMUTABLE_SPEC and new.get("spec") != old.get("spec"):
            name = old["metadata"]["name"]
            what = f"{info.kind}.{info.group}"
            raise ApiError(
                422,
                "Invalid",
                f'{what} "{name}" is invalid: spec: Invalid value: "object": field is immutable',
                name=name,
                info=info,
            )
        new = self._admit(info, new)
        meta = new["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        meta["generation"] = old["metadata"].get("generation", 1)
        if _strip_for_generation(new) != _strip_for_generation(old):
            meta["generation"] += 1
        if old["metadata"].get("deletionTimestamp") and not meta.get("finalizers"):
            meta.pop("finalizers", None)
            return self._commit(info, "DELETED", new, old)
        if new == old:
            return old  # a no-op write bumps nothing and emits no event, like the real server
        if info.storage_key == _CRD_KEY:
            self._validate_crd(new)
            if subresource is None:
                new["status"] = self._crd_status(new)
        return self._commit(info, "MODIFIED", new, old)

    def _admit(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """Prune, default and validate a custom resource against its CRD's schema."""
        if info.schema is None or not self.validate_custom_resources:
            return obj
        admitted, errors = schema.admit(info.schema, obj)
        if errors:
            name = obj["metadata"].get("name", "")
            raise ApiError(
                422,
                "Invalid",
                f'{info.kind}.{info.group} "{name}" is invalid: [{", ".join(errors)}]',
                name=name,
                info=info,
            )
        return admitted

    def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE; returns (object, gone). Finalizers only mark the object for deletion."""
        old = self.get(info, namespace, name)
        preconditions = preconditions or {}
        if preconditions.get("uid") and preconditions["uid"] != old["metadata"]["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {preconditions['uid']}",
                name=name,
                info=info,
            )
        wanted_rv = preconditions.get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise _conflict(info, name)
        new = patches.clone(old)
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return old, False
            new["metadata"]["deletionTimestamp"] = _timestamp(self.clock())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(info, "MODIFIED", new, old), False
        return self._commit(info, "DELETED", new, old), True

    # -- scale subresource ------------------------------------------------------------------

    def get_scale(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        if info.scale is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        obj = self.get(info, namespace, name)
        spec = info.scale
        if spec.label_selector_path is None:  # Deployments: the selector comes from spec.selector
            selector = label_selector_string(_get_path(obj, ".spec.selector"))
        else:
            selector = _get_path(obj, spec.label_selector_path)
        status: dict[str, Any] = {"replicas": _get_path(obj, spec.status_replicas_path) or 0}
        if selector:
            status["selector"] = selector
        meta = obj["metadata"]
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
            },
            "spec": {"replicas": _get_path(obj, spec.spec_replicas_path) or 0},
            "status": status,
        }

    def write_scale(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        scale: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Write ``spec.replicas`` of a Scale (PUT, or the result of a patched Scale)."""
        current = self.get_scale(info, namespace, name)
        expected = (scale.get("metadata") or {}).get("resourceVersion")
        if expected and expected != current["metadata"]["resourceVersion"]:
            raise _conflict(info, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError(422, "Invalid", "Scale.spec.replicas must be a non-negative integer", name=name, info=info)
        old = self.get(info, namespace, name)
        new = patches.clone(old)
        assert info.scale is not None
        _set_path(new, info.scale.spec_replicas_path, replicas)
        self._update(info, old, new, None)
        return self.get_scale(info, namespace, name)

    def patch_scale(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
    ) -> dict[str, Any]:
        current = self.get_scale(info, namespace, name)
        ctype = patch_type.split(";")[0].strip()
        try:
            if ctype == PatchType.JSON:
                patched = patches.json_patch(current, body)
            elif ctype in (PatchType.MERGE, PatchType.STRATEGIC):
                patched = patches.merge_patch(current, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"the media type {ctype!r} is not supported")
        except patches.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc), name=name, info=info) from exc
        return self.write_scale(info, namespace, name, patched)

    # -- CRDs -------------------------------------------------------------------------------

    def _validate_crd(self, crd: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        try:
            infos = resources.from_crd(crd)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ApiError(422, "Invalid", f"CustomResourceDefinition is invalid: {exc}") from exc
        expected = f"{names.get('plural')}.{spec.get('group')}"
        if crd["metadata"]["name"] != expected:
            raise ApiError(
                422,
                "Invalid",
                f'CustomResourceDefinition.apiextensions.k8s.io "{crd["metadata"]["name"]}" is invalid: '
                f'metadata.name: Invalid value: must be spec.names.plural+"."+spec.group ({expected})',
            )
        if not infos:
            raise ApiError(422, "Invalid", "CustomResourceDefinition is invalid: no served versions")

    def _crd_status(self, crd: Mapping[str, Any]) -> dict[str, Any]:
        spec = crd["spec"]
        now = _timestamp(self.clock())
        conditions = [
            {"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": now}
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ]
        return {
            "acceptedNames": spec["names"],
            "conditions": conditions,
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage", True)][:1],
        }

    def _crd_changed(self, event: WatchEvent) -> None:
        spec = event.obj.get("spec") or {}
        group = spec.get("group", "")
        plural = (spec.get("names") or {}).get("plural", "")
        if event.old is not None:
            old_spec = event.old.get("spec") or {}
            self.unserve(old_spec.get("group", ""), (old_spec.get("names") or {}).get("plural", ""))
        if event.type == "DELETED":
            self.unserve(group, plural)
            storage = self._objects.get((group, plural), {})
            infos = resources.from_crd(event.obj) or []
            for obj in list(storage.values()):
                info = infos[0] if infos else None
                if info is not None:
                    gone = patches.clone(obj)
                    self._commit(info, "DELETED", gone, obj)
            return
        for info in resources.from_crd(event.obj):
            self.serve(info)
