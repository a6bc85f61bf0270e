"""The soak's invariants, as pure checkers over plain timelines.

The runner (``soak.runner``) samples the API server and the operators into the dataclasses below;
each ``check_*`` function takes those timelines and returns the violations it finds, each with its
time and the evidence. They hold no state and do no I/O, so the runner can call them on the
timeline so far (to log violations as they happen) and once more at the end, and unit tests can
feed them hand-made timelines, good and bad.

Faults excuse an invariant only where the fault itself is what breaks it: a hand edit of a child's
replicas is out of [min, max] until the operator restores it, a deleted ModelDeployment is absent
until it is recreated. Every other invariant holds through every fault.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

__all__ = [
    "Child",
    "Decision",
    "Fleet",
    "LogLine",
    "MetricsGap",
    "RssSample",
    "Snapshot",
    "Span",
    "Violation",
    "Write",
    "check_bounds",
    "check_changes_have_decisions",
    "check_children",
    "check_convergence",
    "check_fleets_present",
    "check_no_scale_down_without_metrics",
    "check_one_writer",
    "check_rss_growth",
    "check_tracebacks",
    "convergence_times",
    "rss_slope",
]


@dataclasses.dataclass(frozen=True)
class Child:
    """One child object of a fleet at one sample (replica fields only for workloads)."""

    kind: str
    name: str
    uid: str
    owner_uid: str | None = None  # the controller ownerReference's uid
    replicas: int | None = None  # spec.replicas
    rolled_out: bool = True  # the workload's controller reports the spec done: all replicas updated and ready


@dataclasses.dataclass(frozen=True)
class Fleet:
    """One ModelDeployment at one sample."""

    key: str  # namespace/name
    uid: str
    generation: int
    observed_generation: int | None
    ready: bool | None  # the Ready condition (None: no condition yet)
    min_replicas: int | None = None  # None: not autoscaled
    max_replicas: int | None = None
    children: tuple[Child, ...] = ()

    def workloads(self) -> list[Child]:
        return [c for c in self.children if c.replicas is not None]

    @property
    def converged(self) -> bool:
        """Back to the spec: status current, its one workload rolled out, and Ready says so.

        Every fault ends with a plannable spec and the replicas free to start, so a fleet that has
        settled serves again; Ready True over pods that are not ready is not settled either.
        """
        workloads = self.workloads()
        return (
            self.observed_generation == self.generation
            and len(workloads) == 1
            and workloads[0].rolled_out
            and self.ready is True
        )


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the API server held at time ``t``: the fleets, and managed children no live fleet owns."""

    t: float
    fleets: tuple[Fleet, ...]
    orphans: tuple[Child, ...] = ()

    def fleet(self, key: str) -> Fleet | None:
        return next((f for f in self.fleets if f.key == key), None)


@dataclasses.dataclass(frozen=True)
class Span:
    """A fault, from its start to its end; ``fleets`` it touches, empty for every fleet."""

    kind: str
    start: float
    end: float
    fleets: tuple[str, ...] = ()

    def touches(self, key: str) -> bool:
        return not self.fleets or key in self.fleets


@dataclasses.dataclass(frozen=True)
class MetricsGap:
    """A time when some fleet's metrics were missing or partial (Prometheus down, a replica unscraped)."""

    start: float
    end: float
    fleets: tuple[str, ...] = ()
    why: str = ""

    def touches(self, key: str) -> bool:
        return not self.fleets or key in self.fleets


@dataclasses.dataclass(frozen=True)
class Decision:
    """An autoscaling decision event on a fleet, at the time it was first seen."""

    t: float
    key: str
    reason: str
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Write:
    """One write request to the API server, by whom and when it arrived."""

    t: float
    user: str
    verb: str
    resource: str
    name: str = ""


@dataclasses.dataclass(frozen=True)
class RssSample:
    t: float
    process: str  # one operator process (a restart is a new one)
    rss_bytes: int


@dataclasses.dataclass(frozen=True)
class LogLine:
    t: float  # when the runner read it
    process: str
    text: str


@dataclasses.dataclass(frozen=True)
class Violation:
    invariant: str
    t: float
    subject: str
    evidence: str


