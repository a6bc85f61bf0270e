"""The autoscaler's decision over a fleet whose replicas cannot all be placed, through the pure pieces.

The path the controller is to wire (README, Capacity): allocate with the count asked last -> the
autoscaler's current replicas (stale unschedulable ones left out) -> decide -> allocate again ->
ScalingLimited's capacity wording. No controller runs here: only the functions it will call.
"""

from __future__ import annotations

import datetime

from neuronfleet.api import convert, resource
from neuronfleet.autoscale import decide, types
from neuronfleet.placement import capacity_status, fallback
from neuronfleet.placement.replicas import Placement, ReplicaPlacement, VariantObservation

NOW = datetime.datetime(2026, 1, 1, 1, 0, tzinfo=datetime.UTC)
PRIMARY = [fallback.VariantUnits("primary", 1.0)]
WITH_TRN1 = [*PRIMARY, fallback.VariantUnits("trn1-32xlarge", 0.69)]


def policy() -> types.Policy:
    md = resource.load(
        {
            "metadata": {"name": "llm", "namespace": "ml"},
            "spec": {
                "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
                "autoscaling": {"enabled": True, "maxReplicas": 10, "metrics": {"concurrencyPerReplica": 10}},
            },
        }
    )
    return convert.autoscale_policy(md.spec.autoscaling, expected_startup_seconds=300)


def stuck(minutes: float, count: int) -> tuple[ReplicaPlacement, ...]:
    since = NOW - datetime.timedelta(minutes=minutes)
    return tuple(
        ReplicaPlacement(f"p{i}", "primary", Placement.UNSCHEDULABLE, since, "0/2 nodes are available: x.")
        for i in range(count)
    )


def one_decision(variants, observed, asked: int, concurrency: float):
    seen = {o.name: o for o in observed}
    before = fallback.allocate(asked, variants, seen, now=NOW, fallback_after_seconds=300, deadline_seconds=600)
    observation = types.Observation(
        tokens_per_second=None,
        concurrency=concurrency,
        sampled_at=NOW.timestamp(),
        current_replicas=before.current_replicas,
        ready_replicas=before.ready_replicas,
        starting_replicas=max(0, before.current_replicas - before.ready_replicas),
    )
    decision = decide.decide(observation, policy(), (), NOW.timestamp())
    after = fallback.allocate(
        decision.replicas, variants, seen, now=NOW, fallback_after_seconds=300, deadline_seconds=600
    )
    return before, decision, after


def test_replicas_still_waiting_for_a_node_count_as_capacity_on_its_way():
    before, decision, _ = one_decision(
        PRIMARY, [VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(3, 2))], 4, 40
    )
    assert before.current_replicas == 4
    assert (decision.replicas, decision.reason) == (4, types.Reason.WAITING_FOR_STARTING)


def test_replicas_past_the_deadline_stop_counting_and_scaling_says_it_is_limited_by_capacity():
    before, decision, after = one_decision(
        PRIMARY, [VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(11, 2))], 4, 40
    )
    assert before.current_replicas == 2, "the two stale pods are not capacity on its way"
    assert decision.replicas == 4, "the demand still needs 4; the Deployment keeps its 4 pods"
    assert after.replicas == {"primary": 4}
    limited = capacity_status.scaling_limited(decision.replicas, after)
    assert limited is not None
    assert (
        limited.message == "asked for 4 replicas; 2 cannot be placed on any variant, so 2 serve (see CapacityAvailable)"
    )


def test_with_a_fallback_the_missing_share_goes_to_the_next_variant_and_nothing_is_limited():
    observed = [VariantObservation("primary", asked=4, ready=2, unschedulable=stuck(6, 2))]
    _, decision, after = one_decision(WITH_TRN1, observed, 4, 40)
    assert decision.replicas == 4
    assert after.replicas == {"primary": 4, "trn1-32xlarge": 3}
    assert capacity_status.scaling_limited(decision.replicas, after) is None
