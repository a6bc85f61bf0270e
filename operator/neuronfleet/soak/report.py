"""The soak's report: every checker over the timelines, the figures, a markdown page and one PNG.

Everything but `plot` is pure: the runner hands over the timelines and gets a JSON-ready dict.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuronfleet.soak import invariants as inv

__all__ = [
    "all_violations",
    "build",
    "count_flaps",
    "format_text",
    "load_timeline",
    "markdown",
    "percentile",
    "plot",
    "recheck",
]

DECISION_WINDOW = 10.0  # seconds between a replica change and its decision event
ONE_WRITER_WINDOW = 5.0  # seconds within which a writer coming back means two operators acted
CHILD_GRACE = 15.0  # seconds a rollout may hold two workloads, or GC may leave an orphan
METRICS_LAG = 3.0  # seconds a decision taken before a metrics gap may take to land
FLAP_WINDOW = 60.0  # a change reversed within this many seconds is a flap


def all_violations(
    snapshots: Sequence[inv.Snapshot],
    spans: Sequence[inv.Span],
    gaps: Sequence[inv.MetricsGap],
    decisions: Sequence[inv.Decision],
    writes: Sequence[inv.Write],
    rss: Sequence[inv.RssSample],
    logs: Sequence[inv.LogLine],
    *,
    settle: float,
    rss_bound: float,
    rss_warmup: float,
    rss_min_span: float,
) -> list[inv.Violation]:
    """Every invariant over the timelines so far; each checker judges only what its timeline can decide."""
    found = [
        *inv.check_bounds(snapshots, spans, settle=settle),
        *inv.check_no_scale_down_without_metrics(snapshots, gaps, spans, lag=METRICS_LAG, settle=settle),
        *inv.check_changes_have_decisions(snapshots, decisions, spans, window=DECISION_WINDOW, settle=settle),
        *inv.check_children(snapshots, spans, grace=CHILD_GRACE),
        *inv.check_fleets_present(snapshots, spans, grace=settle),
        *inv.check_convergence(snapshots, spans, within=settle),
        *inv.check_one_writer(writes, window=ONE_WRITER_WINDOW),
        *inv.check_rss_growth(rss, bound_bytes_per_hour=rss_bound, warmup=rss_warmup, min_span=rss_min_span),
        *inv.check_tracebacks(logs),
    ]
    return sorted(found, key=lambda v: v.t)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def count_flaps(snapshots: Sequence[inv.Snapshot], *, window: float = FLAP_WINDOW) -> tuple[int, int]:
    """(replica changes, flaps): a flap is a change in the opposite direction within `window` seconds."""
    last: dict[tuple[str, str], tuple[int, float, int]] = {}  # (fleet, uid) -> (replicas, t of last change, dir)
    changes = flaps = 0
    for snap in snapshots:
        for fleet in snap.fleets:
            for child in fleet.workloads():
                assert child.replicas is not None
                key = (fleet.key, child.uid)
                seen = last.get(key)
                if seen is None:
                    last[key] = (child.replicas, -1e18, 0)
                    continue
                replicas, changed_at, direction = seen
                if child.replicas == replicas:
                    continue
                changes += 1
                new_direction = 1 if child.replicas > replicas else -1
                if direction and new_direction != direction and snap.t - changed_at <= window:
                    flaps += 1
                last[key] = (child.replicas, snap.t, new_direction)
    return changes, flaps


def _convergence(snapshots: Sequence[inv.Snapshot], spans: Sequence[inv.Span]) -> dict[str, dict[str, Any]]:
    by_kind: dict[str, list[float | None]] = collections.defaultdict(list)
    for span, _key, seconds in inv.convergence_times(snapshots, spans):
        by_kind[span.kind].append(seconds)
    table = {}
    for kind, values in sorted(by_kind.items()):
        done = [v for v in values if v is not None]
        p50, p95 = percentile(done, 0.5), percentile(done, 0.95)
        table[kind] = {
            "settled": len(done),
            "unsettled": len(values) - len(done),
            "p50_s": None if p50 is None else round(p50, 1),
            "p95_s": None if p95 is None else round(p95, 1),
        }
    return table


def _rss_table(rss: Sequence[inv.RssSample], warmup: float) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    by_process: dict[str, list[inv.RssSample]] = collections.defaultdict(list)
    for sample in rss:
        by_process[sample.process].append(sample)
    for process, own in sorted(by_process.items()):
        # "Start" is after the warm-up (imports, first lists), the level a leak would grow from.
        settled = [s for s in own if s.t >= own[0].t + warmup] or own[-1:]
        table[process] = {
            "start_mib": round(settled[0].rss_bytes / 2**20, 1),
            "first_mib": round(own[0].rss_bytes / 2**20, 1),
            "end_mib": round(own[-1].rss_bytes / 2**20, 1),
            "watched_s": round(own[-1].t - settled[0].t, 1),
            "slope_mib_per_hour": round(inv.rss_slope(settled) / 2**20, 1),
        }
    return table


def build(
    snapshots: Sequence[inv.Snapshot],
    spans: Sequence[inv.Span],
    gaps: Sequence[inv.MetricsGap],
    decisions: Sequence[inv.Decision],
    writes: Sequence[inv.Write],
    rss: Sequence[inv.RssSample],
    logs: Sequence[inv.LogLine],
    *,
    injected: Sequence[Mapping[str, Any]],
    settle: float,
    rss_bound: float,
    rss_warmup: float,
    rss_min_span: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole report as plain data."""
    violations = all_violations(
        snapshots,
        spans,
        gaps,
        decisions,
        writes,
        rss,
        logs,
        settle=settle,
        rss_bound=rss_bound,
        rss_warmup=rss_warmup,
        rss_min_span=rss_min_span,
    )
    hours = max((snapshots[-1].t - snapshots[0].t) if snapshots else 0.0, 1.0) / 3600.0
    changes, flaps = count_flaps(snapshots)
    by_invariant = collections.Counter(v.invariant for v in violations)
    writers = collections.Counter(w.user for w in writes)
    return {
        **dict(extra or {}),
        "convergence_bound_s": settle,
        "rss_bound_mib_per_hour": round(rss_bound / 2**20, 1),
        "faults_by_kind": dict(sorted(collections.Counter(str(f["kind"]) for f in injected).items())),
        "faults_failed_to_inject": [f for f in injected if "error" in f],
        "violations_total": len(violations),
        "violations_by_invariant": dict(sorted(by_invariant.items())),
        "violations": [
            {"t": round(v.t, 1), "invariant": v.invariant, "subject": v.subject, "evidence": v.evidence}
            for v in violations
        ],
        "convergence_by_fault_kind": _convergence(snapshots, spans),
        "decisions": len(decisions),
        "decisions_per_hour": round(len(decisions) / hours, 1),
        "replica_changes": changes,
        "flaps": flaps,
        "flaps_per_hour": round(flaps / hours, 1),
        "writes_by_operator": dict(sorted(writers.items())),
        "rss": _rss_table(rss, min(rss_warmup, 30.0)),
        "metrics_gaps": [
            {"start": round(g.start, 1), "end": round(g.end, 1), "fleets": list(g.fleets), "why": g.why} for g in gaps
        ],
        "faults": list(injected),
        "samples": len(snapshots),
    }


