"""Custom resources are pruned, defaulted and validated against their CRD, like a real cluster does."""

from __future__ import annotations

import pytest

from neuronfleet.kube_emulator import schema
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["model"],
            "properties": {
                "model": {"type": "string", "minLength": 1, "pattern": "^hf://"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "mode": {"type": "string", "enum": ["fast", "cheap"], "default": "fast"},
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "args": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "note": {"type": "string", "nullable": True},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def admitted(spec: dict) -> tuple[dict, list[str]]:
    obj, errors = schema.admit(SCHEMA, {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": spec})
    return obj["spec"], errors


def test_unknown_fields_are_pruned_but_preserved_subtrees_are_kept():
    spec, errors = admitted({"model": "hf://m", "typo": 1, "extra": {"anything": {"goes": True}}})
    assert errors == []
    assert "typo" not in spec and spec["extra"] == {"anything": {"goes": True}}


def test_defaults_fill_missing_fields_only():
    spec, _ = admitted({"model": "hf://m", "replicas": 4})
    assert (spec["replicas"], spec["mode"]) == (4, "fast")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({}, "spec.model: Required value"),
        ({"model": "s3://m"}, "should match"),
        ({"model": "hf://m", "replicas": 11}, "less than or equal to 10"),
        ({"model": "hf://m", "replicas": "2"}, "must be of type integer"),
        ({"model": "hf://m", "mode": "slow"}, "Unsupported value"),
        ({"model": "hf://m", "ratio": 0}, "greater than 0"),
        ({"model": "hf://m", "port": 1.5}, "integer or a string"),
        ({"model": "hf://m", "labels": {"a": 1}}, "spec.labels.a"),
        ({"model": "hf://m", "args": ["a", "b", "c"]}, "at most 2"),
    ],
    ids=[
        "a required field is missing",
        "a pattern does not match",
        "above the maximum",
        "a string where an integer belongs",
        "a value outside the enum",
        "an exclusive minimum is hit",
        "int-or-string gets a float",
        "a map value of the wrong type",
        "too many items",
    ],
)
def test_invalid_specs_are_reported_with_their_path(spec: dict, fragment: str):
    _, errors = admitted(spec)
    assert any(fragment in e for e in errors), errors


def test_null_is_allowed_only_where_nullable():
    assert admitted({"model": "hf://m", "note": None})[1] == []
    spec, errors = admitted({"model": "hf://m", "replicas": None})
    assert errors == [] and spec["replicas"] == 1, "a null non-nullable field is dropped, then defaulted"


def crd_store() -> tuple[Store, object]:
    store = Store()
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "kind": "Widget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": SCHEMA},
                }
            ],
        },
    }
    store.create(store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, crd)
    return store, store.resource("example.com", "v1", "widgets")


def test_the_store_refuses_an_invalid_custom_resource_with_422():
    store, info = crd_store()
    with pytest.raises(ApiError) as err:
        store.create(info, "default", {"metadata": {"name": "w"}, "spec": {"model": "hf://m", "replicas": -1}})
    assert err.value.code == 422 and "spec.replicas" in err.value.message
    store.create(info, "default", {"metadata": {"name": "w"}, "spec": {"model": "hf://m"}})
    with pytest.raises(ApiError):
        store.patch(info, "default", "w", PatchType.MERGE, {"spec": {"mode": "slow"}})
    stored = store.get(info, "default", "w")
    assert stored["spec"] == {"model": "hf://m", "replicas": 1, "mode": "fast"}


def test_validation_can_be_switched_off_for_tests_of_what_a_cluster_would_refuse():
    store, info = crd_store()
    store.validate_custom_resources = False
    created = store.create(info, "default", {"metadata": {"name": "w"}, "spec": {"replicas": -1}})
    assert created["spec"] == {"replicas": -1}
