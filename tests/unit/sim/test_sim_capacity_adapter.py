"""The simulated operator on finite capacity: allocate -> step -> allocate, with and without a fallback.

The loop must be the operator's (controller/autoscaling.py and controller/reconciler.py call the same
`placement.fallback.allocate` around `autoscale.step.step`), so these tests check what that loop does in
the simulator: the autoscaler's counts come from the allocation, and the pass spreads the decision over
the variants.
"""

from __future__ import annotations

import functools

import pytest

from neuronfleet.neuron import capacity
from neuronfleet.neuron.variants import VariantRequest, plan_variants
from neuronfleet.sim import adapter, workloads
from neuronfleet.sim.capacity_adapter import CapacityAwarePolicy
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.shapes import Pool, shape_of
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import thin

SLO = Slo()
STARTUP = 60.0
FALLBACK_AFTER = 120.0


@functools.cache
def shapes():
    request = capacity.plan_request(capacity.LLAMA_8B_TRN2_TP4, slo_tokens_per_second=SLO.min_tokens_per_second)
    primary, trn1 = plan_variants(request, [VariantRequest("trn1.32xlarge")])
    return shape_of(primary, startup_seconds=STARTUP), shape_of(trn1, startup_seconds=STARTUP)


@functools.cache
def trace():
    return thin(workloads.generate("steady", 1, duration=1500.0), 0.5, seed=1)


def operator(variants) -> CapacityAwarePolicy:
    inner = adapter.NeuronfleetPolicy(variants[0].profile, SLO, startup_seconds=STARTUP)
    return CapacityAwarePolicy(inner, variants, fallback_after_seconds=FALLBACK_AFTER)


def run(variants, pools, policy):
    return simulate(
        trace(),
        variants[0].profile,
        policy,
        startup_seconds=STARTUP,
        initial_replicas=3,
        shapes=variants,
        pools=pools,
    )


def test_on_unlimited_capacity_the_round_trip_decides_what_the_plain_autoscaler_decides():
    primary = shapes()[0]
    plain = adapter.NeuronfleetPolicy(primary.profile, SLO, startup_seconds=STARTUP)
    alone = simulate(trace(), primary.profile, plain, startup_seconds=STARTUP, initial_replicas=3, shapes=[primary])
    looped = run([primary], None, operator([primary]))
    assert looped.decisions == alone.decisions
    assert len(alone.decisions) > 0


OUTAGE = (500.0, 1000.0)


def outage_pools(variants):
    pools = {s.instance_type: Pool(s.instance_type, provisioning_seconds=30.0) for s in variants}
    primary = variants[0].instance_type
    pools[primary] = Pool(primary, provisioning_seconds=30.0, outages=(OUTAGE,))
    return pools


def test_in_an_outage_the_fallback_is_asked_for_only_after_fallback_after_seconds():
    variants = list(shapes())
    policy = operator(variants)
    run(variants, outage_pools(variants), policy)
    asked = [(t.at, t.after.replicas["trn1-32xlarge"]) for t in policy.ticks]
    first = next(at for at, n in asked if n > 0)
    assert OUTAGE[0] + FALLBACK_AFTER <= first <= OUTAGE[0] + FALLBACK_AFTER + policy.sync_seconds
    tick = next(t for t in policy.ticks if t.at == first)
    units = variants[1].units_per_replica
    assert tick.after.replicas["trn1-32xlarge"] == pytest.approx(-(-tick.decided // units), abs=1)


def test_after_the_outage_the_fallback_drains_once_the_primary_is_ready_and_is_never_counted_twice():
    variants = list(shapes())
    policy = operator(variants)
    result = run(variants, outage_pools(variants), policy)
    after = [t for t in policy.ticks if t.at > OUTAGE[1]]
    assert after[-1].after.replicas["trn1-32xlarge"] == 0
    # While the primary's replicas start beside the fallback's, the autoscaler's current capacity is what
    # it asked for, not that plus the fallback kept for the drain.
    pairs = list(zip(policy.ticks, policy.ticks[1:], strict=False))
    draining = [(a, b) for a, b in pairs if b.at > OUTAGE[1] and b.before.replicas["trn1-32xlarge"] > 0]
    assert draining, "the fallback drains over several syncs"
    assert all(b.observed_current <= a.decided for a, b in draining)
    # The primary served again before the fallback's last replica went.
    primary_ready = min(
        r.ready for r in result.replicas if r.variant == "primary" and r.requested >= OUTAGE[0] and r.ready
    )
    fallback_gone = max(r.gone or result.horizon for r in result.replicas if r.variant == "trn1-32xlarge")
    assert primary_ready < fallback_gone


def test_without_fallback_replicas_waiting_past_the_deadline_stop_counting_as_current():
    primary = shapes()[0]
    policy = CapacityAwarePolicy(
        adapter.NeuronfleetPolicy(primary.profile, SLO, startup_seconds=STARTUP), [primary], deadline_seconds=200.0
    )
    run([primary], outage_pools([primary]), policy)
    early = [t for t in policy.ticks if OUTAGE[0] < t.at < OUTAGE[0] + 200.0 - policy.sync_seconds]
    late = [t for t in policy.ticks if OUTAGE[0] + 200.0 + policy.sync_seconds < t.at < OUTAGE[1]]
    assert all(t.observed_current == t.before.current_replicas > 0 for t in early)
    assert all(t.observed_current == 0 for t in late), "every primary pod is stale: nothing on its way"
    assert all(t.after.unplaced_units > 0 for t in late)
