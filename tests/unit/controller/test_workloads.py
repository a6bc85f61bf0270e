"""A fleet's workloads read back as one view, and LeaderWorkerSet groups counted as one replica each."""

from __future__ import annotations

from neuronfleet.controller import workloads
from neuronfleet.neuron.variants import PlannedVariant
from neuronfleet.placement import replicas
from plan_builders import TRN2_TP4, make_plan


def _dep(spec: int, ready: int, *, observed: int = 1, generation: int = 1) -> dict:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": spec},
        "status": {
            "observedGeneration": observed,
            "replicas": spec,
            "readyReplicas": ready,
            "updatedReplicas": spec,
            "availableReplicas": ready,
        },
    }


def test_several_workloads_add_up_and_one_behind_its_generation_makes_the_whole_unobserved() -> None:
    combined = workloads.combined_view([_dep(3, 3), None, _dep(2, 1)])
    assert combined["spec"]["replicas"] == 5
    assert combined["status"]["readyReplicas"] == 4
    assert combined["status"]["observedGeneration"] == 1
    behind = workloads.combined_view([_dep(3, 3), _dep(2, 1, observed=1, generation=2)])
    assert behind["status"]["observedGeneration"] == 0


def test_one_workload_is_its_own_view() -> None:
    only = _dep(3, 2)
    assert workloads.combined_view([only, None]) is only
    assert workloads.combined_view([None]) is None


def _pod(name: str, group: str | None, *, ready: bool = False, unschedulable: bool = False) -> dict:
    labels = {"app.kubernetes.io/instance": "llama"}
    if group is not None:
        labels.update(
            {"leaderworkerset.sigs.k8s.io/name": "llama-lws", "leaderworkerset.sigs.k8s.io/group-index": group}
        )
    conditions = []
    spec: dict = {}
    if unschedulable:
        conditions.append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/4 nodes"}
        )
    else:
        spec["nodeName"] = "n1"
        conditions.append({"type": "PodScheduled", "status": "True"})
    conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    return {"metadata": {"name": name, "labels": labels}, "spec": spec, "status": {"conditions": conditions}}


def test_a_group_is_one_replica_placed_as_its_least_placed_pod() -> None:
    pods = [
        _pod("g0-leader", "0", ready=True),
        _pod("g0-w1", "0", ready=True),
        _pod("g1-leader", "1", ready=True),
        _pod("g1-w1", "1", unschedulable=True),
        _pod("single", None, ready=True),
    ]
    folded = workloads.group_pods(pods)
    assert len(folded) == 3
    states = sorted(replicas.classify(p).placement for p in folded)
    assert states == sorted([replicas.Placement.READY, replicas.Placement.READY, replicas.Placement.UNSCHEDULABLE])


def test_live_units_weigh_each_variant_by_what_its_replicas_serve() -> None:
    plan = make_plan(TRN2_TP4)
    fleet = [PlannedVariant("primary", 0, plan, 1.0, ""), PlannedVariant("trn1-32xlarge", 1, plan, 0.69, "")]
    assert workloads.live_units(fleet, {}) is None
    assert workloads.live_units(fleet, {"primary": 2, "trn1-32xlarge": 3}) == 4  # 2 + 2.07