# -- helpers ---------------------------------------------------------------------------------------


def _excused(key: str, t: float, faults: Iterable[Span], kinds: Iterable[str], settle: float) -> bool:
    """A fault of one of `kinds` touching `key` is on at `t`, or ended less than `settle` before it."""
    wanted = set(kinds)
    return any(f.kind in wanted and f.touches(key) and f.start <= t <= f.end + settle for f in faults)


def _workload_changes(snapshots: Sequence[Snapshot]) -> Iterable[tuple[float, float, str, Child, Child]]:
    """(t_before, t_after, fleet, before, after) for every replica count change of one workload (same uid)."""
    last: dict[tuple[str, str], tuple[float, Child]] = {}
    for snap in snapshots:
        for fleet in snap.fleets:
            for child in fleet.workloads():
                key = (fleet.key, child.uid)
                seen = last.get(key)
                if seen is not None and seen[1].replicas != child.replicas:
                    yield seen[0], snap.t, fleet.key, seen[1], child
                last[key] = (snap.t, child)


# -- the invariants --------------------------------------------------------------------------------


def check_bounds(
    snapshots: Sequence[Snapshot], faults: Sequence[Span], *, settle: float, excused_by: Iterable[str] = ("child_edit",)
) -> list[Violation]:
    """Every autoscaled fleet's workloads stay within [minReplicas, maxReplicas].

    A hand edit of a child is out of bounds by design; it is excused for `settle` seconds after it.
    """
    excused_by = tuple(excused_by)
    found: list[Violation] = []
    for snap in snapshots:
        for fleet in snap.fleets:
            if fleet.min_replicas is None or fleet.max_replicas is None:
                continue
            for child in fleet.workloads():
                assert child.replicas is not None
                if fleet.min_replicas <= child.replicas <= fleet.max_replicas:
                    continue
                if _excused(fleet.key, snap.t, faults, excused_by, settle):
                    continue
                found.append(
                    Violation(
                        "replicas-within-bounds",
                        snap.t,
                        fleet.key,
                        f"{child.kind} {child.name} has {child.replicas} replicas, "
                        f"bounds [{fleet.min_replicas}, {fleet.max_replicas}]",
                    )
                )
    return found


def check_no_scale_down_without_metrics(
    snapshots: Sequence[Snapshot],
    gaps: Sequence[MetricsGap],
    faults: Sequence[Span],
    *,
    lag: float,
    settle: float,
    excused_by: Iterable[str] = ("child_edit", "spec_update", "md_recreate"),
) -> list[Violation]:
    """No workload loses replicas while its fleet's metrics are missing or partial.

    A decrease seen between two samples counts when the whole stretch from `lag` seconds before the
    earlier sample to the later one lies inside a gap: a decision taken just before the gap may land
    in it. Restoring a hand edit is not a scale-down decision and is excused.
    """
    excused_by = tuple(excused_by)
    found: list[Violation] = []
    for before_t, after_t, key, before, after in _workload_changes(snapshots):
        assert before.replicas is not None and after.replicas is not None
        if after.replicas >= before.replicas:
            continue
        if _excused(key, after_t, faults, excused_by, settle):
            continue
        for gap in gaps:
            if gap.touches(key) and gap.start <= before_t - lag and after_t <= gap.end:
                found.append(
                    Violation(
                        "no-scale-down-on-missing-metrics",
                        after_t,
                        key,
                        f"{after.kind} {after.name} {before.replicas} -> {after.replicas} between "
                        f"t={before_t:.1f} and t={after_t:.1f}, "
                        f"inside the gap {gap.start:.1f}-{gap.end:.1f} ({gap.why})",
                    )
                )
                break
    return found


