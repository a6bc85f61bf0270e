"""The Prometheus Operator PodMonitor that scrapes vLLM's /metrics on each replica.

The autoscaler's PromQL selects a fleet's series by `namespace` and
`app_kubernetes_io_instance`; Prometheus Operator adds `namespace` and `pod` to targets but not
pod labels, so the relabelings copy the recommended labels onto every series explicitly. A
PodMonitor selects pods in its own namespace unless told otherwise, so there is no
namespaceSelector.
"""

from __future__ import annotations

from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.render import labels, names

__all__ = ["API_VERSION", "KIND", "PROMQL_LABELS", "expected"]

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"

# Pod label -> series label, as Prometheus sanitises label names (non [a-zA-Z0-9_] become "_").
PROMQL_LABELS: dict[str, str] = {
    labels.INSTANCE: "app_kubernetes_io_instance",
    labels.NAME: "app_kubernetes_io_name",
    labels.COMPONENT: "app_kubernetes_io_component",
}


def _meta_label(pod_label: str) -> str:
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


def expected(md: ModelDeployment) -> dict[str, Any]:
    relabelings: list[dict[str, Any]] = [
        {"action": "replace", "sourceLabels": ["__meta_kubernetes_namespace"], "targetLabel": "namespace"},
        {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_name"], "targetLabel": "pod"},
    ]
    relabelings += [
        {"action": "replace", "sourceLabels": [_meta_label(pod_label)], "targetLabel": series_label}
        for pod_label, series_label in PROMQL_LABELS.items()
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": labels.object_meta(md, names.pod_monitor_name(md)),
        "spec": {
            "selector": {"matchLabels": labels.selector(md)},
            "podMetricsEndpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": md.spec.monitoring.scrape_interval,
                    "relabelings": relabelings,
                }
            ],
        },
    }
