"""The compiled-artifact key: which spec changes invalidate it, which do not, and its pieces.

Keys are computed the way the operator computes them: ModelDeployment -> planner -> key, with the
image the renderer would use. A false hit would start replicas in strict mode against graphs of
another shape, so every compile-relevant field must move the key; a false miss costs a compile,
so fields that cannot change a graph must not.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronfleet.api import convert, resource
from neuronfleet.neuron import artifacts, planner
from neuronfleet.render.options import DEFAULT_IMAGES

BASE_SPEC: dict[str, Any] = {
    "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct", "revision": "0e9e39f"},
    "neuron": {"instanceType": "trn2.48xlarge", "tensorParallelSize": 4},
    "serving": {"maxModelLen": 4096, "maxNumSeqs": 16},
}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def key_of(override: dict[str, Any] | None = None, *, name: str = "llama", namespace: str = "ml") -> str:
    md = resource.load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": merge(BASE_SPEC, override or {}),
        }
    )
    plan = planner.plan(convert.plan_request(md))
    image = md.spec.serving.image or DEFAULT_IMAGES[plan.runtime]
    keyed = artifacts.keyed(
        plan, image=image, revision=md.spec.model.revision, quantization=md.spec.serving.quantization
    )
    return keyed.artifact_key


BASE_KEY = key_of()

INVALIDATING = {
    "model revision": {"model": {"revision": "5206a32"}},
    "model id": {"model": {"source": "hf://mistralai/Mistral-7B-Instruct-v0.3"}},
    "tensor parallel degree": {"neuron": {"tensorParallelSize": 8}},
    "logical core size": {"neuron": {"logicalCoreSize": 1}},
    "max model len": {"serving": {"maxModelLen": 8192}},
    "max num seqs": {"serving": {"maxNumSeqs": 32}},
    "max num batched tokens": {"serving": {"maxNumBatchedTokens": 4096}},
    "block size": {"serving": {"blockSize": 64}},
    "prefix caching off": {"serving": {"enablePrefixCaching": False}},
    "dtype": {"serving": {"dtype": "float16"}},
    "fp8 weights (no flag on vllm-neuron)": {"serving": {"quantization": "fp8"}},
    "fp8 kv cache": {"serving": {"kvCacheDtype": "fp8"}},
    "speculative decoding": {"serving": {"speculativeDecoding": {"draftModel": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"}}},
    "bucket ladder in additional config": {
        "serving": {"extraArgs": ["--additional-config", '{"neuron_config": {"num_seqs_buckets": [4, 16]}}']}
    },
    "an unknown extra flag": {"serving": {"extraArgs": ["--enable-chunked-prefill"]}},
    "compiler flags in env": {"serving": {"env": [{"name": "NEURON_CC_FLAGS", "value": "--optlevel 1"}]}},
    "image with another SDK": {
        "serving": {
            "image": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.21.0.1.0.0-neuronx-py312-sdk2.31.1"
        }
    },
    "runtime profile": {"serving": {"runtime": "nxdi"}},
}

KEEPING = {
    "replicas": {"replicas": 5},
    "autoscaling": {
        "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 9, "metrics": {"concurrencyPerReplica": 8}}
    },
    "scheduling": {"scheduling": {"nodeSelector": {"pool": "a"}, "priorityClassName": "high"}},
    "served name": {"model": {"servedName": "chat"}},
    "token secret": {"model": {"tokenSecretRef": {"name": "hf"}}},
    "rollout": {"rollout": {"maxSurge": 1, "maxUnavailable": 0}},
    "monitoring": {"monitoring": {"podMonitor": True}},
    "artifact policy and pvc": {"neuron": {"compiledArtifacts": {"policy": "precompile", "pvc": "fsx"}}},
    "instance size within the family": {"neuron": {"instanceType": "trn2u.48xlarge"}},
    "image mirrored to another registry": {
        "serving": {
            "image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/mirror/vllm:"
            + DEFAULT_IMAGES["vllm-neuron"].rsplit(":", 1)[1]
        }
    },
    "logging flag": {"serving": {"extraArgs": ["--disable-log-requests", "--uvicorn-log-level=warning"]}},
    "logging env": {"serving": {"env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}]}},
    "pull policy": {"serving": {"imagePullPolicy": "Always"}},
}


@pytest.mark.parametrize("override", INVALIDATING.values(), ids=INVALIDATING.keys())
def test_a_change_that_alters_the_compiled_graphs_changes_the_key(override: dict[str, Any]):
    assert key_of(override) != BASE_KEY


@pytest.mark.parametrize("override", KEEPING.values(), ids=KEEPING.keys())
def test_a_change_that_cannot_alter_the_graphs_keeps_the_key(override: dict[str, Any]):
    assert key_of(override) == BASE_KEY


def test_the_model_deployments_name_and_namespace_do_not_enter_the_key():
    assert key_of(name="another-fleet", namespace="team-b") == BASE_KEY


def test_the_key_is_sixteen_hex_characters_of_a_sha256():
    assert len(BASE_KEY) == artifacts.KEY_LENGTH == 16
    assert int(BASE_KEY, 16) >= 0


def test_the_same_model_on_inf2_and_trn1_gets_different_keys():
    common = {"neuron": {"tensorParallelSize": 8, "logicalCoreSize": None}, "serving": {"runtime": "nxdi"}}
    inf2 = key_of(merge(common, {"neuron": {"instanceType": "inf2.48xlarge"}}))
    trn1 = key_of(merge(common, {"neuron": {"instanceType": "trn1.32xlarge"}}))
    assert inf2 != trn1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    replicas=st.integers(min_value=0, max_value=50),
    served=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    name=st.from_regex(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", fullmatch=True),
    selector=st.dictionaries(
        st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=3
    ),
)
def test_no_combination_of_serving_irrelevant_fields_moves_the_key(replicas, served, name, selector):
    override = {"replicas": replicas, "model": {"servedName": served}, "scheduling": {"nodeSelector": selector}}
    assert key_of(override, name=name) == BASE_KEY


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.tuples(st.sampled_from([1024, 2048, 4096, 8192]), st.sampled_from([4, 8, 16, 32])),
    b=st.tuples(st.sampled_from([1024, 2048, 4096, 8192]), st.sampled_from([4, 8, 16, 32])),
)
def test_two_serving_shapes_share_a_key_exactly_when_they_are_equal(a, b):
    ka = key_of({"serving": {"maxModelLen": a[0], "maxNumSeqs": a[1]}})
    kb = key_of({"serving": {"maxModelLen": b[0], "maxNumSeqs": b[1]}})
    assert (ka == kb) == (a == b)


IMAGES = {
    "DLC tag": (
        "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04",
        "0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04",
        "2.32.0",
    ),
    "registry with a port": ("registry.local:5000/vllm-neuron:0.16.0-sdk2.31.1", "0.16.0-sdk2.31.1", "2.31.1"),
    "digest wins over tag": ("repo/vllm:sdk2.32.0@sha256:abc123", "sha256:abc123", "2.32.0"),
    "no tag means latest": ("registry.local:5000/vllm-neuron", "latest", None),
}


@pytest.mark.parametrize(("image", "identity", "sdk"), IMAGES.values(), ids=IMAGES.keys())
def test_the_image_identity_and_sdk_version_come_from_the_tag_or_digest(image, identity, sdk):
    assert artifacts.image_identity(image) == identity
    assert artifacts.sdk_version(image) == sdk


def test_non_compiling_flags_are_dropped_with_their_values_in_both_spellings():
    args = ("--max-model-len", "4096", "--port", "8000", "--served-model-name=x", "--disable-log-stats", "--foo", "1")
    assert artifacts.compile_args(args) == ("--max-model-len", "4096", "--foo", "1")


def test_compile_env_keeps_unknown_variables_and_drops_timeouts_tokens_and_cache_locations():
    env = [
        ("VLLM_ENGINE_READY_TIMEOUT_S", "3600"),
        ("HF_HOME", "/x"),
        ("NEURON_LOGICAL_NC_CONFIG", "2"),
        ("NEURON_LIBTORCH_REMOTE_CACHE", "/c"),
        ("MY_FLAG", "1"),
        ("MY_FLAG", "2"),
    ]
    assert artifacts.compile_env(env) == (("MY_FLAG", "2"), ("NEURON_LOGICAL_NC_CONFIG", "2"))


RUNTIME_DIRS = {
    "nxdi gets a directory per key": ("nxdi", "/cache/k1"),
    "vllm-neuron shares the content-addressed root": ("vllm-neuron", "/cache"),
}


@pytest.mark.parametrize(("runtime", "where"), RUNTIME_DIRS.values(), ids=RUNTIME_DIRS.keys())
def test_artifact_directory_follows_the_runtimes_cache_layout(runtime, where):
    assert artifacts.artifact_dir("/cache/", "k1", runtime) == where


def test_the_marker_lives_under_the_cache_root_named_by_key():
    assert artifacts.marker_path("/cache/", "k1") == "/cache/neuronfleet/k1.json"


def _group_plan(nodes: int | None, **neuron: Any):
    md = resource.load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "big", "namespace": "ml"},
            "spec": {
                "model": {"source": "hf://meta-llama/Llama-3.1-405B-Instruct"},
                "neuron": {"instanceType": "trn1.32xlarge", "nodesPerReplica": nodes, **neuron},
                "serving": {"maxModelLen": 2048, "maxNumSeqs": 1},
            },
        }
    )
    return planner.plan(convert.plan_request(md))


def test_one_key_serves_every_group_of_a_shape_and_each_shape_has_its_own():
    two, four = _group_plan(2), _group_plan(4)
    image = DEFAULT_IMAGES["nxdi"]
    keys = {artifacts.artifact_key(artifacts.inputs(p, image=image)) for p in (two, four)}
    assert len(keys) == 2, "2 x 32 and 4 x 32 ranks compile different graphs"
    again = artifacts.artifact_key(artifacts.inputs(_group_plan(2, efa=False), image=image))
    assert again == artifacts.artifact_key(artifacts.inputs(two, image=image)), "EFA and addresses are not graphs"


def test_single_node_keys_hash_exactly_what_they_hashed_before_groups_existed():
    plan = planner.plan(
        convert.plan_request(
            resource.load(
                {
                    "apiVersion": "neuronfleet.io/v1alpha1",
                    "kind": "ModelDeployment",
                    "metadata": {"name": "m"},
                    "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}},
                }
            )
        )
    )
    values = artifacts.inputs(plan, image=DEFAULT_IMAGES["nxdi"])
    fields = {k: v for k, v in dataclasses.asdict(values).items() if k != "nodes_per_replica"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    assert artifacts.full_digest(values) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_group_pod_reads_and_writes_its_own_rank_directory_under_the_key():
    assert artifacts.rank_artifact_dir("/cache/", "abc", "$(LWS_WORKER_INDEX)") == "/cache/abc/rank-$(LWS_WORKER_INDEX)"
