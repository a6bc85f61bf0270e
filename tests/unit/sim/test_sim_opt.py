"""OPT's invariants: it reaches the goal it was searched for, never costs more than the best static fleet,
never less than the engine time the tokens cost; its schedule is replayed with each start a startup early."""

from __future__ import annotations

import pytest

from neuronfleet.sim import opt, workloads
from neuronfleet.sim.profiles import LLAMA_8B_TRN2_TP4
from neuronfleet.sim.slo import Slo

SLO = Slo()
GOAL = 0.99


@pytest.fixture(scope="module")
def bursty():
    """Fifteen minutes of recurring bursts: a schedule can follow them more cheaply than a fixed fleet."""
    trace = workloads.generate("bursts", 2, duration=900.0)
    runs = opt.static_runs(trace, LLAMA_8B_TRN2_TP4, SLO, goal=GOAL)
    return trace, runs


@pytest.mark.parametrize("startup", [60.0, 600.0], ids=["a one-minute startup", "a ten-minute startup"])
def test_opt_reaches_its_goal_costs_no_more_than_the_best_static_fleet_and_no_less_than_the_work(bursty, startup):
    trace, runs = bursty
    found = opt.search(trace, LLAMA_8B_TRN2_TP4, SLO, startup_seconds=startup, goal=GOAL, runs=runs)
    assert found.report.attainment >= GOAL, "verified in the simulator, not predicted"
    assert found.static_best is not None
    assert found.report.core_hours <= found.static_best.report.core_hours + 1e-9
    assert found.report.core_hours >= opt.work_bound(trace, LLAMA_8B_TRN2_TP4)
    assert len(found.schedule) == int(trace[-1].arrival // opt.WINDOW_SECONDS) + 1


def test_a_short_startup_lets_opt_follow_the_bursts_below_the_fixed_fleet(bursty):
    trace, runs = bursty
    found = opt.search(trace, LLAMA_8B_TRN2_TP4, SLO, startup_seconds=60.0, goal=GOAL, runs=runs)
    assert found.static_best is not None
    assert found.report.core_hours < found.static_best.report.core_hours
    assert min(found.schedule) < max(found.schedule)


def test_the_static_sweep_ends_a_margin_past_the_smallest_fleet_that_reaches_the_goal(bursty):
    _, runs = bursty
    sizes = [r.replicas for r in runs]
    assert sizes == sorted(sizes)
    best = next(r.replicas for r in runs if r.report.attainment >= GOAL)
    assert sizes[-1] >= best
    assert all(r.report.attainment < GOAL for r in runs if r.replicas < best)


def test_the_schedule_asks_for_each_replica_a_startup_before_its_window():
    policy = opt.SchedulePolicy((2, 2, 5, 5, 1), startup_seconds=90.0, window_seconds=60.0)
    assert policy.initial_replicas() == 2
    assert policy.desired(None, 10.0) == 2
    assert policy.desired(None, 31.0) == 5, "window 2 starts at 120 s: asked for at 30 s"
    assert policy.desired(None, 200.0) == 5
    assert policy.desired(None, 250.0) == 1, "the last window needs one replica"


@pytest.mark.parametrize(
    ("startup", "kept"),
    [(600.0, True), (30.0, False)],
    ids=["a lull shorter than a startup is bridged", "with a short startup the lull is given back"],
)
def test_the_dp_bridges_a_lull_only_when_restarting_costs_more(startup, kept):
    # Two sizes; the big one is needed in windows 0-1 and 3-4 (the small one misses there), window 2 is quiet.
    small = opt.StaticRun(1, None, (100, 100, 0, 100, 100))  # type: ignore[arg-type]
    big = opt.StaticRun(3, None, (0, 0, 0, 0, 0))  # type: ignore[arg-type]
    schedule, _, misses = opt._dp([small, big], penalty=1e6, startup=startup, window=60.0)
    assert misses == 0
    assert (schedule[2] == 3) is kept


def test_a_schedule_found_for_a_longer_startup_keeps_opt_from_growing_when_the_startup_shrinks(bursty):
    trace, runs = bursty
    slow = opt.search(trace, LLAMA_8B_TRN2_TP4, SLO, startup_seconds=600.0, goal=GOAL, runs=runs)
    fast = opt.search(
        trace, LLAMA_8B_TRN2_TP4, SLO, startup_seconds=120.0, goal=GOAL, runs=runs, candidates=[slow.schedule]
    )
    assert fast.report.core_hours <= slow.report.core_hours + 1e-9
    assert fast.report.attainment >= GOAL
