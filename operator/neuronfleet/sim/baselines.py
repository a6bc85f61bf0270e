"""Faithful models of the autoscalers people run today, to compare neuronfleet against.

Each controller's arithmetic is a pure function (tested on hand-built inputs); a small class
per controller holds what the real one keeps between syncs and reads the fleet the way the real
one does (reference/autoscaling.md section 1 gives the sources):
- Kubernetes HPA on a Pods metric (avg running+waiting per pod), default behaviour.
- KEDA Prometheus scaler, metricType AverageValue (an HPA on an External metric), on
  sum(rate(generation tokens[1m])) or sum(waiting).
- Knative KPA: stable 60 s / panic 6 s windows, panic at 200 %, target utilisation 70 %,
  fed by queue-proxy concurrency every second (not by Prometheus).
- AIBrix APA: tolerance 0.1/0.1, rate 2/2, scale-down cooldown 300 s, KV-cache usage target 0.5.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from neuronfleet.sim.observe import FleetView, avg_over_time, last_sum, sum_rate

__all__ = [
    "Apa",
    "Hpa",
    "HpaBehavior",
    "Keda",
    "Kpa",
    "KpaState",
    "apa_replicas",
    "hpa_external_average_replicas",
    "hpa_pods_metric_replicas",
    "kpa_replicas",
]


def hpa_pods_metric_replicas(
    values: Sequence[float], *, missing: int, target: float, current: int, tolerance: float = 0.1
) -> int:
    """HPA's replica count for a Pods metric (replica_calculator `calcPlainMetricReplicas`).

    `values`: the metric of each pod that reported; `missing`: pods without a sample yet (a
    Neuron replica still starting). Missing pods count as 0 % of target when scaling up and as
    100 % when scaling down; if that reverses the direction or lands in tolerance, no change.
    """
    if not values:
        return current
    ratio = sum(values) / len(values) / target
    if missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * len(values))
    filler = target if ratio < 1.0 else 0.0
    pods = len(values) + missing
    new_ratio = (sum(values) + filler * missing) / pods / target
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0) != (new_ratio < 1.0):
        return current
    replicas = math.ceil(new_ratio * pods)
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def hpa_external_average_replicas(value: float, *, target: float, current: int, tolerance: float = 0.1) -> int:
    """HPA on an External metric with an AverageValue target (what KEDA creates).

    desired = ceil(value / target) "regardless of the current replica count", unless the
    per-replica ratio is within tolerance (`GetExternalPerPodMetricReplicas`).
    """
    if current > 0 and abs(1.0 - value / (target * current)) <= tolerance:
        return current
    return math.ceil(value / target - 1e-9)


class HpaBehavior:
    """HPA `behavior` with the defaults: stabilization windows, then rate-limit policies.

    Up: min of recommendations over 0 s, at most max(+100 %, +4 pods) per 15 s. Down: max of
    recommendations over 300 s, at most -100 % per 15 s (`normalizeDesiredReplicasWithBehaviors`).
    """

    def __init__(
        self, *, min_replicas: int, max_replicas: int, up_window: float = 0.0, down_window: float = 300.0
    ) -> None:
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.up_window = up_window
        self.down_window = down_window
        self.recommendations: deque[tuple[float, int]] = deque()
        self.events: deque[tuple[float, int]] = deque()  # (time, replica change)

    def apply(self, recommended: int, current: int, now: float) -> int:
        """Stabilize and rate-limit one raw recommendation."""
        up = down = recommended
        for at, rec in self.recommendations:
            if at > now - self.up_window:
                up = min(up, rec)
            if at > now - self.down_window:
                down = max(down, rec)
        self.recommendations.append((now, recommended))
        while self.recommendations and self.recommendations[0][0] <= now - max(self.down_window, 1.0):
            self.recommendations.popleft()
        desired = min(max(current, up), down)
        while self.events and self.events[0][0] <= now - 15.0:
            self.events.popleft()
        added = sum(d for _, d in self.events if d > 0)
        removed = -sum(d for _, d in self.events if d < 0)
        if desired > current:
            start = current - added
            desired = min(desired, max(start + 4, math.ceil(start * 2.0)), self.max_replicas)
        elif desired < current:
            # The default -100 % per 15 s allows any drop; keep the bookkeeping for symmetry.
            desired = max(desired, math.floor((current + removed) * 0.0))
        desired = min(max(desired, self.min_replicas), self.max_replicas)
        if desired != current:
            self.events.append((now, desired - current))
        return desired


class Hpa:
    """Kubernetes HPA on a Pods metric: average (running + waiting) per pod, last scrape."""

    sync_seconds = 15.0
    scrape_seconds = 15.0
    scrape_kv = False

    def __init__(self, *, target: float, min_replicas: int = 1, max_replicas: int = 64) -> None:
        self.name = f"hpa-concurrency@{target:g}"
        self.target = target
        self.behavior = HpaBehavior(min_replicas=min_replicas, max_replicas=max_replicas)

    def desired(self, view: FleetView, now: float) -> int:
        """One HPA sync."""
        current = view.current_replicas
        if not view.scrapes:
            return current
        samples = view.scrapes[-1].replicas
        values = [s.running + s.waiting for s in samples.values()]
        missing = max(0, view.ready_replicas + view.starting_replicas - len(values))
        recommended = hpa_pods_metric_replicas(values, missing=missing, target=self.target, current=current)
        return self.behavior.apply(recommended, current, now)


class Keda:
    """KEDA Prometheus scaler, AverageValue: tokens/s (rate over 1m) or waiting requests.

    KEDA's pollingInterval (30 s) only drives 0<->1 activation; with minReplicaCount >= 1 the HPA
    it creates asks the metrics adapter every 15 s, which queries Prometheus then.
    """

    sync_seconds = 15.0
    scrape_seconds = 15.0
    scrape_kv = False

    def __init__(self, *, signal: str, threshold: float, min_replicas: int = 1, max_replicas: int = 64) -> None:
        if signal not in {"tokens", "waiting"}:
            raise ValueError("KEDA signal is 'tokens' or 'waiting'")
        self.name = f"keda-{signal}@{threshold:g}"
        self.signal = signal
        self.threshold = threshold
        self.behavior = HpaBehavior(min_replicas=min_replicas, max_replicas=max_replicas)

    def desired(self, view: FleetView, now: float) -> int:
        """One HPA sync on KEDA's external metric; no value (null) holds."""
        current = view.current_replicas
        if self.signal == "tokens":
            value = sum_rate(view.scrapes, now, 60.0, "generation_tokens")
        else:
            value = last_sum(view.scrapes, ("waiting",))
        if value is None:
            return current
        pods = view.ready_replicas + view.starting_replicas
        recommended = hpa_external_average_replicas(value, target=self.threshold, current=pods)
        return self.behavior.apply(recommended, current, now)