def format_text(report: Mapping[str, Any]) -> str:
    """A short summary for the terminal."""
    lines = [
        "",
        f"soak: {report.get('duration_s')} s, seed {report.get('seed')}, "
        f"{sum(report['faults_by_kind'].values())} faults",
        "faults by kind: " + ", ".join(f"{k} {v}" for k, v in report["faults_by_kind"].items()),
        f"violations: {report['violations_total']} "
        + (str(report["violations_by_invariant"]) if report["violations_total"] else "(goal: 0)"),
        f"decisions/hour {report['decisions_per_hour']}, flaps/hour {report['flaps_per_hour']}",
    ]
    for process, row in report["rss"].items():
        lines.append(
            f"RSS {process}: {row['start_mib']} -> {row['end_mib']} MiB over {row['watched_s']} s "
            f"({row['slope_mib_per_hour']} MiB/h fitted)"
        )
    for kind, row in report["convergence_by_fault_kind"].items():
        lines.append(
            f"converged after {kind}: p50 {row['p50_s']} s, p95 {row['p95_s']} s, unsettled {row['unsettled']}"
        )
    return "\n".join(lines)


def markdown(report: Mapping[str, Any]) -> str:
    """The report as a markdown page."""
    out = [
        "# neuronfleet chaos soak",
        "",
        f"- seed {report.get('seed')}, fault phase {report.get('fault_phase_s')} s, "
        f"whole run {report.get('duration_s')} s",
        f"- convergence bound T = {report['convergence_bound_s']} s; "
        f"RSS bound {report['rss_bound_mib_per_hour']} MiB/h",
        f"- violations: **{report['violations_total']}**",
        f"- decisions: {report['decisions']} ({report['decisions_per_hour']}/h); replica changes "
        f"{report['replica_changes']}; flaps {report['flaps']} ({report['flaps_per_hour']}/h)",
        f"- writes by operator: {report['writes_by_operator']}",
        "",
        "## Faults by kind",
        "",
        "| kind | injected | converged after (p50 / p95 s) | not converged before the next fault |",
        "|---|---|---|---|",
    ]
    convergence = report["convergence_by_fault_kind"]
    for kind, n in report["faults_by_kind"].items():
        row = convergence.get(kind, {})
        out.append(
            f"| {kind} | {n} | {row.get('p50_s', '-')} / {row.get('p95_s', '-')} | {row.get('unsettled', '-')} |"
        )
    out += [
        "",
        "## Operator RSS",
        "",
        "| process | start MiB | end MiB | watched s | fitted MiB/h |",
        "|---|---|---|---|---|",
    ]
    for process, row in report["rss"].items():
        out.append(
            f"| {process} | {row['start_mib']} | {row['end_mib']} | {row['watched_s']} | {row['slope_mib_per_hour']} |"
        )
    out += ["", "## Violations", ""]
    if not report["violations"]:
        out.append("None.")
    for v in report["violations"]:
        evidence = v["evidence"].replace("\n", " / ")
        out.append(f"- t={v['t']} s **{v['invariant']}** {v['subject']}: {evidence}")
    failed = report.get("faults_failed_to_inject") or []
    if failed:
        out += ["", "## Faults that could not be injected", ""]
        out += [f"- t={f['t']} {f['kind']} {f.get('fleet', '')}: {f['error']}" for f in failed]
    return "\n".join(out) + "\n"


