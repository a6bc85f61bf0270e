"""The generated CRD: fresh on disk, structural, documented, and in agreement with the pydantic models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import pytest
import yaml

from neuronfleet.api import crd, resource
from neuronfleet.api.spec import ModelDeploymentSpec

ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = ROOT / "crds" / "neuronfleet.io_modeldeployments.yaml"
PRESERVE_UNKNOWN_ALLOWED = {"spec.scheduling.affinity", "status.kopf"}


def schema() -> dict[str, Any]:
    return crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = ""):
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}" if path else name)
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def apply_schema_defaults(node: dict[str, Any], value: Any) -> Any:
    """Default like the API server does: missing properties with a default get it, recursively."""
    if not isinstance(value, dict) or node.get("type") != "object":
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            return [apply_schema_defaults(node["items"], v) for v in value]
        return value
    out = dict(value)
    for name, child in node.get("properties", {}).items():
        if name not in out and "default" in child:
            out[name] = copy.deepcopy(child["default"])
        if name in out:
            out[name] = apply_schema_defaults(child, out[name])
    return out


def test_crd_file_is_the_generated_output():
    assert CRD_FILE.read_text() == crd.crd_yaml(), "crds/ is stale: run `make crd` (neuronfleet crd > crds/...)"


def test_the_crd_declares_names_scope_and_categories():
    spec = crd.crd()["spec"]
    assert spec["group"] == "neuronfleet.io"
    assert spec["names"]["shortNames"] == ["md"]
    assert set(spec["names"]["categories"]) == {"all", "neuronfleet"}
    assert spec["scope"] == "Namespaced"


def test_the_scale_subresource_points_at_replicas_and_selector():
    version = crd.crd()["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    props = schema()["properties"]
    assert props["spec"]["properties"]["replicas"]["type"] == "integer"
    assert props["status"]["properties"]["selector"]["type"] == "string"


@pytest.mark.parametrize("column", ["Model", "Instance", "TP", "Desired", "Ready", "Tokens/s", "Variants", "Age"])
def test_printer_columns_point_at_declared_fields(column: str):
    columns = {c["name"]: c for c in crd.crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert column in columns
    json_path = columns[column]["jsonPath"]
    if json_path.startswith(".metadata") or "[?" in json_path:
        return
    node = schema()
    for part in json_path.strip(".").split("."):
        node = node["properties"][part]
    assert node["type"] in {"string", "integer", "number"}


def test_the_schema_is_structural():
    for path, node in walk(schema()):
        for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "not", "$defs", "title", "const"):
            assert forbidden not in node, f"{path} has {forbidden}"
        if node.get("x-kubernetes-int-or-string"):
            assert "type" not in node, path
            continue
        assert "type" in node, f"{path} has no type"
        if "properties" in node:
            assert node["type"] == "object", path
            assert "additionalProperties" not in node, path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in PRESERVE_UNKNOWN_ALLOWED, f"{path} preserves unknown fields unintentionally"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node:
                assert isinstance(node[bound], bool), f"{path}.{bound} must be the OpenAPI v3.0 boolean form"


def test_every_spec_and_status_field_has_a_description():
    undocumented = [
        path
        for path, node in walk(schema())
        if path.startswith(("spec.", "status.")) and not path.endswith(("[]", "{}")) and not node.get("description")
    ]
    assert undocumented == []


def test_conditions_are_a_map_keyed_by_type():
    conditions = schema()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type", "status", "reason", "lastTransitionTime"}


MINIMAL = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}


@pytest.mark.parametrize(
    "spec",
    [
        MINIMAL,
        {**MINIMAL, "autoscaling": {"enabled": True, "metrics": {"concurrencyPerReplica": 16}}},
        {**MINIMAL, "serving": {"maxNumSeqs": 8}, "neuron": {"instanceType": "inf2.48xlarge"}},
    ],
    ids=["minimal spec", "autoscaling on", "serving and neuron set"],
)
def test_schema_defaults_agree_with_the_model_defaults(spec: dict[str, Any]):
    spec_schema = schema()["properties"]["spec"]
    defaulted_by_server = apply_schema_defaults(spec_schema, spec)
    defaulted_by_model = resource.dump_spec(ModelDeploymentSpec.model_validate(spec))
    assert defaulted_by_server == defaulted_by_model


INVALID = [
    ({"model": {"source": "hf://x/y"}, "neuron": {"instanceType": "p5.48xlarge"}}, "instanceType"),
    ({"model": {"source": "hf://x/y"}, "neuron": {"tensorParallelSize": 3}}, "tensorParallelSize"),
    ({"model": {"source": "hf://x/y"}, "replicas": -1}, "replicas"),
    ({"replicas": 1}, "model"),
    ({"model": {"source": "ftp://x/y"}}, "source"),
]


@pytest.mark.parametrize(
    "spec,field", INVALID, ids=["unknown instance", "TP 3", "negative replicas", "no model", "bad source"]
)
def test_the_schema_rejects_invalid_specs(spec: dict[str, Any], field: str):
    validator = jsonschema.Draft4Validator(schema()["properties"]["spec"])
    errors = [e for e in validator.iter_errors(spec)]
    assert errors, "the schema accepted an invalid spec"
    assert any(field in (".".join(map(str, e.absolute_path)) + e.message) for e in errors)
    with pytest.raises(ValueError):
        resource.load({"metadata": {"name": "x"}, "spec": spec})


def cel_rules() -> list[tuple[str, dict[str, Any]]]:
    return [(rule["rule"], node) for path, node in walk(schema()) for rule in node.get("x-kubernetes-validations", ())]


def evaluate(rule: str, value: dict[str, Any]) -> bool:
    env = celpy.Environment()
    return bool(env.program(env.compile(rule)).evaluate({"self": celpy.json_to_cel(value)}))


def test_every_cel_rule_compiles():
    rules = cel_rules()
    assert len(rules) >= 4
    env = celpy.Environment()
    for rule, _ in rules:
        env.compile(rule)


@pytest.mark.parametrize(
    "autoscaling,ok",
    [
        ({"minReplicas": 2, "maxReplicas": 8, "enabled": True, "metrics": {"concurrencyPerReplica": 8}}, True),
        ({"minReplicas": 9, "maxReplicas": 8, "enabled": False, "metrics": {}}, False),
        ({"minReplicas": 1, "maxReplicas": 8, "enabled": True, "metrics": {}}, False),
        (
            {
                "enabled": True,
                "slo": {"perUserTokensPerSecond": 10, "timeToFirstTokenSeconds": 1},
            },
            True,
        ),
        ({"enabled": True, "metrics": {"promptTokensPerSecondPerReplica": 4000}}, True),
    ],
    ids=[
        "bounds in order",
        "min above max",
        "enabled without a target",
        "an slo stands in for the targets",
        "prompt tokens/s alone is a target",
    ],
)
def test_cel_rules_and_the_model_validator_agree(autoscaling: dict[str, Any], ok: bool):
    node = schema()["properties"]["spec"]["properties"]["autoscaling"]
    defaulted = apply_schema_defaults(node, autoscaling)
    cel_ok = all(evaluate(r["rule"], defaulted) for r in node["x-kubernetes-validations"])
    assert cel_ok is ok
    spec = {"model": {"source": "hf://x/y"}, "autoscaling": autoscaling}
    if ok:
        ModelDeploymentSpec.model_validate(spec)
    else:
        with pytest.raises(ValueError, match="autoscaling"):
            ModelDeploymentSpec.model_validate(spec)


def test_a_non_hf_source_needs_an_id_or_an_arch():
    node = schema()["properties"]["spec"]["properties"]["model"]
    (rule,) = node["x-kubernetes-validations"]
    assert evaluate(rule["rule"], {"source": "hf://org/m"})
    assert not evaluate(rule["rule"], {"source": "s3://bucket/m"})
    assert evaluate(rule["rule"], {"source": "s3://bucket/m", "id": "meta-llama/Llama-3.1-8B"})


def test_the_crd_yaml_round_trips():
    docs = [d for d in yaml.safe_load_all(crd.crd_yaml()) if d]
    assert docs == [crd.crd()]


def test_every_cel_rule_accepts_its_nodes_default():
    # A real API server validates each `default:` against the rules of its node when the CRD is
    # created, and refuses the CRD when a rule reads a key the empty default lacks.
    checked = 0
    for path, node in walk(schema()):
        if "default" not in node:
            continue
        for rule in node.get("x-kubernetes-validations", ()):
            assert evaluate(rule["rule"], node["default"]), f"{path}: {rule['rule']} refuses its default"
            checked += 1
    assert checked >= 3


def test_the_instance_type_enum_is_the_catalog_less_its_inferred_entries():
    from neuronfleet.api.spec import INSTANCE_TYPES
    from neuronfleet.neuron.catalog import CATALOG

    assert set(INSTANCE_TYPES) == {i.name for i in CATALOG if not i.inferred}
    enum = schema()["properties"]["spec"]["properties"]["neuron"]["properties"]["instanceType"]["enum"]
    assert enum == list(INSTANCE_TYPES)


@pytest.mark.parametrize(
    "neuron,ok",
    [
        ({"instanceType": "trn2.48xlarge", "fallback": [{"instanceType": "trn1.32xlarge"}]}, True),
        ({"fallback": [{"instanceType": "trn1.32xlarge"}, {"instanceType": "inf2.48xlarge"}]}, True),
        ({"fallback": [{"instanceType": "trn1.32xlarge"}, {"instanceType": "trn1.32xlarge"}]}, False),
        ({"instanceType": "trn1.32xlarge", "fallback": [{"instanceType": "trn1.32xlarge"}]}, False),
        ({"instanceType": "trn2.48xlarge"}, True),
    ],
    ids=[
        "a fallback of another type",
        "two fallbacks without a primary type",
        "the same fallback type twice",
        "a fallback repeating the primary",
        "no fallback",
    ],
)
def test_fallback_cel_rules_and_the_model_validator_agree(neuron: dict[str, Any], ok: bool):
    node = schema()["properties"]["spec"]["properties"]["neuron"]
    defaulted = apply_schema_defaults(node, neuron)
    cel_ok = all(evaluate(r["rule"], defaulted) for r in node["x-kubernetes-validations"])
    assert cel_ok is ok
    spec = {"model": {"source": "hf://x/y"}, "neuron": neuron}
    if ok:
        ModelDeploymentSpec.model_validate(spec)
    else:
        with pytest.raises(ValueError, match="fallback"):
            ModelDeploymentSpec.model_validate(spec)


def test_fallback_after_seconds_has_a_documented_default():
    spec = ModelDeploymentSpec.model_validate({"model": {"source": "hf://x/y"}})
    assert spec.neuron.fallback_after_seconds == 300
    described = schema()["properties"]["spec"]["properties"]["neuron"]["properties"]["fallbackAfterSeconds"]
    assert described["default"] == 300
    assert "300" in described["description"]
