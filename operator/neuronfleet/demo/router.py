"""The fleet's Service: one loopback address in front of the ready replicas.

A Kubernetes Service spreads connections at random; inference gateways (and vLLM's own router)
send each request to the endpoint with the fewest requests outstanding, which keeps queues even
when requests differ a hundredfold in length. This proxy does the latter, counting what it has in
flight per endpoint itself, like a gateway does. Endpoints come and go as pods turn ready or go
away (`set_endpoint` / `remove_endpoint`, called by the node pool). With no ready endpoint it
answers 503 at once, as a gateway with an empty pool does.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import aiohttp
from aiohttp import web

__all__ = ["Router", "pick_least_outstanding"]

_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


def pick_least_outstanding(outstanding: Mapping[str, int]) -> str | None:
    """The endpoint with the fewest requests in flight; ties go to the first one (stable order)."""
    best: str | None = None
    for name, count in outstanding.items():
        if best is None or count < outstanding[best]:
            best = name
    return best


class Router:
    """A least-outstanding-requests reverse proxy on 127.0.0.1."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.endpoints: dict[str, str] = {}  # pod name -> host:port
        self.outstanding: dict[str, int] = {}
        self.proxied = 0
        self.rejected = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def set_endpoint(self, name: str, address: str) -> None:
        self.endpoints[name] = address
        self.outstanding.setdefault(name, 0)

    def remove_endpoint(self, name: str) -> None:
        """Stop sending new requests there; requests in flight finish on their own."""
        self.endpoints.pop(name, None)

    async def start(self) -> Router:
        # No connection limit: the replica's own scheduler is what queues, as in vLLM.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._proxy)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        name = pick_least_outstanding({n: self.outstanding.get(n, 0) for n in self.endpoints})
        if name is None or self._session is None:
            self.rejected += 1
            return web.json_response(
                {"error": {"message": "no ready replica", "type": "ServiceUnavailableError", "code": 503}}, status=503
            )
        address = self.endpoints[name]
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        self.outstanding[name] = self.outstanding.get(name, 0) + 1
        try:
            async with self._session.request(
                request.method, f"http://{address}{request.path_qs}", data=body, headers=headers
            ) as upstream:
                reply_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
                if not upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
                    payload = await upstream.read()
                    self.proxied += 1
                    return web.Response(body=payload, status=upstream.status, headers=reply_headers)
                # A stream is passed on as it comes, so the client sees the first token when it is made.
                response = web.StreamResponse(status=upstream.status, headers=reply_headers)
                await response.prepare(request)
                async for data in upstream.content.iter_any():
                    await response.write(data)
                await response.write_eof()
                self.proxied += 1
                return response
        except aiohttp.ClientError as exc:
            self.rejected += 1
            return web.json_response(
                {"error": {"message": f"replica {name}: {exc}", "type": "BadGatewayError", "code": 502}}, status=502
            )
        finally:
            self.outstanding[name] -= 1
            if name not in self.endpoints and self.outstanding[name] <= 0:
                self.outstanding.pop(name, None)
