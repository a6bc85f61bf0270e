"""What the operator keeps in memory between passes, per process (kept in kopf's memo, never in globals).

Everything here can be lost at a restart without harm: the cache is refilled by kopf's initial
listing before any pass runs, an empty autoscaling history holds scale-down (autoscale/decide.py),
and a missing decision makes the pass keep the live replica count.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import Callable

from neuronfleet.autoscale import slo_status, types
from neuronfleet.controller.cache import Cache
from neuronfleet.controller.kinds import ChildKind
from neuronfleet.controller.kube import KubeClient
from neuronfleet.controller.metrics import OperatorMetrics
from neuronfleet.controller.settings import UNSERVED_RECHECK_SECONDS
from neuronfleet.render.options import RenderOptions

__all__ = ["FleetKey", "Runtime", "ScalingState", "utc_timestamp"]

@dataclasses.dataclass(frozen=True)
class FleetKey:
    namespace: str
    name: str


def utc_timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class ScalingState:
    """The autoscaler's last decision for a fleet: an input of the pass, which alone applies it."""

    decision: types.Decision
    observation: types.Observation
    metrics_error: str | None
    targets: dict[str, float]
    decided_at: datetime.datetime
    seq: int  # increases with every decision, so a pass announces each scale once
    # With spec.autoscaling.slo: what the tick measured and derived (status.serviceLevel, capacityCurve,
    # ServiceLevelMet), as plain data the pass copies into the status; None without an SLO.
    slo: slo_status.SloReport | None = None


@dataclasses.dataclass
class Runtime:
    """Per-operator state that outlives a pass."""

    kube: KubeClient
    render_options: RenderOptions
    metrics: OperatorMetrics
    clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC)
    cache: Cache = dataclasses.field(default_factory=Cache)
    locks: dict[FleetKey, asyncio.Lock] = dataclasses.field(default_factory=dict)
    # Written by the autoscaler, read by the pass: the decision is data, the pass is the writer.
    decisions: dict[FleetKey, ScalingState] = dataclasses.field(default_factory=dict)
    announced: dict[FleetKey, int] = dataclasses.field(default_factory=dict)  # decision seq already applied
    degraded: set[FleetKey] = dataclasses.field(default_factory=set)
    managed: set[FleetKey] = dataclasses.field(default_factory=set)
    # Kinds the API server answered "could not find the requested resource" for, and when (monotonic).
    unserved: dict[str, float] = dataclasses.field(default_factory=dict)
    unserved_recheck: float = UNSERVED_RECHECK_SECONDS
    # Schedules a later pass for a fleet (retry a failed compile after its backoff, recheck artifacts).
    requeue: Callable[[FleetKey, float], None] | None = None
    # Queues a pass now (the autoscaler hands its decision over through this).
    enqueue: Callable[[FleetKey], None] | None = None

    def lock(self, key: FleetKey) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def manage(self, key: FleetKey) -> None:
        if key not in self.managed:
            self.managed.add(key)
            self.metrics.managed.set(len(self.managed))

    def forget(self, key: FleetKey) -> None:
        """A ModelDeployment is gone: drop its state and series."""
        self.locks.pop(key, None)
        self.decisions.pop(key, None)
        self.announced.pop(key, None)
        self.degraded.discard(key)
        self.managed.discard(key)
        self.cache.forget_owner(key.namespace, key.name)
        self.metrics.managed.set(len(self.managed))
        self.metrics.degraded.set(len(self.degraded))
        self.metrics.forget_fleet(key.namespace, key.name)

    def served(self, kind: ChildKind, *, now: float | None = None) -> bool:
        """Whether to try `kind` this pass: not known to be missing, or missing long enough ago to look again."""
        since = self.unserved.get(kind.kind)
        if since is None:
            return True
        return (time.monotonic() if now is None else now) - since >= self.unserved_recheck

    def mark_unserved(self, kind: ChildKind, *, now: float | None = None) -> None:
        self.unserved[kind.kind] = time.monotonic() if now is None else now

    def mark_served(self, kind: ChildKind) -> None:
        self.unserved.pop(kind.kind, None)

    def set_degraded(self, key: FleetKey, degraded: bool) -> None:
        if degraded:
            self.degraded.add(key)
        else:
            self.degraded.discard(key)
        self.metrics.degraded.set(len(self.degraded))
        self.metrics.fleet_degraded.labels(namespace=key.namespace, name=key.name).set(int(degraded))
