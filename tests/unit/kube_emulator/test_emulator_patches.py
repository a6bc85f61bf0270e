"""Merge, JSON and (approximated) strategic merge patches produce what the server would store."""

from __future__ import annotations

import pytest

from neuronfleet.kube_emulator.patches import (
    PatchError,
    PatchTestFailed,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)


def test_a_merge_patch_deletes_null_keys_and_replaces_lists():
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [3]}) == {"a": {"c": 2, "d": 3}, "l": [3]}
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2]}, "the target is not mutated"


def test_a_json_patch_whose_test_op_fails_raises_a_test_failure():
    body = {"metadata": {"resourceVersion": "5"}}
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}]
    with pytest.raises(PatchTestFailed):
        json_patch(body, ops)


def test_a_json_patch_with_a_passing_test_op_applies_the_rest():
    body = {"metadata": {"resourceVersion": "5"}}
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
    ]
    assert json_patch(body, ops)["metadata"]["finalizers"] == ["x"]


def test_a_json_patch_removing_a_missing_path_is_a_patch_error():
    with pytest.raises(PatchError):
        json_patch({}, [{"op": "remove", "path": "/nope"}])


POD_SPEC = {
    "containers": [
        {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "s1"},
    ]
}


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"containers": [{"name": "app", "image": "v2"}]},
            [("app", "v2"), ("sidecar", "s1")],
        ),
        (
            {"containers": [{"name": "new", "image": "n1"}]},
            [("app", "v1"), ("sidecar", "s1"), ("new", "n1")],
        ),
        (
            {"containers": [{"name": "sidecar", "$patch": "delete"}]},
            [("app", "v1")],
        ),
        (
            {"$setElementOrder/containers": [{"name": "app"}], "containers": [{"name": "app", "image": "v3"}]},
            [("app", "v3"), ("sidecar", "s1")],
        ),
    ],
    ids=[
        "a container is merged by name",
        "an unknown container is appended",
        "a patch directive deletes a container",
        "element order directives are dropped",
    ],
)
def test_strategic_merge_patches_merge_containers_by_name(patch: dict, expected: list):
    result = strategic_merge_patch(POD_SPEC, patch)
    assert [(c["name"], c["image"]) for c in result["containers"]] == expected
    assert all(not k.startswith("$") for c in result["containers"] for k in c)


def test_strategic_merge_patches_merge_env_and_ports_inside_a_container():
    patch = {"containers": [{"name": "app", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 9090}]}]}
    app = strategic_merge_patch(POD_SPEC, patch)["containers"][0]
    assert [e["name"] for e in app["env"]] == ["A", "B"]
    assert [p["containerPort"] for p in app["ports"]] == [80, 9090]


def test_strategic_merge_patches_union_finalizers_and_replace_other_lists():
    target = {"metadata": {"finalizers": ["a"]}, "spec": {"args": ["x", "y"]}}
    result = strategic_merge_patch(target, {"metadata": {"finalizers": ["b"]}, "spec": {"args": ["z"]}})
    assert result == {"metadata": {"finalizers": ["a", "b"]}, "spec": {"args": ["z"]}}


def test_strategic_merge_patches_delete_from_primitive_lists():
    target = {"metadata": {"finalizers": ["a", "b"]}}
    result = strategic_merge_patch(target, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert result == {"metadata": {"finalizers": ["b"]}}
