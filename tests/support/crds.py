"""The CRDs as shipped in crds/, for every suite that installs them (the files, never a copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["CRD_DIR", "REPO", "load_crd", "load_crds", "schemaless_crd"]

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"


def load_crds(directory: Path = CRD_DIR) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in `directory` (files may hold comments and several documents)."""
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return [d for d in docs if d.get("kind") == "CustomResourceDefinition"]


def load_crd(directory: Path = CRD_DIR) -> dict[str, Any]:
    """The ModelDeployment CRD."""
    return next(d for d in load_crds(directory) if d["spec"]["names"]["kind"] == "ModelDeployment")


def schemaless_crd(
    group: str,
    plural: str,
    kind: str,
    *,
    version: str = "v1",
    scope: str = "Namespaced",
    short_names: tuple[str, ...] = (),
    subresources: dict[str, Any] | None = None,
    printer_columns: list[dict[str, Any]] | None = None,
    status_schema: bool = False,
) -> dict[str, Any]:
    """A minimal CRD that keeps whatever it is given: test kinds (Widget) and others' kinds (PodMonitor, peering).

    `status_schema` declares `status` as a free-form object too (kopf's peering CRD does).
    """
    names: dict[str, Any] = {"plural": plural, "singular": kind.lower(), "kind": kind}
    if short_names:
        names["shortNames"] = list(short_names)
    schema: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if status_schema:
        schema["properties"] = {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    served: dict[str, Any] = {"name": version, "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
    if subresources is not None:
        served["subresources"] = subresources
    if printer_columns is not None:
        served["additionalPrinterColumns"] = printer_columns
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope, "names": names, "versions": [served]},
    }
