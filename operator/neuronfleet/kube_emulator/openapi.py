"""A minimal OpenAPI v3 index, enough for ``kubectl apply``/``create`` with validation on.

kubectl (1.27+) validates with the server's ``fieldValidation`` when the OpenAPI v3 document of
the object's group/version declares that query parameter on the kind's PATCH operation;
otherwise it fails with "failed to download openapi". The emulator declares the parameter for
every served kind but publishes no schemas: it accepts ``fieldValidation`` and validates
nothing (unknown fields are stored as sent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from neuronfleet.kube_emulator.resources import ResourceInfo

__all__ = ["group_version_document", "root_document"]


def _prefix(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _document_hash(infos: list[ResourceInfo]) -> str:
    text = json.dumps(sorted((i.kind, i.plural, i.namespaced) for i in infos))
    return hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def root_document(resources: Iterable[ResourceInfo]) -> dict[str, Any]:
    """``/openapi/v3``: one entry per served group/version, with a content hash for caching."""
    by_gv: dict[tuple[str, str], list[ResourceInfo]] = {}
    for info in resources:
        by_gv.setdefault((info.group, info.version), []).append(info)
    return {
        "paths": {
            _prefix(g, v): {"serverRelativeURL": f"/openapi/v3/{_prefix(g, v)}?hash={_document_hash(infos)}"}
            for (g, v), infos in sorted(by_gv.items())
        }
    }


def group_version_document(group: str, version: str, resources: Iterable[ResourceInfo]) -> dict[str, Any] | None:
    """``/openapi/v3/apis/<g>/<v>``: a PATCH operation with ``fieldValidation`` per kind."""
    infos = [i for i in resources if (i.group, i.version) == (group, version)]
    if not infos:
        return None
    paths: dict[str, Any] = {}
    for info in infos:
        scope = "/namespaces/{namespace}" if info.namespaced else ""
        path = f"/{_prefix(group, version)}{scope}/{info.plural}/{{name}}"
        paths[path] = {
            "patch": {
                "operationId": f"patch{info.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": info.kind},
                "parameters": [
                    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0-neuronfleet-emulator"},
        "paths": paths,
        "components": {"schemas": {}},
    }
