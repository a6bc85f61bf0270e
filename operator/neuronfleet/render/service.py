"""The ClusterIP Service in front of a ModelDeployment's replicas: the OpenAI API at `<name>:8000`.

Only ready pods receive traffic (readiness = vLLM's /health), so a replica that is still
compiling is never routed to. A replica spanning nodes answers on its leader pod only, so for
such plans the Service selects leaders (`labels.leader_selector`): one endpoint per group.
"""

from __future__ import annotations

from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.types import Plan
from neuronfleet.render import labels, names
from neuronfleet.render.deployment import HTTP_PORT

__all__ = ["expected"]


def expected(md: ModelDeployment, plan: Plan | None = None) -> dict[str, Any]:
    """The Service; `plan` decides whether it selects every pod or only group leaders."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.object_meta(md, names.service_name(md)),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.leader_selector(md) if plan is not None and plan.multi_node else labels.selector(md),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
            ],
        },
    }
