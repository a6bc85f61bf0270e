"""`vllm serve` argument building for both runtime profiles, and --additional-config checks."""

from __future__ import annotations

import json

import pytest

from neuronfleet.errors import PlanError
from neuronfleet.neuron import vllm_args
from neuronfleet.neuron.vllm_args import ServingOptions


def options(**overrides) -> ServingOptions:
    base = dict(
        runtime="vllm-neuron",
        served_name="llama",
        port=8000,
        tensor_parallel_size=4,
        max_model_len=8192,
        max_num_seqs=32,
        max_num_batched_tokens=2048,
        dtype="bfloat16",
        enable_prefix_caching=True,
        block_size=32,
    )
    base.update(overrides)
    return ServingOptions(**base)


def value(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("low", "high", "ladder"),
    [
        (1, 32, [1, 2, 4, 8, 16, 32]),
        (128, 2048, [128, 256, 512, 1024, 2048]),
        (256, 5000, [256, 512, 1024, 2048, 4096, 5000]),
        (256, 100, [100]),
    ],
    ids=["decode batches", "prefill chunks", "ends exactly at a non-power-of-two top", "top below the floor"],
)
def test_bucket_ladders_are_powers_of_two_ending_at_the_maximum(low, high, ladder):
    assert vllm_args.power_of_two_ladder(low, high) == ladder


@pytest.mark.parametrize(
    ("prefix", "block", "blocks"),
    [(False, None, 32), (True, 32, 256 * 32), (True, 16, 512 * 32)],
    ids=["contiguous: one block per sequence", "paged 32-token blocks", "paged 16-token blocks"],
)
def test_nxdi_block_count_follows_the_kv_layout(prefix, block, blocks):
    got = vllm_args.nxdi_num_gpu_blocks(max_model_len=8192, max_num_seqs=32, block_size=block, prefix_caching=prefix)
    assert got == blocks


def test_vllm_neuron_args_carry_the_common_flags_and_neuron_config():
    config = {"neuron_config": {"num_seqs_buckets": [1, 32]}}
    args = vllm_args.build_args(options(additional_config=config, extra_args=("--seed", "1")))
    assert value(args, "--tensor-parallel-size") == "4"
    assert value(args, "--max-model-len") == "8192"
    assert value(args, "--max-num-seqs") == "32"
    assert value(args, "--max-num-batched-tokens") == "2048"
    assert value(args, "--block-size") == "32"
    assert "--enable-prefix-caching" in args and "--no-enable-prefix-caching" not in args
    assert (value(args, "--host"), value(args, "--port"), value(args, "--dtype")) == ("0.0.0.0", "8000", "bfloat16")
    assert value(args, "--served-model-name") == "llama"
    assert json.loads(value(args, "--additional-config")) == config
    assert "--num-gpu-blocks-override" not in args
    assert args[-2:] == ("--seed", "1")


def test_nxdi_args_have_the_mandatory_block_override_and_override_neuron_config():
    config = {"override_neuron_config": {"enable_bucketing": True}}
    args = vllm_args.build_args(
        options(
            runtime="nxdi",
            enable_prefix_caching=False,
            block_size=None,
            num_gpu_blocks_override=32,
            max_num_batched_tokens=8192,
            additional_config=config,
        )
    )
    assert value(args, "--num-gpu-blocks-override") == "32"
    assert "--no-enable-prefix-caching" in args
    assert "--block-size" not in args
    assert json.loads(value(args, "--additional-config")) == config


def test_json_arguments_are_stable_so_the_config_hash_does_not_churn():
    one = vllm_args.build_args(
        options(additional_config={"neuron_config": {"num_seqs_buckets": [32], "quantization": "mxfp8"}})
    )
    two = vllm_args.build_args(
        options(additional_config={"neuron_config": {"quantization": "mxfp8", "num_seqs_buckets": [32]}})
    )
    assert one == two


def test_unknown_neuron_config_keys_are_refused_with_the_allowed_list():
    with pytest.raises(PlanError) as err:
        vllm_args.validate_additional_config("vllm-neuron", {"neuron_config": {"tp_degree": 8}})
    assert "tp_degree" in str(err.value) and "num_seqs_buckets" in str(err.value)


def test_a_nested_section_must_be_an_object():
    with pytest.raises(PlanError, match="must be a JSON object"):
        vllm_args.validate_additional_config("nxdi", {"override_neuron_config": [1]})


def test_each_profiles_section_is_allowed_only_there():
    vllm_args.validate_additional_config("nxdi", {"override_neuron_config": {"pa_block_size": 32}})
    with pytest.raises(PlanError, match="belongs to the vllm-neuron runtime"):
        vllm_args.validate_additional_config("nxdi", {"neuron_config": {}})


def test_split_pulls_every_additional_config_form_out_of_extra_args():
    found, rest = vllm_args.split_additional_config(
        [
            "--seed",
            "3",
            "--additional-config",
            '{"neuron_config": {"a": 1}}',
            '--additional_config={"neuron_config": {"b": 2}}',
        ]
    )
    assert found == {"neuron_config": {"a": 1, "b": 2}}
    assert rest == ("--seed", "3")


@pytest.mark.parametrize(
    "extra",
    [["--additional-config", "{not json"], ["--additional-config", "[1]"], ["--additional-config"]],
    ids=["not JSON", "not an object", "no value"],
)
def test_a_broken_additional_config_in_extra_args_is_a_plan_error(extra):
    with pytest.raises(PlanError):
        vllm_args.split_additional_config(extra)


def test_merge_lays_user_keys_over_planned_ones_without_mutating_either():
    planned = {"neuron_config": {"num_seqs_buckets": [1, 2], "quantization": "mxfp8"}}
    user = {"neuron_config": {"num_seqs_buckets": [2]}, "mm_language_model_only": True}
    merged = vllm_args.merge_additional_config(planned, user)
    assert merged == {
        "neuron_config": {"num_seqs_buckets": [2], "quantization": "mxfp8"},
        "mm_language_model_only": True,
    }
    assert planned["neuron_config"]["num_seqs_buckets"] == [1, 2]


@pytest.mark.parametrize("flag", ["--max-model-len=4096", "-tp", "--port", "--served-model-name"])
def test_flags_the_plan_sizes_resources_for_cannot_come_from_extra_args(flag):
    with pytest.raises(PlanError, match="must not be passed in extraArgs"):
        vllm_args.check_extra_args([flag, "1"])
