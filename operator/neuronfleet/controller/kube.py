"""The operator's one door to the Kubernetes API for its own reads and writes (children, status).

kopf watches and posts events over its own connection; everything the reconcile pass does goes
through this thin async wrapper over the official `kubernetes` client. It speaks plain dicts
(no generated models, so any kind works and nothing is lost in translation), runs the blocking
client in a small thread pool, and turns every failure into one `KubeError` carrying the HTTP
status, so callers branch on meaning (`not_found`, `conflict`, `retriable`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
from collections.abc import Mapping
from typing import Any

import kubernetes
import urllib3

from neuronfleet.controller.refs import ResourceRef

__all__ = [
    "KubeClient",
    "KubeError",
    "load_configuration",
    "resource_path",
]

# PATCH content types the API server accepts. Merge patch replaces lists wholesale, which is
# what an operator owning a field wants (see controller/apply.py for the ownership rules).
MERGE_PATCH = "application/merge-patch+json"


class KubeError(Exception):
    """An API call that failed; `status` is the HTTP code, 0 when no answer came (timeout, reset)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}" if status else message)
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

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
    """Async CRUD on any resource as plain dicts, over the official client's REST layer."""

    def __init__(
        self,
        configuration: kubernetes.client.Configuration,
        *,
        workers: int = 8,
        timeout: tuple[float, float] = (5.0, 15.0),
    ) -> None:
        configuration.connection_pool_maxsize = max(configuration.connection_pool_maxsize or 0, workers)
        self._api = kubernetes.client.ApiClient(configuration)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")
        self._timeout = timeout

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._api.close()

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

    async def create(self, ref: ResourceRef, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
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
        path = resource_path(ref, namespace, name, subresource)
        return await self._call("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, ref: ResourceRef, namespace: str | None, name: str) -> None:
        # Background propagation: the garbage collector removes the dependents (pods, replica sets).
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        await self._call("DELETE", resource_path(ref, namespace, name), body=body)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call_sync, method, path, query, body, content_type)

    def _call_sync(
        self, method: str, path: str, query: Mapping[str, str] | None, body: Any, content_type: str
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        params = self._api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*params, _request_timeout=self._timeout)
            data = response.read()
        except (urllib3.exceptions.HTTPError, OSError, kubernetes.client.ApiException) as exc:
            raise KubeError(0, type(exc).__name__, str(exc)) from exc
        if response.status >= 400:
            raise _error_from(response.status, data)
        return json.loads(data) if data else {}


def _error_from(status: int, data: bytes | None) -> KubeError:
    """The API server answers errors as a `Status` object; keep its reason and message."""
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    return KubeError(status, str(answer.get("reason") or ""), str(answer.get("message") or (data or b"")[:200]))
