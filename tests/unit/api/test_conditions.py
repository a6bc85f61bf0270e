"""set_condition mirrors apimachinery's SetStatusCondition."""

from __future__ import annotations

from neuronfleet.api.conditions import ConditionType, Reason, find_condition, is_true, set_condition


def test_adding_a_condition_stamps_transition_time_and_generation():
    conds: list[dict] = []
    changed = set_condition(
        conds,
        type_=ConditionType.READY,
        status="False",
        reason=Reason.REPLICAS_NOT_READY,
        message="0/2 ready",
        observed_generation=3,
        now="t1",
    )
    assert changed
    assert conds == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "ReplicasNotReady",
            "message": "0/2 ready",
            "observedGeneration": 3,
            "lastTransitionTime": "t1",
        }
    ]


def test_the_same_condition_again_is_not_a_change():
    conds: list[dict] = []
    kw = dict(type_="Ready", status="True", reason="AllReplicasReady", message="2/2", observed_generation=1)
    set_condition(conds, now="t1", **kw)
    assert not set_condition(conds, now="t2", **kw)
    assert conds[0]["lastTransitionTime"] == "t1"


def test_a_message_change_keeps_the_transition_time():
    conds: list[dict] = []
    set_condition(
        conds, type_="Ready", status="False", reason="ReplicasNotReady", message="0/2", observed_generation=1, now="t1"
    )
    assert set_condition(
        conds, type_="Ready", status="False", reason="ReplicasNotReady", message="1/2", observed_generation=2, now="t2"
    )
    assert conds[0]["lastTransitionTime"] == "t1"
    assert conds[0]["observedGeneration"] == 2


def test_a_status_flip_moves_the_transition_time():
    conds: list[dict] = []
    set_condition(
        conds, type_="Ready", status="False", reason="ReplicasNotReady", message="", observed_generation=1, now="t1"
    )
    set_condition(
        conds, type_="Ready", status="True", reason="AllReplicasReady", message="", observed_generation=1, now="t2"
    )
    assert conds[0]["lastTransitionTime"] == "t2"
    assert is_true(conds, "Ready")
    assert find_condition(conds, "Degraded") is None


def test_conditions_of_other_types_are_left_alone():
    conds: list[dict] = []
    set_condition(conds, type_="Ready", status="True", reason="A", message="", observed_generation=1, now="t1")
    set_condition(
        conds, type_="Degraded", status="True", reason="PlanFailed", message="x", observed_generation=1, now="t1"
    )
    assert [c["type"] for c in conds] == ["Ready", "Degraded"]
    assert not is_true(conds, "Progressing")
