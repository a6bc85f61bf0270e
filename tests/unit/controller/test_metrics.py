"""The operator's own metrics: per-fleet series exist while the fleet does, and go with it."""

from __future__ import annotations

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
