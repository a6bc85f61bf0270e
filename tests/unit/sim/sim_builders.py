"""Small builders shared by the simulator tests: a round-number profile and tiny traces."""

from __future__ import annotations

from neuronfleet.sim.fleet import SimResult, simulate
from neuronfleet.sim.policies import StaticPolicy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.trace import TraceRequest

# Round numbers so expected times can be worked out by hand: a step costs
# 10 ms + 1 ms per decoding sequence + 0.1 ms per prefill token.
ROUND = EngineProfile(
    name="round",
    model="test",
    instance_type="test",
    tensor_parallel_size=2,
    cores=2,
    alpha=0.010,
    beta=0.001,
    gamma=0.0001,
    max_num_seqs=4,
    max_num_batched_tokens=1000,
    kv_cache_tokens=100_000,
)


def request(arrival: float, prompt: int, output: int) -> TraceRequest:
    return TraceRequest(arrival, prompt, output)


def run_static(trace: list[TraceRequest], *, replicas: int = 1, profile: EngineProfile = ROUND) -> SimResult:
    return simulate(trace, profile, StaticPolicy(replicas), startup_seconds=60.0, initial_replicas=replicas)
