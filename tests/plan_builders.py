"""Hand-made Plans for tests that are about rendering or the controller, not the planner.

A real plan comes from `neuronfleet.neuron.planner.plan`; these fixed ones keep such tests
independent of planner changes. Every field can be overridden with `make_plan`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from neuronfleet.neuron.types import Plan

__all__ = ["GIB", "INF2_TP8", "TRN2_TP4", "make_plan"]

GIB = 1024**3

INF2_TP8 = Plan(
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


TRN2_TP4 = dataclasses.replace(
    INF2_TP8,
    instance_type="trn2.48xlarge",
    instance_family="trn2",
    runtime="vllm-neuron",
    tensor_parallel_size=4,
    logical_core_size=2,
    cores_per_replica=4,
    devices_per_replica=1,
    resource_name="aws.amazon.com/neuroncore",
    resource_count=4,
    replicas_per_node=16,
    kv_cache_bytes=GIB,
    memory_needed_bytes=20 * GIB,
    memory_available_bytes=96 * GIB,
    host_memory_bytes=100 * GIB,
    host_cpus=10,
    expected_startup_seconds=600,
    args=(),
    env=(),
)
"""Llama-3.1-8B on one trn2 chip (TP 4 at LNC 2), vllm-neuron: the calibrated shape."""


def make_plan(base: Plan = INF2_TP8, **overrides: Any) -> Plan:
    """`base` with `overrides` applied."""
    return dataclasses.replace(base, **overrides)