def check_changes_have_decisions(
    snapshots: Sequence[Snapshot],
    decisions: Sequence[Decision],
    faults: Sequence[Span],
    *,
    window: float,
    settle: float,
    excused_by: Iterable[str] = ("child_edit", "md_recreate"),
) -> list[Violation]:
    """Every change of a workload's replicas comes with a decision event on its fleet.

    The event may be seen up to `window` seconds before or after the change. A child restored after
    a hand edit changes without a decision, and is excused for `settle` seconds after the edit.
    """
    excused_by = tuple(excused_by)
    found: list[Violation] = []
    for before_t, after_t, key, before, after in _workload_changes(snapshots):
        if _excused(key, after_t, faults, excused_by, settle):
            continue
        if any(d.key == key and before_t - window <= d.t <= after_t + window for d in decisions):
            continue
        found.append(
            Violation(
                "replica-change-has-decision",
                after_t,
                key,
                f"{after.kind} {after.name} {before.replicas} -> {after.replicas} between t={before_t:.1f} and "
                f"t={after_t:.1f}, no decision event within {window:g} s",
            )
        )
    return found


def check_children(snapshots: Sequence[Snapshot], faults: Sequence[Span], *, grace: float) -> list[Violation]:
    """One child of each kind per fleet, every child owned by a live fleet, beyond `grace` seconds.

    A rollout may briefly hold two workloads and garbage collection takes a moment, hence the grace,
    counted from the first sample that showed the situation or the end of a fault touching the fleet,
    whichever is later.
    """
    found: list[Violation] = []
    since: dict[tuple[str, ...], float] = {}
    reported: set[tuple[str, ...]] = set()
    for snap in snapshots:
        current: dict[tuple[str, ...], str] = {}
        for fleet in snap.fleets:
            kinds: dict[str, list[Child]] = {}
            for child in fleet.children:
                kinds.setdefault(child.kind, []).append(child)
                if child.owner_uid != fleet.uid:
                    current[("foreign", fleet.key, child.uid)] = (
                        f"{child.kind} {child.name} listed under {fleet.key} is owned by {child.owner_uid}, "
                        f"not {fleet.uid}"
                    )
            for kind, children in kinds.items():
                if len(children) > 1:
                    names = ", ".join(sorted(c.name for c in children))
                    current[("duplicate", fleet.key, kind)] = f"{len(children)} {kind}s: {names}"
        for orphan in snap.orphans:
            current[("orphan", orphan.uid)] = f"{orphan.kind} {orphan.name} owned by {orphan.owner_uid}, no live fleet"
        for key, evidence in current.items():
            first = since.setdefault(key, snap.t)
            fleet_key = key[1] if key[0] != "orphan" else ""
            last_fault = max((f.end for f in faults if f.touches(fleet_key) and f.start <= snap.t), default=first)
            if snap.t - max(first, last_fault) > grace and key not in reported:
                reported.add(key)
                invariant = "no-orphaned-children" if key[0] == "orphan" else "no-duplicate-children"
                found.append(Violation(invariant, snap.t, fleet_key or key[1], evidence))
        for key in list(since):
            if key not in current:
                del since[key]
                reported.discard(key)
    return found


# Faults that may keep a child away for a while: they delete children, or stop the operator from
# seeing or writing them. A Prometheus outage or a hung replica is no reason for a child to be missing.
CHILD_FAULTS = (
    "child_edit",
    "md_recreate",
    "watch_expired",
    "watch_cut",
    "operator_kill",
    "api_errors",
    "api_timeouts",
)


