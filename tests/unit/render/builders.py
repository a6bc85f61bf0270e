"""Builders for render tests: a ModelDeployment from overrides, and a hand-made Plan.

`make_plan` stands in for the planner where a test is about rendering, not planning: its
defaults are the shape of a Llama-3.1-8B replica on inf2.48xlarge at TP 8, and every field can
be overridden to probe one rendering rule at a time.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from neuronfleet.api import resource
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.types import Plan

__all__ = ["GIB", "deep_merge", "make_md", "make_plan"]

GIB = 1024**3


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_md(name: str = "llama3-8b", *, namespace: str = "ml", **spec_overrides: Any) -> ModelDeployment:
    """A ModelDeployment with a minimal spec, deep-merged with `spec_overrides` (camelCase keys)."""
    spec: dict[str, Any] = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}
    return resource.load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": deep_merge(spec, spec_overrides),
        }
    )


_PLAN = Plan(
    model="meta-llama/Llama-3.1-8B-Instruct",
    instance_type="inf2.48xlarge",
    instance_family="inf2",
    runtime="nxdi",
    tensor_parallel_size=8,
    logical_core_size=1,
    cores_per_replica=8,
    devices_per_replica=4,
    resource_name="aws.amazon.com/neuron",
    resource_count=4,
    replicas_per_node=3,
    needs_contiguous_cores=True,
    weights_bytes=16 * GIB,
    kv_cache_bytes=8 * GIB,
    memory_needed_bytes=29 * GIB,
    memory_available_bytes=128 * GIB,
    host_memory_bytes=230 * GIB,
    host_cpus=57,
    expected_startup_seconds=900,
    args=(
        "--served-model-name",
        "llama3-8b",
        "--port",
        "8000",
        "--tensor-parallel-size",
        "8",
        "--max-model-len",
        "8192",
        "--max-num-seqs",
        "32",
        "--num-gpu-blocks-override",
        "32",
    ),
    env=(("NEURON_SKIP_EFA_AFFINITY", "1"),),
    reasons=("hand-made plan for render tests",),
)


def make_plan(**overrides: Any) -> Plan:
    return dataclasses.replace(_PLAN, **overrides)
