"""What a real Kubernetes 1.36 API server admits, defaults and rejects for our CRD.

The server is the stock apiextensions-apiserver (see scripts/real-apiserver.sh): the same
structural-schema validation, defaulting, pruning and CEL code a cluster runs. Nothing here is
mocked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from contract import md
from contract.realapi import REPO
from neuronfleet.api import constants
from neuronfleet.api.resource import dump_spec
from neuronfleet.api.spec import ModelDeploymentSpec

pytestmark = pytest.mark.realapi

EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
# Invalid examples say in their header comment who rejects them (`# rejected-by: schema|cel|planner`),
# on which field and with what message.
INVALID_EXAMPLES = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def _example_mds(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == constants.KIND]


def test_the_crd_is_established_with_the_names_users_type(api: client.ApiClient) -> None:
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(constants.CRD_NAME)
    conditions = {c.type: c.status for c in crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert crd.status.accepted_names.short_names == list(constants.SHORT_NAMES)
    assert set(crd.status.accepted_names.categories) == set(constants.CATEGORIES)


def test_a_minimal_model_deployment_is_stored_with_the_defaults_our_models_produce(
    api: client.ApiClient, namespace: str
) -> None:
    stored = md.create(api, namespace, md.make_md("minimal"))
    expected = dump_spec(ModelDeploymentSpec.model_validate(md.MINIMAL_SPEC, by_alias=True))
    assert stored["spec"] == expected
    # The defaults really came from the server: the request carried only model.source.
    assert stored["spec"]["serving"]["maxModelLen"] == 8192
    assert stored["metadata"]["generation"] == 1


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO)) for p in EXAMPLES] or None)
def test_every_example_is_accepted_and_stored_as_our_models_default_it(
    api: client.ApiClient, namespace: str, path: Path
) -> None:
    docs = _example_mds(path)
    assert docs, f"{path} holds no {constants.KIND}"
    for doc in docs:
        doc = dict(doc)
        doc["metadata"] = {k: v for k, v in doc["metadata"].items() if k != "namespace"}
        stored = md.create(api, namespace, doc)
        expected = dump_spec(ModelDeploymentSpec.model_validate(doc["spec"], by_alias=True))
        assert stored["spec"] == expected, f"{path}: server and pydantic defaults disagree"


def _header(path: Path) -> dict[str, str]:
    """The `# key: value` lines of an example's leading comment."""
    header = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        key, sep, value = line.lstrip("# ").partition(": ")
        if sep and key in ("rejected-by", "field", "message"):
            header[key] = value.strip().strip("'\"")
    return header


@pytest.mark.parametrize("path", INVALID_EXAMPLES, ids=[p.name for p in INVALID_EXAMPLES] or None)
def test_every_invalid_example_is_rejected_where_its_header_says(
    api: client.ApiClient, namespace: str, path: Path
) -> None:
    """schema/cel cases get a 422 on the named field; planner cases pass admission (they become Degraded)."""
    header = _header(path)
    (doc,) = _example_mds(path)
    if header["rejected-by"] == "planner":
        stored = md.create(api, namespace, doc)
        assert stored["metadata"]["generation"] == 1
        return
    with pytest.raises(client.ApiException) as info:
        md.create(api, namespace, doc)
    rejection = md.rejection_of(info.value)
    assert rejection.status == 422
    fields = [c.split(": ", 1)[0] for c in rejection.causes]
    assert any(f.startswith(header["field"]) for f in fields), (fields, header)
    if header["rejected-by"] == "cel":
        assert f"{header['field']}: Invalid value: {header['message']}" in rejection.message