def check_fleets_present(
    snapshots: Sequence[Snapshot],
    faults: Sequence[Span],
    *,
    grace: float,
    excused_by: Iterable[str] = ("md_recreate",),
    child_faults: Iterable[str] = CHILD_FAULTS,
) -> list[Violation]:
    """No fleet, and no child of a fleet, is lost.

    A fleet once seen must be in every later sample, unless a deletion of it (an ``md_recreate``
    fault) is on. A child kind a fleet once had must not be missing for more than `grace` seconds
    after the later of the first sample without it and the end of the last of `child_faults`
    touching the fleet. Kinds are counted per fleet incarnation (uid): a recreated fleet starts afresh.
    """
    excused_by = tuple(excused_by)
    child_faults = set(child_faults)
    relevant = [f for f in faults if f.kind in child_faults]
    found: list[Violation] = []
    seen: set[str] = set()
    had: dict[str, set[str]] = {}  # fleet uid -> child kinds it has had
    missing_since: dict[tuple[str, str], float] = {}
    reported: set[tuple[str, str]] = set()
    lost: set[str] = set()
    for snap in snapshots:
        present = {f.key for f in snap.fleets}
        for key in sorted(seen - present):
            if not _excused(key, snap.t, faults, excused_by, 0.0) and key not in lost:
                found.append(Violation("no-fleet-lost", snap.t, key, f"ModelDeployment {key} is gone"))
                lost.add(key)
        lost &= seen - present  # reported once per absence
        seen |= present
        for fleet in snap.fleets:
            kinds = {c.kind for c in fleet.children}
            known = had.setdefault(fleet.uid, set())
            known |= kinds
            for kind in sorted(known):
                slot = (fleet.uid, kind)
                if kind in kinds:
                    missing_since.pop(slot, None)
                    reported.discard(slot)
                    continue
                first = missing_since.setdefault(slot, snap.t)
                last_fault = max((f.end for f in relevant if f.touches(fleet.key) and f.start <= snap.t), default=first)
                if snap.t - max(first, last_fault) > grace and slot not in reported:
                    reported.add(slot)
                    found.append(
                        Violation(
                            "no-child-lost",
                            snap.t,
                            fleet.key,
                            f"no {kind} since t={first:.1f} (last fault that could explain it ended "
                            f"t={last_fault:.1f})",
                        )
                    )
    return found


def _settle_points(key: str, faults: Sequence[Span]) -> list[tuple[Span, float | None]]:
    """Each fault touching `key`, with the start of the next touching fault that begins after its end."""
    touching = sorted((f for f in faults if f.touches(key)), key=lambda f: f.end)
    points = []
    for fault in touching:
        later = [g.start for g in touching if g.start > fault.end]
        # Another fault still on at this one's end postpones settling to that one's end.
        if any(g is not fault and g.start <= fault.end < g.end for g in touching):
            continue
        points.append((fault, min(later) if later else None))
    return points


def convergence_times(snapshots: Sequence[Snapshot], faults: Sequence[Span]) -> list[tuple[Span, str, float | None]]:
    """(fault, fleet, seconds from the fault's end to the fleet's first converged sample) per touched fleet.

    None when the fleet had not converged by the start of the next fault touching it or by the end
    of the timeline; faults still overlapped by another at their end are left to that one.
    """
    keys = sorted({f.key for s in snapshots for f in s.fleets})
    results: list[tuple[Span, str, float | None]] = []
    for key in keys:
        for fault, next_start in _settle_points(key, faults):
            converged_at = None
            for snap in snapshots:
                if snap.t < fault.end:
                    continue
                if next_start is not None and snap.t >= next_start:
                    break
                fleet = snap.fleet(key)
                if fleet is not None and fleet.converged:
                    converged_at = snap.t
                    break
            results.append((fault, key, None if converged_at is None else converged_at - fault.end))
    return results


def check_convergence(
    snapshots: Sequence[Snapshot], faults: Sequence[Span], *, within: float, now: float | None = None
) -> list[Violation]:
    """Every fleet converges within `within` seconds of the end of the last fault touching it.

    Only settle points with `within` seconds of quiet after them, and of timeline (up to `now`,
    the last sample by default), are judged; the rest are undecided, not passed.
    """
    if not snapshots:
        return []
    now = snapshots[-1].t if now is None else now
    found: list[Violation] = []
    for fault, key, seconds in convergence_times(snapshots, faults):
        if seconds is not None and seconds <= within:
            continue
        next_start = min((g.start for g in faults if g.touches(key) and g.start > fault.end), default=math.inf)
        if next_start - fault.end < within or now - fault.end < within:
            continue
        last = next((s.fleet(key) for s in reversed(snapshots) if s.t <= fault.end + within), None)
        state = (
            "absent"
            if last is None
            else f"generation {last.generation}, observedGeneration {last.observed_generation}, ready {last.ready}, "
            f"workloads {[(c.name, c.replicas, c.rolled_out) for c in last.workloads()]}"
        )
        found.append(
            Violation(
                "converges-after-faults",
                fault.end + within,
                key,
                f"not converged {within:g} s after {fault.kind} ended at t={fault.end:.1f}; then: {state}",
            )
        )
    return found


