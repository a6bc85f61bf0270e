"""Named render scenarios shared by the golden and schema-validation tests."""

from __future__ import annotations

from typing import NamedTuple

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron.types import Plan

from .builders import GIB, make_md, make_plan

__all__ = ["SCENARIOS", "Scenario"]


class Scenario(NamedTuple):
    md: ModelDeployment
    plan: Plan
    replicas: int


SCENARIOS: dict[str, Scenario] = {
    "llama3-8b-inf2": Scenario(
        md=make_md(
            model={"tokenSecretRef": {"name": "hf-token", "key": "token"}, "revision": "main"},
            monitoring={"podMonitor": True, "scrapeInterval": "10s"},
        ),
        plan=make_plan(),
        replicas=2,
    ),
    "llama33-70b-trn2-s3": Scenario(
        md=make_md(
            "llama33-70b",
            namespace="inference",
            model={"source": "s3://models/llama-3.3-70b-instruct", "id": "meta-llama/Llama-3.3-70B-Instruct"},
            neuron={"instanceType": "trn2.48xlarge", "compiledArtifacts": {"policy": "require", "pvc": "neff-cache"}},
            scheduling={
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}],
                "priorityClassName": "inference-critical",
            },
            rollout={"maxSurge": 1, "maxUnavailable": 0},
        ),
        plan=make_plan(
            model="meta-llama/Llama-3.3-70B-Instruct",
            instance_type="trn2.48xlarge",
            instance_family="trn2",
            runtime="vllm-neuron",
            tensor_parallel_size=32,
            logical_core_size=2,
            cores_per_replica=32,
            devices_per_replica=8,
            resource_name="aws.amazon.com/neuroncore",
            resource_count=32,
            replicas_per_node=2,
            host_memory_bytes=870 * GIB,
            host_cpus=81,
            expected_startup_seconds=2100,
            args=("--served-model-name", "llama33-70b", "--port", "8000", "--tensor-parallel-size", "32"),
            env=(("NEURON_SKIP_EFA_AFFINITY", "1"), ("NEURON_LOGICAL_NC_CONFIG", "2")),
        ),
        replicas=1,
    ),
}
