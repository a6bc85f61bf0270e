"""The fleet on finite capacity: pool caps, node provisioning, outages, groups of nodes, node-hours.

Each case drives a fixed schedule of replica counts (`Steps`), so what the fleet does with capacity is
checked without an autoscaler in the loop.
"""

from __future__ import annotations

import datetime
import math

import pytest
from sim_builders import ROUND, request

from neuronfleet.placement.replicas import Placement
from neuronfleet.sim.fleet import simulate
from neuronfleet.sim.observe import EPOCH, FleetView
from neuronfleet.sim.report import node_hours, summarize
from neuronfleet.sim.shapes import Pool, ReplicaShape
from neuronfleet.sim.slo import Slo

SHARED = ReplicaShape("primary", ROUND, 60.0, replicas_per_node=2)


class Steps:
    """Asks for `before` replicas until `at`, then `after`; keeps every view it was shown."""

    name = "steps"
    sync_seconds = 10.0
    scrape_seconds = 10.0
    scrape_kv = False

    def __init__(self, before: int, after: int, at: float = 100.0) -> None:
        self.before, self.after, self.at = before, after, at
        self.views: list[tuple[float, FleetView]] = []

    def desired(self, view: FleetView, now: float) -> int:
        self.views.append((now, view))
        return self.before if now < self.at else self.after


def steady(until: float = 600.0, every: float = 2.0) -> list:
    return [request(t * every, 100, 10) for t in range(int(until / every))]


def run(policy: Steps, pools: dict[str, Pool] | None, shape: ReplicaShape = SHARED, initial: int = 1):
    return simulate(
        steady(), ROUND, policy, startup_seconds=60.0, initial_replicas=initial, shapes=[shape], pools=pools
    )


def test_without_pools_every_replica_binds_when_requested_and_is_billed_from_then():
    result = run(Steps(1, 3), None)
    added = [r for r in result.replicas if r.requested > 0]
    assert len(added) == 2
    assert all(r.bound == r.requested and r.ready == r.requested + 60.0 for r in added)
    assert result.nodes == []


def test_a_pool_cap_leaves_replicas_beyond_its_nodes_waiting_unbilled_and_unserving():
    # One node of two slots: the warm replica and one more fit; two wait for ever.
    result = run(Steps(1, 4), {"test": Pool("test", max_nodes=1)})
    bound = [r for r in result.replicas if r.bound is not None]
    waiting = [r for r in result.replicas if r.bound is None]
    assert (len(bound), len(waiting)) == (2, 2)
    assert all(r.ready is None for r in waiting)
    served_by = {req.replica for req in result.requests}
    assert served_by <= {r.id for r in bound}
    assert len(result.nodes) == 1
    # Billing: only the bound replicas' cores, from their bind.
    report = summarize(result, Slo())
    expected = sum(ROUND.cores * (result.horizon - r.bound) for r in bound) / 3600.0
    assert report.core_hours == pytest.approx(expected)


def test_a_waiting_replica_is_shown_unschedulable_with_the_schedulers_message_and_since():
    policy = Steps(1, 4)
    run(policy, {"test": Pool("test", max_nodes=1)})
    now, view = next((t, v) for t, v in policy.views if t > 110.0)
    seen = view.placement["primary"]
    assert (seen.asked, seen.ready + seen.starting, len(seen.unschedulable)) == (4, 2, 2)
    pod = seen.unschedulable[0]
    assert pod.placement is Placement.UNSCHEDULABLE
    assert pod.message == "0/1 nodes are available: 1 Insufficient aws.amazon.com/neuroncore."
    assert pod.waited_seconds(EPOCH + datetime.timedelta(seconds=now)) == pytest.approx(now - 105.0)
    assert view.starting_replicas >= 2  # a plain policy sees waiting replicas as starting


def test_a_provisioned_node_registers_after_the_delay_and_startup_runs_from_the_bind():
    result = run(Steps(1, 3), {"test": Pool("test", provisioning_seconds=120.0)})
    late = [r for r in result.replicas if r.requested > 0 and r.bound is not None and r.bound > r.requested]
    assert late, "a replica beyond the warm node's slots waits for a new node"
    for r in late:
        assert r.bound == pytest.approx(r.requested + 120.0)
        assert r.ready == pytest.approx(r.bound + 60.0)
    node = result.nodes[1]
    assert (node.launched, node.ready) == (pytest.approx(late[0].requested), pytest.approx(late[0].bound))


