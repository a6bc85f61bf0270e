"""The split of a replica's expected startup into downloading, compiling and loading."""

from __future__ import annotations

import math

import pytest

from neuronfleet.neuron import planner, startup_phases
from neuronfleet.neuron.catalog import GIB

WEIGHTS = 16 * GIB


@pytest.mark.parametrize("runtime", ["vllm-neuron", "nxdi"])
@pytest.mark.parametrize("cache_hit", [False, True], ids=["cold", "cache hit"])
def test_the_phases_add_up_to_the_planners_estimate_before_rounding(runtime: str, cache_hit: bool):
    phases = startup_phases.expected_phases(WEIGHTS, runtime=runtime, cache_hit=cache_hit)
    total = sum(p.seconds for p in phases)
    estimate = planner.expected_startup_seconds(WEIGHTS, runtime=runtime, cache_hit=cache_hit)
    assert estimate == int(math.ceil(total / 30) * 30)


def test_a_cache_hit_has_no_compile_phase_and_weights_on_a_pvc_no_download():
    hit = startup_phases.expected_phases(WEIGHTS, runtime="vllm-neuron", cache_hit=True, downloads=False)
    assert [p.name for p in hit] == ["loading"]
    cold = startup_phases.expected_phases(WEIGHTS, runtime="vllm-neuron", cache_hit=False)
    assert [p.name for p in cold] == ["downloading", "compiling", "loading"]


def test_phase_at_walks_through_the_phases_and_overruns_in_the_last():
    phases = (
        startup_phases.PhaseEstimate("downloading", 60),
        startup_phases.PhaseEstimate("compiling", 600),
        startup_phases.PhaseEstimate("loading", 30),
    )
    assert startup_phases.phase_at(0, phases) == ("downloading", 0, 60)
    assert startup_phases.phase_at(100, phases) == ("compiling", 40, 600)
    assert startup_phases.phase_at(670, phases) == ("loading", 10, 30)
    assert startup_phases.phase_at(1000, phases) == ("loading", 340, 30)
