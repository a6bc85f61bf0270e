"""The oracle lower bound on hand-built demand: layers, gap bridging, warm starts, N*(t)."""

from __future__ import annotations

import pytest
from sim_builders import ROUND

from neuronfleet.sim.oracle import OraclePolicy, demand, layered_plan
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest


def test_layers_bridge_gaps_shorter_than_the_startup_and_pay_it_for_each_restart():
    needed = [1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 2]
    plan = layered_plan(needed, startup=3.0, cores=2)
    # Layer 1: [0,2) and [4,7) are 2 s apart (< 3): one warm interval [0,7) = 7 s; [12,13) after a
    # 5 s gap costs 1 + 3. Layer 2: [12,13) costs 1 + 3. Total 15 replica-seconds.
    assert plan.layers == (((0.0, 7.0), (12.0, 13.0)), ((12.0, 13.0),))
    assert plan.lbl_core_hours == pytest.approx(2 * 15 / 3600)
    assert plan.lb0_core_hours == pytest.approx(2 * 7 / 3600)


def test_a_first_interval_closer_to_zero_than_the_startup_is_kept_warm_from_zero():
    plan = layered_plan([0, 0, 1], startup=5.0, cores=1)
    assert plan.layers == (((0.0, 3.0),),)
    assert plan.lbl_core_hours == pytest.approx(3 / 3600)  # cheaper than 1 + 5


@pytest.mark.parametrize("startup", [0.0, 60.0, 1200.0], ids=["no startup", "60 s", "cold compile"])
def test_lb_l_never_shrinks_with_a_slower_startup_and_never_undercuts_lb0(startup):
    needed = [0] * 100 + [3] * 50 + [0] * 400 + [1] * 20 + [0] * 100
    plan = layered_plan(needed, startup=startup, cores=4)
    assert plan.lb0_core_hours == pytest.approx(4 * (150 + 20) / 3600)
    assert plan.lbl_core_hours >= plan.lb0_core_hours
    # Never cheaper with a slower start (equal once every layer is kept warm from t=0).
    assert plan.lbl_core_hours >= layered_plan(needed, startup=startup / 2, cores=4).lbl_core_hours


def test_the_oracle_policy_requests_each_replica_one_startup_before_it_is_needed():
    plan = layered_plan([0] * 100 + [1] * 10, startup=30.0, cores=1)
    policy = OraclePolicy(plan)
    assert plan.lbl_core_hours == pytest.approx((10 + 30) / 3600)
    assert policy.initial_replicas() == 0
    assert policy.desired(None, 69.0) == 0
    assert policy.desired(None, 70.0) == 1
    assert policy.desired(None, 110.0) == 0


def test_one_request_needs_one_replica_from_arrival_until_its_slowest_allowed_finish():
    slo = Slo()
    request = TraceRequest(0.0, 1000, 11)
    needed = demand([request], ROUND, slo)
    # Prefill must end within the TTFT budget (1.25 s); 10 decode tokens may take 10 / 10 tok/s = 1 s.
    end = ROUND.alpha + ROUND.gamma * 1000 + 10 / slo.min_tokens_per_second
    assert needed[0] == 1
    assert all(n == 1 for n in needed[: int(end)])
    assert all(n == 0 for n in needed[int(end) + 1 :])


def test_demand_grows_with_concurrent_prompts():
    burst = [TraceRequest(0.0, 3000, 2) for _ in range(40)]
    assert max(demand(burst, ROUND, Slo())) > max(demand(burst[:4], ROUND, Slo())) >= 1


def test_averaging_the_fluid_need_flattens_a_one_second_burst():
    burst = [TraceRequest(100.0, 3000, 2)] * 12
    sharp = demand(burst, ROUND, Slo())
    smooth = demand(burst, ROUND, Slo(), smooth_seconds=5.0)
    assert len(sharp) == len(smooth)
    assert max(smooth) < max(sharp)
