"""Invariants of whole simulated runs, on real policies and on a slice of a real-shaped trace.

Work is conserved (every prompt token prefilled once, every output token generated once), every
request is served exactly once and after it arrived, lifecycles run forward, billing sums agree
two ways, and the oracle's LB_L is never above the cost of a run that met every SLO.
"""

from __future__ import annotations

import random

import pytest
from sim_builders import ROUND

from neuronfleet.sim.fleet import SimResult
from neuronfleet.sim.policies import StaticPolicy
from neuronfleet.sim.report import core_hours
from neuronfleet.sim.runner import run_policy
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest


def bursty_trace(
    seed: int, *, seconds: float = 480.0, prompts: tuple[int, ...] = (60, 400, 1200, 3000)
) -> list[TraceRequest]:
    """Poisson arrivals whose rate jumps every two minutes, Azure-like token lengths."""
    rng = random.Random(seed)
    out: list[TraceRequest] = []
    t = 0.0
    while t < seconds:
        rate = (1.0, 6.0, 3.0, 0.3)[int(t // 120) % 4]
        t += rng.expovariate(rate)
        out.append(TraceRequest(t, rng.choice(prompts), rng.choice((1, 2, 20, 150, 400))))
    return out


POLICIES = ["hpa", "keda-tokens", "keda-waiting", "kpa", "apa", "neuronfleet", "oracle"]


@pytest.fixture(scope="module", params=[7, 11], ids=["seed 7", "seed 11"])
def runs(request: pytest.FixtureRequest) -> dict[str, SimResult]:
    trace = bursty_trace(request.param)
    return {name: run_policy(trace, ROUND, name, startup_seconds=90.0).result for name in POLICIES}


@pytest.mark.parametrize("name", POLICIES)
def test_work_is_conserved_and_every_request_is_served_exactly_once(runs, name):
    result = runs[name]
    assert result.prompt_tokens == sum(r.prompt_tokens for r in result.requests)
    assert result.generation_tokens == sum(r.output_tokens for r in result.requests)
    assert len({r.index for r in result.requests}) == len(result.requests)
    for r in result.requests:
        assert r.arrival <= r.first_token <= r.finish <= result.horizon
        assert r.replica >= 0


@pytest.mark.parametrize("name", POLICIES)
def test_requests_run_only_on_ready_replicas_and_lifecycles_run_forward(runs, name):
    result = runs[name]
    for rec in result.replicas:
        assert rec.ready is None or rec.requested <= rec.ready
        assert rec.draining is None or (rec.ready is not None and rec.ready <= rec.draining)
        assert rec.gone is None or rec.requested <= rec.gone
        if rec.draining is not None:
            assert rec.gone is not None and rec.draining <= rec.gone
    for r in result.requests:
        rec = result.replicas[r.replica]
        assert rec.ready is not None and rec.ready <= r.first_token
        assert rec.gone is None or r.finish <= rec.gone


@pytest.mark.parametrize("name", POLICIES)
def test_billed_core_hours_equal_the_integral_of_the_billed_replica_count(runs, name):
    result = runs[name]
    series = result.replica_series
    area = 0.0
    for (t0, billed, _), (t1, _, _) in zip(series, [*series[1:], (result.horizon, 0, 0)], strict=True):
        area += billed * (min(t1, result.horizon) - min(t0, result.horizon))
    total, startup = core_hours(result)
    assert total == pytest.approx(ROUND.cores * area / 3600.0)
    assert 0.0 <= startup <= total


@pytest.mark.parametrize("seed", [3, 5, 8], ids=lambda s: f"seed {s}")
def test_the_oracle_is_never_above_a_run_that_met_every_slo(seed):
    # Prompts small enough that one prefill chunk cannot break a decode's rate on its own.
    trace = bursty_trace(seed, seconds=480.0, prompts=(50, 150, 300))
    slo = Slo()
    met = 0
    for replicas in (6, 10, 16):
        run = run_policy(trace, ROUND, "static", startup_seconds=90.0, slo=slo, target=replicas)
        if run.report.attainment == 1.0:
            met += 1
            assert run.plan.lbl_core_hours <= run.report.core_hours
            assert run.plan.lb0_core_hours <= run.plan.lbl_core_hours
    for name, target in (("hpa", 1.0), ("kpa", 2.0), ("neuronfleet", 0.5), ("oracle", None)):
        run = run_policy(trace, ROUND, name, startup_seconds=90.0, slo=slo, target=target)
        if run.report.attainment == 1.0:
            met += 1
            assert run.plan.lbl_core_hours <= run.report.core_hours
    assert met > 0, "no run met every SLO: the property was not exercised"


def test_a_static_fleet_never_scales():
    result = run_policy(bursty_trace(1, seconds=300.0), ROUND, "static", startup_seconds=60.0, target=3).result
    assert result.decisions == []
    assert len(result.replicas) == 3
    assert StaticPolicy(3).desired(None, 0.0) == 3


def test_a_run_starts_from_the_fleet_it_is_given_warm_and_from_the_oracles_otherwise():
    """The benchmark starts every policy from OPT's t=0 fleet; without one, from LB_L's."""
    trace = bursty_trace(3, seconds=300.0)
    given = run_policy(trace, ROUND, "hpa", startup_seconds=600.0, target=1.0, initial_replicas=7)
    assert given.result.replica_series[0][1:] == (7, 7)  # billed and ready at t=0
    default = run_policy(trace, ROUND, "hpa", startup_seconds=600.0, target=1.0)
    assert default.result.replica_series[0][1] == max(1, default.plan.replicas_at(0.0)) != 7
