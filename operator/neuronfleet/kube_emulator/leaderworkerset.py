"""The LeaderWorkerSet kind for the emulator: a CRD written from the LWS API facts.

LeaderWorkerSet is not built into Kubernetes: a cluster serves it once the LWS CRD is installed,
and a multi-node ModelDeployment must be Degraded when it is not. So the emulator does not serve
it by default either; a test installs it with `crd()` (POSTed like any CRD) or `install(store)`.

The upstream CRD cannot be copied in, so `crd()` is our own, written from the kubebuilder markers
of kubernetes-sigs/lws api/leaderworkerset/v1/leaderworkerset_types.go (024af08):
- group leaderworkerset.x-k8s.io, version v1, kind LeaderWorkerSet, plural leaderworkersets,
  short name lws, namespaced;
- subresources: status, and scale with specpath .spec.replicas, statuspath .status.replicas,
  selectorpath .status.hpaPodSelector;
- printer columns Ready (.status.readyReplicas), Desired (.spec.replicas), Up-to-date
  (.status.updatedReplicas), Age;
- defaults and enums: spec.replicas 1; spec.startupPolicy LeaderCreated {LeaderCreated,
  LeaderReady}; leaderWorkerTemplate.size 1 (minimum 1 is the webhook's rule, the schema here
  refuses 0 too), restartPolicy RecreateGroupOnPodRestart {Default, RecreateGroupOnPodRestart,
  RecreateGroupAfterStart, None}; rolloutStrategy.type RollingUpdate, rollingUpdateConfiguration
  partition 0, maxUnavailable 1, maxSurge 0 (int-or-string).
The pod templates and everything not listed are kept as given (x-kubernetes-preserve-unknown-
fields): the emulator checks the fields it acts on, tests/lws_facts.py checks what we render.
"""

from __future__ import annotations

from typing import Any

from neuronfleet.kube_emulator.resources import ResourceInfo, ScaleSpec, from_crd
from neuronfleet.kube_emulator.store import Store

__all__ = ["GROUP", "KIND", "PLURAL", "VERSION", "crd", "install", "resource"]

GROUP = "leaderworkerset.x-k8s.io"
VERSION = "v1"
KIND = "LeaderWorkerSet"
PLURAL = "leaderworkersets"

_INT_OR_STRING = {"x-kubernetes-int-or-string": True}
# metav1.Condition, as the conditions of LeaderWorkerSetStatus are (a list map keyed by type needs the
# key declared; a real API server refuses the CRD otherwise).
_CONDITION = {
    "type": "object",
    "required": ["type", "status", "lastTransitionTime", "reason", "message"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string"},
        "message": {"type": "string"},
    },
}


def _schema() -> dict[str, Any]:
    rolling = {
        "type": "object",
        "properties": {
            "partition": {"type": "integer", "format": "int32", "default": 0},
            "maxUnavailable": {**_INT_OR_STRING, "default": 1},
            "maxSurge": {**_INT_OR_STRING, "default": 0},
        },
    }
    template = {
        "type": "object",
        "required": ["workerTemplate"],
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "size": {"type": "integer", "format": "int32", "minimum": 1, "default": 1},
            "restartPolicy": {
                "type": "string",
                "enum": ["Default", "RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"],
                "default": "RecreateGroupOnPodRestart",
            },
            "leaderTemplate": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "workerTemplate": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    spec = {
        "type": "object",
        "required": ["leaderWorkerTemplate"],
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "replicas": {"type": "integer", "format": "int32", "default": 1},
            "startupPolicy": {"type": "string", "enum": ["LeaderCreated", "LeaderReady"], "default": "LeaderCreated"},
            "leaderWorkerTemplate": template,
            "rolloutStrategy": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["RollingUpdate"], "default": "RollingUpdate"},
                    "rollingUpdateConfiguration": rolling,
                },
            },
            "networkConfig": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    status = {
        "type": "object",
        "properties": {
            "conditions": {
                "type": "array",
                "items": _CONDITION,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "readyReplicas": {"type": "integer", "format": "int32"},
            "updatedReplicas": {"type": "integer", "format": "int32"},
            "replicas": {"type": "integer", "format": "int32"},
            "hpaPodSelector": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        },
    }
    return {"type": "object", "properties": {"spec": spec, "status": status}}


def crd() -> dict[str, Any]:
    """A CustomResourceDefinition that makes the emulator serve LeaderWorkerSets (see the module docstring)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "leaderworkerset",
                "shortNames": ["lws"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.hpaPodSelector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "integer",
                            "jsonPath": ".status.readyReplicas",
                            "description": "Number of ready replicas",
                        },
                        {
                            "name": "Desired",
                            "type": "integer",
                            "jsonPath": ".spec.replicas",
                            "description": "Number of desired replicas",
                        },
                        {
                            "name": "Up-to-date",
                            "type": "integer",
                            "jsonPath": ".status.updatedReplicas",
                            "description": "Number of up-to-date replicas",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def resource() -> ResourceInfo:
    """The served resource the CRD yields (what `Store.resource(GROUP, VERSION, PLURAL)` returns once installed)."""
    (info,) = from_crd(crd())
    assert info.scale == ScaleSpec(".spec.replicas", ".status.replicas", ".status.hpaPodSelector")
    return info


def install(store: Store) -> dict[str, Any]:
    """Post the CRD to `store`, as `kubectl apply` of the LWS manifests would; returns the stored CRD."""
    crds = store.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    return store.create(crds, None, crd())
