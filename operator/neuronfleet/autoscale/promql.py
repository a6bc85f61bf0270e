"""PromQL for one ModelDeployment's vLLM signals, built from its identity and overridable per cluster.

The renderer labels every vLLM pod `app.kubernetes.io/instance=<ModelDeployment name>`. How that
label reaches Prometheus depends on the scrape setup: the Prometheus Operator copies pod labels
listed in a PodMonitor's `podTargetLabels` with dots and slashes turned into underscores
(`app_kubernetes_io_instance`), and a hand-written `kubernetes_sd_configs` job usually does the same
with `labelmap: __meta_kubernetes_pod_label_(.+)`; both add `namespace`. That is the default
selector. Clusters that relabel differently set their own selector, or replace whole queries.

vLLM names its series `vllm:...`, but they do not always reach Prometheus under that name:
prometheus-client (which vLLM uses) answers a scrape that negotiates OpenMetrics, as Prometheus does
by default, with `escaping=underscores` and, in the versions current in 2026 (0.26), writes the sample
lines as `vllm_num_requests_running` while HELP/TYPE keep the colon (prometheus/client_python issue
#1177, reproduced by tests/e2e). So every query matches the metric name by the regex
`vllm[:_]<name>`: either spelling works, and a fleet never reads as empty because of the wire format.

Each query returns one series or none. An aggregation of no series is an empty result, which the
caller reads as "signal missing", never as zero: a fleet with no ready replica has no data, not no
load. Concurrency is `sum(running) + sum(waiting)`: binary `+` of two aggregations is empty when
either side is, so a fleet that exports only one of the two gauges reads as missing rather than as
half its load. vLLM exports both on every engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_SELECTOR_TEMPLATE",
    "OVERRIDE_KEYS",
    "Queries",
    "QueryConfig",
    "build",
    "duration_seconds",
    "selector",
]

DEFAULT_SELECTOR_TEMPLATE = 'namespace="{namespace}",app_kubernetes_io_instance="{name}"'
"""Label matchers (without braces); `{namespace}` and `{name}` are the ModelDeployment's."""

OVERRIDE_KEYS: Mapping[str, str] = {
    "tokensPerSecond": "tokens_per_second",
    "concurrency": "concurrency",
    "waiting": "waiting",
    "kvCacheUsage": "kv_cache_usage",
    "promptTokensPerSecond": "prompt_tokens_per_second",
    "completionsPerSecond": "completions_per_second",
    "concurrencyGrowth": "concurrency_growth",
    "sampledAt": "sampled_at",
    "failingScrapes": "failing_scrapes",
}
"""Override keys as the API spells them (spec.autoscaling.prometheus.queries) -> Queries field."""

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


@dataclass(frozen=True)
class QueryConfig:
    """How to select one fleet's series; every field has a default that fits the renderer's labels."""

    selector_template: str = DEFAULT_SELECTOR_TEMPLATE
    selector: str | None = None  # literal label matchers, e.g. from spec; replaces the template
    metric_prefix: str = "vllm[:_]"  # regex before each vLLM metric name (see the module docstring)
    rate_window: str = "1m"  # rate() window: at least four scrape intervals, or rate() has too few points
    # Whole-query overrides by OVERRIDE_KEYS key; `$selector` and `$window` are substituted.
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Queries:
    """One PromQL expression per signal, plus the freshness probe that yields `Observation.sampled_at`."""

    tokens_per_second: str
    concurrency: str
    waiting: str
    kv_cache_usage: str
    prompt_tokens_per_second: str
    sampled_at: str  # max sample timestamp: the query's own timestamp is evaluation time, not sample time
    # Fleet targets whose last scrape failed (a replica too busy to answer /metrics in time): the sums
    # above then miss exactly the busiest replicas.
    failing_scrapes: str = ""
    # Requests finished per second, and how fast running + waiting grow: arrivals = the two summed
    # (`decide` sizes concurrency on arrivals, a backlog apart).
    completions_per_second: str = ""
    concurrency_growth: str = ""
    rate_window_seconds: float = 60.0  # the window of the rate() and deriv() queries above

    def by_signal(self) -> dict[str, str]:
        """Field name -> query, in a stable order."""
        return {
            "tokens_per_second": self.tokens_per_second,
            "concurrency": self.concurrency,
            "waiting": self.waiting,
            "kv_cache_usage": self.kv_cache_usage,
            "prompt_tokens_per_second": self.prompt_tokens_per_second,
            "completions_per_second": self.completions_per_second,
            "concurrency_growth": self.concurrency_growth,
            "sampled_at": self.sampled_at,
            "failing_scrapes": self.failing_scrapes,
        }


def selector(namespace: str, name: str, config: QueryConfig) -> str:
    """The label matchers for this fleet, without braces."""
    if config.selector is not None:
        return config.selector
    return config.selector_template.format(namespace=_escape(namespace), name=_escape(name))


def build(namespace: str, name: str, config: QueryConfig | None = None) -> Queries:
    """The queries for ModelDeployment `namespace/name`; raises ValueError on a bad window or override key."""
    config = config or QueryConfig()
    if not _DURATION.match(config.rate_window):
        raise ValueError(f"rate window {config.rate_window!r} is not a PromQL duration like 30s or 1m")
    unknown = sorted(set(config.overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f"unknown query override(s) {unknown}; known: {sorted(OVERRIDE_KEYS)}")
    matchers = selector(namespace, name, config)
    window = config.rate_window

    def series(metric: str) -> str:
        return f'{{__name__=~"{config.metric_prefix}{metric}",{matchers}}}'

    queries = {
        "tokens_per_second": f"sum(rate({series('generation_tokens_total')}[{window}]))",
        "concurrency": f"sum({series('num_requests_running')}) + sum({series('num_requests_waiting')})",
        "waiting": f"sum({series('num_requests_waiting')})",
        "kv_cache_usage": f"avg({series('kv_cache_usage_perc')})",
        "prompt_tokens_per_second": f"sum(rate({series('prompt_tokens_total')}[{window}]))",
        "completions_per_second": f"sum(rate({series('request_prompt_tokens_count')}[{window}]))",
        "concurrency_growth": (
            f"sum(deriv({series('num_requests_running')}[{window}])) + "
            f"sum(deriv({series('num_requests_waiting')}[{window}]))"
        ),
        "sampled_at": f"max(timestamp({series('num_requests_running')}))",
        "failing_scrapes": f"count(up{{{matchers}}} == 0) or vector(0)",
    }
    for key, query in config.overrides.items():
        queries[OVERRIDE_KEYS[key]] = query.replace("$selector", matchers).replace("$window", window)
    return Queries(**queries, rate_window_seconds=duration_seconds(window))


def duration_seconds(text: str) -> float:
    """A PromQL duration (`30s`, `1m`, `1h30m`) in seconds; raises ValueError otherwise.

    Units as Prometheus defines them (docs: querying/basics, "Time durations"): a year is 365 days.
    """
    if not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a PromQL duration like 30s or 1m")
    return sum(float(n) * _UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|s|m|h|d|w|y)", text))


def _escape(value: str) -> str:
    """A label value safe inside double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
