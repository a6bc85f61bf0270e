"""Server-side ``Table`` rendering, so ``kubectl get`` shows a CRD's printer columns.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns
the server sends; without this, ``kubectl get md`` would show only NAME and AGE. Columns come
from the CRD's ``additionalPrinterColumns`` (JSONPath subset: dotted fields, ``[n]`` and
``[?(@.field=="value")]``); built-in kinds get NAME and AGE, Deployments also READY,
UP-TO-DATE and AVAILABLE. Ages are rendered here, relative to the given clock.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TABLE_MEDIA_MARK", "age", "jsonpath", "row_cells", "table", "wants_table"]

TABLE_MEDIA_MARK = "as=Table"

_STEP = re.compile(r"""\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*["']([^"']*)["']\)\]""")


def wants_table(accept: str) -> bool:
    """True when the client's first acceptable representation is a meta.k8s.io Table."""
    first = accept.split(",")[0]
    return TABLE_MEDIA_MARK in first and "g=meta.k8s.io" in first


def jsonpath(obj: Any, path: str) -> Any:
    """Evaluate the JSONPath subset printer columns use; None when a step is missing."""
    current = obj
    position = 0
    path = path.strip()
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            return None
        field, index, filter_key, filter_value = match.groups()
        if field is not None:
            current = current.get(field) if isinstance(current, Mapping) else None
        elif index is not None:
            current = current[int(index)] if isinstance(current, list) and int(index) < len(current) else None
        else:
            found = None
            for item in current if isinstance(current, list) else []:
                if str(jsonpath(item, "." + filter_key)) == filter_value:
                    found = item
                    break
            current = found
        if current is None:
            return None
        position = match.end()
    return current


def age(created: str | None, now: datetime.datetime) -> str:
    """kubectl's short age format: 42s, 5m3s, 3h10m, 2d4h."""
    if not created:
        return "<unknown>"
    then = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if days < 2:
        return f"{hours}h"
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _deployment_columns() -> list[dict[str, Any]]:
    return [
        {"name": "Ready", "type": "string", "jsonPath": None},
        {"name": "Up-to-date", "type": "integer", "jsonPath": ".status.updatedReplicas"},
        {"name": "Available", "type": "integer", "jsonPath": ".status.availableReplicas"},
    ]


def columns_for(kind: str, crd_columns: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Column definitions: Name, the kind's own columns, then Age unless a column is a date."""
    extra: list[dict[str, Any]] = [dict(c) for c in crd_columns or ()]
    if crd_columns is None and kind == "Deployment":
        extra = _deployment_columns()
    columns = [{"name": "Name", "type": "string", "format": "name", "jsonPath": ".metadata.name"}, *extra]
    if not any(c.get("type") == "date" for c in extra):
        columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns


def row_cells(obj: Mapping[str, Any], columns: Sequence[Mapping[str, Any]], now: datetime.datetime) -> list[Any]:
    cells: list[Any] = []
    for column in columns:
        if column["name"] == "Ready" and column.get("jsonPath") is None:
            status = obj.get("status") or {}
            cells.append(f"{status.get('readyReplicas', 0)}/{(obj.get('spec') or {}).get('replicas', 1)}")
            continue
        value = jsonpath(obj, column["jsonPath"])
        if column.get("type") == "date":
            value = age(value, now) if value else "<unknown>"
        elif value is None:
            value = "<none>" if column.get("type") == "string" else None
        elif isinstance(value, (dict, list)):
            value = str(value)
        cells.append(value)
    return cells


def table(
    objects: Sequence[Mapping[str, Any]],
    columns: Sequence[Mapping[str, Any]],
    now: datetime.datetime,
    *,
    resource_version: str = "",
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table; row objects are PartialObjectMetadata unless asked for Object."""
    definitions = [
        {
            "name": c["name"],
            "type": "string" if c.get("type") == "date" else c.get("type", "string"),
            "format": c.get("format", ""),
            "description": c.get("description", ""),
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    rows = []
    for obj in objects:
        if include_object == "Object":
            embedded: Any = obj
        elif include_object == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": row_cells(obj, columns, now), "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
