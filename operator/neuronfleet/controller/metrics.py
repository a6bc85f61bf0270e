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

    def forget_fleet(self, namespace: str, name: str) -> None:
        """Drop a deleted fleet's per-fleet series so they do not linger as stale values."""
        for metric in (self.desired_replicas, self.metric_value, self.decisions, self.fleet_degraded):
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
