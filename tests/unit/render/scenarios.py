"""Named render scenarios shared by the golden and schema-validation tests."""

from __future__ import annotations

from typing import NamedTuple

from neuronfleet.api import convert
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.neuron import planner
from neuronfleet.neuron.types import Plan

from .builders import GIB, make_md, make_plan

__all__ = ["SCENARIOS", "Scenario"]


class Scenario(NamedTuple):
    md: ModelDeployment
    plan: Plan
    replicas: int


def planned(md: ModelDeployment, replicas: int) -> Scenario:
    """A scenario whose plan comes from the real planner (multi-node and DRA shapes are its output)."""
    return Scenario(md=md, plan=planner.plan(convert.plan_request(md)), replicas=replicas)


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
    # Llama-3.1-405B on trn1.32xlarge: a LeaderWorkerSet of 4-node groups, device plugin + EFA.
    "llama31-405b-trn1-lws": planned(
        make_md(
            "llama31-405b",
            model={"source": "hf://meta-llama/Llama-3.1-405B-Instruct", "tokenSecretRef": {"name": "hf-token"}},
            neuron={"instanceType": "trn1.32xlarge", "compiledArtifacts": {"pvc": "neuron-compile-cache"}},
            serving={"maxModelLen": 8192, "maxNumSeqs": 8},
            monitoring={"podMonitor": True},
        ),
        replicas=2,
    ),
    # Llama-3.3-70B on trn2.48xlarge with the Neuron DRA driver: a claim of 8 connected devices, LNC 2.
    "llama33-70b-trn2-dra": planned(
        make_md(
            "llama33-70b",
            model={"source": "hf://meta-llama/Llama-3.3-70B-Instruct"},
            neuron={"instanceType": "trn2.48xlarge", "tensorParallelSize": 32, "allocation": "dra"},
            serving={"maxModelLen": 8192, "maxNumSeqs": 8},
        ),
        replicas=2,
    ),
    # Llama-3.1-405B with long contexts on a Trn2 UltraServer: 4-node groups, DRA UltraServerConfig.
    "llama31-405b-trn2u-ultraserver": planned(
        make_md(
            "llama31-405b-long",
            model={"source": "hf://meta-llama/Llama-3.1-405B-Instruct"},
            neuron={"instanceType": "trn2u.48xlarge", "allocation": "dra"},
            serving={"maxModelLen": 32768, "maxNumSeqs": 8},
        ),
        replicas=1,
    ),
}
