"""The built-in model table: lookups are forgiving, unknown models ask for spec.model.arch."""

from __future__ import annotations

import pytest

from neuronfleet.errors import PlanError
from neuronfleet.neuron.models import BUILTIN_MODELS, lookup_model, resolve_arch
from neuronfleet.neuron.types import ModelArch, PlanRequest


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct"),
        ("META-LLAMA/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://meta-llama/Llama-3.3-70B-Instruct", "meta-llama/Llama-3.3-70B-Instruct"),
        ("mistralai/Mistral-7B-v0.3", "mistralai/Mistral-7B-Instruct-v0.3"),
        ("gpt-oss-120b", "openai/gpt-oss-120b"),
        ("Qwen/Qwen2.5-72B", "Qwen/Qwen2.5-72B-Instruct"),
    ],
    ids=[
        "exact id",
        "base model without -Instruct",
        "any case",
        "hf:// prefix",
        "-Instruct in the middle of the name",
        "name without the organisation",
        "Qwen base name",
    ],
)
def test_lookup_finds_the_table_entry(query, expected):
    arch = lookup_model(query)
    assert arch is not None and arch.name == expected


def test_unknown_model_without_arch_asks_for_spec_model_arch():
    with pytest.raises(PlanError, match=r"spec\.model\.arch"):
        resolve_arch(PlanRequest(model="acme/secret-13b", source="acme/secret-13b", served_name="x"))


def test_an_explicit_arch_wins_over_the_table():
    arch = ModelArch("meta-llama/Llama-3.1-8B", 9.0, 33, 32, 8, 128)
    request = PlanRequest(model="meta-llama/Llama-3.1-8B", source="m", served_name="x", arch=arch)
    assert resolve_arch(request) is arch


def test_resolved_table_entry_carries_the_users_name_for_messages():
    arch = resolve_arch(PlanRequest(model="Llama-3.1-8B", source="m", served_name="x"))
    assert arch.name == "Llama-3.1-8B" and arch.num_layers == 32


@pytest.mark.parametrize("arch", BUILTIN_MODELS, ids=[a.name for a in BUILTIN_MODELS])
def test_table_shapes_are_plausible_transformers(arch):
    # GQA: KV heads divide attention heads; head_dim is a power of two the kernels support.
    assert arch.num_attention_heads % arch.num_kv_heads == 0
    assert arch.head_dim in (64, 128)
    assert 1 < arch.params_billions < 1000  # up to Llama-3.1-405B
