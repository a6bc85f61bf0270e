"""The operator's own metrics: per-fleet series exist while the fleet does, and go with it."""

from __future__ import annotations

from neuronfleet.autoscale.slo_status import SloReport
from neuronfleet.controller.metrics import OperatorMetrics


def _series(metrics: OperatorMetrics) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in metrics.registry.collect()
        for sample in family.samples
        if "name" in sample.labels
    }


def test_forgetting_a_fleet_drops_every_per_fleet_series_and_keeps_the_others():
    metrics = OperatorMetrics()
    for name in ("llama", "chat"):
        metrics.desired_replicas.labels(namespace="ml", name=name).set(3)
        metrics.metric_value.labels(namespace="ml", name=name, metric="concurrency").set(12)
        metrics.decisions.labels(namespace="ml", name=name, reason="ScaledUp").inc()
        metrics.fleet_degraded.labels(namespace="ml", name=name).set(0)
    before = _series(metrics)
    assert {n for n, labels in before if ("name", "llama") in labels} >= {
        "neuronfleet_autoscaler_desired_replicas",
        "neuronfleet_autoscaler_metric_value",
        "neuronfleet_autoscaler_decisions_total",
        "neuronfleet_modeldeployment_degraded",
    }

    metrics.forget_fleet("ml", "llama")

    after = _series(metrics)
    assert not any(("name", "llama") in labels for _, labels in after)
    assert after == {s for s in before if ("name", "llama") not in s[1]}
    metrics.forget_fleet("ml", "llama")  # twice is harmless


def test_decisions_are_counted_per_fleet_and_reason():
    metrics = OperatorMetrics()
    metrics.decisions.labels(namespace="ml", name="llama", reason="LimitedByMaxReplicas").inc()
    text = metrics.render().decode()
    series = 'neuronfleet_autoscaler_decisions_total{name="llama",namespace="ml",reason="LimitedByMaxReplicas"}'
    assert f"{series} 1.0" in text


def _report(condition: tuple[str, str, str], **level: float) -> SloReport:
    return SloReport(
        service_level={"samples": 400, "source": "histograms", **level},
        capacity_curve={"alphaSeconds": 0.02, "betaSeconds": 0.001, "gammaSeconds": 1e-4, "confidence": 0.8},
        condition=condition,
        target_scale=0.8,
        goal=0.99,
        planned_utilization=0.4,
    )


def _values(metrics: OperatorMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("namespace", "name"))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name and s.labels.get("name") == "llama"
    }


def test_a_tick_of_the_slo_path_exports_the_service_level_the_loop_and_the_curve():
    metrics = OperatorMetrics()
    met = ("True", "AttainmentMet", "goal 99.00%: ...")
    metrics.export_slo("ml", "llama", _report(met, attainment=0.995, ttftP50Seconds=0.2, ttftP99Seconds=0.9))
    assert _values(metrics, "neuronfleet_service_level_attainment") == {(): 0.995}
    assert _values(metrics, "neuronfleet_service_level_goal") == {(): 0.99}
    assert _values(metrics, "neuronfleet_service_level_samples") == {(): 400}
    assert _values(metrics, "neuronfleet_service_level_met") == {(): 1.0}
    assert _values(metrics, "neuronfleet_service_level_ttft_seconds") == {
        (("quantile", "0.5"),): 0.2,
        (("quantile", "0.99"),): 0.9,
    }
    assert _values(metrics, "neuronfleet_autoscaler_target_scale") == {(): 0.8}
    assert _values(metrics, "neuronfleet_autoscaler_planned_utilization") == {(): 0.4}
    assert _values(metrics, "neuronfleet_capacity_step_seconds") == {
        (("term", "alpha"),): 0.02,
        (("term", "beta"),): 0.001,
        (("term", "gamma"),): 1e-4,
    }
    assert _values(metrics, "neuronfleet_capacity_fit_confidence") == {(): 0.8}


def test_figures_not_known_this_tick_are_removed_not_left_stale():
    metrics = OperatorMetrics()
    metrics.export_slo("ml", "llama", _report(("False", "AttainmentBelowGoal", "m"), attainment=0.9))
    assert _values(metrics, "neuronfleet_service_level_met") == {(): 0.0}
    metrics.export_slo("ml", "llama", _report(("Unknown", "TooFewSamples", "m")))
    assert _values(metrics, "neuronfleet_service_level_met") == {}
    assert _values(metrics, "neuronfleet_service_level_attainment") == {}
    assert _values(metrics, "neuronfleet_autoscaler_target_scale") == {(): 0.8}
    metrics.export_slo("ml", "llama", None)  # the SLO was removed from the spec
    assert not any(("name", "llama") in labels for _, labels in _series(metrics))


def test_forgetting_a_fleet_drops_its_slo_series_too():
    metrics = OperatorMetrics()
    metrics.export_slo("ml", "llama", _report(("True", "AttainmentMet", "m"), attainment=1.0, itlP99Seconds=0.1))
    assert any(("name", "llama") in labels for _, labels in _series(metrics))
    metrics.forget_fleet("ml", "llama")
    assert not any(("name", "llama") in labels for _, labels in _series(metrics))
