"""ModelDeployment helpers for the contract tests: build, create, read, patch through the real server.

Thin wrappers over the official `kubernetes` client's CustomObjectsApi, so each test reads as
the API call a user or the operator makes, and 422 rejections come back as a small value to
assert on (status code and the message `kubectl apply` would print).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from neuronfleet.api import constants

__all__ = [
    "Rejection",
    "apply",
    "create",
    "get",
    "get_status",
    "make_md",
    "patch_status",
    "rejection_of",
    "table",
]

MINIMAL_SPEC: dict[str, Any] = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}


def make_md(name: str, spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    """A ModelDeployment body; `spec` defaults to the smallest valid one (only model.source)."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "metadata": {"name": name, **metadata},
        "spec": copy.deepcopy(MINIMAL_SPEC if spec is None else spec),
    }


def _objects(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return _objects(api).create_namespaced_custom_object(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, body
    )


def get(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return _objects(api).get_namespaced_custom_object(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
    )


def get_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return _objects(api).get_namespaced_custom_object_status(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
    )


def patch_status(api: client.ApiClient, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch on /status, the way kopf's `patch.status` writes it."""
    return _objects(api).patch_namespaced_custom_object_status(
        constants.GROUP,
        constants.VERSION,
        namespace,
        constants.PLURAL,
        name,
        {"status": status},
        _content_type="application/merge-patch+json",
    )


def apply(
    api: client.ApiClient,
    namespace: str,
    body: dict[str, Any],
    *,
    manager: str,
    subresource: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Server-side apply as `manager`, on the object or its /status; returns the object as stored.

    The client returns None when an apply creates the object (201 is missing from its response
    map), so the stored object is read back instead of trusting the return value.
    """
    objects = _objects(api)
    name = body["metadata"]["name"]
    args = (constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name, body)
    kwargs: dict[str, Any] = {
        "field_manager": manager,
        "force": force,
        "_content_type": "application/apply-patch+yaml",
    }
    if subresource == "status":
        objects.patch_namespaced_custom_object_status(*args, **kwargs)
    else:
        objects.patch_namespaced_custom_object(*args, **kwargs)
    return get(api, namespace, name)


def table(api: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The list as `kubectl get md` asks for it: a meta.k8s.io/v1 Table with the printer columns."""
    path = f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/{namespace}/{constants.PLURAL}"
    resp = api.call_api(
        "GET",
        api.configuration.host + path,
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    resp.read()
    return json.loads(resp.data)


@dataclass(frozen=True)
class Rejection:
    """What the server said when it refused an object."""

    status: int
    message: str
    causes: tuple[str, ...]


def rejection_of(exc: client.ApiException) -> Rejection:
    body = json.loads(exc.body) if exc.body else {}
    causes = tuple(
        f"{c.get('field', '')}: {c.get('message', '')}" for c in (body.get("details") or {}).get("causes", [])
    )
    return Rejection(status=exc.status, message=body.get("message", ""), causes=causes)