@dataclass
class KpaState:
    """What Knative's autoscaler remembers between ticks."""

    panic_since: float | None = None  # last time the panic threshold was crossed
    max_panic_pods: int = 0


def kpa_replicas(
    *,
    stable_value: float,
    panic_value: float,
    target: float,
    ready: int,
    now: float,
    state: KpaState,
    stable_window: float = 60.0,
    panic_threshold: float = 2.0,
    max_scale_up_rate: float = 1000.0,
    max_scale_down_rate: float = 2.0,
) -> int:
    """Knative KPA's desired pods for one tick (autoscaler.go `Scale`); updates `state`.

    Panic starts when the panic-window concurrency wants >= 200 % of the ready pods, and lasts
    until a whole stable window passes without that; while panicking it never scales down.
    """
    ready = max(1, ready)
    max_up = math.ceil(max_scale_up_rate * ready)
    max_down = math.floor(ready / max_scale_down_rate)
    stable_pods = min(max(math.ceil(stable_value / target), max_down), max_up)
    panic_pods = min(max(math.ceil(panic_value / target), max_down), max_up)
    over = panic_pods / ready >= panic_threshold
    if over:
        state.panic_since = now
    elif state.panic_since is not None and now >= state.panic_since + stable_window:
        state.panic_since = None
        state.max_panic_pods = 0
    if state.panic_since is None:
        return stable_pods
    state.max_panic_pods = max(state.max_panic_pods, panic_pods)
    return state.max_panic_pods


class Kpa:
    """Knative KPA on concurrency per pod; target = containerConcurrency x 70 %."""

    sync_seconds = 2.0  # tick-interval
    scrape_seconds = 1.0  # queue-proxy reports in-flight requests every second
    scrape_kv = False

    def __init__(
        self,
        *,
        container_concurrency: float,
        utilization: float = 0.7,
        min_replicas: int = 1,
        max_replicas: int = 64,
    ) -> None:
        self.name = f"kpa@{container_concurrency:g}"
        self.target = container_concurrency * utilization
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.state = KpaState()

    def desired(self, view: FleetView, now: float) -> int:
        """One KPA tick."""
        stable = avg_over_time(view.scrapes, now, 60.0, ("running", "waiting"))
        panic = avg_over_time(view.scrapes, now, 6.0, ("running", "waiting"))
        if stable is None or panic is None:
            return view.current_replicas
        wanted = kpa_replicas(
            stable_value=stable[0],
            panic_value=panic[0],
            target=self.target,
            ready=view.ready_replicas,
            now=now,
            state=self.state,
        )
        return min(max(wanted, self.min_replicas), self.max_replicas)


def apa_replicas(
    *,
    metric: float,
    target: float,
    current: int,
    up_tolerance: float = 0.1,
    down_tolerance: float = 0.1,
    max_up_rate: float = 2.0,
    max_down_rate: float = 2.0,
) -> int:
    """AIBrix APA (algorithm/apa.go): ratio r = metric/target with a fluctuation band and rate caps."""
    if current <= 0:
        return 1 if metric > 0 else 0
    r = metric / target
    if r > 1.0 + up_tolerance:
        return min(math.ceil(current * r), math.ceil(max_up_rate * current))
    if r < 1.0 - down_tolerance:
        return max(math.ceil(current * r), math.floor(current / max_down_rate))
    return current


class Apa:
    """AIBrix APA on mean vllm:kv_cache_usage_perc per pod, averaged over the observe window."""

    sync_seconds = 15.0
    scrape_seconds = 15.0
    scrape_kv = True

    def __init__(
        self,
        *,
        target: float = 0.5,
        window: float = 180.0,
        cooldown: float = 300.0,
        min_replicas: int = 1,
        max_replicas: int = 64,
    ) -> None:
        self.name = f"apa-kv@{target:g}"
        self.target = target
        self.window = window
        self.cooldown = cooldown
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.last_scale: float | None = None

    def desired(self, view: FleetView, now: float) -> int:
        """One APA sync; scale-down waits out the cooldown after the last change."""
        current = view.current_replicas
        seen = avg_over_time(view.scrapes, now, self.window, ("kv_cache_usage",))
        if seen is None or seen[1] == 0:
            return current
        per_pod = seen[0] / seen[1]
        wanted = apa_replicas(metric=per_pod, target=self.target, current=max(1, view.ready_replicas))
        if per_pod > self.target and wanted < current:
            wanted = current  # ready pods are short of the count only because some are starting
        wanted = min(max(wanted, self.min_replicas), self.max_replicas)
        if wanted < current and self.last_scale is not None and now - self.last_scale < self.cooldown:
            return current
        if wanted != current:
            self.last_scale = now
        return wanted
