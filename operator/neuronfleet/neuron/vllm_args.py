"""`vllm serve` arguments for the two vLLM-on-Neuron runtime profiles.

Two stacks serve vLLM on Neuron today and they disagree on flags (reference: aws-neuron-sdk
vllm-neuron/docs/guides/reference-configuration.md; libraries/nxd-inference/developer_guides/
vllm-user-guide-v1.rst; vllm-project/vllm-neuron README and vllm_neuron/platform.py):

- ``vllm-neuron`` (trn2/trn3): Neuron knobs go under ``--additional-config '{"neuron_config": ..}'``;
  compiled shapes are the ``num_seqs_buckets`` / ``num_batched_tokens_buckets`` ladders whose
  largest entries must equal ``--max-num-seqs`` / ``--max-num-batched-tokens``; prefix caching is on
  by default; weight quantization is ``neuron_config.quantization`` (never vLLM's ``--quantization``).
- ``nxdi`` (inf2/trn1, also trn2): knobs go under ``"override_neuron_config"``; the KV cache is sized
  at compile time so ``--num-gpu-blocks-override`` is mandatory (``max_num_seqs`` for the contiguous
  layout, ``ceil(max_model_len / block_size) * max_num_seqs`` with prefix caching); chunked prefill
  is off, so ``--max-num-batched-tokens`` must cover ``--max-model-len``.

This module owns those rules and the list of Neuron-only keys each profile accepts inside
``--additional-config``; vLLM's own parser checks the rest of the command line (issue 10).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neuronfleet.errors import PlanError

__all__ = [
    "ADDITIONAL_CONFIG_KEYS",
    "ADDITIONAL_CONFIG_SECTION",
    "PLANNER_OWNED_FLAGS",
    "RUNTIMES",
    "RUNTIME_NXDI",
    "RUNTIME_VLLM_NEURON",
    "ServingOptions",
    "build_args",
    "check_extra_args",
    "merge_additional_config",
    "nxdi_num_gpu_blocks",
    "power_of_two_ladder",
    "split_additional_config",
    "validate_additional_config",
]

RUNTIME_VLLM_NEURON = "vllm-neuron"
RUNTIME_NXDI = "nxdi"
RUNTIMES: tuple[str, ...] = (RUNTIME_VLLM_NEURON, RUNTIME_NXDI)

# The key under --additional-config where each profile reads its Neuron options.
ADDITIONAL_CONFIG_SECTION: Mapping[str, str] = {
    RUNTIME_VLLM_NEURON: "neuron_config",
    RUNTIME_NXDI: "override_neuron_config",
}

# Neuron-only keys a user may put inside --additional-config, per profile, as
# {top-level key: allowed nested keys or None when the value is a scalar}.
ADDITIONAL_CONFIG_KEYS: Mapping[str, Mapping[str, frozenset[str] | None]] = {
    # vllm-neuron reference-configuration.md (compilation, sampling, quantization, vision options)
    # plus fp8_packed_kv from its Llama-3.3-70B FP8 tutorial.
    RUNTIME_VLLM_NEURON: {
        "neuron_config": frozenset(
            {
                "num_batched_tokens_buckets",
                "num_seqs_buckets",
                "kv_segment_size_buckets",
                "decode_context_length_buckets",
                "on_device_sampling_config",
                "quantization",
                "fp8_packed_kv",
            }
        ),
        "vision_neuron_config": frozenset(
            {
                "num_vision_tokens_buckets",
                "vision_attention_block_size",
                "max_vision_seq_len",
                "tp_size",
                "dp_size",
                "encoder_cache_num_blocks",
                "encoder_cache_min_hold_time_ms",
            }
        ),
        "mm_language_model_only": None,
    },
    # NxD Inference NeuronConfig attributes (libraries/nxd-inference/api-guides/api-guide.rst)
    # that make sense to override under vLLM; batch size and sequence length come from vLLM flags.
    RUNTIME_NXDI: {
        "override_neuron_config": frozenset(
            {
                "enable_bucketing",
                "context_encoding_buckets",
                "token_generation_buckets",
                "is_prefix_caching",
                "is_block_kv_layout",
                "pa_num_blocks",
                "pa_block_size",
                "quantized",
                "quantized_checkpoints_path",
                "quantization_type",
                "quantization_dtype",
                "modules_to_not_convert",
                "on_device_sampling_config",
                "sequence_parallel_enabled",
                "fused_qkv",
                "qkv_kernel_enabled",
                "attn_kernel_enabled",
                "mlp_kernel_enabled",
                "flash_decoding_enabled",
                "async_mode",
                "logical_nc_config",
                "cc_pipeline_tiling_factor",
                "enable_fused_speculation",
                "enable_eagle_speculation",
                "save_sharded_checkpoint",
                "skip_warmup",
                # Multi-node NxDI (aws-neuron/neuronx-distributed-inference examples/multi_node.md): the
                # ranks one node runs and its first global rank; the planner sets both for groups.
                "local_ranks_size",
                "start_rank_id",
            }
        ),
    },
}

# Flags whose value the plan derives and the pod's resources depend on: set them through the
# spec, not extraArgs, or the replica would run with a shape the scheduler did not size.
PLANNER_OWNED_FLAGS: Mapping[str, str] = {
    "--tensor-parallel-size": "spec.neuron.tensorParallelSize",
    "-tp": "spec.neuron.tensorParallelSize",
    "--max-model-len": "spec.serving.maxModelLen",
    "--max-num-seqs": "spec.serving.maxNumSeqs",
    "--served-model-name": "spec.model.servedName",
    "--port": "the operator's fixed serving port",
}

_ADDITIONAL_CONFIG_FLAGS = ("--additional-config", "--additional_config")


@dataclass(frozen=True)
class ServingOptions:
    """The serving shape the planner settled on, in the terms `vllm serve` understands."""

    runtime: str
    served_name: str
    port: int
    tensor_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    dtype: str
    enable_prefix_caching: bool
    block_size: int | None = None  # None: leave the runtime's default
    num_gpu_blocks_override: int | None = None
    kv_cache_dtype: str | None = None
    additional_config: Mapping[str, Any] = field(default_factory=dict)
    speculative_config: Mapping[str, Any] | None = None
    extra_args: tuple[str, ...] = ()


def power_of_two_ladder(low: int, high: int) -> list[int]:
    """Powers of two from `low` up to `high`, ending exactly at `high` (the runtimes' bucket rule)."""
    low = max(1, min(low, high))
    ladder: list[int] = []
    value = 1
    while value < low:
        value *= 2
    while value < high:
        ladder.append(value)
        value *= 2
    ladder.append(high)
    return ladder


def nxdi_num_gpu_blocks(*, max_model_len: int, max_num_seqs: int, block_size: int | None, prefix_caching: bool) -> int:
    """NxDI's mandatory --num-gpu-blocks-override: one block per sequence, or enough paged blocks."""
    if not prefix_caching:
        return max_num_seqs
    if not block_size:
        raise PlanError("NxDI prefix caching needs a block size")
    return -(-max_model_len // block_size) * max_num_seqs


def split_additional_config(extra_args: Sequence[str]) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """Pull a user's --additional-config JSON out of extra args, so it can be merged, not doubled."""
    found: dict[str, Any] | None = None
    rest: list[str] = []
    args = list(extra_args)
    i = 0
    while i < len(args):
        arg = args[i]
        raw: str | None = None
        if arg in _ADDITIONAL_CONFIG_FLAGS:
            if i + 1 >= len(args):
                raise PlanError(f"{arg} in extraArgs has no value")
            raw = args[i + 1]
            i += 2
        elif arg.split("=", 1)[0] in _ADDITIONAL_CONFIG_FLAGS and "=" in arg:
            raw = arg.split("=", 1)[1]
            i += 1
        else:
            rest.append(arg)
            i += 1
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PlanError(f"--additional-config in extraArgs is not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise PlanError("--additional-config in extraArgs must be a JSON object")
        found = merge_additional_config(found or {}, value)
    return found, tuple(rest)


def check_extra_args(extra_args: Sequence[str]) -> None:
    """Refuse extra args that would silently override a value the plan sized resources for."""
    for arg in extra_args:
        flag = arg.split("=", 1)[0]
        if flag in PLANNER_OWNED_FLAGS:
            raise PlanError(f"{flag} must not be passed in extraArgs; set {PLANNER_OWNED_FLAGS[flag]} instead")


def validate_additional_config(runtime: str, config: Mapping[str, Any]) -> None:
    """Check --additional-config keys against the runtime profile's documented Neuron options."""
    allowed = ADDITIONAL_CONFIG_KEYS.get(runtime)
    if allowed is None:
        raise PlanError(f"unknown runtime {runtime!r}; known runtimes: {', '.join(RUNTIMES)}")
    for key, value in config.items():
        if key not in allowed:
            hint = ""
            for other, other_section in ADDITIONAL_CONFIG_SECTION.items():
                if other != runtime and key == other_section:
                    own = ADDITIONAL_CONFIG_SECTION[runtime]
                    hint = f" ({key} belongs to the {other} runtime; {runtime} reads {own})"
            raise PlanError(
                f"--additional-config key {key!r} is not understood by the {runtime} runtime{hint}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )
        nested = allowed[key]
        if nested is None:
            continue
        if not isinstance(value, Mapping):
            raise PlanError(f"--additional-config {key} must be a JSON object, got {type(value).__name__}")
        unknown = sorted(set(value) - nested)
        if unknown:
            raise PlanError(
                f"--additional-config {key} has keys the {runtime} runtime does not document: "
                f"{', '.join(unknown)}; allowed: {', '.join(sorted(nested))}"
            )


def merge_additional_config(planned: Mapping[str, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
    """Planned config with the user's keys laid over it, one level deep (user values win)."""
    merged: dict[str, Any] = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in planned.items()
    }
    for key, value in (user or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def _json(value: Mapping[str, Any]) -> str:
    # Sorted and compact: the args feed a content hash that rolls pods, so they must be stable.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def build_args(options: ServingOptions) -> tuple[str, ...]:
    """`vllm serve <model>` arguments for one replica; extra args come last so users can add flags."""
    args: list[str] = [
        "--tensor-parallel-size",
        str(options.tensor_parallel_size),
        "--max-model-len",
        str(options.max_model_len),
        "--max-num-seqs",
        str(options.max_num_seqs),
        "--max-num-batched-tokens",
        str(options.max_num_batched_tokens),
    ]
    if options.block_size is not None:
        args += ["--block-size", str(options.block_size)]
    args.append("--enable-prefix-caching" if options.enable_prefix_caching else "--no-enable-prefix-caching")
    if options.num_gpu_blocks_override is not None:
        args += ["--num-gpu-blocks-override", str(options.num_gpu_blocks_override)]
    args += ["--dtype", options.dtype]
    if options.kv_cache_dtype:
        args += ["--kv-cache-dtype", options.kv_cache_dtype]
    args += [
        "--served-model-name",
        options.served_name,
        "--host",
        "0.0.0.0",
        "--port",
        str(options.port),
    ]
    if options.speculative_config:
        args += ["--speculative-config", _json(options.speculative_config)]
    if options.additional_config:
        validate_additional_config(options.runtime, options.additional_config)
        args += ["--additional-config", _json(options.additional_config)]
    args += list(options.extra_args)
    return tuple(args)
