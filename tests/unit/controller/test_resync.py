"""Resync after a relist: what a fresh list lacks leaves the cache through the deletion path."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from neuronfleet.controller.cache import Cache
from neuronfleet.controller.kube import KubeError
from neuronfleet.controller.refs import ResourceRef
from neuronfleet.controller.resync import ListedKind, Resync, vanished

DEP = ListedKind("Deployment", ResourceRef("apps", "v1", "deployments"), "app.kubernetes.io/managed-by=neuronfleet")
PODMONITOR = ListedKind("PodMonitor", ResourceRef("monitoring.coreos.com", "v1", "podmonitors"))


def _body(name: str, rv: int, namespace: str = "ml") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(rv)}}


def test_vanished_is_what_the_list_lacks_unless_the_cache_saw_it_after_the_list() -> None:
    cached = {
        ("Deployment", "ml", "a"): _body("a", 5),
        ("Deployment", "ml", "deleted"): _body("deleted", 7),
        ("Deployment", "ml", "created-later"): _body("created-later", 12),
    }
    listed = [("Deployment", "ml", "a")]
    assert vanished(cached, listed, "10") == [("Deployment", "ml", "deleted")]
    assert vanished(cached, listed, None) == [("Deployment", "ml", "created-later"), ("Deployment", "ml", "deleted")]
    assert (
        vanished(cached, [*listed, ("Deployment", "ml", "deleted"), ("Deployment", "ml", "created-later")], "10") == []
    )


class FakeKube:
    def __init__(self, lists: Mapping[str, tuple[list[dict[str, Any]], str]]) -> None:
        self.lists = lists
        self.calls: list[tuple[str, str | None, str | None]] = []

    async def list_versioned(
        self, ref: ResourceRef, namespace: str | None, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        self.calls.append((ref.plural, namespace, label_selector))
        if ref.plural not in self.lists:
            raise KubeError(404, "NotFound", "the server could not find the requested resource")
        return self.lists[ref.plural]


def _resync(kube: FakeKube, cache: Cache, gone: list, **kwargs: Any) -> Resync:
    return Resync(kube, cache, [DEP, PODMONITOR], gone=lambda kind, body: gone.append((kind, body)), **kwargs)  # type: ignore[arg-type]


async def test_a_resync_hands_what_vanished_to_the_deletion_path_in_the_listed_namespaces_only() -> None:
    cache = Cache()
    for name, ns in (("a", "ml"), ("b", "ml"), ("c", "other")):
        cache.observe("Deployment", _body(name, 3, ns))
    kube = FakeKube({"deployments": ([_body("a", 3)], "9")})
    gone: list = []
    dropped = await _resync(kube, cache, gone, namespaces=("ml",)).resync()
    assert dropped == 1
    assert [(kind, body["metadata"]["name"]) for kind, body in gone] == [("Deployment", "b")]
    assert kube.calls == [
        ("deployments", "ml", "app.kubernetes.io/managed-by=neuronfleet"),
        ("podmonitors", "ml", None),  # a kind the server does not serve is skipped
    ]


async def test_only_a_listing_of_a_kind_that_was_streaming_is_a_relist() -> None:
    cache = Cache()
    kube = FakeKube({"deployments": ([], "1"), "podmonitors": ([], "1")})
    resync = _resync(kube, cache, [], namespaces=(), delay=0.01)
    for _ in range(3):
        resync.seen("Deployment", None)  # the first fill: no resync
    await asyncio.sleep(0.05)
    assert resync.runs == 0
    resync.seen("Deployment", "MODIFIED")
    resync.seen("Deployment", None)  # listed again after streaming: a relist
    resync.seen("Deployment", None)
    resync.seen("PodMonitor", None)  # still in its first fill
    await asyncio.sleep(0.05)
    assert resync.runs == 1
    assert [c[0] for c in kube.calls] == ["deployments", "podmonitors"]
    await resync.close()


def _child(name: str, rv: int, owner: str, uid: str) -> dict[str, Any]:
    body = _body(name, rv)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "name": owner,
            "uid": uid,
            "controller": True,
        }
    ]
    return body


def test_only_a_child_of_a_cached_owner_deleted_by_someone_else_is_a_repair_to_be() -> None:
    cache = Cache()
    owner = _body("llama", 1)
    owner["metadata"]["uid"] = "u1"
    cache.observe("ModelDeployment", owner)
    cache.observe("Deployment", _child("llama", 2, "llama", "u1"))
    cache.observe("Deployment", _child("llama", 3, "llama", "u1"), deleted=True)
    assert cache.deleted_by_others("Deployment", "ml", "llama")

    cache.forget_owner("ml", "llama")
    cache.observe("ModelDeployment", owner, deleted=True)
    cache.observe("Deployment", _child("llama", 4, "llama", "u1"), deleted=True)  # the garbage collector's
    assert not cache.deleted_by_others("Deployment", "ml", "llama")

    recreated = _body("llama", 5)
    recreated["metadata"]["uid"] = "u2"  # the same name, another object
    cache.observe("ModelDeployment", recreated)
    cache.observe("Deployment", _child("llama", 6, "llama", "u1"), deleted=True)  # the old one's leftover
    assert not cache.deleted_by_others("Deployment", "ml", "llama")
