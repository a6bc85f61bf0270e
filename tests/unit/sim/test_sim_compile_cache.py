"""The simulator on a compiled-artifact cache hit vs miss: what a cold compile costs a fleet.

The replica startup for each case is the planner's per-key expectation for the profile's shape
(cache hit: download + cached NEFFs + load; miss: download + cold compile + load). A seeded
step load (0.5 -> 4 requests/s) makes the fleet scale up once; figures are printed (run with -s),
and the assertions are the direction of the effect, which the engine model guarantees for a step.
"""

from __future__ import annotations

import random

import pytest

from neuronfleet.neuron import capacity, planner
from neuronfleet.sim.profiles import get_profile
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.trace import TraceRequest

PROFILE = get_profile("llama-3.1-8b-trn2-tp4")


def planned_startup(*, cache_hit: bool) -> float:
    request = capacity.plan_request(
        PROFILE,
        max_num_batched_tokens=PROFILE.max_num_batched_tokens,
        max_model_len=4096,
        compiled_cache_hit=cache_hit,
    )
    return float(planner.plan(request).expected_startup_seconds)


def step_trace(seed: int = 1) -> list[TraceRequest]:
    rng = random.Random(seed)
    trace: list[TraceRequest] = []
    t = 0.0
    while t < 3600:
        t += rng.expovariate(0.5 if t < 900 else 4.0)
        trace.append(TraceRequest(t, 1000, 200))
    return trace


HIT, MISS = planned_startup(cache_hit=True), planned_startup(cache_hit=False)


def test_the_planner_expects_a_cache_hit_to_start_much_faster():
    assert MISS >= 2 * HIT


@pytest.mark.parametrize("policy", ["neuronfleet", "hpa"])
def test_a_cold_compile_on_every_scale_up_costs_slo_attainment_and_neuroncore_hours(policy: str):
    trace = step_trace()
    hit = run_policy(trace, PROFILE, policy, startup_seconds=HIT).report
    miss = run_policy(trace, PROFILE, policy, startup_seconds=MISS).report
    print(
        f"\n{policy}: startup {HIT:.0f} s vs {MISS:.0f} s -> attainment {hit.attainment:.1%} vs {miss.attainment:.1%}, "
        f"worst 5 min {hit.worst_window_attainment:.1%} vs {miss.worst_window_attainment:.1%}, "
        f"NeuronCore-h {hit.core_hours:.1f} vs {miss.core_hours:.1f} (starting {hit.startup_core_hours:.1f} vs "
        f"{miss.startup_core_hours:.1f}), peak replicas {hit.peak_replicas} vs {miss.peak_replicas}"
    )
    assert miss.attainment < hit.attainment
    assert miss.worst_window_attainment < hit.worst_window_attainment
    assert miss.startup_core_hours > hit.startup_core_hours


def test_even_the_clairvoyant_oracle_pays_for_the_longer_start():
    trace = step_trace()
    hit = run_policy(trace, PROFILE, "oracle", startup_seconds=HIT)
    miss = run_policy(trace, PROFILE, "oracle", startup_seconds=MISS)
    print(f"\nLB_L {hit.plan.lbl_core_hours:.2f} vs {miss.plan.lbl_core_hours:.2f} NeuronCore-h")
    assert miss.plan.lbl_core_hours > hit.plan.lbl_core_hours
