"""Status, scale, Table output and server-side apply of ModelDeployments on a real API server.

These are the contracts other programs rely on: the operator's status survives pruning, HPA/KEDA
and `kubectl scale` find replicas and the selector through /scale, `kubectl get md` prints the
promised columns, and Argo CD (owning spec) and the operator (owning status) never conflict.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from contract import md
from neuronfleet.api import constants
from neuronfleet.api.conditions import ConditionType, Reason
from neuronfleet.api.status import (
    CapacityCurveStatus,
    CapacityStatus,
    Condition,
    MetricsStatus,
    ModelDeploymentStatus,
    PlanStatus,
    ServiceLevelStatus,
    VariantStatus,
)

pytestmark = pytest.mark.realapi

NOW = "2026-01-02T03:04:05Z"
SELECTOR = "app.kubernetes.io/name=vllm,app.kubernetes.io/instance=llama"

# kopf's StatusProgressStorage layout (status.kopf.progress.<handler>, status.kopf.dummy), which the
# operator gets if it stores handler progress in status rather than annotations.
KOPF_STATE: dict[str, Any] = {
    "progress": {
        "reconcile_model_deployment": {
            "started": "2026-01-02T03:04:05.123456",
            "delayed": "2026-01-02T03:05:05.123456",
            "purpose": "create",
            "retries": 2,
            "success": False,
            "failure": False,
            "message": "Deployment not ready yet.",
            "subrefs": ["reconcile_model_deployment/children"],
        },
    },
    "dummy": "2026-01-02T03:04:05.123456",
}


def complete_status(generation: int) -> dict[str, Any]:
    """A status with every declared field set, every condition type, the plan, metrics and kopf state."""
    plan = PlanStatus(
        model="meta-llama/Llama-3.1-8B-Instruct",
        instance_type="inf2.48xlarge",
        runtime="nxdi",
        tensor_parallel_size=8,
        nodes_per_replica=1,
        parallelism="tensor",
        allocation="devicePlugin",
        logical_core_size=1,
        cores_per_replica=8,
        devices_per_replica=4,
        resource_name="aws.amazon.com/neuron",
        resource_count=4,
        replicas_per_node=3,
        memory_needed_gi_b=21.5,
        memory_available_gi_b=128.0,
        expected_startup_seconds=420,
        artifact_key="sha256-3f2a9c",
        max_num_batched_tokens=608,
        summary="inf2.48xlarge TP=8: 4 devices per replica, 3 replicas per node",
    )
    metrics = MetricsStatus(
        tokens_per_second=4321.5, concurrency=37.0, waiting=3.0, kv_cache_usage=0.42, sampled_at=NOW
    )
    variant = VariantStatus(
        name="trn1-32xlarge",
        instance_type="trn1.32xlarge",
        tensor_parallel_size=8,
        capacity_units_per_replica=0.69,
        desired_replicas=3,
        replicas=3,
        ready_replicas=2,
        unschedulable_replicas=1,
    )
    capacity = CapacityStatus(
        in_use="inf2.48xlarge=4,trn1.32xlarge=3",
        variants=[variant],
        unschedulable_message="0/8 nodes are available: 8 Insufficient aws.amazon.com/neuron.",
        capacity_units=6.07,
    )
    service_level = ServiceLevelStatus(
        attainment=0.993,
        ttft_attainment=0.996,
        tpot_attainment=0.997,
        ttft_p50_seconds=0.21,
        ttft_p99_seconds=0.95,
        itl_p50_seconds=0.045,
        itl_p99_seconds=0.092,
        window_seconds=300.0,
        samples=1240,
        source="histograms",
        reason="AttainmentMet",
        message="99.3 % of 1240 requests within the SLO over 300 s",
        utilization=0.41,
        feedback="Holding: attainment within the band",
        sampled_at=NOW,
    )
    curve = CapacityCurveStatus(
        alpha_seconds=0.012,
        beta_seconds=0.0011,
        gamma_seconds=0.00004,
        source="fitted",
        confidence=0.87,
        samples=42,
        slo_batch=24,
    )
    conditions = [
        Condition(
            type=str(t),
            status="True",
            reason=str(Reason.RECONCILED),
            message=f"{t} as expected",
            last_transition_time=NOW,
            observed_generation=generation,
        )
        for t in ConditionType
    ]
    status = ModelDeploymentStatus(
        observed_generation=generation,
        replicas=3,
        ready_replicas=2,
        updated_replicas=3,
        available_replicas=2,
        desired_replicas=4,
        selector=SELECTOR,
        last_scale_time=NOW,
        last_scale_reason=str(Reason.SCALING),
        plan=plan,
        metrics=metrics,
        autoscaling_targets={"tokensPerSecondPerReplica": 1500.0, "concurrencyPerReplica": 24.0},
        capacity=capacity,
        service_level=service_level,
        capacity_curve=curve,
        conditions=conditions,
        kopf=KOPF_STATE,
    )
    # Guard: a field added to the models later must be added here too, or pruning goes untested.
    for model in (status, plan, metrics, capacity, variant, service_level, curve):
        assert model.model_fields_set == set(type(model).model_fields), f"{type(model).__name__} not complete"
    return status.model_dump(by_alias=True, exclude_none=True, mode="json") | {"kopf": KOPF_STATE}


def test_a_complete_status_survives_a_status_patch_unpruned(api: client.ApiClient, namespace: str) -> None:
    created = md.create(api, namespace, md.make_md("llama"))
    status = complete_status(created["metadata"]["generation"])
    patched = md.patch_status(api, namespace, "llama", status)
    assert patched["status"] == status
    assert md.get_status(api, namespace, "llama")["status"] == status


def test_a_status_field_the_schema_lacks_is_pruned(api: client.ApiClient, namespace: str) -> None:
    """The counterpart of the test above: proves the server does prune, so 'unpruned' means something."""
    md.create(api, namespace, md.make_md("llama"))
    patched = md.patch_status(api, namespace, "llama", {"replicas": 1, "createFn": {"message": "hello"}})
    assert patched["status"] == {"replicas": 1}


def test_a_status_change_does_not_bump_generation(api: client.ApiClient, namespace: str) -> None:
    created = md.create(api, namespace, md.make_md("llama"))
    md.patch_status(api, namespace, "llama", complete_status(1))
    md.patch_status(api, namespace, "llama", {"readyReplicas": 3})
    after = md.get(api, namespace, "llama")
    assert after["metadata"]["generation"] == created["metadata"]["generation"] == 1
    assert after["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]


def test_status_written_through_the_main_endpoint_is_ignored(api: client.ApiClient, namespace: str) -> None:
    """Only /status writes status, so a GitOps tool applying a manifest cannot clobber it."""
    md.create(api, namespace, md.make_md("llama"))
    md.patch_status(api, namespace, "llama", {"replicas": 2})
    objects = client.CustomObjectsApi(api)
    objects.patch_namespaced_custom_object(
        constants.GROUP,
        constants.VERSION,
        namespace,
        constants.PLURAL,
        "llama",
        {"status": {"replicas": 9}, "spec": {"replicas": 5}},
        _content_type="application/merge-patch+json",
    )
    after = md.get(api, namespace, "llama")
    assert after["status"]["replicas"] == 2
    assert after["spec"]["replicas"] == 5
    assert after["metadata"]["generation"] == 2


def _scale(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object_scale(
        constants.GROUP, constants.VERSION, namespace, constants.PLURAL, name
    )


def test_scale_reads_spec_replicas_status_replicas_and_selector(api: client.ApiClient, namespace: str) -> None:
    md.create(api, namespace, md.make_md("llama", {**md.MINIMAL_SPEC, "replicas": 4}))
    md.patch_status(api, namespace, "llama", {"replicas": 3, "selector": SELECTOR})
    scale = _scale(api, namespace, "llama")
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 3, "selector": SELECTOR}


def test_a_scale_patch_changes_spec_replicas(api: client.ApiClient, namespace: str) -> None:
    """What `kubectl scale md/llama --replicas=6`, HPA and KEDA do."""
    md.create(api, namespace, md.make_md("llama"))
    client.CustomObjectsApi(api).patch_namespaced_custom_object_scale(
        constants.GROUP,
        constants.VERSION,
        namespace,
        constants.PLURAL,
        "llama",
        {"spec": {"replicas": 6}},
        _content_type="application/merge-patch+json",
    )
    after = md.get(api, namespace, "llama")
    assert after["spec"]["replicas"] == 6
    assert after["metadata"]["generation"] == 2
    assert _scale(api, namespace, "llama")["spec"] == {"replicas": 6}


@pytest.mark.parametrize(
    ("replicas", "message"),
    [
        (-1, "spec.replicas in body should be greater than or equal to 0"),
        (1001, "spec.replicas in body should be less than or equal to 1000"),
    ],
    ids=["below zero", "above the schema maximum"],
)
def test_a_scale_outside_the_schema_range_is_rejected(
    api: client.ApiClient, namespace: str, replicas: int, message: str
) -> None:
    md.create(api, namespace, md.make_md("llama"))
    with pytest.raises(client.ApiException) as info:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_scale(
            constants.GROUP,
            constants.VERSION,
            namespace,
            constants.PLURAL,
            "llama",
            {"spec": {"replicas": replicas}},
            _content_type="application/merge-patch+json",
        )
    rejection = md.rejection_of(info.value)
    assert rejection.status == 422
    assert message in rejection.message
    assert md.get(api, namespace, "llama")["spec"]["replicas"] == 1


def test_the_table_shows_the_promised_columns_with_values(api: client.ApiClient, namespace: str) -> None:
    """`kubectl get md`: model, instance, TP, desired, ready, tokens/s, age (status reason with -o wide)."""
    md.create(api, namespace, md.make_md("llama"))
    md.patch_status(api, namespace, "llama", complete_status(1))
    table = md.table(api, namespace)
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Model", "Instance", "TP", "Desired", "Ready", "Tokens/s", "Variants", "Status", "Age"]
    wide_only = {c["name"] for c in table["columnDefinitions"] if c.get("priority", 0) > 0}
    assert wide_only == {"Status"}
    (row,) = table["rows"]
    cells = dict(zip(columns, row["cells"], strict=True))
    assert cells["Name"] == "llama"
    assert cells["Model"] == md.MINIMAL_SPEC["model"]["source"]
    assert cells["Instance"] == "inf2.48xlarge"
    assert cells["TP"] == 8
    assert cells["Desired"] == 4
    assert cells["Ready"] == 2
    assert cells["Tokens/s"] == 4321.5
    assert cells["Status"] == str(Reason.RECONCILED)
    assert cells["Age"].endswith(("s", "m", "h", "d", "y"))


def test_gitops_owning_spec_and_the_operator_owning_status_apply_without_conflict(
    api: client.ApiClient, namespace: str
) -> None:
    """Argo CD server-side-applies the manifest, the operator server-side-applies status, repeatedly."""
    manifest = md.make_md("llama", {**md.MINIMAL_SPEC, "replicas": 2})
    md.apply(api, namespace, manifest, manager="argocd-controller")
    status = {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "metadata": {"name": "llama"},
        "status": complete_status(1),
    }
    # No force: a conflict would raise 409 here.
    md.apply(api, namespace, status, manager="neuronfleet", subresource="status")
    manifest["spec"]["replicas"] = 3
    after_sync = md.apply(api, namespace, manifest, manager="argocd-controller")
    status["status"]["readyReplicas"] = 3
    md.apply(api, namespace, status, manager="neuronfleet", subresource="status")

    final = md.get(api, namespace, "llama")
    assert final["spec"]["replicas"] == 3
    assert final["status"]["readyReplicas"] == 3
    assert final["status"]["plan"] == status["status"]["plan"]
    assert after_sync["metadata"]["generation"] == final["metadata"]["generation"] == 2
    managers = {(m["manager"], m.get("subresource", "")) for m in final["metadata"]["managedFields"]}
    assert managers == {("argocd-controller", ""), ("neuronfleet", "status")}
    for entry in final["metadata"]["managedFields"]:
        owned = entry["fieldsV1"]
        if entry["manager"] == "argocd-controller":
            assert "f:spec" in owned and "f:status" not in owned
        else:
            assert "f:status" in owned and "f:spec" not in owned
