"""The PrometheusRule alerts, checked and unit-tested with the real promtool (Debian `prometheus`).

The rules are taken from `helm template` output (what users install), written as a plain rule
file, and driven with input series by `promtool test rules`: each alert fires when its condition
holds for its `for`, stays quiet in the healthy case, and carries the labels routing relies on.
The metric names are checked against the operator's own registry, so a renamed metric breaks
this test instead of silently muting an alert.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.conftest import Render, one
from neuronfleet.controller.metrics import OperatorMetrics

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (Debian package prometheus): NOT run")

JOB = 'job="nf-neuronfleet-metrics"'
RULE_VALUES = {"prometheusRule": {"enabled": True, "additionalAlertLabels": {"team": "ml-platform"}}}


@pytest.fixture(scope="module")
def rules(render: Render) -> dict[str, dict[str, Any]]:
    rule = one(render(RULE_VALUES, release="nf"), "PrometheusRule")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


@pytest.fixture(scope="module")
def rule_file(render: Render, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rule = one(render(RULE_VALUES, release="nf"), "PrometheusRule")
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_promtool_check_rules_accepts_the_rendered_rules(rule_file: Path):
    proc = promtool("check", "rules", str(rule_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout


def test_alerts_cover_what_the_issue_asks_for(rules):
    assert set(rules) == {
        "NeuronfleetOperatorDown",
        "NeuronfleetReconcileErrors",
        "NeuronfleetModelDeploymentDegraded",
        "NeuronfleetScalingLimitedAtMaxReplicas",
        "NeuronfleetMetricsUnavailable",
        "NeuronfleetServiceLevelMissed",
    }
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["labels"]["team"] == "ml-platform", name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_alerts_only_use_metrics_the_operator_exports(rules):
    exported = {m.name for m in OperatorMetrics().registry.collect()}
    # Counters are collected without their _total suffix; histograms expose _bucket/_sum/_count.
    names = (
        exported | {f"{n}_total" for n in exported} | {f"{n}_{s}" for n in exported for s in ("bucket", "sum", "count")}
    )
    used = {m for rule in rules.values() for m in re.findall(r"\b(neuronfleet_[a-z_]+)", rule["expr"])}
    assert used, "no operator metric used"
    assert used <= names, f"not exported by controller/metrics.py: {sorted(used - names)}"


def _alert(rule: dict[str, Any], value: str | None = None, **labels: str) -> dict[str, Any]:
    """The expected firing alert: the rule's labels and annotations with `$value` and `$labels.x` as
    promtool renders them."""
    annotations = dict(rule["annotations"])
    if value is not None:
        annotations = {k: re.sub(r"\{\{ \$value[^}]*\}\}", value, v) for k, v in annotations.items()}
    for key, label in labels.items():
        annotations = {k: v.replace(f"{{{{ $labels.{key} }}}}", label) for k, v in annotations.items()}
    return {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": annotations}


FLEET = 'namespace="ml", name="llama"'
OTHER = 'namespace="ml", name="chat"'
LIMITED = f'neuronfleet_autoscaler_decisions_total{{{JOB}, {FLEET}, reason="LimitedByMaxReplicas"}}'


def _tests(rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    down = rules["NeuronfleetOperatorDown"]
    errors = rules["NeuronfleetReconcileErrors"]
    degraded = rules["NeuronfleetModelDeploymentDegraded"]
    limited = rules["NeuronfleetScalingLimitedAtMaxReplicas"]
    no_metrics = rules["NeuronfleetMetricsUnavailable"]
    missed = rules["NeuronfleetServiceLevelMissed"]
    met = f'neuronfleet_service_level_met{{{JOB}, pod="active", {FLEET}}}'
    return [
        {
            "name": "operator down fires after 5m with no replica up, not with one of two up",
            "interval": "1m",
            "input_series": [
                {"series": f'up{{{JOB}, pod="a"}}', "values": "0x20"},
                {"series": f'up{{{JOB}, pod="b"}}', "values": "0x10 1x10"},
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "NeuronfleetOperatorDown", "exp_alerts": []},
                {
                    "eval_time": "8m",
                    "alertname": "NeuronfleetOperatorDown",
                    "exp_alerts": [_alert(down)],
                },
                {"eval_time": "15m", "alertname": "NeuronfleetOperatorDown", "exp_alerts": []},
            ],
        },
        {
            "name": "operator down fires when the operator is not scraped at all",
            "interval": "1m",
            "input_series": [{"series": 'up{job="something-else"}', "values": "1x20"}],
            "alert_rule_test": [
                {
                    "eval_time": "10m",
                    "alertname": "NeuronfleetOperatorDown",
                    "exp_alerts": [_alert(down)],
                }
            ],
        },
        {
            "name": "half the reconcile passes failing fires after 15m; 1 in 60 failing does not",
            "interval": "1m",
            "input_series": [
                {"series": f'neuronfleet_reconcile_total{{{JOB}, handler="reconcile"}}', "values": "0+60x40"},
                {"series": f'neuronfleet_reconcile_errors_total{{{JOB}, handler="reconcile"}}', "values": "0+30x40"},
            ],
            "alert_rule_test": [
                {"eval_time": "12m", "alertname": "NeuronfleetReconcileErrors", "exp_alerts": []},
                {"eval_time": "30m", "alertname": "NeuronfleetReconcileErrors", "exp_alerts": [_alert(errors, "50%")]},
            ],
        },
        {
            "name": "a trickle of reconcile errors stays quiet",
            "interval": "1m",
            "input_series": [
                {"series": f'neuronfleet_reconcile_total{{{JOB}, handler="reconcile"}}', "values": "0+60x40"},
                {"series": f'neuronfleet_reconcile_errors_total{{{JOB}, handler="reconcile"}}', "values": "0+1x40"},
            ],
            "alert_rule_test": [{"eval_time": "40m", "alertname": "NeuronfleetReconcileErrors", "exp_alerts": []}],
        },
        {
            "name": "a degraded ModelDeployment fires after 10m naming the fleet; a healthy one stays quiet",
            "interval": "1m",
            "input_series": [
                {"series": f'neuronfleet_modeldeployment_degraded{{{JOB}, pod="active", {FLEET}}}', "values": "1x20"},
                {"series": f'neuronfleet_modeldeployment_degraded{{{JOB}, pod="active", {OTHER}}}', "values": "0x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "NeuronfleetModelDeploymentDegraded", "exp_alerts": []},
                {
                    "eval_time": "12m",
                    "alertname": "NeuronfleetModelDeploymentDegraded",
                    "exp_alerts": [_alert(degraded, namespace="ml", name="llama")],
                },
            ],
        },
        {
            "name": "scaling capped at maxReplicas fires only when it lasts 30m, for the capped fleet only",
            "interval": "1m",
            "input_series": [
                {
                    "series": LIMITED,
                    "values": "0+12x60",
                },
                {
                    "series": f'neuronfleet_autoscaler_decisions_total{{{JOB}, {OTHER}, reason="ScaledUp"}}',
                    "values": "0+1x60",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "NeuronfleetScalingLimitedAtMaxReplicas", "exp_alerts": []},
                {
                    "eval_time": "40m",
                    "alertname": "NeuronfleetScalingLimitedAtMaxReplicas",
                    "exp_alerts": [_alert(limited, namespace="ml", name="llama")],
                },
            ],
        },
        {
            "name": "a short burst at maxReplicas stays quiet",
            "interval": "1m",
            "input_series": [
                {
                    "series": LIMITED,
                    "values": "0+12x10 120x50",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "45m", "alertname": "NeuronfleetScalingLimitedAtMaxReplicas", "exp_alerts": []}
            ],
        },
        {
            "name": "autoscaling without metrics fires after 10m naming the fleet",
            "interval": "1m",
            "input_series": [
                {
                    "series": f'neuronfleet_autoscaler_decisions_total{{{JOB}, {FLEET}, reason="MetricsUnavailable"}}',
                    "values": "0+12x30",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "8m", "alertname": "NeuronfleetMetricsUnavailable", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "NeuronfleetMetricsUnavailable",
                    "exp_alerts": [_alert(no_metrics, namespace="ml", name="llama")],
                },
            ],
        },
        {
            "name": "a service level below its goal for 15m fires naming the fleet; met or unjudged stays quiet",
            "interval": "1m",
            "input_series": [
                {"series": met, "values": "0x30"},
                {"series": f'neuronfleet_service_level_met{{{JOB}, pod="active", {OTHER}}}', "values": "1x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "NeuronfleetServiceLevelMissed", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "NeuronfleetServiceLevelMissed",
                    "exp_alerts": [_alert(missed, namespace="ml", name="llama")],
                },
            ],
        },
        {
            "name": "a miss interrupted by a met window, or by windows too quiet to judge, does not fire",
            "interval": "1m",
            # 0 for 10m, 1 for a minute, 0 again; then absent (Unknown) for a while, then 0 again.
            "input_series": [{"series": met, "values": "0x10 1 0x10 _x10 0x5"}],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "NeuronfleetServiceLevelMissed", "exp_alerts": []},
                {"eval_time": "38m", "alertname": "NeuronfleetServiceLevelMissed", "exp_alerts": []},
            ],
        },
    ]


def test_promtool_test_rules_drives_every_alert_with_input_series(rules, rule_file: Path):
    tests = _tests(rules)
    assert {t["alertname"] for case in tests for t in case["alert_rule_test"] if t["exp_alerts"]} == set(rules)
    test_file = rule_file.parent / "alerts_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": tests}, sort_keys=False)
    )
    proc = promtool("test", "rules", str(test_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_test_rules_fails_when_an_alert_is_expected_but_quiet(rules, rule_file: Path):
    """The harness can fail: expecting Degraded to fire on a healthy fleet is reported."""
    case = {
        "name": "healthy fleet",
        "interval": "1m",
        "input_series": [{"series": f"neuronfleet_modeldeployment_degraded{{{JOB}, {FLEET}}}", "values": "0x20"}],
        "alert_rule_test": [
            {
                "eval_time": "15m",
                "alertname": "NeuronfleetModelDeploymentDegraded",
                "exp_alerts": [_alert(rules["NeuronfleetModelDeploymentDegraded"], namespace="ml", name="llama")],
            }
        ],
    }
    test_file = rule_file.parent / "alerts_must_fail.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rule_file.name], "evaluation_interval": "1m", "tests": [case]}))
    proc = promtool("test", "rules", str(test_file))
    assert proc.returncode != 0
    assert "NeuronfleetModelDeploymentDegraded" in proc.stdout + proc.stderr


def test_operator_selector_value_reaches_every_alert(render: Render):
    values = {"prometheusRule": {"enabled": True, "operatorSelector": 'job="neuronfleet", cluster="prod"'}}
    rule = one(render(values), "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert 'job="neuronfleet", cluster="prod"' in r["expr"], r["alert"]


def test_disabled_alerts_are_not_rendered(render: Render):
    values = {"prometheusRule": {"enabled": True, "alerts": {"scalingLimitedAtMax": {"enabled": False}}}}
    rule = one(render(values), "PrometheusRule")
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "NeuronfleetScalingLimitedAtMaxReplicas" not in names and len(names) == 5
