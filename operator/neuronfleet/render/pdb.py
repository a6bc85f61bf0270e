"""The policy/v1 PodDisruptionBudget of a ModelDeployment: at most one replica down for node drains.

maxUnavailable 1 (not minAvailable) for every replica count, including 1: a one-replica fleet
accepts the downtime of a drain rather than blocking node upgrades forever; a fleet that must
stay up runs two or more replicas. `unhealthyPodEvictionPolicy: AlwaysAllow` lets a drain evict a
replica that is not ready (still compiling, crash-looping) without spending the budget, so a
stuck replica never blocks cluster maintenance.

Replicas spanning nodes: the budget still selects every pod of the fleet, one pod at a time. With
LeaderWorkerSet's RecreateGroupOnPodRestart one evicted pod takes its whole group down, so at most
one group is down for a drain: the same "one replica" rule, counted in groups.
"""

from __future__ import annotations

from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.render import labels, names

__all__ = ["expected"]


def expected(md: ModelDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": labels.object_meta(md, names.pdb_name(md)),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels.selector(md)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
