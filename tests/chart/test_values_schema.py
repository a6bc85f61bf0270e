"""values.schema.json: helm refuses bad values before rendering, naming the key and the problem."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from chart.chart_files import CHART
from chart.conftest import KUBE_VERSION, run_helm

SCHEMA = json.loads((CHART / "values.schema.json").read_text())

BAD_VALUES = {
    "replica count as a string": (["--set", "replicaCount=two"], "replicaCount: Invalid type. Expected: integer"),
    "two replicas without peering": (
        ["--set", "peering.enabled=false"],
        "replicaCount: Must be less than or equal to 1",
    ),
    "unknown log format": (
        ["--set", "operator.logFormat=xml"],
        'operator.logFormat must be one of the following: "json", "text"',
    ),
    "namespace that is not a DNS label": (
        ["--set", "watchNamespaces={ML_Team}"],
        "watchNamespaces.0: Does not match pattern",
    ),
    "typo in a top-level key": (["--set", "replicaCont=2"], "Additional property replicaCont is not allowed"),
    "typo in a nested key": (["--set", "serviceMonitor.intervall=1m"], "Additional property intervall is not allowed"),
    "Prometheus URL without a scheme": (
        ["--set", "operator.prometheusUrl=prometheus:9090"],
        "operator.prometheusUrl: Does not match pattern",
    ),
    "alert duration in words": (
        ["--set", "prometheusRule.alerts.operatorDown.for=five minutes"],
        "prometheusRule.alerts.operatorDown.for: Does not match pattern",
    ),
    "digest that is not sha256": (["--set", "image.digest=latest"], "image.digest: Does not match pattern"),
    "port out of range": (
        ["--set", "operator.metricsPort=70000"],
        "operator.metricsPort: Must be less than or equal to 65535",
    ),
    "unknown pull policy": (["--set", "image.pullPolicy=Sometimes"], "image.pullPolicy must be one of the following"),
}


@pytest.mark.parametrize(("args", "message"), BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_helm_rejects_bad_values_with_a_clear_message(helm: list[str], args, message):
    proc = run_helm(helm, "template", "nf", str(CHART), "--kube-version", KUBE_VERSION, *args, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert message in proc.stderr, proc.stderr


def test_default_values_satisfy_the_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(values)]
    assert not errors


def test_every_default_value_is_described_by_the_schema():
    """additionalProperties: false everywhere means a key missing from the schema would be rejected;
    walk values.yaml so a new value without a schema entry fails here first, with its path."""

    def walk(values: dict, schema: dict, path: str) -> list[str]:
        missing = []
        props = schema.get("properties", {})
        for key, value in values.items():
            if key not in props:
                if schema.get("additionalProperties") is False:
                    missing.append(f"{path}{key}")
                continue
            if isinstance(value, dict) and props[key].get("type") == "object":
                missing += walk(value, props[key], f"{path}{key}.")
        return missing

    assert walk(yaml.safe_load((CHART / "values.yaml").read_text()), SCHEMA, "") == []
