"""The HTTP face of the emulator: Kubernetes REST paths, discovery and watch streams.

:class:`Emulator` serves a :class:`~neuronfleet.kube_emulator.store.Store` on 127.0.0.1 with
aiohttp, inside the caller's event loop (``async with Emulator() as emu``);
:class:`ThreadedEmulator` runs one in a background thread for sync tests, the CLI and the demo.
Every request is recorded (see ``requests_log``) and may be answered by an armed fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

import yaml
from aiohttp import web

from neuronfleet.kube_emulator import openapi, scheduler, tables
from neuronfleet.kube_emulator.faults import Fault, FaultTable
from neuronfleet.kube_emulator.requests_log import RequestRecord
from neuronfleet.kube_emulator.resources import ResourceInfo, group_versions
from neuronfleet.kube_emulator.selectors import FieldSelector, LabelSelector, SelectorError
from neuronfleet.kube_emulator.store import ApiError, Store, Watcher, WatchEvent

__all__ = ["KUBERNETES_VERSION", "Emulator", "ThreadedEmulator"]

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-neuronfleet-emulator",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_T = TypeVar("_T")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _error(exc: ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


def _resource_entries(infos: list[ResourceInfo]) -> list[dict[str, Any]]:
    entries = []
    for info in infos:
        entry: dict[str, Any] = {
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": list(info.verbs),
        }
        if info.short_names:
            entry["shortNames"] = list(info.short_names)
        if info.categories:
            entry["categories"] = list(info.categories)
        entries.append(entry)
        sub_common = {"singularName": "", "namespaced": info.namespaced}
        if info.status:
            entries.append(
                {"name": f"{info.plural}/status", **sub_common, "kind": info.kind, "verbs": ["get", "patch", "update"]}
            )
        if info.scale is not None:
            entries.append(
                {
                    "name": f"{info.plural}/scale",
                    **sub_common,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
    return entries


class Emulator:
    """An in-process Kubernetes API server (storage and watch semantics, no controllers)."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bookmark_interval: float = 10.0,
    ) -> None:
        self.store = store or Store()
        self.bookmark_interval = bookmark_interval
        self.host = host
        self.port = port
        self.faults = FaultTable()
        self.requests: list[RequestRecord] = []
        # Bearer token -> user name, like kube-apiserver's --token-auth-file: the request log
        # records who sent each request. Tokens are never refused (the emulator does no authz);
        # a request without a known token is recorded as the anonymous user, the name a real
        # server gives unauthenticated requests ("Anonymous requests", Kubernetes authentication docs).
        self.tokens: dict[str, str] = {}
        self._runner: web.AppRunner | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> Emulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def stop(self) -> None:
        self.store.close_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def inject(
        self,
        *,
        method: str = "*",
        path: str = "",
        times: int = 1,
        status: int | None = 500,
        delay: float = 0.0,
    ) -> Fault:
        """Arm a fault (see :class:`~neuronfleet.kube_emulator.faults.Fault`); thread-safe."""
        return self.faults.add(Fault(method=method, path=path, times=times, status=status, delay=delay))

    def cut_watches(self) -> int:
        """End every open watch stream now, as an API server restart or a watch timeout does.

        Each stream ends cleanly (end of the chunked body); clients re-watch from the last
        resourceVersion they saw. Returns how many streams were open. Call from the server's loop
        (``ThreadedEmulator.cut_watches`` does that from another thread).
        """
        return self.store.close_watches()

    def compact(self) -> None:
        """Drop the retained event log up to now; older resumes get 410 Gone (see ``Store.compact``)."""
        self.store.compact()

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(request.query_string, keep_blank_values=True).items()}
        record = self._classify(request.method, parts, query, request.path)
        if record is not None:
            record["user"] = self._user(request.headers.get("Authorization", ""))
            record["at"] = time.time()
        fault = self.faults.take(request.method, request.path_qs)
        code = 0
        try:
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    code = fault.status
                    return _json(fault.body(), fault.status)
            if query.get("dryRun") == "All" and request.method in ("POST", "PUT", "PATCH", "DELETE"):
                body = await request.read()  # read before entering the synchronous dry-run block
                with self.store.dry_run():
                    response = await self._handle(request, parts, query, body)
            else:
                response = await self._handle(request, parts, query, None)
            code = response.status
            return response
        except ApiError as exc:
            code = exc.code
            return _error(exc)
        finally:
            if record is not None:
                self.requests.append(
                    RequestRecord(**{**record, "code": code})  # type: ignore[arg-type]
                )

    def _user(self, authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip() in self.tokens:
            return self.tokens[token.strip()]
        return "system:anonymous"

    def _classify(self, method: str, parts: list[str], query: dict[str, str], path: str) -> dict[str, Any] | None:
        target = self._target(parts)
        if target is None:
            return None
        group, version, namespace, resource, name, sub = target
        watch = query.get("watch") in ("true", "1")
        verb = {
            "GET": "watch" if watch else ("get" if name else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, method.lower())
        return {
            "verb": verb,
            "group": group,
            "version": version,
            "resource": resource,
            "subresource": sub,
            "namespace": namespace,
            "name": name,
            "path": path,
        }

    @staticmethod
    def _target(parts: list[str]) -> tuple[str, str, str, str, str, str] | None:
        """(group, version, namespace, resource, name, subresource) of a resource path."""
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            return None
        rest = rest + [""] * (3 - len(rest))
        return group, version, namespace, rest[0], rest[1], rest[2]

    async def _handle(
        self, request: web.Request, parts: list[str], query: dict[str, str], preread: bytes | None
    ) -> web.StreamResponse:
        discovery = self._discovery(parts)
        if discovery is not None:
            return _json(discovery)
        target = self._target(parts)
        if target is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version, namespace, plural, name, sub = target
        store = self.store
        info = store.resource(group, version, plural)
        ns: str | None = namespace or None
        if info.namespaced is False and ns:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = request.method
        try:
            labels = LabelSelector.parse(query.get("labelSelector"))
            fields = FieldSelector.parse(query.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from exc

        if not name:
            if method == "GET":
                if query.get("watch") in ("true", "1"):
                    return await self._watch(request, info, ns, labels, fields, query)
                listed = store.list(info, ns, labels, fields)
                if tables.wants_table(request.headers.get("Accept", "")):
                    return _json(self._table(info, listed["items"], query, listed["metadata"]["resourceVersion"]))
                return _json(listed)
            if method == "POST":
                body = await self._body(request, preread)
                if info.namespaced and not ns:
                    raise ApiError(
                        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                    )
                return _json(store.create(info, ns, body), 201)
            if method == "DELETE":
                deleted = []
                for obj in store.list(info, ns, labels, fields)["items"]:
                    meta = obj["metadata"]
                    deleted.append(store.delete(info, meta.get("namespace"), meta["name"])[0])
                return _json({"apiVersion": info.api_version, "kind": info.list_kind, "metadata": {}, "items": deleted})
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

        if sub == "scale":
            if method == "GET":
                return _json(store.get_scale(info, ns, name))
            if method == "PUT":
                return _json(store.write_scale(info, ns, name, await self._body(request, preread)))
            if method == "PATCH":
                return _json(
                    store.patch_scale(info, ns, name, request.content_type, await self._body(request, preread))
                )
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if sub == "binding" and info.storage_key == ("", "pods") and method == "POST":
            return _json(self._bind(ns, name, await self._body(request, preread)), 201)
        if sub and sub != "status":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "status" and not info.status:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        subresource = sub or None
        if method == "GET":
            obj = store.get(info, ns, name)
            if not sub and tables.wants_table(request.headers.get("Accept", "")):
                return _json(self._table(info, [obj], query, obj["metadata"]["resourceVersion"]))
            return _json(obj)
        if method == "PUT":
            return _json(store.replace(info, ns, name, await self._body(request, preread), subresource=subresource))
        if method == "PATCH":
            body = await self._body(request, preread)
            code = (
                201
                if request.content_type == "application/apply-patch+yaml" and store.try_get(info, ns, name) is None
                else 200
            )
            return _json(store.patch(info, ns, name, request.content_type, body, subresource=subresource), code)
        if method == "DELETE" and not sub:
            raw = preread if preread is not None else await request.read()
            options = json.loads(raw) if raw.strip() else {}
            obj, gone = store.delete(info, ns, name, preconditions=(options or {}).get("preconditions"))
            if gone and info.builtin:
                return _json(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": info.group,
                            "kind": info.plural,
                            "uid": obj["metadata"]["uid"],
                        },
                    }
                )
            return _json(obj, 200)
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _bind(self, namespace: str | None, name: str, body: Any) -> dict[str, Any]:
        """POST pods/NAME/binding: what a scheduler calls to put a pod on a node (see scheduler.bind)."""
        target = ((body or {}).get("target") or {}).get("name") if isinstance(body, dict) else None
        if not target:
            raise ApiError(400, "BadRequest", "a Binding needs target.name, the node")
        scheduler.bind(self.store, {"metadata": {"namespace": namespace or "", "name": name}}, str(target))
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _bookmark(self, info: ResourceInfo, watcher: Watcher) -> bytes | None:
        """A BOOKMARK at the current resourceVersion, or None while events are still queued.

        Events committed between a get() timing out and this call sit in the queue; a bookmark
        past them would make the client resume after events it never received.
        """
        if not watcher.queue.empty():
            return None
        obj = {"kind": info.kind, "apiVersion": info.api_version, "metadata": {"resourceVersion": str(self.store.rv)}}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"

    def _table(
        self, info: ResourceInfo, objects: list[dict[str, Any]], query: dict[str, str], rv: str
    ) -> dict[str, Any]:
        columns = tables.columns_for(info.kind, info.printer_columns)
        return tables.table(
            objects,
            columns,
            self.store.clock(),
            resource_version=rv,
            include_object=query.get("includeObject", "Metadata"),
        )

    @staticmethod
    async def _body(request: web.Request, preread: bytes | None = None) -> Any:
        raw = preread if preread is not None else await request.read()
        try:
            if request.content_type.endswith("yaml"):
                return yaml.safe_load(raw)
            return json.loads(raw) if raw else {}
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the request body is not valid: {exc}") from exc

    async def _watch(
        self,
        request: web.Request,
        info: ResourceInfo,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        query: dict[str, str],
    ) -> web.StreamResponse:
        raw_timeout = query.get("timeoutSeconds")
        if raw_timeout and not raw_timeout.isdigit():
            # A real API server parses it as an integer and refuses "300.0" with a 400.
            raise ApiError(400, "BadRequest", f'strconv.ParseInt: parsing "{raw_timeout}": invalid syntax')
        timeout = float(raw_timeout) if raw_timeout else None
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(info, namespace, labels, fields, query.get("resourceVersion"))
        except ApiError as exc:
            if exc.code != 410:
                raise
            with contextlib.suppress(ConnectionResetError):
                await response.prepare(request)
                line = json.dumps({"type": "ERROR", "object": exc.status()}).encode() + b"\n"
                await response.write(line)
                await response.write_eof()
            return response
        try:
            await response.prepare(request)
        except ConnectionResetError:  # the client left before the headers went out: drop its watch
            self.store.unwatch(watcher)
            return response
        as_table = tables.wants_table(request.headers.get("Accept", ""))

        def line(item: tuple[str, WatchEvent]) -> bytes:
            event_type, event = item
            if not as_table:
                return event.line(event_type, info.api_version)
            obj = self.store.as_version(event.obj, info)
            rendered = self._table(info, [obj], query, obj["metadata"]["resourceVersion"])
            return json.dumps({"type": event_type, "object": rendered}).encode() + b"\n"

        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                wait = remaining
                if bookmarks:
                    wait = self.bookmark_interval if wait is None else min(wait, self.bookmark_interval)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    bookmark = self._bookmark(info, watcher) if bookmarks else None
                    if bookmark is not None:
                        await response.write(bookmark)
                    continue
                if item is None:
                    break
                chunk = [line(item)]
                closed = False
                while not watcher.queue.empty():  # batch whatever is already queued
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        closed = True
                        break
                    chunk.append(line(nxt))
                await response.write(b"".join(chunk))
                if closed:
                    break
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
        return response

    # -- discovery --------------------------------------------------------------------------

    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        infos = list(self.store.resources.values())
        if not parts:
            paths = ["/api", "/api/v1", "/apis", "/version", "/healthz", "/readyz", "/livez"]
            paths += [f"/apis/{g}" for g in group_versions(infos) if g]
            return {"paths": sorted(paths)}
        if parts == ["version"]:
            return KUBERNETES_VERSION
        if parts[:2] == ["openapi", "v3"]:
            if len(parts) == 2:
                return openapi.root_document(infos)
            group, version = (
                ("", parts[3])
                if parts[2] == "api" and len(parts) == 4
                else (parts[3], parts[4])
                if len(parts) == 5
                else ("", "")
            )
            document = openapi.group_version_document(group, version, infos) if version else None
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return document
        if parts[0] in ("healthz", "readyz", "livez") and len(parts) == 1:
            return {"status": "ok"}
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                ],
            }
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, vs) for g, vs in group_versions(infos).items() if g],
            }
        if len(parts) == 2 and parts[0] == "apis":
            versions = group_versions(infos).get(parts[1])
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], versions)}
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            selected = [i for i in infos if i.group == group and i.version == version]
            if not selected:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": _resource_entries(selected),
            }
        return None

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}


