"""The API maps onto the pure cores' plain data with neuronfleet's defaults filled in."""

from __future__ import annotations

import pytest

from neuronfleet import errors
from neuronfleet.api import convert, resource
from neuronfleet.api.spec import AutoscalingSpec
from neuronfleet.autoscale import defaults, promql, slo_policy, slo_targets
from neuronfleet.neuron import capacity, planner


def md(**spec):
    return resource.load(
        {
            "metadata": {"name": "chat", "namespace": "ml"},
            "spec": {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **spec},
        }
    )


def test_an_hf_source_gives_the_model_id_and_the_vllm_source():
    req = convert.plan_request(md())
    assert req.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert req.source == "meta-llama/Llama-3.1-8B-Instruct"
    assert req.served_name == "chat"


def test_an_explicit_id_and_a_pvc_source():
    m = resource.load(
        {
            "metadata": {"name": "x"},
            "spec": {"model": {"source": "pvc://weights/llama", "id": "meta-llama/Llama-3.1-8B"}},
        }
    )
    req = convert.plan_request(m)
    assert req.model == "meta-llama/Llama-3.1-8B"
    assert req.source == "/models/weights"


def test_serving_options_reach_the_plan_request():
    req = convert.plan_request(
        md(
            serving={
                "maxNumSeqs": 8,
                "kvCacheDtype": "fp8",
                "extraArgs": ["--seed", "1"],
                "env": [{"name": "A", "value": "b"}],
            }
        )
    )
    assert (req.max_num_seqs, req.kv_cache_dtype, req.extra_args, req.extra_env) == (
        8,
        "fp8",
        ("--seed", "1"),
        (("A", "b"),),
    )
    assert convert.plan_request(md()).kv_cache_dtype is None


def test_an_empty_behavior_takes_neuronfleets_defaults():
    policy = convert.autoscale_policy(
        AutoscalingSpec(enabled=True, metrics={"concurrencyPerReplica": 16}), expected_startup_seconds=420
    )
    assert policy.scale_up == defaults.SCALE_UP
    assert policy.scale_down == defaults.SCALE_DOWN
    assert policy.targets.concurrency == 16 and policy.targets.tokens_per_second is None
    assert policy.expected_startup_seconds == 420


def test_user_behavior_overrides_only_what_it_sets():
    spec = AutoscalingSpec(
        enabled=True,
        metrics={"tokensPerSecondPerReplica": 900},
        behavior={
            "scaleDown": {
                "stabilizationWindowSeconds": 60,
                "policies": [{"type": "Pods", "value": 2, "periodSeconds": 30}],
            }
        },
    )
    policy = convert.autoscale_policy(spec, expected_startup_seconds=60)
    assert policy.scale_down.stabilization_seconds == 60
    assert [(p.type, p.value, p.period_seconds) for p in policy.scale_down.policies] == [("Pods", 2, 30)]
    assert policy.scale_down.tolerance == defaults.SCALE_DOWN.tolerance
    assert policy.scale_up == defaults.SCALE_UP


def test_metrics_are_never_considered_fresh_for_less_than_four_decision_intervals():
    policy = convert.autoscale_policy(
        AutoscalingSpec(enabled=True, intervalSeconds=60, metrics={"concurrencyPerReplica": 4}),
        expected_startup_seconds=60,
    )
    assert policy.max_metric_age_seconds == 240


def test_query_overrides_reach_the_promql():
    spec = AutoscalingSpec(prometheus={"rateWindow": "30s", "queries": {"concurrency": "sum(my_inflight{$selector})"}})
    queries = promql.build("ml", "chat", convert.query_config(spec))
    assert queries.concurrency == 'sum(my_inflight{namespace="ml",app_kubernetes_io_instance="chat"})'
    assert "[30s]" in queries.tokens_per_second


def test_unknown_query_keys_are_rejected():
    with pytest.raises(ValueError, match=r"prometheus\.queries keys"):
        AutoscalingSpec(prometheus={"queries": {"tokens": "x"}})


SLO = {"perUserTokensPerSecond": 10, "timeToFirstTokenSeconds": 1, "ttftPromptTokensPerSecond": 4000}


def test_the_prompt_token_target_reaches_the_policy():
    spec = AutoscalingSpec(enabled=True, metrics={"promptTokensPerSecondPerReplica": 3000})
    policy = convert.autoscale_policy(spec, expected_startup_seconds=60)
    assert policy.targets.prompt_tokens_per_second == 3000
    assert convert.autoscaling_targets(policy) == {"promptTokensPerSecondPerReplica": 3000.0}


def test_an_slo_alone_enables_autoscaling_and_derives_targets_from_the_capacity_profile():
    spec = AutoscalingSpec(enabled=True, slo=SLO)
    plan = planner.plan(convert.plan_request(md(neuron={"instanceType": "trn2.48xlarge", "tensorParallelSize": 4})))
    profile = convert.capacity_profile(plan)
    assert profile == capacity.LLAMA_8B_TRN2_TP4
    policy = convert.autoscale_policy(spec, expected_startup_seconds=60, profile=profile)
    # Before anything is measured: the SLO path's own derivation (queueing bound on a nominal prompt mix,
    # Erlang C for the slots, no feedback), not a fixed utilization.
    derived = slo_policy.derive(convert.service_level(spec.slo), profile, goal=0.99)
    assert policy.targets == derived.targets
    assert policy.load_model == derived.derived.load_model
    targets = convert.autoscaling_targets(policy)
    assert set(targets) == {"concurrencyPerReplica", "engineLoad"}
    assert targets["engineLoad"] == pytest.approx(derived.model_utilization)
    assert targets["concurrencyPerReplica"] == pytest.approx(derived.model_slot_share * derived.derived.batch)
    assert targets["engineLoad"] != slo_targets.DEFAULT_UTILIZATION


