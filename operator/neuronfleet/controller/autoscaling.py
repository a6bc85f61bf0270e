"""The built-in autoscaler: per fleet, every spec.autoscaling.intervalSeconds, observe -> decide -> scale.

With autoscaling on, the operator is the single writer of the child Deployment's replicas and
this is the only code that changes them (the reconcile pass preserves the live count). Each
decision: read the fleet's signals from Prometheus (`autoscale.observe`), decide
(`autoscale.decide`, pure, with the in-memory history of recent decisions), patch the
Deployment's replicas when the count changes, write the autoscaler's status fields and
conditions (ScalingActive, ScalingLimited, MetricsAvailable), post an event per scale, export
the desired replicas and metric values.

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
import datetime
import logging
from collections.abc import Callable, Mapping
from typing import Any

from neuronfleet import errors
from neuronfleet.api import convert, resource
from neuronfleet.autoscale import observe, prometheus, promql, step, types
from neuronfleet.controller import artifacts, events, status, sync
from neuronfleet.controller.kube import KubeError
from neuronfleet.neuron import planner

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
        runtime: sync.Runtime,
        *,
        default_prometheus_url: str | None,
        client_factory: ClientFactory = prometheus.PrometheusClient,
        interval_override: float | None = None,
    ) -> None:
        self._rt = runtime
        self._default_url = default_prometheus_url
        self._client_factory = client_factory
        self._interval_override = interval_override
        self._fleets: dict[sync.FleetKey, _Fleet] = {}
        self._clients: dict[str, Any] = {}
        self.histories: dict[sync.FleetKey, tuple[types.HistoryEntry, ...]] = {}

    # -- lifecycle --------------------------------------------------------------------------

    def track(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Start, restart (new interval) or stop the loop of the fleet in `body`."""
        meta = body.get("metadata") or {}
        key = sync.FleetKey(str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        autoscaling = ((body.get("spec") or {}).get("autoscaling")) or {}
        if deleted or meta.get("deletionTimestamp") or not autoscaling.get("enabled"):
            self.stop(key)
            if deleted:
                self.histories.pop(key, None)
            return
        interval = self._interval_override or float(autoscaling.get("intervalSeconds") or 15)
        fleet = self._fleets.get(key)
        if fleet is not None and fleet.interval == interval and not fleet.task.done():
            return
        self.stop(key)
        task = asyncio.get_running_loop().create_task(self._loop(key, interval), name=f"autoscale {key.name}")
        self._fleets[key] = _Fleet(task, interval)

    def stop(self, key: sync.FleetKey) -> None:
        fleet = self._fleets.pop(key, None)
        if fleet is not None:
            fleet.task.cancel()

    def active(self) -> set[sync.FleetKey]:
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

    async def _loop(self, key: sync.FleetKey, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad decision must not end the loop; the next one retries
                log.warning("Autoscaling %s/%s failed: %s", key.namespace, key.name, exc)

    # -- one decision -----------------------------------------------------------------------

    def _client(self, url: str) -> Any:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = self._client_factory(url)
        return client

    async def tick(self, key: sync.FleetKey) -> types.Decision | None:
        """Decide once for `key`; None when there is nothing to decide (gone, off, not planned yet)."""
        rt = self._rt
        body = await rt.kube.get_or_none(sync.MD_REF, key.namespace, key.name)
        if body is None:
            self.stop(key)
            return None
        try:
            md = resource.load({k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body})
            plan = planner.plan(convert.plan_request(md))
        except (errors.PlanError, ValueError):
            return None  # the reconcile pass reports it (Degraded); nothing sensible to scale
        spec = md.spec.autoscaling
        if not spec.enabled:
            self.stop(key)
            return None
        deployment = await rt.kube.get_or_none(sync.DEPLOYMENT_REF, key.namespace, sync.deployment_name(md))
        if deployment is None:
            return None
        current = int((deployment.get("spec") or {}).get("replicas") or 0)
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        # Time-to-ready of a new replica: a cache hit when the artifact gate says the key is ready.
        plan = artifacts.keyed_plan(md, plan, rt.render_options)
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

        async with rt.lock(key):
            now = rt.clock()
            moment = now.timestamp()
            past = self.histories.get(key, ())
            decision, self.histories[key] = step.step(observation, policy, past, moment)
            scaled = decision.replicas != current
            if scaled:
                scale = {"spec": {"replicas": decision.replicas}}
                answer = await rt.kube.patch(sync.DEPLOYMENT_REF, key.namespace, sync.deployment_name(md), scale)
                rv = str((answer.get("metadata") or {}).get("resourceVersion", ""))
                rt.own_writes[("Deployment", key.namespace, sync.deployment_name(md))] = rv
            targets = convert.autoscaling_targets(policy)
            await self._write_status(key, body, decision, observation, metrics_error, scaled, now, targets)
        self._export(key, decision, observation)
        return decision

    async def _write_status(
        self,
        key: sync.FleetKey,
        body: dict[str, Any],
        decision: types.Decision,
        observation: types.Observation,
        metrics_error: str | None,
        scaled: bool,
        now: datetime.datetime,
        targets: dict[str, float],
    ) -> None:
        rt = self._rt
        previous = sync.previous_status(rt, key, body)
        sampled = observation.sampled_at
        sampled_at = None
        if sampled is not None:
            sampled_at = sync.utc_timestamp(datetime.datetime.fromtimestamp(sampled, datetime.UTC))
        new = status.scaling_status(
            previous,
            generation=body["metadata"].get("generation"),
            decision=decision,
            observation=observation,
            metrics_error=metrics_error,
            scaled=scaled,
            now=sync.utc_timestamp(now),
            sampled_at=sampled_at,
        )
        new["autoscalingTargets"] = targets
        patch = status.status_patch(previous, new)
        uid = str(body["metadata"].get("uid", ""))
        if patch is not None:
            try:
                answer = await rt.kube.patch(
                    sync.MD_REF, key.namespace, key.name, {"status": patch}, subresource="status"
                )
            except KubeError as exc:
                log.warning("Failed to write the autoscaling status of %s/%s: %s", key.namespace, key.name, exc)
                return
            rt.statuses[key] = (uid, {k: v for k, v in (answer.get("status") or {}).items() if k != "kopf"})
        found = list(events.transitions_scaling(previous, new))
        if scaled:
            found.append(events.Event(events.NORMAL, str(decision.reason), decision.message))
        events.post(body, found)

    def _export(self, key: sync.FleetKey, decision: types.Decision, observation: types.Observation) -> None:
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
