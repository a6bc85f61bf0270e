"""Scores of one simulated run: SLO attainment, latency percentiles, NeuronCore-hours, stability.

Definitions follow reference/autoscaling.md section 3: a request meets the SLO iff its TTFT and its
per-user token rate both do; attainment counts every arrival (a request the router gave up on, with
`router_timeout_seconds`, counts as missed); cost is NeuronCore-hours billed from requested (or,
with finite capacity, from bound to its nodes) to gone, split into the startup share, each replica
at its own variant's cores (a group's are all its nodes' cores); a flap is a scale-down followed by
a scale-up within ten minutes.

Node-hours by instance type, since types cost differently: with capacity pools, every node from
launch to removal (idle and launching nodes included); without, the nodes the replicas occupy
(a group's N nodes, a share of a node for replicas that share one).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from neuronfleet.sim import nodes
from neuronfleet.sim.fleet import SimResult
from neuronfleet.sim.slo import Slo

__all__ = ["FLAP_SECONDS", "WINDOW_SECONDS", "Report", "core_hours", "node_hours", "percentile", "summarize"]

WINDOW_SECONDS = 300.0
FLAP_SECONDS = 600.0


@dataclass(frozen=True)
class Report:
    """One run's figures (times in seconds, cost in NeuronCore-hours)."""

    policy: str
    profile: str
    startup_seconds: float
    requests: int
    attainment: float
    worst_window_attainment: float
    ttft_p50: float
    ttft_p90: float
    ttft_p99: float
    tpot_p50: float
    tpot_p90: float
    tpot_p99: float
    core_hours: float
    startup_core_hours: float
    oracle_core_hours: float | None
    ratio_to_oracle: float | None
    scale_events: int
    scale_events_per_hour: float
    flaps: int
    flaps_per_hour: float
    peak_replicas: int
    horizon_seconds: float
    node_hours: tuple[tuple[str, float], ...] = ()  # (instance type, node-hours), primary's type first
    retried: int = 0  # requests restarted after their replica's node was reclaimed
    dropped: int = 0  # requests that failed at the router (no replica ready in time): missed

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready dict."""
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(values)))
    return values[min(rank, len(values)) - 1]


def core_hours(result: SimResult) -> tuple[float, float]:
    """(total, startup share) of NeuronCore-hours, each replica billed bound -> gone at its cores."""
    default = result.profile.cores
    total = 0.0
    startup = 0.0
    for rec in result.replicas:
        if rec.bound is None:
            continue  # never got a node: nothing ran, nothing billed
        cores = rec.cores or default
        end = result.horizon if rec.gone is None else min(rec.gone, result.horizon)
        ready = rec.ready if rec.ready is not None else end
        total += cores * max(0.0, end - rec.bound)
        startup += cores * max(0.0, min(ready, end) - rec.bound)
    return total / 3600.0, startup / 3600.0


def node_hours(result: SimResult) -> dict[str, float]:
    """Node-hours per instance type (see the module docstring), the primary's type first."""
    if result.nodes:
        billed = nodes.node_hours(result.nodes, result.horizon)
    else:
        share = {s.name: (s.instance_type, s.node_share) for s in result.shapes}
        billed = {}
        for rec in result.replicas:
            if rec.bound is None or rec.variant not in share:
                continue
            instance_type, part = share[rec.variant]
            end = result.horizon if rec.gone is None else min(rec.gone, result.horizon)
            billed[instance_type] = billed.get(instance_type, 0.0) + part * max(0.0, end - rec.bound) / 3600.0
    order = [s.instance_type for s in result.shapes]
    return dict(sorted(billed.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _flaps(decisions: list[tuple[float, int, int]]) -> int:
    flaps = 0
    last_down: float | None = None
    for at, before, after in decisions:
        if after < before:
            last_down = at
        elif after > before and last_down is not None and at - last_down <= FLAP_SECONDS:
            flaps += 1
            last_down = None
    return flaps


def summarize(result: SimResult, slo: Slo, *, oracle_core_hours: float | None = None) -> Report:
    """Score a finished run against `slo` (and the oracle's cost, when given)."""
    ttfts: list[float] = []
    tpots: list[float] = []
    met_total = 0
    windows: dict[int, list[int]] = {}
    for r in result.requests:
        ttft = r.first_token - r.arrival
        decode = r.finish - r.first_token
        ok = slo.met(r.prompt_tokens, r.output_tokens, ttft, decode)
        ttfts.append(ttft)
        if r.output_tokens > 1 and not r.dropped:
            tpots.append(decode / (r.output_tokens - 1))
        met_total += ok
        bucket = windows.setdefault(int(r.arrival // WINDOW_SECONDS), [0, 0])
        bucket[0] += ok
        bucket[1] += 1
    ttfts.sort()
    tpots.sort()
    n = len(result.requests)
    hours = result.horizon / 3600.0 if result.horizon > 0 else 1.0
    total, startup = core_hours(result)
    flaps = _flaps(result.decisions)
    peak = max((billed for _, billed, _ in result.replica_series), default=0)
    return Report(
        policy=result.policy,
        profile=result.profile.name,
        startup_seconds=result.startup_seconds,
        requests=n,
        attainment=met_total / n if n else 1.0,
        worst_window_attainment=min((m / c for m, c in windows.values()), default=1.0),
        ttft_p50=percentile(ttfts, 50),
        ttft_p90=percentile(ttfts, 90),
        ttft_p99=percentile(ttfts, 99),
        tpot_p50=percentile(tpots, 50),
        tpot_p90=percentile(tpots, 90),
        tpot_p99=percentile(tpots, 99),
        core_hours=total,
        startup_core_hours=startup,
        oracle_core_hours=oracle_core_hours,
        ratio_to_oracle=(total / oracle_core_hours) if oracle_core_hours else None,
        scale_events=len(result.decisions),
        scale_events_per_hour=len(result.decisions) / hours,
        flaps=flaps,
        flaps_per_hour=flaps / hours,
        peak_replicas=peak,
        horizon_seconds=result.horizon,
        node_hours=tuple(node_hours(result).items()),
        retried=result.retried,
        dropped=result.dropped,
    )
