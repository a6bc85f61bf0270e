"""Each soak invariant on hand-made timelines: it passes a good one and fails a bad one.

A checker that cannot fail is a defect, so every checker has at least one timeline it must flag.
"""

from __future__ import annotations

from neuronfleet.soak import invariants as inv
from neuronfleet.soak.invariants import Child, Decision, Fleet, LogLine, MetricsGap, RssSample, Snapshot, Span, Write

KEY = "ns/chat"
UID = "md-1"


def deployment(replicas: int, *, uid: str = "d-1", name: str = "chat", rolled_out: bool = True) -> Child:
    return Child("Deployment", name, uid, UID, replicas, rolled_out)


def service(uid: str = "s-1", owner: str = UID) -> Child:
    return Child("Service", "chat", uid, owner)


def fleet(*children: Child, generation: int = 1, observed: int | None = 1, ready: bool | None = True) -> Fleet:
    return Fleet(KEY, UID, generation, observed, ready, 1, 4, children)


def timeline(*replicas: int | None, start: float = 0.0, step: float = 1.0) -> list[Snapshot]:
    """One snapshot per value: the fleet with that many replicas, or no fleet at all for None."""
    return [
        Snapshot(start + i * step, () if r is None else (fleet(deployment(r), service()),))
        for i, r in enumerate(replicas)
    ]


# -- replicas within [min, max] ------------------------------------------------------------------


def test_bounds_pass_inside_and_flag_a_workload_above_the_maximum():
    assert inv.check_bounds(timeline(1, 2, 4, 1), [], settle=10) == []
    (violation,) = inv.check_bounds(timeline(1, 5, 4), [], settle=10)
    assert (violation.invariant, violation.t) == ("replicas-within-bounds", 1.0)
    assert "5 replicas, bounds [1, 4]" in violation.evidence


def test_a_hand_edit_excuses_out_of_bounds_replicas_only_until_it_settles():
    edit = [Span("child_edit", 1.0, 1.0, (KEY,))]
    assert inv.check_bounds(timeline(1, 6, 6, 1), edit, settle=5) == []
    late = timeline(1, 6, 6, 6, step=4.0)  # still 6 at t=12, seven seconds after the settle window
    assert [v.t for v in inv.check_bounds(late, [Span("child_edit", 4.0, 4.0, (KEY,))], settle=5)] == [12.0]
    other = [Span("api_errors", 1.0, 3.0)]  # other faults never excuse it
    assert len(inv.check_bounds(timeline(1, 6), other, settle=5)) == 1


# -- no scale-down while metrics are missing ------------------------------------------------------


def test_a_scale_down_inside_a_metrics_gap_is_flagged_and_one_outside_is_not():
    snaps = timeline(3, 3, 3, 3, 2, 2, step=2.0)  # 3 -> 2 between t=6 and t=8
    inside = [MetricsGap(0.0, 20.0, (), "Prometheus down")]
    (violation,) = inv.check_no_scale_down_without_metrics(snaps, inside, [], lag=3, settle=10)
    assert violation.invariant == "no-scale-down-on-missing-metrics" and "3 -> 2" in violation.evidence
    after = [MetricsGap(0.0, 7.0, (), "Prometheus down")]
    assert inv.check_no_scale_down_without_metrics(snaps, after, [], lag=3, settle=10) == []


def test_a_scale_down_decided_just_before_the_gap_and_scale_ups_inside_it_pass():
    just_before = [MetricsGap(5.0, 20.0, (), "Prometheus down")]  # 6 - lag 3 is before the gap began
    assert (
        inv.check_no_scale_down_without_metrics(timeline(3, 3, 3, 3, 2, step=2.0), just_before, [], lag=3, settle=10)
        == []
    )
    gap = [MetricsGap(0.0, 20.0, (), "Prometheus down")]
    assert inv.check_no_scale_down_without_metrics(timeline(2, 2, 2, 2, 3, step=2.0), gap, [], lag=3, settle=10) == []


def test_a_gap_of_another_fleet_does_not_count():
    gap = [MetricsGap(0.0, 20.0, ("ns/other",), "replica hung")]
    assert inv.check_no_scale_down_without_metrics(timeline(3, 3, 3, 3, 2, step=2.0), gap, [], lag=3, settle=10) == []


# -- every replica change has a decision ----------------------------------------------------------


def test_a_replica_change_without_a_decision_event_is_flagged():
    snaps = timeline(1, 1, 2, 2)
    assert inv.check_changes_have_decisions(snaps, [Decision(2.5, KEY, "ScaledUp")], [], window=5, settle=10) == []
    (violation,) = inv.check_changes_have_decisions(snaps, [], [], window=5, settle=10)
    assert violation.invariant == "replica-change-has-decision" and "1 -> 2" in violation.evidence
    other = [Decision(2.0, "ns/other", "ScaledUp")]
    assert len(inv.check_changes_have_decisions(snaps, other, [], window=5, settle=10)) == 1


