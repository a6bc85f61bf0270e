"""Map the pydantic API onto the plain data the pure cores take (planner, autoscaler).

The cores never import pydantic models; this is the one place that knows both shapes.
"""

from __future__ import annotations

import dataclasses

from neuronfleet import errors
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import AutoscalingSlo, AutoscalingSpec, ScalingRulesSpec
from neuronfleet.autoscale import defaults, promql, slo_policy, slo_targets
from neuronfleet.autoscale import service_level as measured_service_level
from neuronfleet.autoscale import types as autoscale_types
from neuronfleet.neuron import capacity
from neuronfleet.neuron.types import ModelArch, Plan, PlanRequest, SpeculativeRequest

__all__ = [
    "attainment_goal",
    "autoscale_policy",
    "autoscaling_targets",
    "capacity_profile",
    "explicit_targets",
    "model_id",
    "plan_request",
    "query_config",
    "service_level",
]


def model_id(md: ModelDeployment) -> str:
    """The model id for the built-in shape table: spec.model.id, else the hf:// path, else the source."""
    model = md.spec.model
    if model.id:
        return model.id
    if model.source.startswith("hf://"):
        return model.source.removeprefix("hf://")
    return model.source


def _vllm_source(md: ModelDeployment) -> str:
    """What `vllm serve` loads: an HF id for hf://, else the path where the weights are mounted."""
    source = md.spec.model.source
    if source.startswith("hf://"):
        return source.removeprefix("hf://")
    if source.startswith("file://"):
        return source.removeprefix("file://")
    return "/models/weights"  # s3:// and pvc:// are made available here by the pod's volume/init step


def plan_request(md: ModelDeployment, *, default_allocation: str = "devicePlugin") -> PlanRequest:
    """What the planner reads from `md`; `default_allocation` is the operator's --neuron-allocation
    (RenderOptions.default_allocation), used when spec.neuron.allocation is empty."""
    spec = md.spec
    arch = None
    if spec.model.arch is not None:
        a = spec.model.arch
        arch = ModelArch(
            name=model_id(md),
            params_billions=a.params_billions,
            num_layers=a.num_layers,
            num_attention_heads=a.num_attention_heads,
            num_kv_heads=a.num_key_value_heads,
            head_dim=a.head_dim,
            max_position_embeddings=a.max_position_embeddings,
            is_moe=a.is_moe,
            active_params_billions=a.active_params_billions,
        )
    spec_dec = spec.serving.speculative_decoding
    return PlanRequest(
        model=model_id(md),
        source=_vllm_source(md),
        served_name=spec.model.served_name or md.name,
        arch=arch,
        instance_type=spec.neuron.instance_type,
        tensor_parallel_size=spec.neuron.tensor_parallel_size,
        logical_core_size=spec.neuron.logical_core_size,
        runtime=spec.serving.runtime,
        dtype=spec.serving.dtype,
        quantization=spec.serving.quantization,
        kv_cache_dtype=None if spec.serving.kv_cache_dtype == "auto" else spec.serving.kv_cache_dtype,
        max_model_len=spec.serving.max_model_len,
        max_num_seqs=spec.serving.max_num_seqs,
        max_num_batched_tokens=spec.serving.max_num_batched_tokens,
        block_size=spec.serving.block_size,
        enable_prefix_caching=spec.serving.enable_prefix_caching,
        speculative=(
            SpeculativeRequest(
                model=spec_dec.draft_model,
                num_speculative_tokens=spec_dec.num_speculative_tokens,
                method=spec_dec.method,
            )
            if spec_dec
            else None
        ),
        extra_args=tuple(spec.serving.extra_args),
        extra_env=tuple((e.name, e.value) for e in spec.serving.env),
        slo_tokens_per_second=spec.autoscaling.slo.per_user_tokens_per_second if spec.autoscaling.slo else None,
        allocation=spec.neuron.allocation,
        default_allocation=default_allocation,
        nodes_per_replica=spec.neuron.nodes_per_replica,
        efa=spec.neuron.efa,
    )


def _rules(spec: ScalingRulesSpec, default: autoscale_types.ScalingRules) -> autoscale_types.ScalingRules:
    """A direction's behaviour: each field the user left out takes neuronfleet's default."""
    return autoscale_types.ScalingRules(
        stabilization_seconds=(
            default.stabilization_seconds
            if spec.stabilization_window_seconds is None
            else spec.stabilization_window_seconds
        ),
        policies=(
            default.policies
            if spec.policies is None
            else tuple(autoscale_types.ScalingPolicy(p.type, p.value, p.period_seconds) for p in spec.policies)
        ),
        select_policy=spec.select_policy or default.select_policy,
        tolerance=default.tolerance if spec.tolerance is None else spec.tolerance,
    )