def test_the_slo_attainment_goal_shapes_the_derived_targets():
    plan = planner.plan(convert.plan_request(md(neuron={"instanceType": "trn2.48xlarge", "tensorParallelSize": 4})))
    profile = convert.capacity_profile(plan)
    loose = convert.autoscale_policy(
        AutoscalingSpec(enabled=True, slo={**SLO, "attainment": 0.9}), expected_startup_seconds=60, profile=profile
    )
    strict = convert.autoscale_policy(
        AutoscalingSpec(enabled=True, slo={**SLO, "attainment": 0.999}), expected_startup_seconds=60, profile=profile
    )
    assert strict.targets.engine_load < loose.targets.engine_load
    assert strict.targets.concurrency < loose.targets.concurrency


def test_an_slo_in_the_spec_sizes_the_prefill_chunk_and_the_targets_see_the_planned_engine():
    spec = {"neuron": {"instanceType": "trn2.48xlarge", "tensorParallelSize": 4}}
    request = convert.plan_request(md(**spec, autoscaling={"slo": SLO}))
    assert request.slo_tokens_per_second == 10
    plan = planner.plan(request)
    assert plan.max_num_batched_tokens == 608
    profile = convert.capacity_profile(plan)
    assert profile.max_num_batched_tokens == 608
    slow = slo_targets.derive(slo_targets.ServiceLevel(10, 1, 4000), profile)
    assert slow.prefill_tokens_per_second == pytest.approx(608 / profile.step_seconds(0, 608))
    assert convert.plan_request(md(**spec)).slo_tokens_per_second is None


def test_an_explicit_metric_target_wins_over_the_derived_one_and_the_utilization_is_the_users():
    spec = AutoscalingSpec(enabled=True, slo={**SLO, "targetUtilization": 0.7}, metrics={"concurrencyPerReplica": 12})
    policy = convert.autoscale_policy(spec, expected_startup_seconds=60, profile=capacity.LLAMA_8B_TRN2_TP4)
    assert policy.targets.concurrency == 12
    assert policy.targets.engine_load == 0.7


def test_an_slo_without_a_profile_or_explicit_targets_is_a_plan_error_naming_the_calibrated_profiles():
    spec = AutoscalingSpec(enabled=True, slo=SLO)
    with pytest.raises(errors.PlanError, match=r"llama-3\.1-8b-trn2-tp4.*spec\.autoscaling\.metrics"):
        convert.autoscale_policy(spec, expected_startup_seconds=60, profile=None)


def test_an_slo_without_a_profile_falls_back_to_the_explicit_targets():
    spec = AutoscalingSpec(enabled=True, slo=SLO, metrics={"concurrencyPerReplica": 16})
    policy = convert.autoscale_policy(spec, expected_startup_seconds=60, profile=None)
    assert convert.autoscaling_targets(policy) == {"concurrencyPerReplica": 16.0}
    assert policy.load_model is None


def test_an_slo_the_profile_cannot_meet_is_a_plan_error():
    spec = AutoscalingSpec(enabled=True, slo={"perUserTokensPerSecond": 100, "timeToFirstTokenSeconds": 1})
    with pytest.raises(errors.PlanError, match="cannot be met"):
        convert.autoscale_policy(spec, expected_startup_seconds=60, profile=capacity.LLAMA_8B_TRN2_TP4)


def test_enabled_autoscaling_needs_a_metric_target_or_an_slo():
    with pytest.raises(ValueError, match=r"unless autoscaling\.slo is set"):
        AutoscalingSpec(enabled=True)
    assert AutoscalingSpec(enabled=True, metrics={"promptTokensPerSecondPerReplica": 1}).enabled


@pytest.mark.parametrize(
    ("neuron", "serving", "source"),
    [
        ({"instanceType": "trn2.48xlarge", "tensorParallelSize": 4}, {}, "calibrated"),
        ({"instanceType": "trn2.48xlarge", "tensorParallelSize": 8}, {}, "roofline"),
    ],
    ids=["a calibrated shape keeps its calibration", "any other plan gets its roofline"],
)
def test_an_slo_derives_targets_on_any_plan_from_its_capacity_prior(neuron, serving, source):
    plan = planner.plan(convert.plan_request(md(neuron=neuron, serving=serving)))
    profile = convert.capacity_profile(plan)
    assert profile is not None and profile.tensor_parallel_size == neuron["tensorParallelSize"]
    assert capacity.prior(plan).source == source
    policy = convert.autoscale_policy(
        AutoscalingSpec(enabled=True, slo=SLO), expected_startup_seconds=60, profile=profile
    )
    assert policy.targets.engine_load is not None and policy.targets.concurrency is not None