def test_restoring_a_hand_edit_needs_no_decision():
    snaps = timeline(1, 6, 1)
    assert (
        inv.check_changes_have_decisions(snaps, [], [Span("child_edit", 0.5, 0.5, (KEY,))], window=5, settle=10) == []
    )


def test_a_new_workload_is_not_a_change_of_the_old_one():
    snaps = [
        Snapshot(0.0, (fleet(deployment(2, uid="d-1")),)),
        Snapshot(1.0, (fleet(deployment(1, uid="d-2")),)),
    ]
    assert inv.check_changes_have_decisions(snaps, [], [], window=5, settle=10) == []


# -- no duplicate or orphaned children ------------------------------------------------------------


def test_two_workloads_are_allowed_for_a_rollout_but_not_for_longer_than_the_grace():
    two = fleet(deployment(1, uid="d-1"), deployment(1, uid="d-2", name="chat-v2"))
    brief = [Snapshot(float(t), (two,)) for t in range(5)] + [Snapshot(5.0, (fleet(deployment(1)),))]
    assert inv.check_children(brief, [], grace=10) == []
    lasting = [Snapshot(float(t), (two,)) for t in range(15)]
    (violation,) = inv.check_children(lasting, [], grace=10)
    assert violation.invariant == "no-duplicate-children" and "chat, chat-v2" in violation.evidence


def test_an_orphan_that_outlives_the_grace_is_flagged_once():
    orphan = service(uid="s-old", owner="md-gone")
    snaps = [Snapshot(float(t), (fleet(deployment(1)),), (orphan,)) for t in range(30)]
    (violation,) = inv.check_children(snaps, [], grace=10)
    assert violation.invariant == "no-orphaned-children" and "md-gone" in violation.evidence
    collected = [Snapshot(float(t), (fleet(deployment(1)),), (orphan,) if t < 5 else ()) for t in range(30)]
    assert inv.check_children(collected, [], grace=10) == []


# -- no fleet or child lost -----------------------------------------------------------------------


def test_a_fleet_that_disappears_is_lost_unless_it_is_being_recreated():
    snaps = timeline(1, 1, None, None, 1)
    (violation,) = inv.check_fleets_present(snaps, [], grace=10)
    assert (violation.invariant, violation.t) == ("no-fleet-lost", 2.0)
    recreate = [Span("md_recreate", 1.5, 3.5, (KEY,))]
    assert inv.check_fleets_present(snaps, recreate, grace=10) == []


def test_a_workload_deleted_and_not_recreated_is_lost_after_the_grace():
    snaps = [Snapshot(float(t), (fleet(deployment(1) if t < 2 else service()),)) for t in range(20)]
    deleted = [Span("child_edit", 2.0, 2.0, (KEY,))]
    (violation,) = inv.check_fleets_present(snaps, deleted, grace=10)
    assert violation.invariant == "no-child-lost"
    back = [Snapshot(float(t), (fleet(*([deployment(1)] if t < 2 or t > 6 else []), service()),)) for t in range(20)]
    assert inv.check_fleets_present(back, deleted, grace=10) == []


# -- convergence ----------------------------------------------------------------------------------


def _settling(converge_at: float, end: float = 100.0) -> list[Snapshot]:
    return [
        Snapshot(
            float(t),
            (
                fleet(
                    deployment(1, rolled_out=t >= converge_at),
                    generation=2,
                    observed=2 if t >= converge_at else 1,
                    ready=t >= converge_at,
                ),
            ),
        )
        for t in range(int(end))
    ]


def test_convergence_within_the_bound_passes_and_later_fails():
    fault = [Span("spec_update", 10.0, 12.0, (KEY,))]
    assert inv.check_convergence(_settling(30), fault, within=30) == []
    (violation,) = inv.check_convergence(_settling(60), fault, within=30)
    assert violation.invariant == "converges-after-faults" and "observedGeneration 1" in violation.evidence
    assert inv.convergence_times(_settling(30), fault) == [(fault[0], KEY, 18.0)]


def test_ready_must_match_the_pods():
    lying = [Snapshot(float(t), (fleet(deployment(1, rolled_out=False), ready=True),)) for t in range(60)]
    assert len(inv.check_convergence(lying, [Span("watch_cut", 5.0, 5.0)], within=30)) == 1


def test_convergence_is_not_judged_before_the_bound_has_passed_or_while_faults_continue():
    fault = [Span("spec_update", 10.0, 12.0, (KEY,))]
    assert inv.check_convergence(_settling(60, end=35), fault, within=30) == []
    busy = [*fault, Span("child_edit", 20.0, 20.0, (KEY,))]  # the next fault comes before the bound
    assert inv.check_convergence(_settling(25, end=45), busy, within=30) == []


# -- one operator at a time -----------------------------------------------------------------------


