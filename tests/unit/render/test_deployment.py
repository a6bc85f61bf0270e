"""The Deployment builder: pod shape on Neuron, probes, security, secrets and the stable selector.

Pure tests over `deployment.expected` with hand-made plans (`builders.make_plan`), so each rule
is probed on its own; the planner's real plans go through the same code in test_command.py and
tests/unit/test_examples.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from neuronfleet.api import convert
from neuronfleet.errors import PlanError
from neuronfleet.render import deployment, labels
from neuronfleet.render.options import DEFAULT_IMAGES, RenderOptions

from .builders import make_md, make_plan

OPTIONS = RenderOptions()


def render(md=None, plan=None, *, replicas: int = 2, options: RenderOptions = OPTIONS) -> dict[str, Any]:
    return deployment.expected(md or make_md(), plan or make_plan(), replicas=replicas, options=options)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(obj)["containers"]
    return only


def env_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(obj)["env"]}


def test_the_selector_matches_the_pod_template_labels():
    obj = render()
    selector = obj["spec"]["selector"]["matchLabels"]
    template_labels = obj["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= template_labels.items()
    assert template_labels[labels.INSTANCE] == "llama3-8b"


@pytest.mark.parametrize(
    "changed",
    [
        {"serving": {"maxNumSeqs": 4, "maxModelLen": 2048, "runtime": "nxdi", "image": "example.com/vllm:2"}},
        {"model": {"source": "hf://meta-llama/Llama-3.3-70B-Instruct"}},
        {"neuron": {"instanceType": "trn2.48xlarge", "tensorParallelSize": 16}},
        {"monitoring": {"podMonitor": True}, "autoscaling": {"enabled": True, "metrics": {"concurrencyPerReplica": 8}}},
    ],
    ids=["serving changes", "model changes", "instance and TP change", "monitoring and autoscaling change"],
)
def test_the_selector_does_not_change_when_the_spec_changes(changed: dict[str, Any]):
    before = render(make_md())
    after = render(make_md(**changed), make_plan(instance_type="trn2.48xlarge", runtime="vllm-neuron"))
    assert after["spec"]["selector"] == before["spec"]["selector"]
    assert labels.selector_string(make_md(**changed)) == labels.selector_string(make_md())


def test_the_container_runs_vllm_serve_on_the_source_with_the_plan_arguments():
    plan = make_plan()
    args = container(render(plan=plan))["args"]
    assert args[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct"]
    assert tuple(args[3:]) == plan.args
    assert "command" not in container(render(plan=plan)), "the DLC entrypoint must exec our argv"


def test_a_model_revision_becomes_a_revision_argument():
    args = container(render(make_md(model={"revision": "0e9e39f"})))["args"]
    assert args[-2:] == ["--revision", "0e9e39f"]


@pytest.mark.parametrize(
    "source",
    [
        "hf://meta-llama/Llama-3.1-8B-Instruct",
        "s3://models/llama/8b",
        "pvc://weights/llama/8b",
        "file:///opt/models/llama",
    ],
    ids=["hf id", "s3 prefix", "pvc path", "local file path"],
)
def test_the_served_path_agrees_with_the_plan_request(source: str):
    md = make_md(model={"source": source, "id": "meta-llama/Llama-3.1-8B-Instruct"})
    assert container(render(md))["args"][2] == convert.plan_request(md).source


def test_a_pvc_source_is_mounted_read_only_at_its_sub_path():
    obj = render(make_md(model={"source": "pvc://weights/llama/8b", "id": "meta-llama/Llama-3.1-8B-Instruct"}))
    mount = next(m for m in container(obj)["volumeMounts"] if m["name"] == "model-weights")
    assert mount == {"name": "model-weights", "mountPath": "/models/weights", "readOnly": True, "subPath": "llama/8b"}
    volume = next(v for v in pod_spec(obj)["volumes"] if v["name"] == "model-weights")
    assert volume["persistentVolumeClaim"] == {"claimName": "weights", "readOnly": True}


def test_an_s3_source_is_synced_by_an_init_container_before_vllm_starts():
    obj = render(make_md(model={"source": "s3://models/llama/8b", "id": "meta-llama/Llama-3.1-8B-Instruct"}))
    (init,) = pod_spec(obj)["initContainers"]
    assert init["args"][:2] == ["s3", "sync"]
    assert init["args"][-2:] == ["s3://models/llama/8b", "/models/weights"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_neuron_resources_are_requested_and_limited_equally():
    plan = make_plan(resource_name="aws.amazon.com/neuroncore", resource_count=16)
    resources = container(render(plan=plan))["resources"]
    assert resources["requests"]["aws.amazon.com/neuroncore"] == "16"
    assert resources["limits"]["aws.amazon.com/neuroncore"] == "16"
    assert resources["requests"]["cpu"] == str(plan.host_cpus)
    assert resources["requests"]["memory"] == "230Gi"


def test_the_neuron_toleration_is_always_there_and_user_tolerations_are_added_once():
    user = {"key": "team", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    neuron = {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}
    tolerations = pod_spec(render(make_md(scheduling={"tolerations": [user, neuron]})))["tolerations"]
    assert tolerations == [neuron, user]


def test_the_node_selector_pins_the_planned_instance_type_over_a_conflicting_user_value():
    md = make_md(
        scheduling={"nodeSelector": {"node.kubernetes.io/instance-type": "inf2.xlarge", "pool": "serving"}},
    )
    selector = pod_spec(render(md, make_plan(instance_type="inf2.48xlarge")))["nodeSelector"]
    assert selector == {"node.kubernetes.io/instance-type": "inf2.48xlarge", "pool": "serving"}


@pytest.mark.parametrize(
    ("spec", "contiguous", "expected"),
    [
        ({}, True, "my-scheduler"),
        ({}, False, None),
        ({"neuron": {"schedulerName": "neuron-scheduler"}}, True, "neuron-scheduler"),
        ({"scheduling": {"schedulerName": "volcano"}}, False, "volcano"),
        ({"scheduling": {"schedulerName": "volcano"}, "neuron": {"schedulerName": "x"}}, True, "volcano"),
    ],
    ids=[
        "multi-core pods use the neuron scheduler extension",
        "single-core pods use the default scheduler",
        "the neuron scheduler name is configurable",
        "scheduling.schedulerName applies to single-core pods too",
        "scheduling.schedulerName wins over the neuron one",
    ],
)
def test_the_scheduler_name(spec: dict[str, Any], contiguous: bool, expected: str | None):
    plan = make_plan(needs_contiguous_cores=contiguous)
    assert pod_spec(render(make_md(**spec), plan)).get("schedulerName") == expected


def test_shm_is_a_memory_backed_empty_dir():
    obj = render()
    volume = next(v for v in pod_spec(obj)["volumes"] if v["name"] == "dshm")
    assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": OPTIONS.shm_size}
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(obj)["volumeMounts"]


def test_the_hf_token_comes_only_from_the_secret_reference():
    md = make_md(model={"tokenSecretRef": {"name": "hf-token", "key": "token"}})
    env = env_of(render(md))
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    plain_values = [e["value"] for e in container(render(md))["env"] if "value" in e]
    assert all("hf-token" not in v for v in plain_values)


def test_without_a_secret_reference_there_is_no_token_at_all():
    assert "HF_TOKEN" not in env_of(render())


@pytest.mark.parametrize("name", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"], ids=["HF_TOKEN", "legacy hub token name"])
def test_an_inline_token_in_serving_env_is_refused(name: str):
    md = make_md(serving={"env": [{"name": name, "value": "hf_secret"}]})
    with pytest.raises(PlanError, match="tokenSecretRef"):
        render(md)


def test_user_env_overrides_the_plan_env_by_name_without_duplicates():
    plan = make_plan(env=(("NEURON_SKIP_EFA_AFFINITY", "1"), ("A", "plan")))
    env = container(render(make_md(serving={"env": [{"name": "A", "value": "user"}]}), plan))["env"]
    names = [e["name"] for e in env]
    assert len(names) == len(set(names))
    assert {"name": "A", "value": "user"} in env
    assert {"name": "NEURON_SKIP_EFA_AFFINITY", "value": "1"} in env


@pytest.mark.parametrize(
    ("runtime", "policy", "expected_env"),
    [
        ("nxdi", "compileOnStart", {"NEURON_COMPILED_ARTIFACTS": "/var/cache/neuronfleet"}),
        ("vllm-neuron", "compileOnStart", {"NEURON_LIBTORCH_REMOTE_CACHE": "/var/cache/neuronfleet"}),
        (
            "vllm-neuron",
            "require",
            {"NEURON_LIBTORCH_REMOTE_CACHE": "/var/cache/neuronfleet", "VLLM_NEURON_DISABLE_WARMUP_COMPILE": "1"},
        ),
    ],
    ids=[
        "nxdi loads and saves NEFFs in the cache",
        "vllm-neuron uses the cache as its remote tier",
        "require makes a cache miss fatal instead of compiling",
    ],
)
def test_a_compiled_artifact_pvc_is_mounted_and_named_in_the_env(runtime: str, policy: str, expected_env: dict):
    md = make_md(neuron={"compiledArtifacts": {"policy": policy, "pvc": "neff-cache"}})
    obj = render(md, make_plan(runtime=runtime))
    env = env_of(obj)
    assert {k: env[k] for k in expected_env} == expected_env
    mount = next(m for m in container(obj)["volumeMounts"] if m["name"] == "compiled-artifacts")
    assert mount["mountPath"] == "/var/cache/neuronfleet"
    assert mount["readOnly"] is (policy != "compileOnStart")


@pytest.mark.parametrize(
    ("runtime", "image"),
    [("vllm-neuron", DEFAULT_IMAGES["vllm-neuron"]), ("nxdi", DEFAULT_IMAGES["nxdi"])],
    ids=["vllm-neuron image", "nxdi image"],
)
def test_the_default_image_follows_the_runtime_profile(runtime: str, image: str):
    assert container(render(plan=make_plan(runtime=runtime)))["image"] == image


def test_a_spec_image_overrides_the_default():
    md = make_md(serving={"image": "registry.example.com/vllm:1", "imagePullPolicy": "Always"})
    c = container(render(md))
    assert (c["image"], c["imagePullPolicy"]) == ("registry.example.com/vllm:1", "Always")


def test_the_http_port_serves_health_and_metrics():
    c = container(render())
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/health", "port": "http"}


@pytest.mark.parametrize(
    ("shorter", "longer"),
    [(600, 1200), (1200, 2400), (2400, 5400)],
    ids=["10 to 20 minutes", "20 to 40 minutes", "40 to 90 minutes"],
)
def test_the_startup_budget_grows_with_the_expected_startup(shorter: int, longer: int):
    def budget(seconds: int) -> int:
        probe = container(render(plan=make_plan(expected_startup_seconds=seconds)))["startupProbe"]
        return probe["failureThreshold"] * probe["periodSeconds"]

    assert budget(longer) > budget(shorter)
    for seconds in (shorter, longer):
        assert budget(seconds) >= seconds * OPTIONS.startup_safety_factor
        assert budget(seconds) < seconds * OPTIONS.startup_safety_factor + OPTIONS.startup_probe_period_seconds


def test_the_startup_threshold_is_ceil_of_budget_over_period():
    options = RenderOptions(startup_probe_period_seconds=15, startup_safety_factor=1.25)
    plan = make_plan(expected_startup_seconds=1000)
    probe = container(render(plan=plan, options=options))["startupProbe"]
    assert probe["failureThreshold"] == math.ceil(1000 * 1.25 / 15)


def test_a_tiny_startup_estimate_still_gets_the_floor():
    probe = container(render(plan=make_plan(expected_startup_seconds=5)))["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] >= OPTIONS.min_startup_seconds


def test_the_progress_deadline_outlasts_the_startup_budget():
    obj = render(plan=make_plan(expected_startup_seconds=2400))
    probe = container(obj)["startupProbe"]
    assert obj["spec"]["progressDeadlineSeconds"] > probe["failureThreshold"] * probe["periodSeconds"]


def test_the_rollout_needs_no_spare_neuron_capacity_by_default():
    assert render()["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }


def test_rollout_parameters_come_from_the_spec():
    obj = render(make_md(rollout={"maxSurge": "25%", "maxUnavailable": 0}))
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


@pytest.mark.parametrize(
    "rollout",
    [{"maxSurge": 0, "maxUnavailable": 0}, {"maxSurge": "0%", "maxUnavailable": "0%"}],
    ids=["zero counts", "zero percentages"],
)
def test_a_rollout_that_could_never_start_is_a_plan_error(rollout: dict[str, Any]):
    with pytest.raises(PlanError, match="maxSurge and maxUnavailable"):
        render(make_md(rollout=rollout))


@pytest.mark.parametrize("replicas", [0, 1, 7], ids=["scaled to zero", "one", "seven"])
def test_replicas_are_taken_as_given(replicas: int):
    assert render(replicas=replicas)["spec"]["replicas"] == replicas


def test_negative_replicas_are_a_programming_error():
    with pytest.raises(ValueError, match="replicas"):
        render(replicas=-1)


def test_the_security_context_is_restrictive_but_lets_neuron_pin_memory():
    obj = render()
    ctx = container(obj)["securityContext"]
    assert ctx == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["IPC_LOCK"]}}
    spec = pod_spec(obj)
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False


def test_a_configured_uid_runs_the_pod_as_non_root():
    obj = render(options=RenderOptions(run_as_user=1000))
    assert pod_spec(obj)["securityContext"]["runAsNonRoot"] is True
    assert container(obj)["securityContext"]["runAsUser"] == 1000


def test_scheduling_passthrough():
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
    spec = pod_spec(render(make_md(scheduling={"affinity": affinity, "priorityClassName": "inference"})))
    assert spec["affinity"] == affinity
    assert spec["priorityClassName"] == "inference"


def test_termination_leaves_time_to_drain_after_the_pre_stop_pause():
    obj = render()
    assert container(obj)["lifecycle"] == {"preStop": {"sleep": {"seconds": OPTIONS.pre_stop_sleep_seconds}}}
    assert pod_spec(obj)["terminationGracePeriodSeconds"] == (
        OPTIONS.termination_grace_period_seconds + OPTIONS.pre_stop_sleep_seconds
    )


def test_the_template_hash_tracks_the_pod_template_only():
    base = render(replicas=1)
    annotation = deployment.TEMPLATE_HASH_ANNOTATION
    assert render(replicas=5)["metadata"]["annotations"][annotation] == base["metadata"]["annotations"][annotation]
    changed = render(plan=make_plan(args=("--max-num-seqs", "8")), replicas=1)
    assert changed["metadata"]["annotations"][annotation] != base["metadata"]["annotations"][annotation]
    assert base["metadata"]["annotations"][annotation] == deployment.template_hash(base["spec"]["template"])


def test_rendering_is_deterministic():
    md = make_md(model={"tokenSecretRef": {"name": "hf"}}, scheduling={"nodeSelector": {"b": "2", "a": "1"}})
    assert render(md) == render(md)


@pytest.mark.parametrize(
    ("source", "expected_gib"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", math.ceil(16 * 1.1) + 10),
        ("s3://models/llama/8b", math.ceil(16 * 1.1) + 10),
        ("pvc://weights/llama/8b", 10),
    ],
    ids=["hf download needs disk", "s3 sync needs disk", "pvc weights need only scratch"],
)
def test_node_disk_for_downloaded_weights_is_requested(source: str, expected_gib: int):
    md = make_md(model={"source": source, "id": "meta-llama/Llama-3.1-8B-Instruct"})
    requests = container(render(md, make_plan(weights_bytes=16 * 1024**3)))["resources"]["requests"]
    assert requests["ephemeral-storage"] == f"{expected_gib}Gi"
    assert "ephemeral-storage" not in container(render(md))["resources"]["limits"], "no eviction at a hard cap"


def test_the_startup_probe_never_gives_up_before_the_engine_ready_timeout():
    # A kubelet that kills a replica before vLLM's own timeout would restart a slow cold compile.
    plan = make_plan(expected_startup_seconds=600, env=(("VLLM_ENGINE_READY_TIMEOUT_S", "2700"),))
    probe = container(render(plan=plan))["startupProbe"]
    assert probe["failureThreshold"] * probe["periodSeconds"] >= 2700