def check_one_writer(writes: Sequence[Write], *, window: float) -> list[Violation]:
    """At most one operator acts at a time: no A, B, A alternation of writers within `window` seconds.

    A handover (A's writes, then B's) is one switch; two operators both acting interleave their
    writes, which shows as a writer coming back within `window` seconds of another's write. One
    violation per episode: interleavings less than `window` apart are one episode.
    """
    runs: list[tuple[str, float, float, str]] = []  # (user, first write, last write, what)
    for write in sorted(writes, key=lambda w: w.t):
        what = f"{write.verb} {write.resource}/{write.name}"
        if runs and runs[-1][0] == write.user:
            user, first, _, first_what = runs[-1]
            runs[-1] = (user, first, write.t, first_what)
        else:
            runs.append((write.user, write.t, write.t, what))
    episodes: list[list[tuple[tuple[str, float, float, str], ...]]] = []
    for before, middle, after in zip(runs, runs[1:], runs[2:], strict=False):
        if before[0] != after[0] or after[1] - before[2] > window:
            continue
        if episodes and middle[1] - episodes[-1][-1][2][1] <= window:
            episodes[-1].append((before, middle, after))
        else:
            episodes.append([(before, middle, after)])
    found: list[Violation] = []
    for episode in episodes:
        before, middle, after = episode[0]
        last = episode[-1][2]
        users = sorted({before[0], middle[0]})
        found.append(
            Violation(
                "one-operator-acts",
                middle[1],
                ",".join(users),
                f"{' and '.join(users)} both wrote from t={before[2]:.2f} to t={last[1]:.2f} "
                f"({len(episode)} interleavings); first: {before[0]} at t={before[2]:.2f}, {middle[0]} at "
                f"t={middle[1]:.2f} ({middle[3]}), {after[0]} again at t={after[1]:.2f} ({after[3]})",
            )
        )
    return found


def rss_slope(samples: Sequence[RssSample]) -> float:
    """Least-squares growth of RSS in bytes per hour over the samples (0 with fewer than two times)."""
    if len({s.t for s in samples}) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(s.t for s in samples) / n
    mean_r = sum(s.rss_bytes for s in samples) / n
    cov = sum((s.t - mean_t) * (s.rss_bytes - mean_r) for s in samples)
    var = sum((s.t - mean_t) ** 2 for s in samples)
    return cov / var * 3600.0


def check_rss_growth(
    samples: Sequence[RssSample], *, bound_bytes_per_hour: float, warmup: float, min_span: float
) -> list[Violation]:
    """Each operator process's RSS grows by less than the bound per hour (fitted after `warmup`).

    A process observed for less than `min_span` seconds after its warm-up is not judged: a minute
    of samples says nothing about an hourly trend.
    """
    found: list[Violation] = []
    by_process: dict[str, list[RssSample]] = {}
    for sample in samples:
        by_process.setdefault(sample.process, []).append(sample)
    for process, own in by_process.items():
        start = min(s.t for s in own) + warmup
        kept = [s for s in own if s.t >= start]
        if not kept or kept[-1].t - kept[0].t < min_span:
            continue
        slope = rss_slope(kept)
        if slope >= bound_bytes_per_hour:
            found.append(
                Violation(
                    "rss-growth-bounded",
                    kept[-1].t,
                    process,
                    f"RSS {kept[0].rss_bytes / 2**20:.1f} -> {kept[-1].rss_bytes / 2**20:.1f} MiB over "
                    f"{kept[-1].t - kept[0].t:.0f} s: {slope / 2**20:.1f} MiB/h, "
                    f"bound {bound_bytes_per_hour / 2**20:.0f} MiB/h",
                )
            )
    return found


_TRACEBACK = "Traceback (most recent call last)"


def check_tracebacks(lines: Sequence[LogLine], *, context: int = 12) -> list[Violation]:
    """No traceback in any operator log; the evidence is the traceback's first lines."""
    found: list[Violation] = []
    for index, line in enumerate(lines):
        if _TRACEBACK not in line.text:
            continue
        following = [other.text for other in lines[index : index + context + 1] if other.process == line.process]
        found.append(Violation("no-traceback", line.t, line.process, "\n".join(following)))
    return found
