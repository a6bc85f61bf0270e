"""The Grafana dashboard: well-formed, and its PromQL computes the fleet figures from real series.

Queries are evaluated by promtool (`promtool test rules` with `promql_expr_test`) over input series
labelled the way the renderer's PodMonitor labels vLLM's series, with Grafana's variables set to
"all"; so a typo in a metric or label name shows up as a wrong number, not as an empty panel in
production.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.chart_files import CHART
from chart.conftest import Render, one
from neuronfleet.autoscale import promql
from neuronfleet.controller.metrics import OperatorMetrics
from neuronfleet.render import monitor

DASHBOARD = CHART / "files" / "dashboards" / "neuronfleet-fleets.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (Debian prometheus): NOT run")

# Grafana variables set to "all", and $__rate_interval to a window promtool can fill.
JOB = 'job="nf-neuronfleet-metrics"'
VARIABLES = {"$namespace": ".*", "$fleet": ".*", "$operator": ".*", "$__rate_interval": "2m"}


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in load()["panels"] if p["type"] != "row"]


def exprs() -> dict[str, str]:
    """panel title (+ target refId) -> PromQL with the variables substituted."""
    out = {}
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in VARIABLES.items():
                expr = expr.replace(var, value)
            out[f"{panel['title']} {target['refId']}"] = expr
    return out


def test_dashboard_is_well_formed_and_laid_out_on_the_grid():
    dash = load()
    assert dash["uid"] == "neuronfleet-fleets"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    variables = {v["name"] for v in dash["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", json.dumps([p.get("targets", []) for p in dash["panels"]])))
    assert used - {"__rate_interval"} <= variables


def test_dashboard_has_the_panels_the_issue_asks_for():
    titles = " | ".join(p["title"] for p in panels()).lower()
    for wanted in ("tokens/s", "concurrency", "desired vs serving", "scale decisions"):
        assert wanted in titles
    # The measured service level (issue 14): attainment against its goal, latency, the feedback, the condition.
    for wanted in ("attainment vs goal", "ttft and itl p99", "target scale and planned utilization", "servicelevelmet"):
        assert wanted in titles
    rows = [p["title"] for p in load()["panels"] if p["type"] == "row"]
    assert rows == ["Fleets", "Service level", "Operator"]


def test_dashboard_uses_only_metrics_the_operator_exports():
    exported = {m.name for m in OperatorMetrics().registry.collect()}
    names = exported | {f"{n}_{s}" for n in exported for s in ("total", "bucket", "sum", "count")}
    used = {m for e in exprs().values() for m in re.findall(r"\b(neuronfleet_[a-z_]+)", e)}
    assert used <= names, sorted(used - names)


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path):
    rules = [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs().values())]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _vllm_series(metric: str, namespace: str, fleet: str, pod: str) -> str:
    """A vLLM series as the renderer's PodMonitor relabels it (namespace, pod, recommended labels)."""
    labels = {
        "namespace": namespace,
        "pod": pod,
        monitor.PROMQL_LABELS["app.kubernetes.io/instance"]: fleet,
        monitor.PROMQL_LABELS["app.kubernetes.io/name"]: "vllm",
        monitor.PROMQL_LABELS["app.kubernetes.io/component"]: "inference-server",
    }
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _decisions(fleet: str, reason: str) -> str:
    return f'neuronfleet_autoscaler_decisions_total{{{JOB}, namespace="ml", name="{fleet}", reason="{reason}"}}'


def _query(title_prefix: str) -> str:
    matches = [e for t, e in exprs().items() if t.startswith(title_prefix)]
    assert matches, title_prefix
    return matches[0]


