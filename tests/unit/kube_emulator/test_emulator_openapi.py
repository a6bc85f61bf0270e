"""The OpenAPI v3 index tells kubectl that every served kind supports server-side field validation."""

from __future__ import annotations

from neuronfleet.kube_emulator import openapi
from neuronfleet.kube_emulator.resources import BUILTIN_RESOURCES


def test_the_root_links_every_group_version_with_a_content_hash():
    root = openapi.root_document(BUILTIN_RESOURCES)["paths"]
    assert {"api/v1", "apis/apps/v1", "apis/kopf.dev/v1"} <= set(root)
    assert root["apis/apps/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/apps/v1?hash=")


def test_a_group_version_document_declares_field_validation_on_each_kinds_patch():
    doc = openapi.group_version_document("apps", "v1", BUILTIN_RESOURCES)
    assert doc is not None
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    cluster_scoped = openapi.group_version_document("", "v1", BUILTIN_RESOURCES)
    assert cluster_scoped is not None and "/api/v1/namespaces/{name}" in cluster_scoped["paths"]


def test_an_unknown_group_version_has_no_document():
    assert openapi.group_version_document("example.com", "v9", BUILTIN_RESOURCES) is None
