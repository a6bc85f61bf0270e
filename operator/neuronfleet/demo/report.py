"""The end of the demo: a summary of what happened, as text and JSON, and a plot of load vs replicas.

`summarize` is pure over the timeline, the request outcomes and the events; matplotlib is
imported only by `plot`, so the demo runs without it when no plot is asked for.

With an SLO in the spec, the summary sets the operator's measured service level (what it read from
the replicas' histograms, as status.serviceLevel showed it during the run) beside the per-request
truth the load generator saw (every request's TTFT and decode time checked against the same SLO), so
the demo shows how close the measurement is as well as whether the fleet met the goal.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuronfleet.demo.load import RequestOutcome
from neuronfleet.demo.view import EventLine, Sample
from neuronfleet.sim.slo import Slo

__all__ = ["format_summary", "is_scale_event", "per_request_attainment", "percentile", "plot", "summarize"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


_SCALE_MESSAGE = re.compile(r"\b(\d+) -> (\d+) replicas\b")


def is_scale_event(event: EventLine) -> bool:
    """An autoscaler decision that changed the count: its message says `N -> M replicas` with N != M."""
    match = _SCALE_MESSAGE.search(event.message)
    return match is not None and match.group(1) != match.group(2)


def per_request_attainment(outcomes: Sequence[RequestOutcome], slo: Slo) -> float | None:
    """Share of completed requests that met `slo` (their own TTFT and decode time); None without any."""
    judged = [
        slo.met(o.prompt_tokens, o.output_tokens, o.ttft, o.e2e - o.ttft)
        for o in outcomes
        if o.status == 200 and o.ttft is not None and o.e2e is not None
    ]
    return sum(judged) / len(judged) if judged else None


def _service_level(
    samples: Sequence[Sample], outcomes: Sequence[RequestOutcome], slo: Slo, goal: float, window_seconds: float | None
) -> dict[str, Any]:
    """The measured attainment over the run (as the view sampled status.serviceLevel) and the truth."""
    measured = [s.attainment for s in samples if s.attainment is not None]
    judged = [s.service_level_met for s in samples if s.service_level_met in ("True", "False")]
    return {
        "goal": goal,
        "window_seconds": window_seconds,
        "measured_last": measured[-1] if measured else None,
        "measured_min": min(measured) if measured else None,
        "measured_samples": len(measured),
        "met_share": judged.count("True") / len(judged) if judged else None,
        "per_request": per_request_attainment(outcomes, slo),
    }


def summarize(
    samples: Sequence[Sample],
    outcomes: Sequence[RequestOutcome],
    events: Sequence[EventLine],
    *,
    compression: float,
    cores_per_replica: int,
    min_replicas: int,
    slo: Slo | None = None,
    goal: float = 0.99,
    window_seconds: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the run did: load, latency, replicas over time, scale decisions, capacity spent, and with
    `slo` the service level (`window_seconds`: the operator's measurement window, simulated)."""
    desired = [s.desired for s in samples if s.desired is not None]
    ok = [o for o in outcomes if o.status == 200]
    ttft = [o.ttft for o in ok if o.ttft is not None]
    e2e = [o.e2e for o in ok if o.e2e is not None]
    # Replica-time on the simulated clock: each sample holds until the next one.
    replica_seconds = 0.0
    for before, after in itertools.pairwise(samples):
        replica_seconds += before.pods * (after.wall - before.wall) * compression
    peak_at = max(range(len(desired)), key=desired.__getitem__) if desired else None
    scaled_up = bool(desired) and max(desired) > desired[0]
    scaled_down = peak_at is not None and min(desired[peak_at:]) < desired[peak_at]
    summary: dict[str, Any] = {
        "compression": compression,
        "wall_seconds": round(samples[-1].wall, 1) if samples else 0.0,
        "trace_seconds_replayed": round(max((s.trace_time or 0.0) for s in samples), 1) if samples else 0.0,
        "requests": {
            "sent": len(outcomes),
            "completed": len(ok),
            "failed": len(outcomes) - len(ok),
            "generated_tokens": sum(o.output_tokens for o in ok),
        },
        "latency_seconds": {
            "ttft_p50": percentile(ttft, 0.5),
            "ttft_p99": percentile(ttft, 0.99),
            "e2e_p50": percentile(e2e, 0.5),
            "e2e_p99": percentile(e2e, 0.99),
        },
        "replicas": {
            "min_replicas": min_replicas,
            "first_desired": desired[0] if desired else None,
            "max_desired": max(desired) if desired else None,
            "last_desired": desired[-1] if desired else None,
            "max_ready": max((s.ready or 0 for s in samples), default=0),
            "scaled_up": scaled_up,
            "scaled_down": scaled_down,
            "replica_hours": round(replica_seconds / 3600, 3),
            "neuroncore_hours": round(replica_seconds / 3600 * cores_per_replica, 3),
        },
        "scale_events": [
            {"reason": e.reason, "message": e.message, "time": e.time} for e in events if is_scale_event(e)
        ],
        "events": [{"type": e.type, "reason": e.reason, "message": e.message} for e in events],
    }
    if slo is not None:
        summary["service_level"] = _service_level(samples, outcomes, slo, goal, window_seconds)
    if extra:
        summary.update(extra)
    return summary


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as a few readable lines."""
    req, lat, rep = summary["requests"], summary["latency_seconds"], summary["replicas"]
    lines = [
        "",
        "== neuronfleet demo summary ==",
        f"replayed        {summary['trace_seconds_replayed']:.0f} s of trace in {summary['wall_seconds']:.0f} s "
        f"(compression x{summary['compression']:g})",
        f"requests        {req['sent']} sent, {req['completed']} completed, {req['failed']} failed; "
        f"{req['generated_tokens']} tokens generated",
        f"latency (sim)   TTFT p50 {_fmt(lat['ttft_p50'], ' s')}, p99 {_fmt(lat['ttft_p99'], ' s')}; "
        f"end-to-end p50 {_fmt(lat['e2e_p50'], ' s')}, p99 {_fmt(lat['e2e_p99'], ' s')}",
        f"replicas        desired {rep['first_desired']} -> peak {rep['max_desired']} -> {rep['last_desired']} "
        f"(min {rep['min_replicas']}); scaled up: {'yes' if rep['scaled_up'] else 'no'}, "
        f"scaled down: {'yes' if rep['scaled_down'] else 'no'}",
        f"capacity (sim)  {rep['replica_hours']:.2f} replica-hours = {rep['neuroncore_hours']:.2f} NeuronCore-hours",
    ]
    level = summary.get("service_level")
    if level:
        window = level.get("window_seconds")
        over = f" ({window:.0f} s)" if window else ""
        lines.append(
            f"service level   goal {_pct(level['goal'])}; measured by the operator from vLLM's histograms: "
            f"last window{over} {_pct(level['measured_last'])}, lowest {_pct(level['measured_min'])}, goal met in "
            f"{_pct(level['met_share'])} of the judged samples; per request over the whole run "
            f"{_pct(level['per_request'])}"
        )
    seen = summary.get("prometheus") or {}
    if seen:
        lines.append(
            f"prometheus      peak concurrency {_fmt(seen.get('max_concurrency'))}, peak "
            f"{_fmt(seen.get('max_tokens_per_second'))} tok/s per wall second (operator's PromQL)"
        )
    events = summary.get("scale_events") or []
    if events:
        lines.append(f"scale decisions {len(events)}:")
        lines += [f"  {e['reason']}: {e['message']}" for e in events]
    return "\n".join(lines)


def plot(
    samples: Sequence[Sample],
    path: str | Path,
    *,
    compression: float,
    title: str = "neuronfleet demo",
    goal: float | None = None,
) -> Path:
    """Write a PNG: the load (arrivals and requests in flight) above, desired and ready replicas below,
    and, with a `goal` (an SLO in the spec), the operator's measured attainment against it at the bottom.

    The x axis is simulated time since the load started, so the cool-down after the trace shows too.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.wall * compression / 60 for s in samples]
    rows = 3 if goal is not None else 2
    fig, axes = plt.subplots(
        rows, 1, sharex=True, figsize=(10, 8 if rows == 3 else 6), height_ratios=(3, 2, 2)[:rows]
    )
    load_axis, replica_axis = axes[0], axes[1]
    load_axis.plot(minutes, [s.load for s in samples], color="tab:blue", label="arrivals (req/s, last minute)")
    load_axis.set_ylabel("requests / s", color="tab:blue")
    flight_axis = load_axis.twinx()
    flight_axis.plot(minutes, [s.in_flight for s in samples], color="tab:orange", label="requests in flight")
    flight_axis.set_ylabel("in flight", color="tab:orange")
    handles, names = load_axis.get_legend_handles_labels()
    more_handles, more_names = flight_axis.get_legend_handles_labels()
    load_axis.legend(handles + more_handles, names + more_names, loc="upper right")
    load_axis.set_title(title)
    replica_axis.step(minutes, [s.desired or 0 for s in samples], where="post", color="tab:red", label="desired")
    replica_axis.step(
        minutes, [s.pods_ready for s in samples], where="post", color="tab:green", linestyle="--", label="ready"
    )
    replica_axis.set_ylabel("replicas")
    replica_axis.set_ylim(bottom=0)
    replica_axis.legend(loc="upper right")
    if goal is not None:
        level_axis = axes[2]
        shares = [math.nan if s.attainment is None else 100 * s.attainment for s in samples]
        level_axis.plot(minutes, shares, color="tab:purple", label="measured attainment (operator, last window)")
        level_axis.axhline(100 * goal, color="black", linestyle=":", label=f"goal {100 * goal:g} %")
        measured = [v for v in shares if not math.isnan(v)]
        level_axis.set_ylim(min([100 * goal - 1, *measured]) - 0.5, 100.2)
        level_axis.set_ylabel("% within SLO")
        level_axis.legend(loc="lower right")
    axes[-1].set_xlabel("simulated time since the load started (min)")
    fig.tight_layout()
    target = Path(path)
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target
