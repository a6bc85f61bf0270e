"""Compiled artifacts against the API emulator: compile Job, gated rollout, failure, retry.

The real operator runs against the emulator; no Neuron compiler runs there. Most tests play the
Job controller's part by writing each Job's status (Complete or Failed, as batch/v1 reports them)
through the official client, to control exactly when a compile ends; the last two let the
emulator's Job controller stand-in (the demo's) finish the Jobs. Each asserts what the operator
does about it: the children it creates or leaves alone, the Jobs, and the ModelDeployment's
conditions.
"""

from __future__ import annotations

import datetime
from typing import Any

import kubernetes
from emulator_support import enable_controllers
from operator_support import NAMESPACE, Cluster, OperatorThread, make_md

from neuronfleet.render import compile_job, deployment
from support.waits import wait_for

KEY_ANNOTATION = deployment.ARTIFACT_KEY_ANNOTATION
ARTIFACTS = {"policy": "precompile", "pvc": "neff-cache"}


def jobs(cluster: Cluster) -> dict[str, dict[str, Any]]:
    batch = kubernetes.client.BatchV1Api(cluster.api)
    items = batch.list_namespaced_job(NAMESPACE, label_selector=f"app.kubernetes.io/component={compile_job.COMPONENT}")
    return {j.metadata.name: cluster.api.sanitize_for_serialization(j) for j in items.items}


def finish(cluster: Cluster, name: str, *, ok: bool) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cond: dict[str, Any] = {"type": "Complete" if ok else "Failed", "status": "True", "lastTransitionTime": now}
    status: dict[str, Any] = {"startTime": now, "conditions": [cond]}
    if ok:
        status.update(succeeded=1, completionTime=now)
    else:
        cond.update(reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
        status["failed"] = 3
    batch = kubernetes.client.BatchV1Api(cluster.api)
    batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status})


def key_of(job: dict[str, Any]) -> str:
    return job["metadata"]["labels"][compile_job.ARTIFACT_KEY_LABEL]


def test_precompile_compiles_once_then_serves_and_a_new_key_waits_while_old_replicas_serve(
    operator: OperatorThread, cluster: Cluster
) -> None:
    enable_controllers(cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2)
    cluster.create_md(make_md("llama", neuron={"instanceType": "inf2.48xlarge", "compiledArtifacts": ARTIFACTS}))

    # 1. A compile Job for the key, no Deployment yet: strict-mode replicas would fail on a miss.
    (first,) = wait_for(lambda: list(jobs(cluster).values()))
    key1 = key_of(first)
    assert first["metadata"]["ownerReferences"][0]["name"] == "llama"
    wait_for(lambda: cluster.condition("llama", "CompiledArtifactsReady").get("reason") == "Compiling")
    assert cluster.deployment("llama") is None
    assert cluster.status("llama")["plan"]["artifactKey"] == key1
    assert cluster.condition("llama", "Progressing")["reason"] == "WaitingForArtifacts"

    # 2. The compile succeeds: the Deployment appears, serving that key.
    finish(cluster, first["metadata"]["name"], ok=True)
    dep = wait_for(lambda: cluster.deployment("llama"))
    assert dep["metadata"]["annotations"][KEY_ANNOTATION] == key1
    wait_for(lambda: cluster.condition("llama", "CompiledArtifactsReady").get("status") == "True")
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    template_hash = dep["metadata"]["annotations"][deployment.TEMPLATE_HASH_ANNOTATION]

    # 3. A spec change that alters the graphs: a new key, a new compile, the old replicas keep serving.
    cluster.patch_md("llama", {"spec": {"serving": {"maxNumSeqs": 16}}})
    second = wait_for(lambda: next((j for j in jobs(cluster).values() if key_of(j) != key1), None))
    key2 = key_of(second)
    wait_for(lambda: cluster.condition("llama", "Ready").get("reason") == "WaitingForArtifacts")
    assert f"keep serving key {key1}" in cluster.condition("llama", "Ready")["message"]
    dep = cluster.deployment("llama")
    assert dep["metadata"]["annotations"][KEY_ANNOTATION] == key1
    assert dep["metadata"]["annotations"][deployment.TEMPLATE_HASH_ANNOTATION] == template_hash
    assert dep["status"]["readyReplicas"] == 2

    # 4. The compile fails: Degraded with a message naming the Job, the key and the reason.
    finish(cluster, second["metadata"]["name"], ok=False)
    wait_for(lambda: cluster.condition("llama", "Degraded").get("reason") == "CompileFailed")
    message = cluster.condition("llama", "Degraded")["message"]
    assert key2 in message and "BackoffLimitExceeded" in message and second["metadata"]["name"] in message
    assert cluster.deployment("llama")["metadata"]["annotations"][KEY_ANNOTATION] == key1

    # 5. The user deletes the failed Job to retry at once: a fresh compile, which succeeds.
    kubernetes.client.BatchV1Api(cluster.api).delete_namespaced_job(
        second["metadata"]["name"], NAMESPACE, propagation_policy="Background"
    )
    wait_for(
        lambda: (
            second["metadata"]["name"] in jobs(cluster)
            and not jobs(cluster)[second["metadata"]["name"]].get("status", {}).get("conditions")
        )
    )
    finish(cluster, second["metadata"]["name"], ok=True)
    wait_for(lambda: cluster.deployment("llama")["metadata"]["annotations"][KEY_ANNOTATION] == key2, timeout=30)
    wait_for(lambda: cluster.condition("llama", "Degraded").get("status") == "False")
    # The old key's Job is retired once the new key is ready (its artifacts stay on the PVC).
    wait_for(lambda: set(jobs(cluster)) == {second["metadata"]["name"]})


