"""The resource.k8s.io/v1 ResourceClaimTemplate that gives each pod its Neuron devices under DRA.

With `plan.allocation == "dra"` pods carry no `aws.amazon.com/neuron*` resources and no scheduler
name: each pod references this template, and Kubernetes creates one ResourceClaim per pod from it
(so one template serves every replica, and every pod of a group). Facts (aws-neuron-sdk
deploy/eks/dra.rst; vllm-project/aibrix samples/disaggregation/neuron/*-trn2-efa-rct.yaml):

- devices come from DeviceClass `neuron.aws.com`, `allocationMode: ExactCount`, narrowed by CEL on
  `device.attributes['neuron.aws.com'].instanceType`;
- a connected set of N devices (N in 1, 4, 8, 16) is a constraint `matchAttribute:
  resource.aws.com/devicegroup<N>_id` over the request;
- the logical NeuronCore size is per claim: `config[].opaque` with driver `neuron.aws.com` and
  parameters `{apiVersion: neuron.aws.com/v1, kind: NeuronConfig, logicalNeuronCore: <LNC>}`
  (trn2/trn3 only; trn1/inf2 cores are always LNC 1);
- EFA devices can join the same claim from DeviceClass `efa.networking.k8s.aws`; AIBrix's trn2
  samples put them under the same devicegroup constraint (one EFA device per Neuron device). Where
  the counts differ (trn1.32xlarge: 8 EFA for 16 devices) the EFA request stays outside the
  constraint [INFERRED: the pairing is only documented one-to-one];
- an UltraServer node is claimed whole: one device with `resourceType == 'neuron_node'` and config
  `{kind: UltraServerConfig, ultraserverMode: <nodes>}`, which the driver passes to the runtime and
  collectives (dra.rst example 3, 4 nodes; 2 is the other node config [INFERRED]).

A ResourceClaimTemplate's spec is immutable ("This field is immutable", resource.k8s.io API
reference), so the name carries a hash of the spec: a changed claim is a new template, the pods'
template changes with the reference and rolls, and the old template goes once no pod needs it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron import groups
from neuronfleet.neuron.types import Plan
from neuronfleet.render import labels, names

__all__ = [
    "API_VERSION",
    "CLAIM_NAME",
    "EFA_DEVICE_CLASS",
    "KIND",
    "NEURON_DEVICE_CLASS",
    "NEURON_DRIVER",
    "claim_spec",
    "expected",
    "pod_claims",
    "template_name",
]

API_VERSION = "resource.k8s.io/v1"
KIND = "ResourceClaimTemplate"
NEURON_DEVICE_CLASS = "neuron.aws.com"
NEURON_DRIVER = "neuron.aws.com"
EFA_DEVICE_CLASS = "efa.networking.k8s.aws"
CLAIM_NAME = "neuron"  # the entry in the pod's resourceClaims and the container's resources.claims
_NEURONS, _EFAS = "neurons", "efas"
_LNC_FAMILIES = ("trn2", "trn3")


def _cel(expression: str) -> list[dict[str, Any]]:
    return [{"cel": {"expression": expression}}]


def _opaque(requests: list[str], parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "requests": requests,
        "opaque": {"driver": NEURON_DRIVER, "parameters": {"apiVersion": "neuron.aws.com/v1", **parameters}},
    }


def _exactly(device_class: str, count: int, selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    exactly: dict[str, Any] = {"deviceClassName": device_class, "allocationMode": "ExactCount", "count": count}
    if selectors:
        exactly["selectors"] = selectors
    return exactly


def claim_spec(plan: Plan) -> dict[str, Any]:
    """The ResourceClaim spec one pod of `plan` needs (`spec.spec` of the template)."""
    if plan.ultraserver_nodes:
        whole_node = _cel("device.attributes['neuron.aws.com'].resourceType == 'neuron_node'")
        node = _exactly(NEURON_DEVICE_CLASS, 1, whole_node)
        config = _opaque([_NEURONS], {"kind": "UltraServerConfig", "ultraserverMode": plan.ultraserver_nodes})
        return {"devices": {"requests": [{"name": _NEURONS, "exactly": node}], "config": [config]}}
    count = plan.resource_count
    selector = _cel(f"device.attributes['neuron.aws.com'].instanceType == '{plan.instance_type}'")
    requests: list[dict[str, Any]] = [{"name": _NEURONS, "exactly": _exactly(NEURON_DEVICE_CLASS, count, selector)}]
    grouped = [_NEURONS]
    if plan.efa_devices_per_pod:
        requests.append({"name": _EFAS, "exactly": _exactly(EFA_DEVICE_CLASS, plan.efa_devices_per_pod)})
        if plan.efa_devices_per_pod == count:
            grouped.append(_EFAS)
    devices: dict[str, Any] = {"requests": requests}
    if count > 1:
        devices["constraints"] = [{"requests": grouped, "matchAttribute": f"resource.aws.com/devicegroup{count}_id"}]
    if plan.instance_family in _LNC_FAMILIES:
        devices["config"] = [_opaque([_NEURONS], {"kind": "NeuronConfig", "logicalNeuronCore": plan.logical_core_size})]
    return {"devices": devices}


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:8]


def template_name(md: ModelDeployment, plan: Plan) -> str:
    """The template's name: the fleet's name plus a hash of the claim it describes."""
    return names.claim_template_name(md, _digest(claim_spec(plan)))


def expected(md: ModelDeployment, plan: Plan) -> dict[str, Any] | None:
    """The ResourceClaimTemplate of a dra plan; None with the device plugin."""
    if plan.allocation != groups.DRA:
        return None
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": labels.object_meta(md, template_name(md, plan)),
        "spec": {"spec": claim_spec(plan)},
    }


def pod_claims(md: ModelDeployment, plan: Plan) -> list[dict[str, str]]:
    """The pod's `resourceClaims`: one claim per pod, generated from the template."""
    return [{"name": CLAIM_NAME, "resourceClaimTemplateName": template_name(md, plan)}]
