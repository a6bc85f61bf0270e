"""The clairvoyant, startup-aware lower bound LB_L (reference/autoscaling.md section 3.4).

Why a bound and not just "the best policy we have": a ratio to LB_L says how much any policy
could still gain. Demand is computed with full knowledge of the trace under the fluid version of
the engine step model, N*(t) replicas are needed at t, and LB_L prices the cheapest schedule that
has them ready in time when each start costs the startup delay L.

Fluid capacity, derived from the step model `alpha + beta*B + gamma*P`, with each request's work
spread as thinly as its deadlines allow (so that no schedule meeting every SLO can need fewer):
- Time: a replica whose users get R_min tok/s runs at least R_min steps a second, so with D decode
  tokens/s and Pi prompt tokens/s to serve, N replicas need `N*(1 - R_min*alpha) >= beta*D + gamma*Pi`.
  D(t) = R_min * C(t), C(t) counting requests decoding at exactly R_min after a prefill at full
  speed; Pi(t) spreads each prompt evenly over its TTFT budget.
- Slots: N >= C_fast(t) / B*, where C_fast counts requests decoding at the fastest pace
  1/(alpha + beta) and B* = min(max_num_seqs, KV tokens / mean context).
As the reference says, this bounds the fluid model only: vLLM's first-come prefill chunks stall
short requests' decodes, and integer batches and routing imbalance cost more; the oracle-sim replay
shows how attainable the bound is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from neuronfleet.sim.observe import FleetView
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest

__all__ = ["SMOOTH_SECONDS", "OraclePlan", "OraclePolicy", "demand", "fluid_demand", "layered_plan", "plan_oracle"]

BIN_SECONDS = 1.0
# Optional averaging of the fluid need before rounding (1 bin = none). Work may move inside its
# deadline slack, so summing each request's thinnest spread can overstate a one-second peak (the
# exact minimal-speed profile is the YDS critical-interval schedule). Averaging flattens peaks
# (usually lowering the bound; rounding sparse need up can also raise it) but makes the oracle-sim
# replay miss more (Azure conv, 8B, 60 s start: 98.2 % unsmoothed, 86.5 % over 5 s), so the
# default keeps the per-second need. LB_L bounds fleets meeting *every* SLO; a policy allowed to
# miss 1 % can undercut it (conv, 1200 s start: 3 static replicas reach 99.76 % at 0.81x LB_L;
# 4 replicas, 4 misses, cost 1.08x).
SMOOTH_SECONDS = 1.0


def _add(full: list[float], part: list[float], start: float, end: float, weight: float) -> None:
    """Add `weight` over [start, end) to a per-bin average (difference array + partial bins)."""
    if end <= start:
        return
    i0 = int(start / BIN_SECONDS)
    i1 = int(end / BIN_SECONDS)
    if i0 == i1:
        part[i0] += weight * (end - start) / BIN_SECONDS
        return
    part[i0] += weight * ((i0 + 1) * BIN_SECONDS - start) / BIN_SECONDS
    full[i0 + 1] += weight
    full[i1] -= weight
    part[i1] += weight * (end - i1 * BIN_SECONDS) / BIN_SECONDS


def demand(
    trace: Sequence[TraceRequest], profile: EngineProfile, slo: Slo, *, smooth_seconds: float = SMOOTH_SECONDS
) -> list[int]:
    """N*(t): replicas needed in each one-second bin (the fluid bound, averaged, rounded up)."""
    return [math.ceil(v - 1e-9) for v in _smooth(fluid_demand(trace, profile, slo), int(smooth_seconds / BIN_SECONDS))]


def fluid_demand(trace: Sequence[TraceRequest], profile: EngineProfile, slo: Slo) -> list[float]:
    """The fluid need per one-second bin before rounding: replicas of `profile`, fractional."""
    if not trace:
        return []
    r_min = slo.min_tokens_per_second
    if profile.step_seconds(1, 0) > 1.0 / r_min:
        raise ValueError(f"{profile.name} cannot reach {r_min} tok/s per user")
    fastest = 1.0 / profile.step_seconds(1, 0)
    mean_context = sum(r.prompt_tokens + r.output_tokens for r in trace) / len(trace)
    batch_cap = min(profile.max_num_seqs, profile.kv_cache_tokens / mean_context)
    spans = []
    for r in trace:
        budget = slo.ttft_budget(r.prompt_tokens)
        start = r.arrival + profile.alpha + profile.gamma * r.prompt_tokens
        spans.append((r, budget, start, (r.output_tokens - 1) / r_min, (r.output_tokens - 1) / fastest))
    horizon = max(max(r.arrival + b, s + slow) for r, b, s, slow, _ in spans)
    bins = int(horizon / BIN_SECONDS) + 2
    slow_full, slow_part = [0.0] * (bins + 1), [0.0] * (bins + 1)
    fast_full, fast_part = [0.0] * (bins + 1), [0.0] * (bins + 1)
    p_full, p_part = [0.0] * (bins + 1), [0.0] * (bins + 1)
    for r, budget, start, slow, fast in spans:
        _add(slow_full, slow_part, start, start + slow, 1.0)
        _add(fast_full, fast_part, start, start + fast, 1.0)
        _add(p_full, p_part, r.arrival, r.arrival + budget, r.prompt_tokens / budget)
    share = 1.0 - r_min * profile.alpha  # time left after the steps the SLO requires
    fluid = []
    slow_run = fast_run = p_run = 0.0
    for i in range(bins):
        slow_run += slow_full[i]
        fast_run += fast_full[i]
        p_run += p_full[i]
        slow = slow_run + slow_part[i]
        fast = fast_run + fast_part[i]
        p = p_run + p_part[i]
        fluid.append(max(fast / batch_cap, (profile.beta * r_min * slow + profile.gamma * p) / share))
    return fluid


def _smooth(values: list[float], width: int) -> list[float]:
    """Centred moving average over `width` bins (1: unchanged)."""
    if width <= 1:
        return values
    half = width // 2
    prefix = [0.0]
    for v in values:
        prefix.append(prefix[-1] + v)
    out = []
    n = len(values)
    for i in range(n):
        lo, hi = max(0, i - half), min(n, i - half + width)
        out.append((prefix[hi] - prefix[lo]) / (hi - lo))
    return out


@dataclass(frozen=True)
class OraclePlan:
    """LB0, LB_L and the layered schedule that achieves LB_L (intervals in seconds)."""

    lb0_core_hours: float
    lbl_core_hours: float
    startup_seconds: float
    needed: tuple[int, ...]  # N*(t) per bin
    layers: tuple[tuple[tuple[float, float], ...], ...]  # per layer: on-intervals (start, end)

    def replicas_at(self, t: float, *, lead: float | None = None) -> int:
        """Replicas the schedule keeps billed at t (requested `lead` seconds before each start)."""
        lead = self.startup_seconds if lead is None else lead
        count = 0
        for intervals in self.layers:
            for start, end in intervals:
                begin = start if start <= 0 else start - lead
                if begin <= t < end:
                    count += 1
                    break
        return count


def layered_plan(needed: Sequence[int], startup: float, cores: int) -> OraclePlan:
    """Split N* into layers, bridge each layer's gaps shorter than L, price each start at L.

    Keeping a replica for a gap g < L costs g, restarting costs L, so bridging is optimal per
    layer; intervals touching t=0 start warm (and an interval starting before L is extended back
    to 0, which costs less than a start).
    """
    top = max(needed, default=0)
    layers = []
    total = 0.0
    for k in range(1, top + 1):
        intervals: list[list[float]] = []
        start = None
        for i, n in enumerate(needed):
            if n >= k and start is None:
                start = i
            elif n < k and start is not None:
                intervals.append([start * BIN_SECONDS, i * BIN_SECONDS])
                start = None
        if start is not None:
            intervals.append([start * BIN_SECONDS, len(needed) * BIN_SECONDS])
        merged: list[list[float]] = []
        for interval in intervals:
            if merged and interval[0] - merged[-1][1] < startup:
                merged[-1][1] = interval[1]
            else:
                merged.append(interval)
        if merged and 0 < merged[0][0] < startup:
            merged[0][0] = 0.0
        for begin, end in merged:
            total += end - begin + (startup if begin > 0 else 0.0)
        layers.append(tuple((b, e) for b, e in merged))
    return OraclePlan(
        lb0_core_hours=cores * sum(needed) * BIN_SECONDS / 3600.0,
        lbl_core_hours=cores * total / 3600.0,
        startup_seconds=startup,
        needed=tuple(needed),
        layers=tuple(layers),
    )


def plan_oracle(trace: Sequence[TraceRequest], profile: EngineProfile, slo: Slo, startup: float) -> OraclePlan:
    """LB0 and LB_L of a trace for one profile, SLO and startup delay."""
    return layered_plan(demand(trace, profile, slo), startup, profile.cores)


class OraclePolicy:
    """Oracle-sim: replays the layered schedule, each replica requested L before it is needed."""

    scrape_seconds = 15.0
    scrape_kv = False

    def __init__(self, plan: OraclePlan, *, headroom: int = 0) -> None:
        self.name = "oracle" if not headroom else f"oracle+{headroom}"
        self.plan = plan
        self.sync_seconds = 1.0
        self.headroom = headroom

    def initial_replicas(self) -> int:
        """Replicas alive (warm) at t=0."""
        return self.plan.replicas_at(0.0) + self.headroom

    def desired(self, view: FleetView, now: float) -> int:
        """The schedule's count at `now`; the fleet's own state is ignored (clairvoyance)."""
        del view
        return self.plan.replicas_at(now) + self.headroom