def test_require_waits_for_artifacts_and_never_creates_a_compile_job(
    operator: OperatorThread, cluster: Cluster
) -> None:
    spec = {"instanceType": "inf2.48xlarge", "compiledArtifacts": {"policy": "require", "pvc": "neff-cache"}}
    cluster.create_md(make_md("strict", neuron=spec))
    (check,) = wait_for(lambda: list(jobs(cluster).values()))
    assert check["metadata"]["labels"][compile_job.MODE_LABEL] == "check"
    finish(cluster, check["metadata"]["name"], ok=False)
    wait_for(lambda: "never compiles" in cluster.condition("strict", "CompiledArtifactsReady").get("message", ""))
    assert cluster.deployment("strict") is None
    assert cluster.condition("strict", "Degraded")["status"] == "False"
    assert all(j["metadata"]["labels"][compile_job.MODE_LABEL] == "check" for j in jobs(cluster).values())


def test_compile_on_start_keeps_todays_behaviour(operator: OperatorThread, cluster: Cluster) -> None:
    cluster.create_md(make_md("plain"))
    dep = wait_for(lambda: cluster.deployment("plain"))
    assert KEY_ANNOTATION in dep["metadata"]["annotations"]
    wait_for(lambda: cluster.status("plain").get("plan", {}).get("artifactKey"))
    assert jobs(cluster) == {}
    assert cluster.condition("plain", "CompiledArtifactsReady") == {}


def test_the_artifact_lifecycle_shows_in_events(operator: OperatorThread, cluster: Cluster) -> None:
    cluster.create_md(make_md("evented", neuron={"instanceType": "inf2.48xlarge", "compiledArtifacts": ARTIFACTS}))
    (job,) = wait_for(lambda: list(jobs(cluster).values()))
    wait_for(lambda: "Compiling" in [e["reason"] for e in cluster.events("evented")])
    finish(cluster, job["metadata"]["name"], ok=True)
    wait_for(lambda: "ArtifactsReady" in [e["reason"] for e in cluster.events("evented")])


def test_with_the_emulators_job_controller_a_precompile_fleet_compiles_then_serves(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """The emulator's Job controller stand-in (the demo runs it too) finishes the compile Job; nobody
    writes Job status by hand. It models outcomes only: no Pod, no compiler, no marker file."""
    enable_controllers(
        cluster.emu, garbage_collector=False, deployments=True, ready_delay=0.2, jobs=True, job_seconds=0.5
    )
    cluster.create_md(make_md("llama", neuron={"instanceType": "inf2.48xlarge", "compiledArtifacts": ARTIFACTS}))

    (job,) = wait_for(lambda: list(jobs(cluster).values()))
    dep = wait_for(lambda: cluster.deployment("llama"), timeout=20)
    assert dep["metadata"]["annotations"][KEY_ANNOTATION] == key_of(job)
    wait_for(lambda: cluster.condition("llama", "CompiledArtifactsReady").get("status") == "True")
    wait_for(lambda: cluster.condition("llama", "Ready").get("status") == "True")
    finished = jobs(cluster)[job["metadata"]["name"]]
    assert finished["status"]["succeeded"] == 1
    assert {c["type"] for c in finished["status"]["conditions"]} == {"SuccessCriteriaMet", "Complete"}


def test_with_the_emulators_job_controller_a_failing_compile_degrades_and_never_rolls_out(
    operator: OperatorThread, cluster: Cluster
) -> None:
    """As above, with the stand-in switched on once the compile Job exists and told to fail it."""
    cluster.create_md(make_md("llama", neuron={"instanceType": "inf2.48xlarge", "compiledArtifacts": ARTIFACTS}))
    (job,) = wait_for(lambda: list(jobs(cluster).values()))
    enable_controllers(
        cluster.emu,
        garbage_collector=False,
        deployments=False,
        jobs=True,
        failing_jobs=frozenset({job["metadata"]["name"]}),
    )
    wait_for(lambda: cluster.condition("llama", "Degraded").get("reason") == "CompileFailed", timeout=20)
    message = cluster.condition("llama", "Degraded")["message"]
    assert "BackoffLimitExceeded" in message and key_of(job) in message
    assert cluster.deployment("llama") is None