def test_node_hours_bill_launching_nodes_from_the_launch():
    result = run(Steps(1, 3), {"test": Pool("test", provisioning_seconds=120.0)})
    expected = sum(result.horizon - n.launched for n in result.nodes) / 3600.0
    assert node_hours(result) == {"test": pytest.approx(expected)}


def test_an_empty_node_is_removed_after_the_consolidation_delay():
    result = run(Steps(3, 1, at=100.0), {"test": Pool("test", consolidate_after_seconds=50.0)})
    removed = [n for n in result.nodes if n.removed is not None]
    assert len(removed) == 1
    freed = max(r.gone for r in result.replicas if r.gone is not None)
    assert removed[0].removed == pytest.approx(freed + 50.0)


def test_an_outage_stops_the_types_replicas_retries_their_requests_and_refills_after_it():
    pools = {"test": Pool("test", provisioning_seconds=30.0, outages=((200.0, 320.0),))}
    policy = Steps(2, 2)
    result = run(policy, pools, initial=2)
    stopped = [r for r in result.replicas if r.stopped]
    assert len(stopped) == 2 and all(r.gone == 200.0 for r in stopped)
    replacements = [r for r in result.replicas if r.requested == 200.0]
    assert len(replacements) == 2  # the ReplicaSet keeps its count: two pods wait for a node
    assert all(r.bound == pytest.approx(320.0 + 30.0) for r in replacements)
    # Nothing serves during the outage: every request arriving in it finishes after a replacement is ready.
    ready_again = min(r.ready for r in replacements)
    assert all(q.first_token >= ready_again for q in result.requests if 200.0 <= q.arrival < 320.0)
    assert all(math.isfinite(q.finish) for q in result.requests)
    # The nodes went at the outage start; new ones launched at its end.
    assert sorted(n.removed for n in result.nodes if n.removed is not None) == [200.0]
    assert [n.launched for n in result.nodes if n.removed is None] == [320.0]


def test_requests_in_flight_when_the_node_goes_are_retried_from_scratch():
    pools = {"test": Pool("test", outages=((5.0, 50.0),))}
    trace = [request(4.9, 100, 2000)]  # 2000 tokens at ~11 ms: still decoding at t=5
    result = simulate(trace, ROUND, Steps(1, 1), startup_seconds=60.0, initial_replicas=1, shapes=[SHARED], pools=pools)
    (req,) = result.requests
    assert result.retried == 1
    assert req.first_token > 50.0  # served again by a replica on a node launched after the outage
    assert req.replica != result.replicas[0].id


GROUP = ReplicaShape("primary", ROUND, 90.0, nodes_per_replica=4)


def test_a_group_binds_when_all_its_nodes_exist_and_starts_in_the_groups_startup():
    result = run(Steps(1, 2), {"test": Pool("test", provisioning_seconds=100.0)}, shape=GROUP)
    second = result.replicas[1]
    assert second.bound == pytest.approx(second.requested + 100.0)
    assert second.ready == pytest.approx(second.bound + GROUP.startup_seconds)
    assert len(result.nodes) == 8  # 4 warm, 4 launched for the second group


def test_a_pool_cap_that_cannot_hold_a_whole_group_launches_no_partial_group():
    result = run(Steps(1, 2), {"test": Pool("test", max_nodes=6)}, shape=GROUP)
    assert len(result.nodes) == 4
    assert result.replicas[1].bound is None


def test_without_pools_a_group_occupies_its_nodes_for_node_hours():
    result = run(Steps(2, 2), None, shape=GROUP, initial=2)
    assert node_hours(result) == {"test": pytest.approx(2 * 4 * result.horizon / 3600.0)}


def test_with_a_router_timeout_requests_finding_no_replica_fail_and_count_as_missed():
    pools = {"test": Pool("test", outages=((100.0, 400.0),))}
    trace = [request(t, 100, 2) for t in (50.0, 150.0, 405.0)]
    result = simulate(
        trace,
        ROUND,
        Steps(1, 1),
        startup_seconds=60.0,
        initial_replicas=1,
        shapes=[SHARED],
        pools=pools,
        router_timeout_seconds=60.0,
    )
    early, lost, late = result.requests
    assert math.isfinite(early.finish) and not early.dropped
    assert lost.dropped and lost.first_token == math.inf  # nothing ready until 460 s: gave up at 210 s
    assert not late.dropped and late.first_token >= 400.0 + 60.0  # waited for the new replica, within 60 s
    report = summarize(result, Slo())
    assert report.dropped == 1
    assert report.attainment < 1.0
