"""The sharding planner on hand-checkable cases, its error messages, and its invariants.

Neuron hardware cannot run here; the planner is pure arithmetic over the catalog, so these tests
check the arithmetic against numbers worked out by hand from the model configs and the catalog.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.neuron.catalog import CATALOG, GIB, lookup
from neuronfleet.neuron.models import BUILTIN_MODELS
from neuronfleet.neuron.types import ModelArch, PlanRequest, SpeculativeRequest


def make_request(model: str = "meta-llama/Llama-3.1-8B-Instruct", **overrides) -> PlanRequest:
    return PlanRequest(model=model, source=model, served_name="served", **overrides)


def arg_value(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


# --- hand-checked plans -----------------------------------------------------------------------


def test_llama_8b_on_inf2_48xlarge_takes_two_chips_at_tp4():
    plan = planner.plan(make_request(instance_type="inf2.48xlarge"))
    weights = 8.03e9 * 2
    kv = 2 * 32 * 8 * 128 * 2 * (32 * 8192)  # 8 KV heads: no replication at TP 4
    assert kv == 32 * GIB
    assert plan.tensor_parallel_size == 4  # TP 2 = 32 GiB < 54 GiB needed
    assert plan.weights_bytes == math.ceil(weights)
    assert plan.kv_cache_bytes == kv
    assert plan.memory_needed_bytes == math.ceil((math.ceil(weights) + kv) * 1.15)
    assert plan.memory_available_bytes == 4 * 16 * GIB
    assert (plan.resource_name, plan.resource_count) == ("aws.amazon.com/neuron", 2)
    assert plan.replicas_per_node == 6
    assert plan.runtime == "nxdi" and plan.needs_contiguous_cores
    assert arg_value(plan.args, "--num-gpu-blocks-override") == "32"


def test_llama_33_70b_on_trn2_takes_four_chips_at_tp16():
    plan = planner.plan(make_request("meta-llama/Llama-3.3-70B-Instruct", instance_type="trn2.48xlarge"))
    # TP 8: 131.4 GiB weights + 80 GiB KV, x1.15 = 243 GiB > 8 x 24 GiB. TP 16 replicates the
    # 8 KV heads to 16 (160 GiB KV): 335 GiB <= 384 GiB.
    assert plan.tensor_parallel_size == 16
    assert plan.kv_cache_bytes == 2 * 80 * 16 * 128 * 2 * 32 * 8192 == 160 * GIB
    assert plan.memory_available_bytes == 384 * GIB
    assert (plan.resource_name, plan.resource_count, plan.replicas_per_node) == ("aws.amazon.com/neuron", 4, 4)
    assert plan.runtime == "vllm-neuron" and plan.logical_core_size == 2
    assert dict(plan.env)["NEURON_LOGICAL_NC_CONFIG"] == "2"


def test_gpt_oss_120b_on_trn2_needs_tp16_at_bf16():
    request = make_request("openai/gpt-oss-120b", instance_type="trn2.48xlarge")
    assert planner.plan(request).tensor_parallel_size == 16
    # The weights alone (233.7 GB = 217.6 GiB) exceed TP 8's 192 GiB, as the vllm-neuron docs say.
    with pytest.raises(PlanError) as err:
        planner.plan(replace(request, tensor_parallel_size=8))
    message = str(err.value)
    assert "weights 217.6 GiB" in message and "192.0 GiB" in message
    assert "larger legal degrees: 16, 32, 64" in message


def test_70b_on_inf2_xlarge_does_not_fit_and_the_message_names_the_numbers():
    with pytest.raises(PlanError) as err:
        planner.plan(make_request("meta-llama/Llama-3.1-70B", instance_type="inf2.xlarge"))
    message = str(err.value)
    # 141.1 GB weights = 131.4 GiB; KV at TP 2 = 2 x 80 x 8 x 128 x 2 x 262144 = 80 GiB; x1.15.
    assert "243.1 GiB" in message
    assert "32.0 GiB" in message
    assert "legal: 1, 2" in message
    assert "inf2.xlarge" in message


def test_tp3_is_not_legal_and_the_message_lists_the_legal_degrees():
    with pytest.raises(PlanError, match=r"tensorParallelSize 3 is not legal.*legal degrees: 1, 2, 4, 8, 24"):
        planner.plan(make_request(instance_type="inf2.48xlarge", tensor_parallel_size=3))


def test_tp_larger_than_one_node_with_one_node_asked_is_refused_with_the_node_size():
    with pytest.raises(PlanError, match=r"larger than one trn1.32xlarge node \(32 NeuronCores"):
        planner.plan(make_request(instance_type="trn1.32xlarge", tensor_parallel_size=64, nodes_per_replica=1))


def test_tp_larger_than_one_node_spans_whole_nodes():
    plan = planner.plan(make_request(instance_type="trn1.32xlarge", tensor_parallel_size=64))
    assert (plan.nodes_per_replica, plan.local_tensor_parallel_size) == (2, 32)


def test_tp_that_would_need_three_nodes_is_refused_with_the_legal_groups():
    with pytest.raises(PlanError, match=r"group of 3 trn1.32xlarge nodes is not legal.*2 nodes = TP 64"):
        planner.plan(make_request(instance_type="trn1.32xlarge", tensor_parallel_size=96))


def test_unknown_instance_type_is_a_plan_error():
    with pytest.raises(PlanError, match="unknown instance type"):
        planner.plan(make_request(instance_type="g5.xlarge"))


# --- choices ----------------------------------------------------------------------------------


def test_without_an_instance_type_the_least_neuron_memory_per_replica_wins():
    plan = planner.plan(make_request())
    # inf2 TP 4 ties up 64 GiB, trn2 TP 4 96 GiB, trn1 TP 8 128 GiB; inf2.24xlarge and .48xlarge
    # tie on memory and price per replica, and the smaller node wins.
    assert (plan.instance_type, plan.tensor_parallel_size) == ("inf2.24xlarge", 4)
    assert any("least Neuron memory" in reason for reason in plan.reasons)


def test_asking_for_vllm_neuron_without_an_instance_picks_a_trainium2_node():
    plan = planner.plan(make_request(runtime="vllm-neuron"))
    assert plan.instance_family == "trn2" and plan.instance_type == "trn2.48xlarge"


def test_vllm_neuron_on_inf2_is_rejected_with_the_runtime_that_works_there():
    with pytest.raises(PlanError) as err:
        planner.plan(make_request(instance_type="inf2.48xlarge", runtime="vllm-neuron"))
    assert "trn2 and trn3 only" in str(err.value) and "use runtime nxdi" in str(err.value)


def test_nxdi_is_allowed_on_trn2_and_sets_the_runtime_core_size():
    plan = planner.plan(make_request(instance_type="trn2.48xlarge", runtime="nxdi"))
    env = dict(plan.env)
    assert env["NEURON_RT_VIRTUAL_CORE_SIZE"] == "2" and env["NEURON_LOGICAL_NC_CONFIG"] == "2"
    assert "--num-gpu-blocks-override" in plan.args


def test_lnc1_on_trn2_halves_the_core_memory_and_allows_tp128():
    plan = planner.plan(
        make_request(
            "meta-llama/Llama-3.3-70B-Instruct", instance_type="trn2.48xlarge", logical_core_size=1, max_num_seqs=8
        )
    )
    assert plan.logical_core_size == 1
    assert plan.memory_available_bytes == plan.tensor_parallel_size * 12 * GIB
    assert dict(plan.env)["NEURON_LOGICAL_NC_CONFIG"] == "1"
    # TP 128 does not divide 64 heads (vllm-neuron), but NxDI pads heads and takes all 16 chips.
    whole_node = planner.plan(
        make_request(instance_type="trn2.48xlarge", runtime="nxdi", logical_core_size=1, tensor_parallel_size=128)
    )
    assert (whole_node.resource_count, whole_node.replicas_per_node) == (16, 1)


def test_lnc2_on_inf2_is_refused():
    with pytest.raises(PlanError, match="LNC is a trn2/trn3 setting"):
        planner.plan(make_request(instance_type="inf2.48xlarge", logical_core_size=2))


@pytest.mark.parametrize(
    ("instance", "tp", "resource", "count", "per_node"),
    [
        ("inf2.48xlarge", 1, "aws.amazon.com/neuroncore", 1, 24),
        ("inf2.48xlarge", 24, "aws.amazon.com/neuron", 12, 1),
        ("trn1.32xlarge", 8, "aws.amazon.com/neuron", 4, 4),
        ("trn2.48xlarge", 2, "aws.amazon.com/neuroncore", 2, 32),
        ("trn2.48xlarge", 8, "aws.amazon.com/neuron", 4, 4),
    ],
    ids=[
        "one inf2 core is a neuroncore request",
        "TP 24 takes every inf2.48xlarge chip",
        "trn1 TP 8 is a 4-device set",
        "half a trn2 chip is a neuroncore request",
        "trn2 TP 8 spans 2 chips and is rounded up to a 4-device set",
    ],
)
def test_resources_use_whole_devices_only_when_the_replica_spans_whole_chips(instance, tp, resource, count, per_node):
    # Mistral-7B at one short sequence (13.6 GiB x 1.15) just fits one 16 GiB core.
    plan = planner.plan(
        make_request(
            "mistralai/Mistral-7B-Instruct-v0.3",
            instance_type=instance,
            tensor_parallel_size=tp,
            max_model_len=1024,
            max_num_seqs=1,
        )
    )
    assert (plan.resource_name, plan.resource_count, plan.replicas_per_node) == (resource, count, per_node)


def test_host_requests_are_the_replicas_share_of_the_node_less_a_reserve():
    plan = planner.plan(make_request(instance_type="inf2.48xlarge"))
    # 2 of 12 chips: 192 vCPU x 1/6 x 0.9 = 28.8, 768 GiB x 1/6 x 0.85 = 108.8.
    assert plan.host_cpus == 28
    assert plan.host_memory_bytes == 108 * GIB


def test_a_compiled_cache_hit_starts_much_faster_than_a_cold_compile():
    cold = planner.plan(make_request("meta-llama/Llama-3.3-70B-Instruct", instance_type="trn2.48xlarge"))
    warm = planner.plan(
        make_request("meta-llama/Llama-3.3-70B-Instruct", instance_type="trn2.48xlarge", compiled_cache_hit=True)
    )
    assert warm.expected_startup_seconds < cold.expected_startup_seconds - 600
    # The documented first launch of a 70B model on vllm-neuron is 15-20 minutes of compile.
    assert 15 * 60 <= cold.expected_startup_seconds <= 45 * 60


def test_larger_models_get_a_larger_compile_budget():
    small = dict(planner.plan(make_request("openai/gpt-oss-20b", instance_type="trn2.48xlarge")).env)
    large = dict(planner.plan(make_request("openai/gpt-oss-120b", instance_type="trn2.48xlarge")).env)
    assert int(small["VLLM_NEURON_COMPILATION_TIMEOUT"]) >= 600
    assert int(large["VLLM_NEURON_COMPILATION_TIMEOUT"]) > int(small["VLLM_NEURON_COMPILATION_TIMEOUT"])
    assert int(large["VLLM_ENGINE_READY_TIMEOUT_S"]) > int(large["VLLM_NEURON_COMPILATION_TIMEOUT"])


def test_a_kv_cache_above_the_plugins_default_budget_raises_the_cap_to_what_the_plan_sized():
    plan = planner.plan(make_request("meta-llama/Llama-3.3-70B-Instruct", instance_type="trn2.48xlarge"))
    cap = float(dict(plan.env)["VLLM_NEURON_KV_GMU_BUDGET_CAP_FRACTION"])
    assert cap * plan.memory_available_bytes * 0.9 >= plan.kv_cache_bytes
    small = planner.plan(make_request(instance_type="trn2.48xlarge", max_num_seqs=4, max_model_len=2048))
    assert "VLLM_NEURON_KV_GMU_BUDGET_CAP_FRACTION" not in dict(small.env)


def test_extra_env_is_applied_last_and_wins():
    plan = planner.plan(
        make_request(instance_type="inf2.48xlarge", extra_env=(("NEURON_SKIP_EFA_AFFINITY", "0"), ("A", "b")))
    )
    env = dict(plan.env)
    assert env["NEURON_SKIP_EFA_AFFINITY"] == "0" and env["A"] == "b"


# --- serving options --------------------------------------------------------------------------


def test_fp8_kv_cache_halves_the_kv_cache_on_vllm_neuron():
    base = planner.plan(make_request(instance_type="trn2.48xlarge", tensor_parallel_size=4))
    fp8 = planner.plan(make_request(instance_type="trn2.48xlarge", tensor_parallel_size=4, kv_cache_dtype="fp8"))
    assert fp8.kv_cache_bytes * 2 == base.kv_cache_bytes
    assert arg_value(fp8.args, "--kv-cache-dtype") == "fp8"


def test_fp8_kv_cache_is_refused_on_nxdi():
    with pytest.raises(PlanError, match="kvCacheDtype fp8 is supported by the vllm-neuron runtime only"):
        planner.plan(make_request(instance_type="inf2.48xlarge", kv_cache_dtype="fp8"))


def test_mxfp4_is_a_trainium3_feature_and_is_refused_on_trn2():
    with pytest.raises(PlanError, match=r"mxfp4 on vllm-neuron needs trn3; trn2\.48xlarge is trn2"):
        planner.plan(make_request("openai/gpt-oss-120b", instance_type="trn2.48xlarge", quantization="mxfp4"))


def test_mxfp8_goes_into_neuron_config_and_shrinks_the_weights():
    plan = planner.plan(make_request("openai/gpt-oss-120b", instance_type="trn2.48xlarge", quantization="mxfp8"))
    config = json.loads(arg_value(plan.args, "--additional-config"))
    assert config["neuron_config"]["quantization"] == "mxfp8"
    assert "--quantization" not in plan.args
    assert plan.weights_bytes == math.ceil(116.83e9 * (1 + 1 / 32))


def test_int8_on_nxdi_turns_on_nxdi_quantization():
    plan = planner.plan(make_request("meta-llama/Llama-3.1-70B", instance_type="inf2.48xlarge", quantization="int8"))
    override = json.loads(arg_value(plan.args, "--additional-config"))["override_neuron_config"]
    assert override["quantized"] is True and override["quantization_dtype"] == "int8"


def test_a_quantization_the_runtime_lacks_is_refused_with_the_supported_list():
    with pytest.raises(
        PlanError, match=r"quantization 'mxfp8' is not supported by the nxdi runtime; supported: int8, fp8"
    ):
        planner.plan(make_request(instance_type="inf2.48xlarge", quantization="mxfp8"))


def test_eagle3_speculative_decoding_on_vllm_neuron_adds_the_config_and_on_device_sampling():
    spec = SpeculativeRequest(model="yuhuili/EAGLE3-LLaMA3.1-Instruct-8B", num_speculative_tokens=3)
    plain = planner.plan(make_request(instance_type="trn2.48xlarge", tensor_parallel_size=4))
    plan = planner.plan(make_request(instance_type="trn2.48xlarge", tensor_parallel_size=4, speculative=spec))
    assert json.loads(arg_value(plan.args, "--speculative-config")) == {
        "model": "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B",
        "num_speculative_tokens": 3,
        "method": "eagle3",
    }
    assert "on_device_sampling_config" in json.loads(arg_value(plan.args, "--additional-config"))["neuron_config"]
    # The draft head and the extra draft tokens cost memory.
    assert plan.memory_needed_bytes > plain.memory_needed_bytes


def test_vanilla_eagle_is_refused_on_vllm_neuron_but_accepted_on_nxdi():
    spec = SpeculativeRequest(model="draft", method="eagle")
    with pytest.raises(PlanError, match="not supported by the vllm-neuron runtime; supported: eagle3"):
        planner.plan(make_request(instance_type="trn2.48xlarge", speculative=spec))
    plan = planner.plan(make_request(instance_type="inf2.48xlarge", speculative=spec))
    assert json.loads(arg_value(plan.args, "--speculative-config"))["method"] == "eagle"


def test_nxdi_prefix_caching_sizes_the_paged_kv_blocks():
    plan = planner.plan(make_request(instance_type="inf2.48xlarge", enable_prefix_caching=True, max_model_len=5000))
    assert arg_value(plan.args, "--block-size") == "32"
    assert arg_value(plan.args, "--num-gpu-blocks-override") == str(math.ceil(5000 / 32) * 32)
    override = json.loads(arg_value(plan.args, "--additional-config"))["override_neuron_config"]
    assert override["is_prefix_caching"] and override["pa_num_blocks"] == 157 * 32


def test_nxdi_refuses_a_prefill_chunk_shorter_than_the_model_length():
    with pytest.raises(PlanError, match="no chunked prefill"):
        planner.plan(make_request(instance_type="inf2.48xlarge", max_num_batched_tokens=2048))


def test_max_model_len_beyond_the_models_context_is_refused():
    with pytest.raises(PlanError, match=r"exceeds Qwen/Qwen2\.5-7B-Instruct's context of 32768"):
        planner.plan(make_request("Qwen/Qwen2.5-7B-Instruct", max_model_len=65536))


def test_planner_owned_flags_in_extra_args_are_refused():
    with pytest.raises(PlanError, match=r"set spec\.neuron\.tensorParallelSize instead"):
        planner.plan(make_request(instance_type="inf2.48xlarge", extra_args=("--tensor-parallel-size=8",)))


def test_an_additional_config_in_extra_args_is_merged_not_repeated():
    extra = ("--additional-config", '{"neuron_config": {"num_seqs_buckets": [8, 32]}}', "--seed", "7")
    plan = planner.plan(make_request(instance_type="trn2.48xlarge", extra_args=extra))
    assert plan.args.count("--additional-config") == 1
    config = json.loads(arg_value(plan.args, "--additional-config"))["neuron_config"]
    assert config["num_seqs_buckets"] == [8, 32]
    assert "num_batched_tokens_buckets" in config  # planned keys survive
    assert plan.args[-2:] == ("--seed", "7")


def test_the_wrong_profiles_config_key_in_extra_args_is_refused_with_a_hint():
    extra = ("--additional-config", '{"override_neuron_config": {}}')
    with pytest.raises(PlanError, match="belongs to the nxdi runtime; vllm-neuron reads neuron_config"):
        planner.plan(make_request(instance_type="trn2.48xlarge", extra_args=extra))


def test_qwen_7b_on_vllm_neuron_uses_only_degrees_that_divide_its_28_heads():
    plan = planner.plan(make_request("Qwen/Qwen2.5-7B-Instruct", instance_type="trn2.48xlarge"))
    assert 28 % plan.tensor_parallel_size == 0
    with pytest.raises(PlanError, match="does not divide"):
        planner.plan(make_request("Qwen/Qwen2.5-7B-Instruct", instance_type="trn2.48xlarge", tensor_parallel_size=8))
    # Too big for TP 4, and 8+ do not divide 28 heads: the message lists the usable degrees.
    with pytest.raises(PlanError, match=r"largest legal degree \(legal: 1, 2, 4\)"):
        planner.plan(
            make_request(
                "Qwen/Qwen2.5-7B-Instruct", instance_type="trn2.48xlarge", max_num_seqs=256, max_model_len=32768
            )
        )


def test_an_explicit_arch_plans_a_model_outside_the_table():
    arch = ModelArch("acme/tiny", 1.0, 16, 16, 4, 64, max_position_embeddings=4096)
    plan = planner.plan(make_request("acme/tiny", arch=arch, instance_type="inf2.xlarge", max_model_len=4096))
    assert plan.tensor_parallel_size == 1 and plan.resource_name == "aws.amazon.com/neuroncore"


# --- properties -------------------------------------------------------------------------------

MODELS = [arch.name for arch in BUILTIN_MODELS]
INSTANCES = [instance.name for instance in CATALOG]


@st.composite
def requests(draw):
    model = draw(st.sampled_from(MODELS))
    return make_request(
        model,
        instance_type=draw(st.sampled_from(INSTANCES)),
        max_model_len=draw(st.sampled_from([512, 1024, 2048, 4096, 8192, 16384, 32768])),
        max_num_seqs=draw(st.integers(min_value=1, max_value=64)),
        runtime=draw(st.sampled_from([None, "nxdi"])),
        kv_cache_dtype=None,
    )


def _plan_or_error(request):
    try:
        return planner.plan(request), None
    except PlanError as exc:
        return None, exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_a_chosen_single_node_tp_is_legal_fits_in_memory_and_on_one_node(request):
    """Single-node plans only; groups have their own properties (test_groups.py)."""
    plan, error = _plan_or_error(request)
    if plan is None:
        assert str(error)
        return
    if plan.nodes_per_replica > 1:
        return
    instance = lookup(plan.instance_type)
    lnc = plan.logical_core_size
    assert plan.tensor_parallel_size in instance.tp_degrees(lnc)
    assert plan.memory_needed_bytes <= plan.memory_available_bytes
    assert plan.memory_available_bytes == plan.tensor_parallel_size * instance.memory_per_core_bytes(lnc)
    cores_per_unit = instance.logical_cores_per_chip(lnc) if plan.resource_name.endswith("/neuron") else 1
    allocated = plan.resource_count * cores_per_unit
    assert plan.tensor_parallel_size <= allocated <= instance.logical_cores(lnc)
    assert plan.replicas_per_node >= 1
    assert plan.replicas_per_node * allocated <= instance.logical_cores(lnc)
    if plan.resource_name.endswith("/neuron"):
        assert plan.resource_count in instance.legal_device_counts()
    assert plan.host_cpus * plan.replicas_per_node <= instance.vcpus
    assert plan.host_memory_bytes * plan.replicas_per_node <= instance.host_memory_gib * GIB


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_validating_a_tp_agrees_with_choosing_it(request):
    plan, _ = _plan_or_error(request)
    instance = lookup(request.instance_type)
    degrees = instance.tp_degrees(instance.default_lnc)
    if plan is None:
        # Nothing fits (or the request is impossible for another reason): the largest degree fails too.
        with pytest.raises(PlanError):
            planner.plan(replace(request, tensor_parallel_size=degrees[-1]))
        return
    validated = planner.plan(replace(request, tensor_parallel_size=plan.tensor_parallel_size))
    assert replace(validated, reasons=()) == replace(plan, reasons=())
    # Minimality: every smaller legal degree (on one node, or in a smaller group) is refused.
    node_cores = instance.logical_cores(plan.logical_core_size)
    smaller_groups = [n * node_cores for n in (2, 4, 8) if n < plan.nodes_per_replica]
    for smaller in [*(d for d in degrees if d < plan.tensor_parallel_size), *smaller_groups]:
        with pytest.raises(PlanError):
            planner.plan(replace(request, tensor_parallel_size=smaller))


@settings(max_examples=100, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    seqs=st.integers(min_value=1, max_value=128),
    length=st.sampled_from([1024, 4096, 16384]),
)
def test_without_an_instance_the_planner_picks_one_that_a_direct_request_confirms(model, seqs, length):
    request = make_request(model, max_num_seqs=seqs, max_model_len=length)
    plan, _ = _plan_or_error(request)
    if plan is None:
        return
    direct = planner.plan(replace(request, instance_type=plan.instance_type))
    assert direct.tensor_parallel_size == plan.tensor_parallel_size
    assert not lookup(plan.instance_type).inferred


def test_gpt_oss_is_only_auto_placed_on_trainium2_and_warned_about_elsewhere():
    # On memory alone gpt-oss-120b would fit inf2.48xlarge at TP 24; there is no recipe there.
    assert planner.plan(make_request("openai/gpt-oss-120b")).instance_family == "trn2"
    forced = planner.plan(make_request("openai/gpt-oss-120b", instance_type="inf2.48xlarge"))
    assert any(reason.startswith("warning: openai/gpt-oss-120b has documented") for reason in forced.reasons)


@settings(max_examples=100, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    instance=st.sampled_from(INSTANCES),
    seqs=st.integers(min_value=1, max_value=63),
    extra=st.integers(min_value=1, max_value=64),
)
def test_more_concurrent_sequences_never_need_a_smaller_tp(model, instance, seqs, extra):
    fewer, _ = _plan_or_error(make_request(model, instance_type=instance, max_num_seqs=seqs, max_model_len=4096))
    more, _ = _plan_or_error(make_request(model, instance_type=instance, max_num_seqs=seqs + extra, max_model_len=4096))
    if more is not None:
        assert fewer is not None
        assert fewer.tensor_parallel_size <= more.tensor_parallel_size
        assert fewer.kv_cache_bytes <= more.kv_cache_bytes


@pytest.mark.parametrize("module", ["catalog", "models", "planner", "vllm_args"])
def test_every_exported_name_exists(module):
    import importlib

    mod = importlib.import_module(f"neuronfleet.neuron.{module}")
    assert all(hasattr(mod, name) for name in mod.__all__)
