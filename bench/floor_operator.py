"""The floor for bench/reconcile.py: a bare kopf operator doing the least a ModelDeployment operator can.

Per ModelDeployment it creates one Deployment (the official client, like any kopf example) and
writes `status.observedGeneration` through kopf's own status patch. No planning, no rendering
beyond a fixed template, no events, no autoscaling: whatever neuronfleet spends beyond this is the
price of its features, and the benchmark prints the ratio.

Run by the benchmark as `python bench/floor_operator.py KUBECONFIG` on the same emulator.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import kopf
import kubernetes

GROUP, VERSION, PLURAL = "neuronfleet.io", "v1alpha1", "modeldeployments"


def deployment(name: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": name}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "vllm", "image": "public.ecr.aws/neuron/vllm:latest"}]},
            },
        },
    }
    kopf.append_owner_reference(body, owner=owner, controller=True)
    return body


def main() -> None:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=sys.argv[1], client_configuration=config)
    apps = kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(config))
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=config.host, insecure=True)

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    def create(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        name, namespace = body.metadata.name, body.metadata.namespace
        try:
            apps.create_namespaced_deployment(namespace, deployment(name, namespace, dict(body)))
        except kubernetes.client.ApiException as exc:
            if exc.status != 409:
                raise
        patch.status["observedGeneration"] = body.metadata.get("generation")

    settings = kopf.OperatorSettings()
    settings.posting.level = 100  # no events: the floor does nothing a user would read
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf.progress")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="neuronfleet.io")
    asyncio.run(kopf.operator(registry=registry, settings=settings, standalone=True, clusterwide=True))


if __name__ == "__main__":
    main()
