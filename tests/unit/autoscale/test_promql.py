"""PromQL strings built from a ModelDeployment's identity (pure; the e2e tests run them on Prometheus)."""

from __future__ import annotations

import pytest

from neuronfleet.api import spec
from neuronfleet.autoscale import promql


def test_default_queries_select_the_fleet_by_namespace_and_instance_label() -> None:
    queries = promql.build("ml", "llama3-8b")
    sel = 'namespace="ml",app_kubernetes_io_instance="llama3-8b"'

    def series(metric: str) -> str:
        return f'{{__name__=~"vllm[:_]{metric}",{sel}}}'

    assert queries.tokens_per_second == f"sum(rate({series('generation_tokens_total')}[1m]))"
    assert queries.concurrency == f"sum({series('num_requests_running')}) + sum({series('num_requests_waiting')})"
    assert queries.waiting == f"sum({series('num_requests_waiting')})"
    assert queries.kv_cache_usage == f"avg({series('kv_cache_usage_perc')})"
    assert queries.prompt_tokens_per_second == f"sum(rate({series('prompt_tokens_total')}[1m]))"
    assert queries.sampled_at == f"max(timestamp({series('num_requests_running')}))"
    assert queries.completions_per_second == f"sum(rate({series('request_prompt_tokens_count')}[1m]))"
    assert queries.concurrency_growth == (
        f"sum(deriv({series('num_requests_running')}[1m])) + sum(deriv({series('num_requests_waiting')}[1m]))"
    )
    assert queries.rate_window_seconds == 60.0


def test_a_selector_template_and_rate_window_can_be_changed() -> None:
    config = promql.QueryConfig(selector_template='kubernetes_namespace="{namespace}",app="{name}"', rate_window="30s")
    queries = promql.build("ml", "m", config)
    assert queries.tokens_per_second == (
        'sum(rate({__name__=~"vllm[:_]generation_tokens_total",kubernetes_namespace="ml",app="m"}[30s]))'
    )
    assert queries.rate_window_seconds == 30.0  # the growth's noise band is computed for this window


def test_a_literal_selector_from_the_spec_replaces_the_template() -> None:
    queries = promql.build("ml", "m", promql.QueryConfig(selector='job="vllm",model_name="llama"'))
    assert queries.waiting == 'sum({__name__=~"vllm[:_]num_requests_waiting",job="vllm",model_name="llama"})'


def test_overrides_replace_whole_queries_and_substitute_selector_and_window() -> None:
    config = promql.QueryConfig(
        rate_window="2m",
        overrides={"tokensPerSecond": "sum(rate(my:tokens{$selector}[$window]))", "kvCacheUsage": "max(my:kv)"},
    )
    queries = promql.build("ml", "m", config)
    assert queries.tokens_per_second == 'sum(rate(my:tokens{namespace="ml",app_kubernetes_io_instance="m"}[2m]))'
    assert queries.kv_cache_usage == "max(my:kv)"
    assert queries.concurrency.startswith('sum({__name__=~"vllm[:_]num_requests_running",')


def test_the_metric_name_prefix_can_be_pinned_to_one_spelling() -> None:
    queries = promql.build("ml", "m", promql.QueryConfig(metric_prefix="vllm:"))
    assert queries.waiting.startswith('sum({__name__=~"vllm:num_requests_waiting",')


@pytest.mark.parametrize(
    "config",
    [
        promql.QueryConfig(rate_window="1 minute"),
        promql.QueryConfig(rate_window=""),
        promql.QueryConfig(overrides={"tps": "x"}),
    ],
    ids=["a window with words is refused", "an empty window is refused", "an unknown override key is refused"],
)
def test_bad_configuration_is_refused_with_a_clear_message(config: promql.QueryConfig) -> None:
    with pytest.raises(ValueError, match=r"window|override"):
        promql.build("ml", "m", config)


def test_label_values_are_escaped() -> None:
    assert (
        promql.selector("ml", 'a"b\\c', promql.QueryConfig())
        == 'namespace="ml",app_kubernetes_io_instance="a\\"b\\\\c"'
    )


def test_every_override_key_maps_to_a_query_field() -> None:
    fields = set(promql.build("ml", "m").by_signal())
    assert set(promql.OVERRIDE_KEYS.values()) == fields


def test_the_api_accepts_exactly_the_override_keys_the_builder_knows() -> None:
    """The CRD's CEL rule and the spec's validator list the keys apart from the builder (the API schema
    imports nothing from the autoscaler): a key added to one and not the other would be refused, or ignored."""
    assert tuple(promql.OVERRIDE_KEYS) == spec._QUERY_KEYS


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("1m", 60.0), ("1h30m", 5400.0), ("250ms", 0.25), ("2d", 172800.0)],
    ids=["seconds", "a minute", "hours and minutes", "milliseconds", "days"],
)
def test_a_promql_duration_reads_as_seconds(text: str, seconds: float) -> None:
    assert promql.duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1", "1 m", "-5s", "1.5m"], ids=["empty", "no unit", "space", "sign", "decimal"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a PromQL duration"):
        promql.duration_seconds(text)
