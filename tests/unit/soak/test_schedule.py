"""The soak's fault schedule: seeded, covering every kind, inside its window, never overlapping what cannot overlap."""

from __future__ import annotations

import itertools

import pytest

from neuronfleet.soak import schedule
from neuronfleet.soak.schedule import EXCLUSIVE, KINDS, Roles

ROLES = Roles("ns/chat", "ns/batch", "ns/compiled")


def test_one_seed_gives_one_schedule_and_another_seed_another():
    first = schedule.plan(7, start=25, end=120, roles=ROLES, mean_gap=3.5)
    assert first == schedule.plan(7, start=25, end=120, roles=ROLES, mean_gap=3.5)
    assert first != schedule.plan(8, start=25, end=120, roles=ROLES, mean_gap=3.5)


@pytest.mark.parametrize("seed", range(10))
def test_a_short_soak_covers_every_kind_within_its_window(seed: int):
    faults = schedule.plan(seed, start=25, end=120, roles=ROLES, mean_gap=3.5)
    assert {f.kind for f in faults} == set(KINDS)
    assert all(f.at >= 25 and f.end <= 120 for f in faults)
    assert [f.at for f in faults] == sorted(f.at for f in faults)


@pytest.mark.parametrize("seed", range(5))
def test_exclusive_kinds_never_overlap_and_targets_follow_the_roles(seed: int):
    faults = schedule.plan(seed, start=30, end=1800, roles=ROLES, mean_gap=20, long=True)
    for group in EXCLUSIVE:
        spans = sorted((f.at, f.end) for f in faults if f.kind in group)
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), group
    for fault in faults:
        if fault.kind in schedule.GLOBAL:
            assert fault.fleet == ""
        elif fault.kind == "compile_failure":
            assert fault.fleet == ROLES.compiled
        elif fault.kind in ("spec_update", "spec_unplannable", "md_recreate"):
            assert fault.fleet == ROLES.spare
        else:
            assert fault.fleet in (ROLES.loaded, ROLES.spare)


def test_a_long_soak_holds_prometheus_down_for_minutes_and_a_short_one_for_seconds():
    long = schedule.plan(3, start=30, end=1800, roles=ROLES, mean_gap=20, long=True)
    short = schedule.plan(3, start=25, end=120, roles=ROLES, mean_gap=3.5)
    assert min(f.seconds for f in long if f.kind == "prometheus_outage") >= 60
    assert max(f.seconds for f in short if f.kind == "prometheus_outage") < 20
    assert len(long) > 50


def test_api_error_bursts_use_the_statuses_a_server_sends_under_load():
    faults = schedule.plan(1, start=0, end=3600, roles=ROLES, mean_gap=5, long=True)
    statuses = {f.param("status") for f in faults if f.kind == "api_errors"}
    assert statuses == {409, 429, 500, 503}


@pytest.mark.parametrize("seed", range(5))
def test_in_a_short_soak_the_killed_operator_stays_down_past_its_peering_lifetime(seed: int):
    faults = schedule.plan(seed, start=25, end=120, roles=ROLES, mean_gap=3.5)
    assert all(f.seconds > 20 for f in faults if f.kind == "operator_kill")


def test_conflicts_are_only_injected_into_writes():
    faults = schedule.plan(1, start=0, end=3600, roles=ROLES, mean_gap=5, long=True)
    assert {f.param("method") for f in faults if f.kind == "api_errors" and f.param("status") == 409} == {"PATCH"}
