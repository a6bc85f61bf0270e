"""What a pass applies: the rendered children, the compile Jobs and the deletions, as plain data.

Pure: the ModelDeployment, its plan, the artifact gate's decision, the autoscaler's last decision
and the live Deployment come in; the children to apply (in order) and the children to delete come
out. `controller/apply.py` does the writes, so the replica count, the Jobs and the deletions all
go through the one apply path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import ModelDeploymentSpec
from neuronfleet.controller import artifacts
from neuronfleet.controller.apply import Deletion
from neuronfleet.neuron.types import Plan
from neuronfleet.render import children
from neuronfleet.render.options import RenderOptions

__all__ = ["Desired", "desired", "replicas"]


@dataclasses.dataclass(frozen=True)
class Desired:
    children: tuple[dict[str, Any], ...]  # in apply order, without ownerReferences
    deletions: tuple[Deletion, ...] = ()
    replicas: int | None = None  # the Deployment's replica count, also while the gate holds it back


def replicas(spec: ModelDeploymentSpec, live_deployment: Mapping[str, Any] | None, decided: int | None) -> int:
    """Replicas to render: one writer per mode.

    Autoscaling off: spec.replicas (which `kubectl scale md` writes through the scale subresource).
    Autoscaling on: the autoscaler's last decision, clamped to the current bounds so a new min/max
    applies at once. Before this process has decided (a restart, a fleet just switched to
    autoscaling), the live count, clamped the same way (KServe's PreserveDeploymentReplicas): a
    restart never resizes a fleet. A fleet not created yet starts at spec.replicas, clamped.
    """
    if not spec.autoscaling.enabled:
        return spec.replicas
    low, high = spec.autoscaling.min_replicas, spec.autoscaling.max_replicas
    if decided is not None:
        return max(low, min(high, decided))
    live = None if live_deployment is None else (live_deployment.get("spec") or {}).get("replicas")
    current = spec.replicas if live is None else int(live)
    return max(low, min(high, current))


def desired(
    md: ModelDeployment,
    plan: Plan,
    gate: artifacts.Decision,
    *,
    replicas: int,
    options: RenderOptions,
) -> Desired:
    """The children for this spec and gate, and what to delete.

    While the gate is closed the Deployment is left out entirely, so the live one keeps its
    template (the old ReplicaSet serves the old artifact key) or, for a new fleet, waits; the
    Service, PDB and monitor still apply. The gate's compile or check Job comes last.
    """
    rendered = children.desired(md, plan, replicas=replicas, options=options)
    if not gate.may_roll_out:
        rendered = [c for c in rendered if c.get("kind") != "Deployment"]
    if gate.create is not None:
        rendered.append(dict(gate.create))
    deletions = [Deletion(ref.kind, ref.name, "turned off in the spec") for ref in children.undesired(md)]
    deletions += [Deletion("Job", name, f"artifact key {gate.key} superseded or rechecked") for name in gate.delete]
    return Desired(tuple(rendered), tuple(deletions), replicas)