class ThreadedEmulator:
    """An :class:`Emulator` running in its own thread and event loop.

    ``call(fn, *args)`` runs ``fn`` in the emulator's loop and returns its result, which is
    the safe way to read or write ``store`` from another thread.
    """

    def __init__(
        self, store_factory: Callable[[], Store] | None = None, *, port: int = 0, bookmark_interval: float = 10.0
    ) -> None:
        self._store_factory = store_factory or Store
        self._port = port
        self._bookmark_interval = bookmark_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.emulator: Emulator | None = None

    @property
    def url(self) -> str:
        assert self.emulator is not None, "the emulator is not started"
        return self.emulator.url

    @property
    def store(self) -> Store:
        assert self.emulator is not None, "the emulator is not started"
        return self.emulator.store

    def start(self, timeout: float = 10.0) -> ThreadedEmulator:
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the Kubernetes API emulator did not start in time")
        if self._error is not None:
            raise RuntimeError("the Kubernetes API emulator failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.emulator = await Emulator(
                self._store_factory(), port=self._port, bookmark_interval=self._bookmark_interval
            ).start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.emulator.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def inject(self, **fault: Any) -> Fault:
        """Arm a fault; see :meth:`Emulator.inject` (thread-safe)."""
        assert self.emulator is not None, "the emulator is not started"
        return self.emulator.inject(**fault)

    def cut_watches(self) -> int:
        """End every open watch stream now; see :meth:`Emulator.cut_watches` (thread-safe)."""
        assert self.emulator is not None, "the emulator is not started"
        return self.call(self.emulator.cut_watches)

    def compact(self) -> None:
        """Compact the event log now; see :meth:`Emulator.compact` (thread-safe)."""
        assert self.emulator is not None, "the emulator is not started"
        self.call(self.emulator.compact)

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the request log."""
        assert self.emulator is not None, "the emulator is not started"
        return list(self.emulator.requests)

    def call(self, fn: Callable[..., _T], *args: Any, timeout: float = 10.0, **kwargs: Any) -> _T:
        """Run ``fn(*args, **kwargs)`` in the emulator's loop (awaiting it if it is a coroutine)."""
        assert self._loop is not None

        async def _invoke() -> Any:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(_invoke(), self._loop).result(timeout)

    def __enter__(self) -> ThreadedEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
