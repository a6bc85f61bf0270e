"""The built-in autoscaler: per fleet, every spec.autoscaling.intervalSeconds, observe -> decide -> hand over.

Each tick reads the fleet's signals from Prometheus (`autoscale.observe`), runs one pure step
(`autoscale.step`: decide, and remember the decision in the fleet's history), stores the decision
in `Runtime.decisions` and queues a reconcile pass. It writes nothing: the pass renders the
decided replica count into the Deployment and applies it through the one apply path (so the
child's last-applied record moves with it and no pass mistakes the change for drift), and it
reports the decision in status (ScalingActive, ScalingLimited, MetricsAvailable, metrics, targets)
and as an event when replicas change. The ModelDeployment and its Deployment come from the cache
kopf's watches fill; Prometheus is the only thing a tick asks.

Why not `@kopf.timer`: kopf puts a finalizer on every object a timer or daemon runs for, so a
stopped operator would block `kubectl delete md` of every autoscaled fleet. Instead one asyncio
task per autoscaled fleet is started and stopped from the ModelDeployment watch (`track`), so
the operator never needs a finalizer. The history lives in memory: after a restart it is empty,
and `decide` holds rather than act on windows it has not seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from neuronfleet import errors
from neuronfleet.api import convert, resource
from neuronfleet.autoscale import observe, prometheus, promql, step, types
from neuronfleet.controller import artifacts, reconciler, workloads
from neuronfleet.controller.state import FleetKey, Runtime, ScalingState

__all__ = ["NO_PROMETHEUS", "Autoscaler"]

NO_PROMETHEUS = "no Prometheus: set spec.autoscaling.prometheus.url or --prometheus-url"

log = logging.getLogger(__name__)

ClientFactory = Callable[[str], Any]


@dataclasses.dataclass
class _Fleet:
    task: asyncio.Task[None]
    interval: float


class Autoscaler:
    """One decision loop per autoscaled fleet, started and stopped as ModelDeployments change."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        default_prometheus_url: str | None,
        client_factory: ClientFactory = prometheus.PrometheusClient,
        interval_override: float | None = None,
    ) -> None:
        self._rt = runtime
        self._default_url = default_prometheus_url
        self._client_factory = client_factory
        self._interval_override = interval_override
        self._fleets: dict[FleetKey, _Fleet] = {}
        self._clients: dict[str, Any] = {}
        self.histories: dict[FleetKey, tuple[types.HistoryEntry, ...]] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def track(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Start, restart (new interval) or stop the loop of the fleet in `body`."""
        meta = body.get("metadata") or {}
        key = FleetKey(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        autoscaling = ((body.get("spec") or {}).get("autoscaling")) or {}
        if deleted or meta.get("deletionTimestamp") or not autoscaling.get("enabled"):
            self.stop(key)
            if deleted:
                self.histories.pop(key, None)
            return
        interval = self._interval_override or float(autoscaling.get("intervalSeconds") or 15)
        fleet = self._fleets.pop(key, None)
        if fleet is not None and fleet.interval == interval and not fleet.task.done():
            self._fleets[key] = fleet
            return
        if fleet is not None:
            fleet.task.cancel()  # a new interval: restart the loop, keep the last decision
        task = asyncio.get_running_loop().create_task(self._loop(key, interval), name=f"autoscale {key.name}")
        self._fleets[key] = _Fleet(task, interval)

    def stop(self, key: FleetKey) -> None:
        """Stop deciding for `key`; its last decision goes too, so passes keep the live count."""
        fleet = self._fleets.pop(key, None)
        if fleet is not None:
            fleet.task.cancel()
        self._rt.decisions.pop(key, None)

    def active(self) -> set[FleetKey]:
        return set(self._fleets)

    async def close(self) -> None:
        tasks = [f.task for f in self._fleets.values()]
        self._fleets.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        self._clients.clear()

    async def _loop(self, key: FleetKey, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug: one bad decision must not end the loop; the next one retries
                log.exception("Autoscaling %s/%s failed", key.namespace, key.name)

    # -- one decision -----------------------------------------------------------------------

    def _client(self, url: str) -> Any:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._client_factory(url)
        return client

    async def tick(self, key: FleetKey) -> types.Decision | None:
        """Decide once for `key`; None when there is nothing to decide (gone, off, not planned yet)."""
        rt = self._rt
        body = rt.cache.get("ModelDeployment", key.namespace, key.name)
        if body is None:
            self.stop(key)
            return None
        try:
            md = resource.load({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})
            fleet = workloads.workloads(md, reconciler.plan_fleet(md, rt))
        except errors.PlanError:
            return None  # the reconcile pass reports it (Degraded); nothing sensible to scale
        spec = md.spec.autoscaling
        if not spec.enabled:
            self.stop(key)
            return None
        views = [workloads.view(w, rt.cache.get(w.kind, key.namespace, w.name)) for w in fleet]
        if views[0] is None:
            return None  # not created yet (or held back by the artifact gate)
        # Capacity in primary replicas, as the pass allocates it: pods waiting for a node past their
        # cutoff no longer count as capacity on its way (placement/fallback.py).
        placed = reconciler.place(rt, key, md, fleet)
        current = placed.allocation.current_replicas
        ready_by_status = sum(
            int(((v or {}).get("status") or {}).get("readyReplicas") or 0) * w.variant.units_per_replica
            for w, v in zip(fleet, views, strict=True)
        )
        ready = min(current, max(placed.allocation.ready_replicas, int(ready_by_status + 1e-9)))
        plan = fleet[0].variant.plan
        # Time-to-ready of a new replica: a cache hit when the artifact gate says the key is ready.
        if artifacts.known_cache_hit(md, plan, body.get("status")):
            plan = artifacts.with_cache_hit(plan)
        try:
            policy = convert.autoscale_policy(
                spec, expected_startup_seconds=plan.expected_startup_seconds, profile=convert.capacity_profile(plan)
            )
        except errors.PlanError:
            return None  # an SLO no calibrated replica can meet: the reconcile pass reports it (Degraded)

        url = spec.prometheus.url or self._default_url
        metrics_error: str | None = None
        try:
            if not url:
                raise errors.MetricsUnavailable(NO_PROMETHEUS)
            queries = promql.build(key.namespace, key.name, convert.query_config(spec))
            observation = await observe.observe(
                self._client(url), queries, current_replicas=current, ready_replicas=ready, logger=log
            )
        except errors.MetricsUnavailable as exc:
            metrics_error = str(exc)
            observation = observe.unavailable(current_replicas=current, ready_replicas=ready)

        now = rt.clock()
        decision, self.histories[key] = step.step(observation, policy, self.histories.get(key, ()), now.timestamp())
        previous = rt.decisions.get(key)
        rt.decisions[key] = ScalingState(
            decision=decision,
            observation=observation,
            metrics_error=metrics_error,
            targets=convert.autoscaling_targets(policy),
            decided_at=now,
            seq=1 if previous is None else previous.seq + 1,
        )
        if rt.enqueue is not None:
            rt.enqueue(key)
        self._export(key, decision, observation)
        return decision

    def _export(self, key: FleetKey, decision: types.Decision, observation: types.Observation) -> None:
        metrics = self._rt.metrics
        metrics.desired_replicas.labels(namespace=key.namespace, name=key.name).set(decision.replicas)
        metrics.decisions.labels(namespace=key.namespace, name=key.name, reason=str(decision.reason)).inc()
        values = {
            "tokens_per_second": observation.tokens_per_second,
            "concurrency": observation.concurrency,
            "waiting": observation.waiting,
            "kv_cache_usage": observation.kv_cache_usage,
        }
        for name, value in values.items():
            if value is not None:
                metrics.metric_value.labels(namespace=key.namespace, name=key.name, metric=name).set(value)