@needs_promtool
def test_dashboard_queries_compute_fleet_figures_from_vllm_and_operator_series(tmp_path: Path):
    # Two replicas of ml/llama: 600 + 300 tokens per minute -> 15 tokens/s; 3+1 running, 2+0 waiting.
    # vLLM 0.6+ exports `vllm:`-prefixed names; Prometheus' Python client writes them as `vllm_` on
    # the text format for some versions (see autoscale/promql.py), so one replica uses each spelling.
    series = [
        {"series": _vllm_series("vllm:generation_tokens_total", "ml", "llama", "llama-0"), "values": "0+600x10"},
        {"series": _vllm_series("vllm_generation_tokens_total", "ml", "llama", "llama-1"), "values": "0+300x10"},
        {"series": _vllm_series("vllm:num_requests_running", "ml", "llama", "llama-0"), "values": "3x10"},
        {"series": _vllm_series("vllm_num_requests_running", "ml", "llama", "llama-1"), "values": "1x10"},
        {"series": _vllm_series("vllm:num_requests_waiting", "ml", "llama", "llama-0"), "values": "2x10"},
        {"series": _vllm_series("vllm_num_requests_waiting", "ml", "llama", "llama-1"), "values": "0x10"},
        {"series": _vllm_series("up", "ml", "llama", "llama-0"), "values": "1x10"},
        {"series": _vllm_series("up", "ml", "llama", "llama-1"), "values": "1x10"},
        {"series": _vllm_series("up", "ml", "llama", "llama-2"), "values": "0x10"},  # still compiling
        {"series": f'neuronfleet_autoscaler_desired_replicas{{{JOB}, namespace="ml", name="llama"}}', "values": "3x10"},
        {"series": _decisions("llama", "ScaledUp"), "values": "0+1x10"},
        {"series": _decisions("chat", "ScaledUp"), "values": "0+5x10"},  # another fleet: $fleet filters it out
        # The operator's service-level gauges of ml/llama: below a 99 % goal, TTFT p99 2.1 s.
        {"series": _fleet("neuronfleet_service_level_attainment"), "values": "0.97x10"},
        {"series": _fleet("neuronfleet_service_level_goal"), "values": "0.99x10"},
        {"series": _fleet("neuronfleet_service_level_met"), "values": "0x10"},
        {"series": _fleet("neuronfleet_service_level_ttft_seconds", quantile="0.99"), "values": "2.1x10"},
        {"series": _fleet("neuronfleet_service_level_ttft_seconds", quantile="0.5"), "values": "0.4x10"},
        {"series": _fleet("neuronfleet_service_level_itl_seconds", quantile="0.99"), "values": "0.08x10"},
        {"series": _fleet("neuronfleet_autoscaler_target_scale"), "values": "0.8x10"},
        {"series": _fleet("neuronfleet_autoscaler_planned_utilization"), "values": "0.35x10"},
    ]
    fleet = {"namespace": "ml", "app_kubernetes_io_instance": "llama"}
    autoscaler = promql.build("ml", "llama")
    tests = [
        {"expr": _query("Fleet tokens/s"), "eval_time": "8m", "exp_samples": [{"labels": _labels(fleet), "value": 15}]},
        # The dashboard's tokens/s is the autoscaler's own signal for the same fleet.
        {
            "expr": autoscaler.tokens_per_second.replace("[1m]", "[2m]"),
            "eval_time": "8m",
            "exp_samples": [{"labels": "{}", "value": 15}],
        },
        {
            "expr": _query("Fleet concurrency (running + waiting) A"),
            "eval_time": "8m",
            "exp_samples": [{"labels": _labels(fleet), "value": 4}],
        },
        {
            "expr": _query("Fleet concurrency (running + waiting) B"),
            "eval_time": "8m",
            "exp_samples": [{"labels": _labels(fleet), "value": 2}],
        },
        {"expr": _query("Concurrency"), "eval_time": "8m", "exp_samples": [{"labels": "{}", "value": 6}]},
        {
            "expr": _query("Replicas: desired vs serving A"),
            "eval_time": "8m",
            "exp_samples": [{"labels": _labels({"namespace": "ml", "name": "llama"}), "value": 3}],
        },
        {
            "expr": _query("Replicas: desired vs serving B"),
            "eval_time": "8m",
            "exp_samples": [{"labels": _labels(fleet), "value": 2}],
        },
        {
            "expr": _query("Scale decisions").replace('name=~".*"', 'name=~"llama"'),  # $fleet = llama
            "eval_time": "8m",
            "exp_samples": [{"labels": _labels({"reason": "ScaledUp"}), "value": 2}],
        },
    ]
    llama = _labels({"namespace": "ml", "name": "llama"})
    for title, value in (
        ("ServiceLevelMet A", 0),
        ("Attainment vs goal A", 0.97),
        ("Attainment vs goal B", 0.99),
        ("TTFT and ITL p99 A", 2.1),  # the p99 series, not the median
        ("TTFT and ITL p99 B", 0.08),
        ("Feedback: target scale and planned utilization A", 0.8),
        ("Feedback: target scale and planned utilization B", 0.35),
    ):
        tests.append({"expr": _query(title), "eval_time": "8m", "exp_samples": [{"labels": llama, "value": value}]})
    test_file = tmp_path / "dashboard_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            },
            sort_keys=False,
        )
    )
    proc = subprocess.run([PROMTOOL, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _fleet(metric: str, **labels: str) -> str:
    """An operator gauge of fleet ml/llama, as the operator's ServiceMonitor scrapes it."""
    extra = "".join(f', {k}="{v}"' for k, v in labels.items())
    return f'{metric}{{{JOB}, namespace="ml", name="llama"{extra}}}'


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def test_dashboard_configmap_carries_the_json_unchanged(render: Render):
    configmap = one(render({"dashboard": {"enabled": True}}), "ConfigMap")
    assert json.loads(configmap["data"][DASHBOARD.name]) == load()