def _with(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `spec` with the dotted `path` set to `value` (or removed when value is ...)."""
    out = yaml.safe_load(yaml.safe_dump(spec))
    node = out
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is ...:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return out


_AUTOSCALING_ON = {
    **md.MINIMAL_SPEC,
    "autoscaling": {"enabled": True, "metrics": {"tokensPerSecondPerReplica": 1500}},
}

# (id, spec, the field path and the text a user sees in `kubectl apply`'s error)
INVALID = [
    (
        "an unknown instance type",
        _with(md.MINIMAL_SPEC, "neuron.instanceType", "p5.48xlarge"),
        'spec.neuron.instanceType: Unsupported value: "p5.48xlarge": supported values: "inf2.xlarge"',
    ),
    (
        "tensor parallelism 3",
        _with(md.MINIMAL_SPEC, "neuron.tensorParallelSize", 3),
        "spec.neuron.tensorParallelSize: Unsupported value: 3: supported values: ",
    ),
    (
        "minReplicas above maxReplicas",
        _with(_with(_AUTOSCALING_ON, "autoscaling.minReplicas", 5), "autoscaling.maxReplicas", 2),
        "spec.autoscaling: Invalid value: autoscaling.minReplicas must be <= autoscaling.maxReplicas",
    ),
    (
        "negative replicas",
        _with(md.MINIMAL_SPEC, "replicas", -1),
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
    ),
    (
        "a missing model",
        {"replicas": 1},
        "spec.model: Required value",
    ),
    (
        "a missing model source",
        {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}},
        "spec.model.source: Required value",
    ),
    (
        "a model source with an unknown scheme",
        _with(md.MINIMAL_SPEC, "model.source", "ftp://example.com/model"),
        'spec.model.source: Invalid value: "ftp://example.com/model": spec.model.source in body should match',
    ),
    (
        "an s3 model without id or arch",
        {"model": {"source": "s3://bucket/llama"}},
        "spec.model: Invalid value: model.id or model.arch is required when model.source is not an hf:// reference",
    ),
    (
        "autoscaling enabled without any metric target",
        _with(md.MINIMAL_SPEC, "autoscaling.enabled", True),
        "spec.autoscaling: Invalid value: autoscaling.metrics needs at least one target when autoscaling is enabled, "
        "unless autoscaling.slo is set",
    ),
    (
        "a prefill chunk smaller than the decode batch",
        _with(_with(md.MINIMAL_SPEC, "serving.maxNumSeqs", 64), "serving.maxNumBatchedTokens", 32),
        "spec.serving: Invalid value: serving.maxNumBatchedTokens must be >= serving.maxNumSeqs",
    ),
    (
        "a required artifact policy without a place for artifacts",
        _with(md.MINIMAL_SPEC, "neuron.compiledArtifacts", {"policy": "require"}),
        "spec.neuron.compiledArtifacts: Invalid value: compiledArtifacts.pvc or "
        "compiledArtifacts.path is required unless policy is compileOnStart",
    ),
    (
        "replicas given as a string",
        _with(md.MINIMAL_SPEC, "replicas", "two"),
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
    ),
]


@pytest.mark.parametrize(("spec", "message"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_an_invalid_model_deployment_is_rejected_with_a_precise_message(
    api: client.ApiClient, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as info:
        md.create(api, namespace, md.make_md("bad", spec))
    rejection = md.rejection_of(info.value)
    assert rejection.status == 422
    assert rejection.message.startswith(f'{constants.KIND}.{constants.GROUP} "bad" is invalid: ')
    assert message in rejection.message


@pytest.mark.parametrize(
    "spec",
    [pytest.param(c[1], id=c[0]) for c in INVALID],
)
def test_our_models_reject_what_the_server_rejects(spec: dict[str, Any]) -> None:
    """Offline tools (`neuronfleet render`) must refuse what the server refuses, or users find out late."""
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        ModelDeploymentSpec.model_validate(spec, by_alias=True)


def test_unknown_fields_in_spec_are_pruned_not_stored(api: client.ApiClient, namespace: str) -> None:
    body = md.make_md("pruned", _with(md.MINIMAL_SPEC, "serving.notAField", True))
    stored = md.create(api, namespace, body)
    assert "notAField" not in stored["spec"]["serving"]


TYPOS = [
    ("replica", "spec.replica"),
    ("serving.maxModelLength", "spec.serving.maxModelLength"),
    ("neuron.instancetype", "spec.neuron.instancetype"),
    ("autoscaling.metrics.tokensPerSecond", "spec.autoscaling.metrics.tokensPerSecond"),
    ("scheduling.nodeSelectors", "spec.scheduling.nodeSelectors"),
]


@pytest.mark.parametrize(("path", "field"), TYPOS, ids=[f"a typo at {f}" for _, f in TYPOS])
def test_a_typo_is_an_error_with_strict_field_validation(
    api: client.ApiClient, namespace: str, path: str, field: str
) -> None:
    """What `kubectl apply` (fieldValidation=Strict by default) shows; a subtree that preserved
    unknown fields by mistake would store the typo silently instead."""
    body = md.make_md("typo", _with(md.MINIMAL_SPEC, path, 2))
    with pytest.raises(client.ApiException) as info:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            constants.GROUP, constants.VERSION, namespace, constants.PLURAL, body, field_validation="Strict"
        )
    rejection = md.rejection_of(info.value)
    assert rejection.status == 400
    assert f'unknown field "{field}"' in rejection.message
