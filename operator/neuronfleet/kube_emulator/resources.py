"""The resource types the emulator serves: built-in kinds, plus whatever CRDs declare.

A :class:`ResourceInfo` carries everything the storage and discovery need about one
group/version/plural: kind, scope, subresources and, for the scale subresource, where the
replicas and the selector live. Posting a CRD turns it into ResourceInfos
(:func:`from_crd`), which is how the real API server starts serving a custom resource.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["BUILTIN_RESOURCES", "ResourceInfo", "ScaleSpec", "from_crd"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class ScaleSpec:
    """Where the scale subresource reads and writes (CRD ``subresources.scale`` paths)."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = ".status.selector"


@dataclasses.dataclass(frozen=True)
class ResourceInfo:
    """One served resource (group/version/plural) and the semantics attached to it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    status: bool = False
    scale: ScaleSpec | None = None
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    builtin: bool = True
    verbs: tuple[str, ...] = _ALL_VERBS
    printer_columns: tuple[dict[str, Any], ...] | None = dataclasses.field(default=None, compare=False)
    schema: dict[str, Any] | None = dataclasses.field(default=None, compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @functools.cached_property
    def storage_key(self) -> tuple[str, str]:
        """Versions of one group/plural share their objects, as they do in etcd."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _r(gv: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceInfo:
    group, _, version = gv.rpartition("/")
    return ResourceInfo(group, version, plural, kind, namespaced, singular=kind.lower(), **kw)


_DEPLOYMENT_SCALE = ScaleSpec(".spec.replicas", ".status.replicas", None)

BUILTIN_RESOURCES: tuple[ResourceInfo, ...] = (
    _r("v1", "namespaces", "Namespace", namespaced=False, status=True, short_names=("ns",)),
    _r("v1", "pods", "Pod", status=True, short_names=("po",), categories=("all",)),
    _r("v1", "services", "Service", status=True, short_names=("svc",), categories=("all",)),
    _r("v1", "events", "Event", short_names=("ev",)),
    _r("v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("v1", "secrets", "Secret"),
    _r("v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _r(
        "apps/v1",
        "deployments",
        "Deployment",
        status=True,
        scale=_DEPLOYMENT_SCALE,
        short_names=("deploy",),
        categories=("all",),
    ),
    _r("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", status=True, short_names=("pdb",)),
    _r("coordination.k8s.io/v1", "leases", "Lease"),
    _r("events.k8s.io/v1", "events", "Event", short_names=("ev",)),
    _r(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        status=True,
        short_names=("crd", "crds"),
    ),
    _r("monitoring.coreos.com/v1", "podmonitors", "PodMonitor", short_names=("pmon",), builtin=False),
    _r("monitoring.coreos.com/v1", "servicemonitors", "ServiceMonitor", short_names=("smon",), builtin=False),
    _r("batch/v1", "jobs", "Job", status=True, categories=("all",)),
    # DRA, served by Kubernetes 1.34+ (spec immutable: see Store._update).
    _r("resource.k8s.io/v1", "resourceclaimtemplates", "ResourceClaimTemplate"),
    _r("kopf.dev/v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False, builtin=False),
    _r("kopf.dev/v1", "kopfpeerings", "KopfPeering", builtin=False),
)


def from_crd(crd: Mapping[str, Any]) -> list[ResourceInfo]:
    """The resources a CustomResourceDefinition asks to serve (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    infos = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or spec.get("subresources") or {}
        scale = subresources.get("scale")
        infos.append(
            ResourceInfo(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                singular=names.get("singular") or names["kind"].lower(),
                status="status" in subresources,
                scale=ScaleSpec(
                    scale.get("specReplicasPath", ".spec.replicas"),
                    scale.get("statusReplicasPath", ".status.replicas"),
                    scale.get("labelSelectorPath"),
                )
                if scale is not None
                else None,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                builtin=False,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                schema=(version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema"),
            )
        )
    return infos


def group_versions(resources: Iterable[ResourceInfo]) -> dict[str, list[str]]:
    """Group name -> versions, in first-seen order (the first is the preferred one)."""
    groups: dict[str, list[str]] = {}
    for info in resources:
        versions = groups.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)
    return groups