def plot(report: Mapping[str, Any], snapshots: Sequence[inv.Snapshot], path: Path) -> Path:
    """One PNG: each fleet's replicas over time, the faults as bands, the violations as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (replica_axis, fault_axis) = plt.subplots(2, 1, sharex=True, figsize=(11, 6), height_ratios=(3, 2))
    series: dict[str, tuple[list[float], list[float]]] = collections.defaultdict(lambda: ([], []))
    for snap in snapshots:
        for fleet in snap.fleets:
            total = sum(c.replicas or 0 for c in fleet.workloads())
            xs, ys = series[fleet.key]
            xs.append(snap.t / 60)
            ys.append(total)
    for key, (xs, ys) in sorted(series.items()):
        replica_axis.step(xs, ys, where="post", label=key)
    replica_axis.set_ylabel("replicas (spec)")
    for v in report["violations"]:
        replica_axis.axvline(v["t"] / 60, color="red", alpha=0.5, linewidth=1)
    replica_axis.set_title(
        f"neuronfleet soak, seed {report.get('seed')}: {report['violations_total']} violations (red lines)"
    )
    replica_axis.legend(loc="upper left", fontsize=8)
    kinds = sorted({str(f["kind"]) for f in report["faults"]})
    for f in report["faults"]:
        row = kinds.index(str(f["kind"]))
        start, end = float(f["t"]) / 60, float(f.get("end", f["t"])) / 60
        fault_axis.broken_barh([(start, max(end - start, 0.05))], (row - 0.4, 0.8), color="tab:orange")
    fault_axis.set_yticks(range(len(kinds)), kinds, fontsize=7)
    fault_axis.set_xlabel("minutes since start")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def load_timeline(
    lines: Sequence[str], report: Mapping[str, Any]
) -> tuple[list[inv.Snapshot], list[inv.Decision], list[inv.Span], list[inv.MetricsGap]]:
    """The timelines a soak saved (timeline.jsonl lines, report.json), back as the checkers' dataclasses."""
    import json

    snapshots: list[inv.Snapshot] = []
    decisions: list[inv.Decision] = []
    for line in lines:
        data = json.loads(line)
        if "decision" in data:
            decisions.append(inv.Decision(**data["decision"]))
            continue
        fleets = tuple(
            inv.Fleet(**{**f, "children": tuple(inv.Child(**c) for c in f["children"])}) for f in data["fleets"]
        )
        snapshots.append(inv.Snapshot(data["t"], fleets, tuple(inv.Child(**c) for c in data["orphans"])))
    spans = [
        inv.Span(str(f["kind"]), float(f["t"]), float(f.get("end", f["t"])), (f["fleet"],) if f.get("fleet") else ())
        for f in report["faults"]
    ]
    gaps = []
    for gap in report["metrics_gaps"]:
        fleets = tuple(gap.get("fleets") or ())
        if "fleets" not in gap and gap["why"].startswith("replica"):  # saved before gaps named their fleet
            fleets = next(
                (s.fleets for s in spans if s.kind == "replica_hang" and s.start <= gap["start"] <= s.end), ()
            )
        gaps.append(inv.MetricsGap(float(gap["start"]), float(gap["end"]), fleets, str(gap["why"])))
    return snapshots, decisions, spans, gaps


def recheck(lines: Sequence[str], report: Mapping[str, Any]) -> list[inv.Violation]:
    """The invariants judged from the API's timeline, re-run on a saved soak (writes, RSS and logs are not saved)."""
    snapshots, decisions, spans, gaps = load_timeline(lines, report)
    settle = float(report["convergence_bound_s"])
    found = [
        *inv.check_bounds(snapshots, spans, settle=settle),
        *inv.check_no_scale_down_without_metrics(snapshots, gaps, spans, lag=METRICS_LAG, settle=settle),
        *inv.check_changes_have_decisions(snapshots, decisions, spans, window=DECISION_WINDOW, settle=settle),
        *inv.check_children(snapshots, spans, grace=CHILD_GRACE),
        *inv.check_fleets_present(snapshots, spans, grace=settle),
        *inv.check_convergence(snapshots, spans, within=settle),
    ]
    return sorted(found, key=lambda v: v.t)
