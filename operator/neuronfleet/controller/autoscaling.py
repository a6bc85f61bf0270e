"""The built-in autoscaler: per fleet, every spec.autoscaling.intervalSeconds, observe -> decide -> hand over.

Each tick reads the fleet's signals from Prometheus (`autoscale.observe`), runs one pure step
(`autoscale.step`: decide, and remember the decision in the fleet's history), stores the decision
in `Runtime.decisions` and queues a reconcile pass. It writes nothing: the pass renders the
decided replica count into the Deployment and applies it through the one apply path (so the
child's last-applied record moves with it and no pass mistakes the change for drift), and it
reports the decision in status (ScalingActive, ScalingLimited, MetricsAvailable, metrics, targets)
and as an event when replicas change. The ModelDeployment and its Deployment come from the cache
kopf's watches fill; Prometheus is the only thing a tick asks.

With `spec.autoscaling.slo` a tick also runs the measured SLO path, exactly as the simulator does
(sim/adapter.py): it asks the service-level and capacity-fit queries beside the signals, updates the
fleet's `slo_policy.FleetState` (the measured service level, the online fit of the capacity curve,
the feedback loop), derives the targets from it, and decides on those. What the status shows of it
(status.serviceLevel, status.capacityCurve, ServiceLevelMet) travels in the decision as an
`autoscale.slo_status.SloReport`; the pass writes it.

Why not `@kopf.timer`: kopf puts a finalizer on every object a timer or daemon runs for, so a
stopped operator would block `kubectl delete md` of every autoscaled fleet. Instead one asyncio
task per autoscaled fleet is started and stopped from the ModelDeployment watch (`track`), so
the operator never needs a finalizer. The history and the SLO state live in memory: after a restart
they are empty, `decide` holds rather than act on windows it has not seen, and the SLO path starts
again from the plan's capacity prior.
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
from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import AutoscalingSpec
from neuronfleet.autoscale import (
    capacity_fit,
    observe,
    prometheus,
    promql,
    service_level,
    slo_policy,
    slo_status,
    slo_targets,
    step,
    types,
)
from neuronfleet.autoscale.prometheus import QueryResult
from neuronfleet.controller import artifacts, reconciler, workloads
from neuronfleet.controller.state import FleetKey, Runtime, ScalingState, utc_timestamp
from neuronfleet.neuron import capacity
from neuronfleet.neuron.types import Plan

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
        service_level_window: float = service_level.WINDOW_SECONDS,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        self._rt = runtime
        self._may_act = may_act  # False while kopf peering pauses this operator: no tick decides
        self._default_url = default_prometheus_url
        self._client_factory = client_factory
        self._interval_override = interval_override
        self._fleets: dict[FleetKey, _Fleet] = {}
        self._clients: dict[str, Any] = {}
        self._service_level_window = service_level_window
        self.histories: dict[FleetKey, tuple[types.HistoryEntry, ...]] = {}
        # Per fleet with an SLO: the measured path's state (fit, feedback, prompt mix), keyed by the shape it
        # describes (model, instance type, TP, artifact key). In memory like the history: empty after a restart.
        self.slo_states: dict[FleetKey, tuple[tuple[object, ...], slo_policy.FleetState]] = {}

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
                self.slo_states.pop(key, None)
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

    def reset(self) -> None:
        """Forget every history and SLO state (the operator was paused: they describe windows it did not see).

        As after a restart, `decide` then holds until it has seen its windows again.
        """
        self.histories.clear()
        self.slo_states.clear()

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
            if not self._may_act():
                continue  # paused: another replica decides; the loop stays so it resumes with the operator
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
        if spec.slo is None:
            self.slo_states.pop(key, None)
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
        shape = (plan.model, plan.instance_type, plan.tensor_parallel_size, plan.artifact_key)
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
        config = convert.query_config(spec)
        (observation, metrics_error), answers = await asyncio.gather(
            self._signals(key, url, config, current=current, ready=ready),
            self._slo_answers(key, url, config, spec),
        )

        if not self._may_act():
            return None  # paused while Prometheus answered: the decision is no longer this operator's
        now = rt.clock()
        previous = rt.decisions.get(key)
        report = None
        if spec.slo is not None:
            policy, report = self._slo_step(
                key,
                md,
                plan,
                shape,
                policy,
                answers,
                load=slo_policy.fleet_load(observation),
                now=now,
                at_max_replicas=previous is not None and previous.decision.replicas >= policy.max_replicas,
                starting_replicas=max(0, current - ready),
                unavailable=metrics_error or (None if url else NO_PROMETHEUS),
            )
        observation = dataclasses.replace(observation, asked_replicas=placed.desired_units)
        decision, self.histories[key] = step.step(observation, policy, self.histories.get(key, ()), now.timestamp())
        rt.decisions[key] = ScalingState(
            decision=decision,
            observation=observation,
            metrics_error=metrics_error,
            targets=convert.autoscaling_targets(policy),
            decided_at=now,
            seq=1 if previous is None else previous.seq + 1,
            slo=report,
        )
        if rt.enqueue is not None:
            rt.enqueue(key)
        self._export(key, decision, observation, report)
        return decision

    async def _signals(
        self, key: FleetKey, url: str | None, config: promql.QueryConfig, *, current: int, ready: int
    ) -> tuple[types.Observation, str | None]:
        """The Observation `decide` takes, and why Prometheus could not be read (None when it could)."""
        try:
            if not url:
                raise errors.MetricsUnavailable(NO_PROMETHEUS)
            queries = promql.build(key.namespace, key.name, config)
            observation = await observe.observe(
                self._client(url), queries, current_replicas=current, ready_replicas=ready, logger=log
            )
        except errors.MetricsUnavailable as exc:
            return observe.unavailable(current_replicas=current, ready_replicas=ready), str(exc)
        return observation, None

    async def _slo_answers(
        self, key: FleetKey, url: str | None, config: promql.QueryConfig, spec: AutoscalingSpec
    ) -> tuple[dict[str, QueryResult | None], dict[str, QueryResult | None]] | None:
        """Prometheus' answers to the service-level and capacity-fit queries (a failed one is None), or None
        without an SLO or a Prometheus to ask."""
        if spec.slo is None or not url:
            return None
        client = self._client(url)
        level, fit = await asyncio.gather(
            observe.query_results(
                client,
                service_level.queries(key.namespace, key.name, config, window_seconds=self._service_level_window),
                logger=log,
            ),
            observe.query_results(
                client, capacity_fit.queries(key.namespace, key.name, config, window=spec.prometheus.rate_window)
            ),
        )
        return level, fit

    def _slo_step(
        self,
        key: FleetKey,
        md: ModelDeployment,
        plan: Plan,
        shape: tuple[object, ...],
        base: types.Policy,
        answers: tuple[dict[str, QueryResult | None], dict[str, QueryResult | None]] | None,
        *,
        load: slo_policy.FleetLoad | None,
        now: datetime.datetime,
        at_max_replicas: bool,
        starting_replicas: int,
        unavailable: str | None,
    ) -> tuple[types.Policy, slo_status.SloReport | None]:
        """One tick of the measured SLO path (autoscale/slo_policy.py), as the simulator runs it
        (sim/adapter.py): measure, fit, feed back, derive. Returns the policy to decide with and the
        report the pass shows; the fleet's `FleetState` stays here, in memory."""
        spec = md.spec.autoscaling
        slo_spec = spec.slo
        assert slo_spec is not None
        known = self.slo_states.get(key)
        if known is None or known[0] != shape:
            # A new fleet, a restart, or a new model, instance type, TP or artifact key: the old curve
            # and measurements describe other replicas.
            try:
                prior = capacity.prior(plan)
            except ValueError:  # no catalog figures for a roofline: explicit targets alone (load_and_plan)
                self.slo_states.pop(key, None)
                return base, None
            known = (shape, slo_policy.start(prior))
        state = known[1]
        slo = convert.service_level(slo_spec)
        goal = convert.attainment_goal(slo_spec)
        level = None if answers is None else answers[0]
        if level is not None and any(v is not None for v in level.values()):
            unavailable = None
            state = slo_policy.observe(
                state,
                slo=slo,
                service_level_results=level,
                fit_results=answers[1] if answers is not None else {},
                now=now.timestamp(),
                goal=goal,
                startup_seconds=plan.expected_startup_seconds,
                fit_window_seconds=promql.duration_seconds(spec.prometheus.rate_window),
                interval_seconds=self._interval_override or float(spec.interval_seconds),
                window_seconds=self._service_level_window,
                at_max_replicas=at_max_replicas,
                starting_replicas=starting_replicas,
                load=load,
                hold_seconds=base.scale_down.stabilization_seconds,
            )
        else:  # Prometheus answered none of them: keep what was learned, measure nothing
            unavailable = unavailable or "every service-level query failed (the operator's log names the errors)"
        self.slo_states[key] = (shape, state)
        derivation, unreachable = None, None
        try:
            derivation = slo_policy.derive(
                slo,
                state.curve(),
                goal=goal,
                traffic=state.traffic,
                scale=state.feedback.scale,
                utilization=slo_spec.target_utilization,
                load=state.pool_load,
                rise=state.rise,
            )
        except slo_targets.SloUnreachable as exc:
            unreachable = f"spec.autoscaling.slo cannot be met on the fleet's capacity curve: {exc}"
        policy = base
        if derivation is not None:
            policy = slo_policy.policy(base, derivation, explicit=convert.explicit_targets(spec))
        report = slo_status.report(
            state,
            derivation,
            slo=slo,
            goal=goal,
            sampled_at=utc_timestamp(now),
            unavailable=unavailable,
            unreachable=unreachable,
        )
        return policy, report

    def _export(
        self,
        key: FleetKey,
        decision: types.Decision,
        observation: types.Observation,
        report: slo_status.SloReport | None,
    ) -> None:
        metrics = self._rt.metrics
        metrics.export_slo(key.namespace, key.name, report)
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
