"""Generate the ModelDeployment CRD from the pydantic models: the models are the one source of truth.

pydantic emits JSON Schema (draft 2020-12 flavoured); a Kubernetes CRD needs a *structural*
OpenAPI v3.0 schema. This module converts: `$ref`s inlined, `anyOf [X, null]` folded into
`nullable: true`, exclusive bounds rewritten to the v3.0 boolean form, `const` to `enum`,
int-or-string marked with `x-kubernetes-int-or-string`, titles and null defaults dropped, and
`x-kubernetes-preserve-unknown-fields` kept only where a field asks for it.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from neuronfleet.api import constants
from neuronfleet.api.spec import ModelDeploymentSpec
from neuronfleet.api.status import ModelDeploymentStatus

__all__ = ["PRINTER_COLUMNS", "crd", "crd_yaml", "openapi_schema", "structural"]

PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.source"},
    {"name": "Instance", "type": "string", "jsonPath": ".status.plan.instanceType"},
    {"name": "TP", "type": "integer", "jsonPath": ".status.plan.tensorParallelSize"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Tokens/s", "type": "number", "jsonPath": ".status.metrics.tokensPerSecond"},
    {"name": "Variants", "type": "string", "jsonPath": ".status.capacity.inUse"},
    {
        "name": "Status",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s; the wrapper's own keys (description, default) win over the target's."""
    if isinstance(node, list):
        return [_resolve(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {k: _resolve(v, defs) for k, v in node.items()}


def structural(node: Any) -> Any:
    """Convert one resolved pydantic schema node into a structural OpenAPI v3.0 node."""
    if isinstance(node, list):
        return [structural(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    node.pop("title", None)
    if node.get("default", 0) is None:
        node.pop("default")

    if node.get("x-kubernetes-int-or-string"):
        node.pop("anyOf", None)
        node.pop("type", None)
    elif "anyOf" in node:
        any_of = node.pop("anyOf")
        options = [o for o in any_of if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express anyOf {options!r} in a structural schema")
        node = {**options[0], **node}
        node.pop("title", None)
        if len(options) < len(any_of):
            node["nullable"] = True

    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        values = node["enum"]
        node["type"] = "integer" if all(isinstance(v, int) for v in values) else "string"
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True

    if node.get("x-kubernetes-preserve-unknown-fields"):
        node["type"] = "object"
        node.pop("additionalProperties", None)
    elif node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    elif node.get("additionalProperties") is True:
        raise ValueError("free-form objects must opt in with x-kubernetes-preserve-unknown-fields")

    for key in ("properties",):
        if key in node:
            node[key] = {k: structural(v) for k, v in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = structural(node[key])
    return node


def openapi_schema(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return structural(_resolve(raw, defs))


def _schema() -> dict[str, Any]:
    spec = openapi_schema(ModelDeploymentSpec)
    status = openapi_schema(ModelDeploymentStatus)
    return {
        "type": "object",
        "description": "ModelDeployment runs a fleet of vLLM replicas of one model on AWS Trainium/Inferentia, "
        "sharded with tensor parallelism across NeuronCores and autoscaled on Prometheus signals.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": constants.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "neuronfleet", "app.kubernetes.io/part-of": "neuronfleet"},
        },
        "spec": {
            "group": constants.GROUP,
            "names": {
                "kind": constants.KIND,
                "listKind": constants.LIST_KIND,
                "plural": constants.PLURAL,
                "singular": constants.SINGULAR,
                "shortNames": list(constants.SHORT_NAMES),
                "categories": list(constants.CATEGORIES),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": constants.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [dict(c) for c in PRINTER_COLUMNS],
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def crd_yaml() -> str:
    """The CRD as the YAML file shipped in crds/ and the Helm chart."""
    header = "# Generated by `neuronfleet crd` from operator/neuronfleet/api. Do not edit.\n---\n"
    return header + yaml.dump(crd(), Dumper=_Dumper, sort_keys=False, width=120)
