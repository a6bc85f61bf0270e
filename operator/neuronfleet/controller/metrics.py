"""The operator's own Prometheus metrics, on `--metrics-port` at /metrics.

Each operator instance owns a `CollectorRegistry` (not prometheus_client's global one), so
tests and the benchmark can run several operators in one process without clashing series.
Served by aiohttp inside the operator's event loop, so it starts and stops with the operator.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import prometheus_client
from aiohttp import web

from neuronfleet.autoscale.slo_status import SloReport

__all__ = ["OperatorMetrics", "serve"]

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclasses.dataclass
class OperatorMetrics:
    """Series named `neuronfleet_*`; labels are bounded (handler names, result kinds, fleets)."""

    registry: prometheus_client.CollectorRegistry = dataclasses.field(
        default_factory=prometheus_client.CollectorRegistry
    )

    def __post_init__(self) -> None:
        reg = self.registry
        self.reconciles = prometheus_client.Counter(
            "neuronfleet_reconcile_total", "Reconcile passes, by handler.", ["handler"], registry=reg
        )
        self.errors = prometheus_client.Counter(
            "neuronfleet_reconcile_errors_total",
            "Reconcile passes that failed and will be retried, by handler.",
            ["handler"],
            registry=reg,
        )
        self.duration = prometheus_client.Histogram(
            "neuronfleet_reconcile_duration_seconds",
            "Duration of reconcile passes, by handler.",
            ["handler"],
            buckets=_DURATION_BUCKETS,
            registry=reg,
        )
        self.writes = prometheus_client.Counter(
            "neuronfleet_child_writes_total",
            "Children created or patched, by kind and action (create, patch, repair).",
            ["kind", "action"],
            registry=reg,
        )
        self.managed = prometheus_client.Gauge(
            "neuronfleet_managed_modeldeployments", "ModelDeployments this operator reconciles.", registry=reg
        )
        self.degraded = prometheus_client.Gauge(
            "neuronfleet_degraded_modeldeployments", "ModelDeployments with Degraded=True.", registry=reg
        )
        self.fleet_degraded = prometheus_client.Gauge(
            "neuronfleet_modeldeployment_degraded",
            "1 while the ModelDeployment's Degraded condition is True, else 0; alerts name the fleet from it.",
            ["namespace", "name"],
            registry=reg,
        )
        self.desired_replicas = prometheus_client.Gauge(
            "neuronfleet_autoscaler_desired_replicas",
            "Replicas the autoscaler last asked for.",
            ["namespace", "name"],
            registry=reg,
        )
        self.metric_value = prometheus_client.Gauge(
            "neuronfleet_autoscaler_metric_value",
            "Fleet metric values the autoscaler last read (tokens_per_second, concurrency, ...).",
            ["namespace", "name", "metric"],
            registry=reg,
        )
        self.decisions = prometheus_client.Counter(
            "neuronfleet_autoscaler_decisions_total",
            "Autoscaling decisions, by fleet and reason.",
            ["namespace", "name", "reason"],
            registry=reg,
        )

        # The measured service level and what the SLO path derived from it (spec.autoscaling.slo only).
        per_fleet = ["namespace", "name"]
        self.attainment = prometheus_client.Gauge(
            "neuronfleet_service_level_attainment",
            "Share of requests within spec.autoscaling.slo over the last window, from vLLM's histograms.",
            per_fleet,
            registry=reg,
        )
        self.goal = prometheus_client.Gauge(
            "neuronfleet_service_level_goal",
            "The attainment goal of spec.autoscaling.slo (0.99 unless slo.attainment says otherwise).",
            per_fleet,
            registry=reg,
        )
        self.samples = prometheus_client.Gauge(
            "neuronfleet_service_level_samples",
            "Requests in the service-level window (fewer than goal / (1 - goal) are not judged).",
            per_fleet,
            registry=reg,
        )
        self.met = prometheus_client.Gauge(
            "neuronfleet_service_level_met",
            "1 while ServiceLevelMet is True, 0 while False; absent while Unknown (not judged).",
            per_fleet,
            registry=reg,
        )
        self.ttft = prometheus_client.Gauge(
            "neuronfleet_service_level_ttft_seconds",
            "Time to first token over the service-level window, by quantile (0.5, 0.99).",
            [*per_fleet, "quantile"],
            registry=reg,
        )
        self.itl = prometheus_client.Gauge(
            "neuronfleet_service_level_itl_seconds",
            "Inter-token latency over the service-level window, by quantile (0.5, 0.99).",
            [*per_fleet, "quantile"],
            registry=reg,
        )
        self.target_scale = prometheus_client.Gauge(
            "neuronfleet_autoscaler_target_scale",
            "The feedback loop's factor on every SLO-derived target (below 1: more headroom).",
            per_fleet,
            registry=reg,
        )
        self.planned_utilization = prometheus_client.Gauge(
            "neuronfleet_autoscaler_planned_utilization",
            "Share of engine time the SLO-derived targets plan for (the engineLoad target).",
            per_fleet,
            registry=reg,
        )
        self.step_seconds = prometheus_client.Gauge(
            "neuronfleet_capacity_step_seconds",
            "The capacity curve in use, alpha + beta * batch + gamma * prefill tokens, by term.",
            [*per_fleet, "term"],
            registry=reg,
        )
        self.fit_confidence = prometheus_client.Gauge(
            "neuronfleet_capacity_fit_confidence",
            "How sure the capacity fit is of the step time at the SLO batch (1 - relative standard error).",
            per_fleet,
            registry=reg,
        )

    def _slo_series(self) -> tuple[prometheus_client.Gauge, ...]:
        return (
            self.attainment,
            self.goal,
            self.samples,
            self.met,
            self.ttft,
            self.itl,
            self.target_scale,
            self.planned_utilization,
            self.step_seconds,
            self.fit_confidence,
        )

    def export_slo(self, namespace: str, name: str, report: SloReport | None) -> None:
        """The SLO path's figures of one tick; a figure not known this tick (or no SLO) removes its series,
        so a dashboard or an alert never reads a stale value as current."""
        level = {} if report is None else report.service_level
        curve = {} if report is None else report.capacity_curve
        met = None if report is None or report.met is None else float(report.met)
        values: list[tuple[prometheus_client.Gauge, tuple[str, ...], float | None]] = [
            (self.attainment, (), level.get("attainment")),
            (self.goal, (), None if report is None else report.goal),
            (self.samples, (), level.get("samples") if report is not None else None),
            (self.met, (), met),
            (self.target_scale, (), None if report is None else report.target_scale),
            (self.planned_utilization, (), None if report is None else report.planned_utilization),
            (self.fit_confidence, (), curve.get("confidence")),
        ]
        for quantile, key in (("0.5", "P50Seconds"), ("0.99", "P99Seconds")):
            values.append((self.ttft, (quantile,), level.get(f"ttft{key}")))
            values.append((self.itl, (quantile,), level.get(f"itl{key}")))
        for term in ("alpha", "beta", "gamma"):
            values.append((self.step_seconds, (term,), curve.get(f"{term}Seconds")))
        for gauge, extra, value in values:
            labels = (namespace, name, *extra)
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
            else:
                gauge.labels(*labels).set(float(value))

    def forget_fleet(self, namespace: str, name: str) -> None:
        """Drop a deleted fleet's per-fleet series so they do not linger as stale values."""
        fleet_series = (self.desired_replicas, self.metric_value, self.decisions, self.fleet_degraded)
        for metric in (*fleet_series, *self._slo_series()):
            for labels in _label_sets(metric):
                if labels[:2] == (namespace, name):
                    with contextlib.suppress(KeyError):
                        metric.remove(*labels)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)


def _label_sets(metric: prometheus_client.Gauge | prometheus_client.Counter) -> list[tuple[str, ...]]:
    return [tuple(key) for key in list(metric._metrics)]  # the client has no public listing


@contextlib.asynccontextmanager
async def serve(metrics: OperatorMetrics, *, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Serve /metrics until the context exits."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        yield runner
    finally:
        await runner.cleanup()