def capacity_profile(plan: Plan) -> capacity.CapacityProfile | None:
    """The capacity curve SLO targets start from: the calibrated one of the planned shape, else its roofline
    (`capacity.prior`), so an SLO derives targets for any plan. None only when the catalog has no
    bandwidth or FLOP/s figures for the instance."""
    try:
        return capacity.prior(plan).profile
    except ValueError:
        return None


def service_level(slo: AutoscalingSlo) -> slo_targets.ServiceLevel:
    """spec.autoscaling.slo as the plain data the target derivation takes."""
    return slo_targets.ServiceLevel(
        per_user_tokens_per_second=slo.per_user_tokens_per_second,
        ttft_seconds=slo.time_to_first_token_seconds,
        ttft_prompt_tokens_per_second=slo.ttft_prompt_tokens_per_second,
    )


def explicit_targets(spec: AutoscalingSpec) -> autoscale_types.Targets:
    """The targets set by hand in spec.autoscaling.metrics (None where unset); they win over derived ones."""
    m = spec.metrics
    return autoscale_types.Targets(
        tokens_per_second=m.tokens_per_second_per_replica,
        concurrency=m.concurrency_per_replica,
        waiting=m.waiting_per_replica,
        kv_cache_usage=m.kv_cache_usage,
        prompt_tokens_per_second=m.prompt_tokens_per_second_per_replica,
    )


def attainment_goal(slo: AutoscalingSlo) -> float:
    """spec.autoscaling.slo.attainment, or the default goal (0.99)."""
    return slo.attainment or measured_service_level.DEFAULT_GOAL


def autoscale_policy(
    spec: AutoscalingSpec,
    *,
    expected_startup_seconds: float,
    profile: capacity.CapacityProfile | None = None,
) -> autoscale_types.Policy:
    """The autoscaling spec after defaulting, as the pure decision function takes it.

    `expected_startup_seconds` comes from the plan (cache hit or miss), so the decision knows how
    long new capacity takes to arrive. With `spec.slo`, targets are derived from it on `profile`
    (`capacity_profile(plan)`) as `slo_policy.derive` does before anything is measured (the queueing
    bound on a nominal prompt mix, no feedback); a target set in `spec.metrics` wins over the derived
    one. The operator's autoscaler then replaces the derived targets every interval with the measured
    path's (`slo_policy`: the fitted curve, the measured prompt mix, the feedback). Raises
    `PlanError` when an SLO is the only source of targets and no profile matches, or when the
    profile cannot meet the SLO at all (the controller reports it as Degraded).
    """
    explicit = explicit_targets(spec)
    targets, load_model = explicit, None
    if spec.slo is not None:
        derived = _derived(spec.slo, profile, explicit)
        if derived is not None:
            targets = dataclasses.replace(
                derived.targets,
                **{f.name: v for f in dataclasses.fields(explicit) if (v := getattr(explicit, f.name)) is not None},
            )
            load_model = derived.load_model
    return autoscale_types.Policy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        targets=targets,
        scale_up=_rules(spec.behavior.scale_up, defaults.SCALE_UP),
        scale_down=_rules(spec.behavior.scale_down, defaults.SCALE_DOWN),
        max_metric_age_seconds=max(defaults.MAX_METRIC_AGE_SECONDS, 4.0 * spec.interval_seconds),
        expected_startup_seconds=float(expected_startup_seconds),
        load_model=load_model,
    )


def _derived(
    slo: AutoscalingSlo, profile: capacity.CapacityProfile | None, explicit: autoscale_types.Targets
) -> slo_targets.DerivedTargets | None:
    """Targets from spec.slo; None when explicit targets stand in for a missing profile."""
    has_explicit = any(getattr(explicit, f.name) is not None for f in dataclasses.fields(explicit))
    if profile is None:
        if has_explicit:
            return None
        raise errors.PlanError(
            "spec.autoscaling.slo needs a capacity curve for this model, instance type and tensor-parallel size: "
            f"a calibrated one (calibrated: {', '.join(sorted(capacity.PROFILES))}) or the roofline of the plan, "
            "and there is none; set per-replica targets in spec.autoscaling.metrics instead"
        )
    try:
        return slo_policy.derive(
            service_level(slo), profile, goal=attainment_goal(slo), utilization=slo.target_utilization
        ).derived
    except slo_targets.SloUnreachable as exc:
        raise errors.PlanError(f"spec.autoscaling.slo cannot be met: {exc}") from None


def autoscaling_targets(policy: autoscale_types.Policy) -> dict[str, float]:
    """The per-replica targets in force, keyed like spec.autoscaling.metrics: status.autoscalingTargets."""
    return slo_targets.status_targets(policy.targets)


def query_config(spec: AutoscalingSpec) -> promql.QueryConfig:
    """How to select this fleet's series in Prometheus (spec.autoscaling.prometheus)."""
    prom = spec.prometheus
    return promql.QueryConfig(
        selector=prom.selector,
        rate_window=prom.rate_window,
        overrides=dict(prom.queries or {}),
    )
