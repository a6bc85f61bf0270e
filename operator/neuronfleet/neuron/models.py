"""Built-in shapes of common models, so a ModelDeployment can name a model without describing it.

The planner sizes weights and KV cache from a handful of numbers that live in each model's
Hugging Face `config.json` (num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim
or hidden_size / num_attention_heads, max_position_embeddings) and the parameter count from its
model card (safetensors metadata). Any other model works too: the user gives `spec.model.arch`.

Lookups ignore case, an `hf://` prefix and the `-Instruct` part of the name (instruction-tuned
and base checkpoints share their shape), and accept the name without the organisation.
"""

from __future__ import annotations

import dataclasses

from neuronfleet.errors import PlanError
from neuronfleet.neuron.types import ModelArch, PlanRequest

__all__ = ["BUILTIN_MODELS", "lookup_model", "resolve_arch"]

# gpt-oss recipes exist for Trainium2/3 only (vllm-neuron tutorial-gpt-oss.md,
# nxd-inference trn3-gpt-oss-120b-tutorial.rst); none for inf2/trn1.
_GPT_OSS_FAMILIES = ("trn2", "trn3")

BUILTIN_MODELS: tuple[ModelArch, ...] = (
    # huggingface.co/meta-llama/Llama-3.1-8B(-Instruct)/config.json: 32 layers, 32 heads,
    # 8 KV heads, hidden 4096 -> head_dim 128, 131072 positions; 8.03B parameters.
    ModelArch(
        name="meta-llama/Llama-3.1-8B-Instruct",
        params_billions=8.03,
        num_layers=32,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131072,
    ),
    # huggingface.co/meta-llama/Llama-3.1-70B(-Instruct)/config.json: 80 layers, 64 heads,
    # 8 KV heads, hidden 8192 -> head_dim 128, 131072 positions; 70.6B parameters.
    ModelArch(
        name="meta-llama/Llama-3.1-70B-Instruct",
        params_billions=70.55,
        num_layers=80,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131072,
    ),
    # huggingface.co/meta-llama/Llama-3.3-70B-Instruct/config.json: same shape as Llama-3.1-70B.
    ModelArch(
        name="meta-llama/Llama-3.3-70B-Instruct",
        params_billions=70.55,
        num_layers=80,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131072,
    ),
    # huggingface.co/meta-llama/Llama-3.1-405B(-Instruct)/config.json: 126 layers, 128 heads, 8 KV heads,
    # hidden 16384 -> head_dim 128, 131072 positions; 405B parameters (model card; 405.85B counted
    # from the BF16 checkpoint's size [INFERRED, not re-checked here]).
    ModelArch(
        name="meta-llama/Llama-3.1-405B-Instruct",
        params_billions=405.85,
        num_layers=126,
        num_attention_heads=128,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=131072,
    ),
    # huggingface.co/Qwen/Qwen2.5-7B-Instruct/config.json: 28 layers, 28 heads, 4 KV heads,
    # hidden 3584 -> head_dim 128, 32768 positions; 7.62B parameters.
    ModelArch(
        name="Qwen/Qwen2.5-7B-Instruct",
        params_billions=7.62,
        num_layers=28,
        num_attention_heads=28,
        num_kv_heads=4,
        head_dim=128,
        max_position_embeddings=32768,
    ),
    # huggingface.co/Qwen/Qwen2.5-72B-Instruct/config.json: 80 layers, 64 heads, 8 KV heads,
    # hidden 8192 -> head_dim 128, 32768 positions; 72.7B parameters.
    ModelArch(
        name="Qwen/Qwen2.5-72B-Instruct",
        params_billions=72.71,
        num_layers=80,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=32768,
    ),
    # huggingface.co/mistralai/Mistral-7B-Instruct-v0.3/config.json: 32 layers, 32 heads,
    # 8 KV heads, head_dim 128, 32768 positions; 7.25B parameters.
    ModelArch(
        name="mistralai/Mistral-7B-Instruct-v0.3",
        params_billions=7.25,
        num_layers=32,
        num_attention_heads=32,
        num_kv_heads=8,
        head_dim=128,
        max_position_embeddings=32768,
    ),
    # huggingface.co/openai/gpt-oss-20b/config.json: 24 layers, 64 heads, 8 KV heads,
    # head_dim 64, 131072 positions, 32 experts (4 active); 20.9B parameters, all resident; 3.6B
    # active per token (OpenAI's gpt-oss model card; NVIDIA NeMo's GPT-OSS model page: "21B parameters
    # (3.6B active parameters)").
    ModelArch(
        name="openai/gpt-oss-20b",
        params_billions=20.91,
        num_layers=24,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=64,
        max_position_embeddings=131072,
        is_moe=True,
        active_params_billions=3.6,
        supported_families=_GPT_OSS_FAMILIES,
    ),
    # huggingface.co/openai/gpt-oss-120b/config.json: 36 layers, 64 heads, 8 KV heads,
    # head_dim 64 (the same shape vllm-neuron's kv-cache-quantization design doc quotes),
    # 131072 positions, 128 experts (4 active); 116.8B parameters, all resident; 5.1B active per
    # token (OpenAI's gpt-oss model card; NVIDIA NeMo: "117B parameters (5.1B active parameters)").
    ModelArch(
        name="openai/gpt-oss-120b",
        params_billions=116.83,
        num_layers=36,
        num_attention_heads=64,
        num_kv_heads=8,
        head_dim=64,
        max_position_embeddings=131072,
        is_moe=True,
        active_params_billions=5.1,
        supported_families=_GPT_OSS_FAMILIES,
    ),
)


def _key(model_id: str) -> str:
    key = model_id.strip().lower()
    key = key.removeprefix("hf://")
    return key.replace("-instruct", "")


def lookup_model(model_id: str, models: tuple[ModelArch, ...] = BUILTIN_MODELS) -> ModelArch | None:
    """The built-in shape of a model id, or None when the table does not know it."""
    wanted = _key(model_id)
    for arch in models:
        if _key(arch.name) == wanted:
            return arch
    if "/" not in wanted:
        by_basename = [arch for arch in models if _key(arch.name).split("/", 1)[-1] == wanted]
        if len(by_basename) == 1:
            return by_basename[0]
    return None


def resolve_arch(request: PlanRequest) -> ModelArch:
    """The shape to plan with: the explicit one wins, then the built-in table, else a PlanError."""
    if request.arch is not None:
        return request.arch
    arch = lookup_model(request.model)
    if arch is None:
        known = ", ".join(a.name for a in BUILTIN_MODELS)
        raise PlanError(
            f"model {request.model!r} is not in the built-in table; set spec.model.arch "
            f"(params, layers, attention heads, KV heads, head dim) to plan it. Built-in: {known}"
        )
    # Messages should name the model as the user wrote it, not the table's canonical id.
    return dataclasses.replace(arch, name=request.model)
