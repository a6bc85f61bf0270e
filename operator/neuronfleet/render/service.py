"""The ClusterIP Service in front of a ModelDeployment's replicas: the OpenAI API at `<name>:8000`.

Only ready pods receive traffic (readiness = vLLM's /health), so a replica that is still
compiling is never routed to.
"""

from __future__ import annotations

from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.render import labels, names
from neuronfleet.render.deployment import HTTP_PORT

__all__ = ["expected"]


def expected(md: ModelDeployment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": labels.object_meta(md, names.service_name(md)),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(md),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP", "appProtocol": "http"}
            ],
        },
    }
