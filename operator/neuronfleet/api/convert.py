"""Map the pydantic API onto the plain data the pure cores take (planner, autoscaler).

The cores never import pydantic models; this is the one place that knows both shapes.
"""

from __future__ import annotations

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import AutoscalingSpec, ScalingRulesSpec
from neuronfleet.autoscale import defaults, promql
from neuronfleet.autoscale import types as autoscale_types
from neuronfleet.neuron.types import ModelArch, PlanRequest, SpeculativeRequest

__all__ = ["autoscale_policy", "model_id", "plan_request", "query_config"]


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


def plan_request(md: ModelDeployment) -> PlanRequest:
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


def autoscale_policy(spec: AutoscalingSpec, *, expected_startup_seconds: float) -> autoscale_types.Policy:
    """The autoscaling spec after defaulting, as the pure decision function takes it.

    `expected_startup_seconds` comes from the plan (cache hit or miss), so the decision knows how
    long new capacity takes to arrive.
    """
    m = spec.metrics
    return autoscale_types.Policy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        targets=autoscale_types.Targets(
            tokens_per_second=m.tokens_per_second_per_replica,
            concurrency=m.concurrency_per_replica,
            waiting=m.waiting_per_replica,
            kv_cache_usage=m.kv_cache_usage,
        ),
        scale_up=_rules(spec.behavior.scale_up, defaults.SCALE_UP),
        scale_down=_rules(spec.behavior.scale_down, defaults.SCALE_DOWN),
        max_metric_age_seconds=max(defaults.MAX_METRIC_AGE_SECONDS, 4.0 * spec.interval_seconds),
        expected_startup_seconds=float(expected_startup_seconds),
    )


def query_config(spec: AutoscalingSpec) -> promql.QueryConfig:
    """How to select this fleet's series in Prometheus (spec.autoscaling.prometheus)."""
    prom = spec.prometheus
    return promql.QueryConfig(
        selector=prom.selector,
        rate_window=prom.rate_window,
        overrides=dict(prom.queries or {}),
    )
