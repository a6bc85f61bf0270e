"""The LeaderWorkerSet API facts neuronfleet relies on, written down once for the tests.

The upstream CRD cannot be copied in, so this is what we read in kubernetes-sigs/lws and depend on,
each with its place (api/leaderworkerset/v1/leaderworkerset_types.go at 024af08 unless noted):

- `SPEC_SCHEMA`: the fields of LeaderWorkerSetSpec we write and their rules, as a JSON schema with
  `additionalProperties: false`, so a misspelt or invented field fails. Enums and defaults are the
  kubebuilder markers: startupPolicy {LeaderCreated, LeaderReady} default LeaderCreated;
  restartPolicy {Default, RecreateGroupOnPodRestart, RecreateGroupAfterStart, None} default
  RecreateGroupOnPodRestart; rolloutStrategy.type {RollingUpdate}; replicas and size default 1,
  size minimum 1 (the leader); maxUnavailable/maxSurge int-or-string. The pod templates are core/v1
  PodTemplateSpecs, checked by kubernetes-validate instead.
- `SCALE`: `+kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,
  selectorpath=.status.hpaPodSelector`; `STATUS_FIELDS`: LeaderWorkerSetStatus (conditions,
  readyReplicas, updatedReplicas, replicas, hpaPodSelector, observedGeneration); short name `lws`.
- `CONDITIONS`: type -> (reason, message) that the controller writes
  (pkg/controllers/leaderworkerset_controller.go at 9f47d6c, makeCondition): Available
  AllGroupsReady "All replicas are ready"; Progressing GroupsProgressing "Replicas are progressing";
  UpdateInProgress GroupsUpdating "Rolling Upgrade is in progress". Available excludes Progressing
  and UpdateInProgress (exclusiveConditionTypes). Status.replicas is the leader StatefulSet's
  status.replicas; readyReplicas counts groups whose leader pod is running and ready and whose
  worker StatefulSet is ready; hpaPodSelector selects leaders
  (`leaderworkerset.sigs.k8s.io/name=<lws>,leaderworkerset.sigs.k8s.io/worker-index=0`). That
  revision of updateStatus never writes status.observedGeneration.
- Pod identity (pkg/webhooks/pod_webhook.go, pkg/utils/pod): leader `<lws>-<group>`, worker
  `<lws>-<group>-<index>`, labels name / group-index / worker-index (leader 0) / group-key, annotation
  size (and leader-name on workers), env LWS_LEADER_ADDRESS=`<lws>-<group>.<lws>.<namespace>`,
  LWS_GROUP_SIZE, LWS_WORKER_INDEX prepended to every container's env.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "API_VERSION",
    "CONDITIONS",
    "EXCLUSIVE",
    "KIND",
    "LABELS",
    "PLURAL",
    "SCALE",
    "SHORT_NAMES",
    "SPEC_SCHEMA",
    "STATUS_FIELDS",
]

API_VERSION = "leaderworkerset.x-k8s.io/v1"
KIND = "LeaderWorkerSet"
PLURAL = "leaderworkersets"
SHORT_NAMES = ("lws",)
SCALE = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".status.hpaPodSelector",
}
STATUS_FIELDS = frozenset(
    {"conditions", "readyReplicas", "updatedReplicas", "replicas", "hpaPodSelector", "observedGeneration"}
)
CONDITIONS = {
    "Available": ("AllGroupsReady", "All replicas are ready"),
    "Progressing": ("GroupsProgressing", "Replicas are progressing"),
    "UpdateInProgress": ("GroupsUpdating", "Rolling Upgrade is in progress"),
}
LABELS = {
    "name": "leaderworkerset.sigs.k8s.io/name",
    "group_index": "leaderworkerset.sigs.k8s.io/group-index",
    "worker_index": "leaderworkerset.sigs.k8s.io/worker-index",
    "group_key": "leaderworkerset.sigs.k8s.io/group-key",
}
EXCLUSIVE = "leaderworkerset.sigs.k8s.io/exclusive-topology"

_INT_OR_STRING = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^[0-9]+%?$"}]}
_POD_TEMPLATE = {"type": "object"}  # core/v1 PodTemplateSpec: validated by kubernetes-validate

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["leaderWorkerTemplate"],
    "additionalProperties": False,
    "properties": {
        "replicas": {"type": "integer", "minimum": 0, "default": 1},
        "startupPolicy": {"enum": ["LeaderCreated", "LeaderReady"], "default": "LeaderCreated"},
        "networkConfig": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"subdomainPolicy": {"enum": ["Shared", "UniquePerReplica"]}},
        },
        "rolloutStrategy": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["RollingUpdate"], "default": "RollingUpdate"},
                "rollingUpdateConfiguration": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "partition": {"type": "integer", "minimum": 0, "default": 0},
                        "maxUnavailable": {**_INT_OR_STRING, "default": 1},
                        "maxSurge": {**_INT_OR_STRING, "default": 0},
                    },
                },
            },
        },
        "leaderWorkerTemplate": {
            "type": "object",
            "required": ["workerTemplate"],
            "additionalProperties": False,
            "properties": {
                "leaderTemplate": _POD_TEMPLATE,
                "workerTemplate": _POD_TEMPLATE,
                "size": {"type": "integer", "minimum": 1, "default": 1},
                "restartPolicy": {
                    "enum": ["Default", "RecreateGroupOnPodRestart", "RecreateGroupAfterStart", "None"],
                    "default": "RecreateGroupOnPodRestart",
                },
                "subGroupPolicy": {"type": "object"},
                "volumeClaimTemplates": {"type": "array"},
                "persistentVolumeClaimRetentionPolicy": {"type": "object"},
            },
        },
    },
}
