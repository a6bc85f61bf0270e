"""A loopback front that makes the standalone CRD API server usable by kopf and the operator.

The stock apiextensions-apiserver serves only CRDs and custom resources: no root discovery
(`GET /api`, `GET /apis` answer 404, so kopf's resource scan and kubectl stop there) and no
core or apps API (no Deployments, Services, Events, Namespaces). To run the operator's real code
path with ModelDeployments stored by the real server, this front routes by API group:

- `/apis/neuronfleet.io/...`, `/apis/apiextensions.k8s.io/...`, `/version`: the real server,
  with our `system:masters` client certificate, streamed both ways (watches included);
- everything else (Deployments, Services, PDBs, Events, Namespaces): the in-process API emulator
  from `neuronfleet.kube_emulator`, the part we cannot run for real here;
- `/apis`: the emulator's groups minus the ones the real server owns, plus one group per CRD
  the real server has established, as kube-aggregator would merge them.

Every write to a ModelDeployment is recorded with the server's answer, so a test can check that
the server stored all of what the operator sent (nothing pruned).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

__all__ = ["Front", "Write", "running_front"]

_HOP_HEADERS = frozenset(
    h.lower()
    for h in ("Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length", "Host", "Upgrade", "Content-Encoding")
)
REAL_GROUPS = ("neuronfleet.io", "apiextensions.k8s.io")


@dataclass(frozen=True)
class Write:
    """One write that went to the real server: what was sent, and what the server stored."""

    method: str
    path: str
    content_type: str
    sent: Any
    status: int
    stored: Any


@dataclass
class Front:
    """Routes each request to the real server or the emulator; serves the merged discovery."""

    real: str
    real_ssl: ssl.SSLContext
    rest: str
    port: int = 0
    writes: list[Write] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle: an event loop of its own in a thread, so sync tests and the operator share it.

    def start(self) -> None:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="contract-front", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("the front did not start")

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    async def _start(self) -> None:
        # No client-side total timeout: watches are long-lived responses.
        self._session = ClientSession(timeout=ClientTimeout(total=None, sock_connect=5))
        app = web.Application(client_max_size=16 * 1024**2)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/apis/", self._apis)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.shutdown()
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # --- routing

    def _upstream(self, path: str) -> tuple[str, ssl.SSLContext | bool]:
        if path == "/version" or any(path.startswith(f"/apis/{g}") for g in REAL_GROUPS):
            return self.real, self.real_ssl
        return self.rest, False

    async def _apis(self, request: web.Request) -> web.Response:
        """The emulator's groups without those the real server owns, plus the real server's CRD groups."""
        assert self._session is not None
        async with self._session.get(f"{self.rest}/apis") as resp:
            resp.raise_for_status()
            rest_groups = (await resp.json())["groups"]
        url = f"{self.real}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
        async with self._session.get(url, ssl=self.real_ssl) as resp:
            resp.raise_for_status()
            crds = (await resp.json())["items"]
        gv = {"groupVersion": "apiextensions.k8s.io/v1", "version": "v1"}
        groups: dict[str, dict[str, Any]] = {
            "apiextensions.k8s.io": {"name": "apiextensions.k8s.io", "versions": [gv], "preferredVersion": gv}
        }
        for crd in crds:
            if not _established(crd):
                continue
            group = crd["spec"]["group"]
            entry = groups.setdefault(group, {"name": group, "versions": []})
            for version in crd["spec"]["versions"]:
                gv = {"groupVersion": f"{group}/{version['name']}", "version": version["name"]}
                if version.get("served") and gv not in entry["versions"]:
                    entry["versions"].append(gv)
                if version.get("storage"):
                    entry["preferredVersion"] = gv
        merged = [g for g in rest_groups if g["name"] not in groups] + list(groups.values())
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": merged})

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        base, tls = self._upstream(request.path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        body = await request.read()
        async with self._session.request(
            request.method, f"{base}{request.rel_url}", headers=headers, data=body or None, ssl=tls
        ) as upstream:
            if request.method in ("POST", "PUT", "PATCH") and base == self.real:
                data = await upstream.read()
                self._record(request, body, upstream.status, data)
                return web.Response(
                    status=upstream.status,
                    body=data,
                    headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS},
                )
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_HEADERS:
                    response.headers.add(key, value)
            await response.prepare(request)
            with contextlib.suppress(ConnectionResetError):
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            return response

    def _record(self, request: web.Request, body: bytes, status: int, data: bytes) -> None:
        with contextlib.suppress(ValueError):
            self.writes.append(
                Write(
                    method=request.method,
                    path=request.path,
                    content_type=request.headers.get("Content-Type", ""),
                    sent=json.loads(body) if body else None,
                    status=status,
                    stored=json.loads(data) if data else None,
                )
            )


def _established(crd: dict[str, Any]) -> bool:
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


@contextlib.contextmanager
def running_front(real: str, real_ssl: ssl.SSLContext, rest: str) -> Iterator[Front]:
    """A front on a free loopback port, stopped even when the body fails."""
    front = Front(real=real, real_ssl=real_ssl, rest=rest)
    front.start()
    try:
        yield front
    finally:
        front.stop()
