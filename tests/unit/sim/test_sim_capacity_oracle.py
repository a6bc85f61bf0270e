"""LB_L on a capacity timeline: what each variant can hold, the split of demand, the replay's leads."""

from __future__ import annotations

import dataclasses
import math

import pytest
from sim_builders import ROUND, request

from neuronfleet.sim.capacity_oracle import CapacityOraclePolicy, availability, plan_capacity_oracle
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.oracle import plan_oracle
from neuronfleet.sim.shapes import Pool, ReplicaShape
from neuronfleet.sim.slo import Slo

PRIMARY = ReplicaShape("primary", ROUND, 60.0, replicas_per_node=2)
# The fallback: same engine on another type, twice the cores per replica (so twice the cost per unit of work).
SLOWER = dataclasses.replace(ROUND, name="round-b", instance_type="other", cores=4)
FALLBACK = ReplicaShape("other", SLOWER, 30.0, replicas_per_node=1, units_per_replica=0.5)


def busy(until: float = 900.0, every: float = 0.1) -> list:
    """Enough concurrent decodes that the fluid need is several replicas of ROUND."""
    return [request(i * every, 200, 400) for i in range(int(until / every))]


def test_availability_is_nodes_times_packing_and_zero_through_an_outage_and_its_restart():
    pool = Pool("test", max_nodes=3, provisioning_seconds=40.0, outages=((100.0, 200.0),))
    cap = availability(PRIMARY, pool, 400)
    assert cap[0] == 6 and cap[99] == 6
    assert cap[100] == 0 and cap[199] == 0
    # After the outage: a node launched at 200 registers at 240 and its replica is ready at 300.
    assert cap[299] == 0 and cap[300] == 6
    group = ReplicaShape("g", ROUND, 60.0, nodes_per_replica=2)
    assert availability(group, Pool("test", max_nodes=5), 3) == [2, 2, 2]
    assert availability(PRIMARY, None, 2) == [math.inf, math.inf]


def test_without_limits_the_capacity_oracle_is_the_oracle():
    trace = busy()
    plain = plan_oracle(trace, ROUND, Slo(), 60.0)
    capped = plan_capacity_oracle(trace, [PRIMARY], None, Slo())
    assert capped.lbl_core_hours == pytest.approx(plain.lbl_core_hours)
    assert capped.plans["primary"].needed == plain.needed
    assert capped.unserved_seconds == 0


def test_a_pool_cap_holds_the_primary_under_it_and_the_fallback_covers_the_rest():
    trace = busy()
    pools = {"test": Pool("test", max_nodes=1)}
    free = plan_capacity_oracle(trace, [PRIMARY, FALLBACK], None, Slo())
    capped = plan_capacity_oracle(trace, [PRIMARY, FALLBACK], pools, Slo())
    assert max(free.plans["primary"].needed) > 2, "the trace needs more than the cap"
    assert max(capped.plans["primary"].needed) == 2
    assert max(capped.plans["other"].needed) > 0
    assert max(free.plans["other"].needed) == 0, "unconstrained, the cheaper primary takes everything"
    assert capped.lbl_core_hours > free.lbl_core_hours
    assert capped.unserved_seconds == 0


def test_with_no_fallback_an_outage_leaves_its_seconds_unserved():
    trace = busy()
    pools = {"test": Pool("test", provisioning_seconds=20.0, outages=((300.0, 500.0),))}
    plan = plan_capacity_oracle(trace, [PRIMARY], pools, Slo())
    # The outage, then a node's provisioning and a replica's startup before the primary serves again.
    assert plan.unserved_seconds == pytest.approx(500.0 + 20.0 + 60.0 - 300.0)
    assert all(n == 0 for n in plan.plans["primary"].needed[300:580])


def test_the_replay_asks_each_variant_its_startup_plus_provisioning_ahead():
    trace = busy()
    pools = {"test": Pool("test", provisioning_seconds=20.0, outages=((300.0, 500.0),)), "other": Pool("other")}
    plan = plan_capacity_oracle(trace, [PRIMARY, FALLBACK], pools, Slo())
    assert plan.leads == {"primary": 80.0, "other": 30.0}
    first_fallback = next(i for i, n in enumerate(plan.plans["other"].needed) if n)
    assert first_fallback == 300
    assert plan.replicas_at(300 - 30.0)["other"] > 0
    assert plan.replicas_at(300 - 31.0)["other"] == 0


def test_the_replayed_oracle_serves_through_the_outage_on_the_fallback():
    trace = busy(until=600.0, every=0.5)
    pools = {"test": Pool("test", outages=((200.0, 400.0),)), "other": Pool("other")}
    plan = plan_capacity_oracle(trace, [PRIMARY, FALLBACK], pools, Slo(), headroom=0.5)
    result = simulate(
        trace,
        ROUND,
        CapacityOraclePolicy(plan),
        startup_seconds=60.0,
        initial_replicas=plan.initial_replicas(),
        shapes=[PRIMARY, FALLBACK],
        pools=pools,
    )
    during = [r for r in result.requests if 210.0 <= r.arrival < 390.0]
    assert during and all(r.first_token - r.arrival < 5.0 for r in during)
    assert {result.replicas[r.replica].variant for r in during} == {"other"}


def test_headroom_scales_the_need_before_the_split():
    trace = busy()
    base = plan_capacity_oracle(trace, [PRIMARY], None, Slo())
    more = plan_capacity_oracle(trace, [PRIMARY], None, Slo(), headroom=0.5)
    assert sum(more.plans["primary"].needed) > sum(base.plans["primary"].needed)
    with pytest.raises(ValueError, match="headroom"):
        plan_capacity_oracle(trace, [PRIMARY], None, Slo(), headroom=-0.1)
