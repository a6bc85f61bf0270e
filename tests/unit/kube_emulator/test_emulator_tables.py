"""Server-side Tables give kubectl a CRD's printer columns, as the real API server does."""

from __future__ import annotations

import datetime

import pytest

from neuronfleet.kube_emulator import tables

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)

OBJ = {
    "metadata": {"name": "w", "namespace": "default", "creationTimestamp": "2026-01-01T11:55:00Z"},
    "spec": {"replicas": 3},
    "status": {"conditions": [{"type": "Progressing", "status": "False"}, {"type": "Ready", "status": "True"}]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", 3),
        (".status.conditions[1].type", "Ready"),
        ('.status.conditions[?(@.type=="Ready")].status', "True"),
        (".status.conditions[?(@.type=='Missing')].status", None),
        (".spec.nothing.deeper", None),
    ],
    ids=["dotted field", "list index", "filter by field", "filter without a match", "missing field"],
)
def test_jsonpath_evaluates_the_printer_column_subset(path: str, expected: object):
    assert tables.jsonpath(OBJ, path) == expected


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        ("2026-01-01T11:59:18Z", "42s"),
        ("2026-01-01T11:55:00Z", "5m"),
        ("2026-01-01T11:54:57Z", "5m3s"),
        ("2026-01-01T07:50:00Z", "4h10m"),
        ("2025-12-29T08:00:00Z", "3d4h"),
    ],
    ids=["seconds", "whole minutes", "minutes and seconds", "hours and minutes", "days and hours"],
)
def test_ages_read_like_kubectl(created: str, expected: str):
    assert tables.age(created, NOW) == expected


def test_a_crd_table_has_name_its_columns_and_one_age():
    columns = tables.columns_for(
        "Widget",
        (
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ),
    )
    rendered = tables.table([OBJ], columns, NOW, resource_version="7")
    assert [c["name"] for c in rendered["columnDefinitions"]] == ["Name", "Replicas", "Ready", "Age"]
    assert rendered["rows"][0]["cells"] == ["w", 3, "True", "5m"]
    assert rendered["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert rendered["metadata"]["resourceVersion"] == "7"


def test_only_a_table_first_accept_header_asks_for_a_table():
    assert tables.wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
    assert not tables.wants_table("application/json")
