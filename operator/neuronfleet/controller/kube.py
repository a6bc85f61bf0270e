"""The operator's one door to the Kubernetes API for its own reads and writes (children, status).

kopf watches and posts events over its own connection; everything the reconcile pass writes goes
through this thin async client. Credentials come from the official `kubernetes` package's config
loader (--kubeconfig, in-cluster service account, exec plugins such as `aws eks get-token`, with
its token refresh), and requests go over aiohttp, natively async like kopf's own: the official
client's blocking REST layer needed a thread pool, and its serialisation cost about a millisecond
of CPU per request (bench/reconcile.py), which at a thousand fleets was seconds of an event loop
that also has to deliver watch events. It speaks plain dicts (no generated models, so any kind
works and nothing is lost in translation) and turns every failure into one `KubeError` carrying the
HTTP status, so callers branch on meaning (`not_found`, `conflict`, `kind_not_served`).
"""

from __future__ import annotations

import json
import os
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import kubernetes

from neuronfleet.controller.refs import ResourceRef

__all__ = [
    "KubeClient",
    "KubeError",
    "load_configuration",
    "resource_path",
]

AUTH_REFRESH_SECONDS = 30.0
"""How often credentials are re-read: well inside the shortest lifetime of the tokens they renew
(an EKS token lives 15 minutes; the in-cluster loader itself rereads the token file every minute)."""

# PATCH content types the API server accepts. Merge patch replaces lists wholesale, which is
# what an operator owning a field wants (see controller/apply.py for the ownership rules).
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """An API call that failed; `status` is the HTTP code, 0 when no answer came (timeout, reset)."""

    def __init__(self, status: int, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details: Mapping[str, Any] = details or {}

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def kind_not_served(self) -> bool:
        """The API server does not serve the resource type at all (no such group, version or plural).

        It answers such a path with 404 and a Status naming no object ("the server could not find
        the requested resource", details empty), where a missing object or namespace is a 404 whose
        details name it.
        """
        return self.status == 404 and not self.details.get("name")

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def retriable(self) -> bool:
        """Worth retrying unchanged: no answer, conflicts, throttling, server errors."""
        return self.status in (0, 408, 409, 429) or self.status >= 500


def resource_path(ref: ResourceRef, namespace: str | None, name: str | None = None, subresource: str = "") -> str:
    """The URL path of a collection, an object or its subresource."""
    base = f"/apis/{ref.group}/{ref.version}" if ref.group else f"/api/{ref.version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{ref.plural}"
    if name:
        base += f"/{name}"
    if subresource:
        base += f"/{subresource}"
    return base


def load_configuration(kubeconfig: str | None = None) -> kubernetes.client.Configuration:
    """Credentials in the order an operator expects: --kubeconfig, in-cluster, then $KUBECONFIG/~/.kube.

    `$KUBECONFIG` is read here, at call time: the kubernetes package computes its default path at
    import time, which would ignore a variable set later (tests, wrappers).
    """
    config = kubernetes.client.Configuration()
    if kubeconfig:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=config)
        return config
    try:
        kubernetes.config.load_incluster_config(client_configuration=config)
        return config
    except kubernetes.config.ConfigException:
        pass
    path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    kubernetes.config.load_kube_config(config_file=path, client_configuration=config)
    return config


class KubeClient:
    """Async CRUD on any resource as plain dicts."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        workers: int = 8,
        timeout: tuple[float, float] = (5.0, 15.0),
        before_write: Callable[[], None] | None = None,
    ) -> None:
        self._config = configuration
        # Called before every create, patch and delete; raising refuses the write (a paused operator).
        self._before_write = before_write
        # Read once: the official Configuration computes `host` afresh (proxy settings included) on
        # every access, which cost more CPU than the rest of a request.
        self._host = configuration.host.rstrip("/")
        self._connections = workers
        self._timeout = aiohttp.ClientTimeout(total=timeout[0] + timeout[1], connect=timeout[0], sock_read=timeout[1])
        self._session: aiohttp.ClientSession | None = None
        self._auth: tuple[float, str | None] = (float("-inf"), None)  # (when read, Authorization header)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._connections, ssl=_ssl_context(self._config, self._host))
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any]:
        return await self._call("GET", resource_path(ref, namespace, name))

    async def get_or_none(self, ref: ResourceRef, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self.get(ref, namespace, name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, ref: ResourceRef, namespace: str | None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        answer = await self._call("GET", resource_path(ref, namespace), query=query)
        return list(answer.get("items") or [])

    async def list_versioned(
        self, ref: ResourceRef, namespace: str | None, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The items and the list's resourceVersion (the state it shows; controller/resync.py compares with it)."""
        query = {"labelSelector": label_selector} if label_selector else None
        answer = await self._call("GET", resource_path(ref, namespace), query=query)
        version = (answer.get("metadata") or {}).get("resourceVersion")
        return list(answer.get("items") or []), None if version is None else str(version)

    async def create(self, ref: ResourceRef, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        self._may_write()
        return await self._call("POST", resource_path(ref, namespace), body=body)

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> dict[str, Any]:
        self._may_write()
        path = resource_path(ref, namespace, name, subresource)
        return await self._call("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, ref: ResourceRef, namespace: str | None, name: str) -> None:
        self._may_write()
        # Background propagation: the garbage collector removes the dependents (pods, replica sets).
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        await self._call("DELETE", resource_path(ref, namespace, name), body=body)

    def _may_write(self) -> None:
        if self._before_write is not None:
            self._before_write()

    def _authorization(self) -> str | None:
        """The Authorization header, re-read from the credentials at most every AUTH_REFRESH_SECONDS.

        In-cluster and exec-plugin credentials expire; the official loader's refresh hook renews them
        (rereading the token file, rerunning `aws eks get-token` when due), but it costs about a
        millisecond per call, so it runs on a timer, not per request.
        """
        read_at, header = self._auth
        now = time.monotonic()
        if now - read_at < AUTH_REFRESH_SECONDS:
            return header
        config = self._config
        token = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
        if token:
            header = token if " " in token else f"Bearer {token}"
        elif config.username:
            header = aiohttp.BasicAuth(config.username, config.password or "").encode()
        else:
            header = None
        self._auth = (now, header)
        return header

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = self._headers(None if body is None else content_type)
        url = self._host + path
        try:
            async with self._open().request(method, url, params=query, data=data, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeError(0, type(exc).__name__, str(exc) or type(exc).__name__) from exc
        if status >= 400:
            raise _error_from(status, raw)
        return json.loads(raw) if raw else {}


def _ssl_context(config: kubernetes.client.Configuration, host: str) -> ssl.SSLContext | bool:
    """TLS as the kubeconfig says: its CA, its client certificate, or no verification when it opts out."""
    if not host.startswith("https"):
        return False
    if not config.verify_ssl:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    return context


def _error_from(status: int, data: bytes | None) -> KubeError:
    """The API server answers errors as a `Status` object; keep its reason and message."""
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    details = answer.get("details") if isinstance(answer.get("details"), dict) else {}
    message = str(answer.get("message") or (data or b"")[:200])
    return KubeError(status, str(answer.get("reason") or ""), message, details)