def test_a_handover_is_fine_but_interleaved_writers_are_two_operators_acting():
    handover = [
        Write(1, "a", "patch", "deployments"),
        Write(2, "a", "patch", "deployments"),
        Write(3, "b", "patch", "deployments"),
    ]
    assert inv.check_one_writer(handover, window=5) == []
    both = [*handover, Write(4, "a", "create", "events")]
    (violation,) = inv.check_one_writer(both, window=5)
    assert (violation.invariant, violation.subject) == ("one-operator-acts", "a,b")
    far = [*handover, Write(30, "a", "create", "events")]  # back after a restart, long after
    assert inv.check_one_writer(far, window=5) == []


# -- RSS and tracebacks ---------------------------------------------------------------------------


def test_rss_growth_above_the_bound_is_flagged_and_a_short_watch_is_not_judged():
    mib = 2**20
    flat = [RssSample(t, "op#1", 100 * mib + (t % 3) * mib) for t in range(0, 3600, 60)]
    leaking = [RssSample(t, "op#1", 100 * mib + t * mib // 36) for t in range(0, 3600, 60)]  # 100 MiB/h
    assert inv.check_rss_growth(flat, bound_bytes_per_hour=64 * mib, warmup=120, min_span=600) == []
    (violation,) = inv.check_rss_growth(leaking, bound_bytes_per_hour=64 * mib, warmup=120, min_span=600)
    assert violation.invariant == "rss-growth-bounded"
    assert inv.check_rss_growth(leaking[:10], bound_bytes_per_hour=64 * mib, warmup=120, min_span=600) == []
    assert inv.rss_slope(leaking) / mib == __import__("pytest").approx(100, rel=0.01)


def test_a_traceback_in_an_operator_log_is_a_violation_with_its_lines():
    clean = [LogLine(1.0, "op#1", "[INFO] reconciled soak/chat")]
    assert inv.check_tracebacks(clean) == []
    lines = [*clean, LogLine(2.0, "op#1", "Traceback (most recent call last):"), LogLine(2.0, "op#1", "KeyError: 'x'")]
    (violation,) = inv.check_tracebacks(lines)
    assert violation.subject == "op#1" and "KeyError" in violation.evidence


def test_a_fleet_without_its_workload_has_not_converged_even_if_its_status_says_not_ready():
    assert not fleet(service(), ready=False).converged
    assert fleet(deployment(2), service()).converged
    assert not fleet(deployment(2), generation=3, observed=2).converged


def test_two_operators_writing_side_by_side_for_a_while_are_one_episode_and_a_later_one_another():
    side_by_side = [Write(float(t), "a" if t % 2 else "b", "patch", "modeldeployments/status") for t in range(10, 30)]
    again = [Write(float(t), "a" if t % 2 else "b", "patch", "modeldeployments/status") for t in range(100, 104)]
    first, second = inv.check_one_writer([*side_by_side, *again], window=5)
    assert first.t == 11.0 and "18 interleavings" in first.evidence
    assert second.t == 101.0


def test_a_service_missing_long_after_the_last_fault_that_could_explain_it_is_lost():
    without = [
        Snapshot(float(t), (fleet(deployment(1)) if 5 <= t < 200 else fleet(deployment(1), service()),))
        for t in range(220)
    ]
    outage = [Span("prometheus_outage", 0.0, 150.0)]  # says nothing about Services: no excuse
    (violation,) = inv.check_fleets_present(without, outage, grace=60)
    assert (violation.invariant, violation.t) == (
        "no-child-lost",
        66.0,
    ) and "no Service since t=5.0" in violation.evidence
    deleted = [Span("child_edit", 5.0, 5.0, (KEY,)), Span("watch_expired", 50.0, 60.0)]
    assert [v.t for v in inv.check_fleets_present(without, deleted, grace=60)] == [121.0]


def test_a_recreated_fleet_does_not_inherit_the_children_of_its_predecessor():
    old = Fleet(KEY, "md-old", 1, 1, True, 1, 4, (deployment(1), service()))
    new = Fleet(KEY, "md-new", 1, None, None, 1, 4, ())
    snaps = [Snapshot(float(t), (old if t < 5 else new,)) for t in range(100)]
    assert inv.check_fleets_present(snaps, [], grace=60) == []


def test_a_saved_soak_is_judged_again_the_same_way():
    import dataclasses
    import json

    from neuronfleet.soak import report

    snaps = timeline(1, 1, 5, 5)  # above the maximum from t=2 on
    lines = [json.dumps(dataclasses.asdict(s)) for s in snaps]
    lines.append(json.dumps({"decision": dataclasses.asdict(Decision(2.0, KEY, "ScaledUp"))}))
    saved = {"convergence_bound_s": 60, "faults": [], "metrics_gaps": []}
    assert [(v.invariant, v.t) for v in report.recheck(lines, saved)] == [
        ("replicas-within-bounds", 2.0),
        ("replicas-within-bounds", 3.0),
    ]
    edited = {**saved, "faults": [{"t": 1.5, "end": 1.5, "kind": "child_edit", "fleet": KEY}]}
    assert report.recheck(lines, edited) == []
