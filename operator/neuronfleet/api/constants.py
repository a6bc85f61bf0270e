"""Identity of the ModelDeployment API: group, version, kind and names, declared once."""

from __future__ import annotations

__all__ = [
    "API_VERSION",
    "CATEGORIES",
    "CRD_NAME",
    "GROUP",
    "KIND",
    "LIST_KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
]

GROUP = "neuronfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
LIST_KIND = "ModelDeploymentList"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ("md",)
CATEGORIES = ("all", "neuronfleet")
CRD_NAME = f"{PLURAL}.{GROUP}"
