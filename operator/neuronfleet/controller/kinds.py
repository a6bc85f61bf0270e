"""Every kind the operator creates or reads, where it lives in the API, and what to do without it.

One table, read by the apply path (which API path, patch or create-only), the handlers (which
kinds to watch), the status (what to tell a user whose cluster lacks a kind) and `rbac.py` (which
permissions to ask for; a test keeps the chart's ClusterRole in step).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from neuronfleet.controller.refs import ResourceRef

__all__ = ["CHILD_KINDS", "POD", "ChildKind", "by_kind", "of"]


@dataclasses.dataclass(frozen=True)
class ChildKind:
    """One kind of child object."""

    api_version: str
    kind: str
    ref: ResourceRef
    optional: bool = False
    """Skipped with a warning condition when the cluster does not serve it; the fleet is never held back."""
    create_only: bool = False
    """Created once and never patched: a Job's pod template is immutable after creation."""
    install: str = ""
    """What to install when the cluster does not serve the kind (the end of a status message)."""
    phase: int = 2
    """Apply order: 0 what pods reference (claim templates), 1 workloads, 2 the rest (concurrently)."""
    missing_reason: str = "KindNotServed"
    """The Degraded reason when the cluster does not serve the kind."""


CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("v1", "Service", ResourceRef("", "v1", "services")),
    ChildKind(
        "policy/v1",
        "PodDisruptionBudget",
        ResourceRef("policy", "v1", "poddisruptionbudgets"),
        install="policy/v1 is served by every Kubernetes release since 1.21; check the API server's --runtime-config",
    ),
    ChildKind(
        "resource.k8s.io/v1",
        "ResourceClaimTemplate",
        ResourceRef("resource.k8s.io", "v1", "resourceclaimtemplates"),
        # A template's spec is immutable, and its name carries a hash of it (render/claims.py).
        create_only=True,
        phase=0,
        install="allocation dra needs Kubernetes 1.34+ (resource.k8s.io/v1) and the Neuron DRA driver; "
        "or set spec.neuron.allocation: devicePlugin",
        missing_reason="ResourceClaimTemplateMissing",
    ),
    ChildKind("apps/v1", "Deployment", ResourceRef("apps", "v1", "deployments"), phase=1),
    ChildKind(
        "leaderworkerset.x-k8s.io/v1",
        "LeaderWorkerSet",
        ResourceRef("leaderworkerset.x-k8s.io", "v1", "leaderworkersets"),
        phase=1,
        install="install LeaderWorkerSet (kubernetes-sigs/lws); single-node fleets do not need it",
        missing_reason="LeaderWorkerSetMissing",
    ),
    ChildKind(
        "monitoring.coreos.com/v1",
        "PodMonitor",
        ResourceRef("monitoring.coreos.com", "v1", "podmonitors"),
        optional=True,
        install="install the Prometheus Operator's CRDs, or set spec.monitoring.podMonitor: false",
    ),
    ChildKind("batch/v1", "Job", ResourceRef("batch", "v1", "jobs"), create_only=True),
)
"""Every kind a pass may apply; `phase` orders them (controller/apply.py)."""

POD = ResourceRef("", "v1", "pods")
"""Pods are read (watched) for replica phases, never written."""

_BY_API = {(k.api_version, k.kind): k for k in CHILD_KINDS}
_BY_KIND = {k.kind: k for k in CHILD_KINDS}


def of(child: Mapping[str, Any]) -> ChildKind:
    """The kind of a rendered child; a kind missing from the table is a programming error."""
    key = (str(child.get("apiVersion")), str(child.get("kind")))
    try:
        return _BY_API[key]
    except KeyError as exc:
        raise ValueError(f"the renderer emitted {key[1]} {key[0]}, which the controller does not know") from exc


def by_kind(kind: str) -> ChildKind:
    return _BY_KIND[kind]
