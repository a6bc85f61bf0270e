"""OPT: the cheapest replica schedule that reaches an attainment goal in the simulator itself, found by search.

Why a second reference beside LB_L (`sim.oracle`): LB_L is a fluid bound. On prefill-heavy traffic the
layered schedule it prices, replayed in the simulator, misses far more than 1 % of requests (first-come
prefill chunks, integer batches, routing), so "x LB_L" cannot say how far a policy is from the best any
schedule can do at 99 %. OPT answers that: among schedules that change the replica count only at window
boundaries (`WINDOW_SECONDS`), knowing the whole future, paying the startup delay for every replica
started, it finds a cheap one that the simulator confirms reaches the goal.

The search, and why it is a fair reference:
1. Static fleets. The simulator runs every fixed fleet size from 1 up to the smallest that reaches the
   goal (the best static fleet) and a margin above it, and records each size's misses per window.
2. A schedule by dynamic programming over windows x sizes: a window costs `size x window`, every
   replica added costs the startup delay (it is requested that long before the window), and each
   window's predicted misses are priced at a Lagrange multiplier; the multiplier is searched so that the
   predicted misses fit the goal's budget. Keeping a replica through a short lull is one of the paths,
   so the DP bridges gaps shorter than a startup, as LB_L does.
3. Verification. The schedule is replayed in the simulator (each replica requested a startup before
   its window); if it misses the goal, the miss budget is tightened and the DP runs again.
4. Local descent (optional `descent_blocks`): blocks of windows are lowered by one replica while the
   simulator still confirms the goal.
5. OPT is the cheapest verified schedule, the best static fleet included: OPT never costs more than the
   best static fleet, and it always reaches the goal it was searched for (its attainment is measured).
   Schedules found for longer startups are candidates too (`candidates`), so OPT does not grow when the
   startup shrinks.
   It is a heuristic optimum, not a proven one (the per-window miss tables come from static runs, where
   a window inherits a fixed fleet's backlog). What holds for any schedule is `work_bound`, the engine
   time the tokens cost; the invariant tests check OPT against it. LB_L is reported beside OPT but is not
   a bound OPT must respect: see `work_bound` for why a schedule allowed to miss 1 % can undercut it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from neuronfleet.sim.fleet import SimResult, simulate
from neuronfleet.sim.oracle import plan_oracle
from neuronfleet.sim.policies import StaticPolicy
from neuronfleet.sim.profiles import EngineProfile
from neuronfleet.sim.report import Report, summarize
from neuronfleet.sim.slo import Slo
from neuronfleet.sim.trace import TraceRequest

__all__ = ["WINDOW_SECONDS", "Opt", "SchedulePolicy", "StaticRun", "search", "static_runs", "work_bound"]

WINDOW_SECONDS = 60.0
"""Schedule granularity: the count may change every minute (the finest of the 1-5 minute windows)."""


@dataclass(frozen=True)
class StaticRun:
    """One fixed fleet size over the trace: its report and misses per window (by arrival)."""

    replicas: int
    report: Report
    misses: tuple[int, ...]


@dataclass(frozen=True)
class Opt:
    """The search's answer: the schedule, its verified run, and the references it was compared with."""

    schedule: tuple[int, ...]  # replicas per window
    report: Report  # the verified replay
    result: SimResult
    static_best: StaticRun | None  # smallest fixed fleet reaching the goal (None: none in the sweep did)
    goal: float
    evaluations: int  # simulator runs spent


class SchedulePolicy:
    """Replays a per-window schedule, asking for each replica a startup before its window (clairvoyant)."""

    scrape_seconds = 60.0
    scrape_kv = False

    def __init__(self, schedule: Sequence[int], *, startup_seconds: float, window_seconds: float = WINDOW_SECONDS):
        self.name = "opt"
        self.schedule = tuple(schedule)
        self.lead = startup_seconds
        self.window = window_seconds
        self.sync_seconds = min(5.0, window_seconds / 4)

    def _at(self, t: float) -> int:
        index = int(t // self.window)
        if index < 0:
            return self.schedule[0] if self.schedule else 0
        return self.schedule[min(index, len(self.schedule) - 1)] if self.schedule else 0

    def initial_replicas(self) -> int:
        return self._at(0.0)

    def desired(self, view: object, now: float) -> int:
        """Enough for this window and, a startup ahead, for the window then."""
        del view
        ahead = self._at(now + self.lead) if now + self.lead < len(self.schedule) * self.window else 0
        return max(self._at(now), ahead)


def _windows(trace: Sequence[TraceRequest], window: float) -> int:
    return int(trace[-1].arrival // window) + 1 if trace else 0


def _misses(result: SimResult, slo: Slo, windows: int, window: float) -> tuple[int, ...]:
    out = [0] * windows
    for r in result.requests:
        if not slo.met(r.prompt_tokens, r.output_tokens, r.first_token - r.arrival, r.finish - r.first_token):
            out[min(windows - 1, int(r.arrival // window))] += 1
    return tuple(out)


def static_runs(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    slo: Slo,
    *,
    goal: float,
    window_seconds: float = WINDOW_SECONDS,
    max_replicas: int = 64,
    margin: float = 1.5,
) -> list[StaticRun]:
    """Fixed fleets from 1 replica up to `margin` x the smallest that reaches the goal (or `max_replicas`)."""
    windows = _windows(trace, window_seconds)
    runs: list[StaticRun] = []
    best: int | None = None
    # Below half the fluid demand's mean a fixed fleet never drains the trace: start there.
    needed = plan_oracle(trace, profile, slo, 60.0).needed
    n = max(1, math.floor(0.5 * sum(needed) / max(1, len(needed))))
    while n <= max_replicas and (best is None or n <= math.ceil(margin * best)):
        try:
            result = simulate(trace, profile, StaticPolicy(n), startup_seconds=60.0, initial_replicas=n)
        except RuntimeError:  # a fleet this small never drains the trace: every request missed
            n += 1
            continue
        report = summarize(result, slo)
        runs.append(StaticRun(n, report, _misses(result, slo, windows, window_seconds)))
        if best is None and report.attainment >= goal:
            best = n
        n += 1 if n < 8 else max(1, n // 8)
    return runs


def _dp(
    runs: Sequence[StaticRun], *, penalty: float, startup: float, window: float
) -> tuple[tuple[int, ...], float, int]:
    """Minimum of cost + penalty x misses over schedules; returns (schedule, cost seconds, predicted misses)."""
    sizes = [r.replicas for r in runs]
    windows = len(runs[0].misses)
    inf = math.inf
    best = [(n * window + penalty * r.misses[0], None) for n, r in zip(sizes, runs, strict=True)]
    back: list[list[int | None]] = [[None] * len(sizes)]
    for w in range(1, windows):
        row = []
        links: list[int | None] = []
        for n, r in zip(sizes, runs, strict=True):
            here = n * window + penalty * r.misses[w]
            choice, value = None, inf
            for i, m in enumerate(sizes):
                total = best[i][0] + startup * max(0, n - m)
                if total < value:
                    choice, value = i, total
            row.append((value + here, choice))
            links.append(choice)
        best = row
        back.append(links)
    end = min(range(len(sizes)), key=lambda j: best[j][0])
    path = [end]
    for w in range(windows - 1, 0, -1):
        prev = back[w][path[-1]]
        assert prev is not None
        path.append(prev)
    path.reverse()
    schedule = tuple(sizes[j] for j in path)
    misses = sum(runs[j].misses[w] for w, j in enumerate(path))
    cost = sum(n * window for n in schedule) + startup * sum(max(0, b - a) for a, b in itertools.pairwise(schedule))
    return schedule, cost, misses


def _replay(
    trace: Sequence[TraceRequest], profile: EngineProfile, slo: Slo, schedule: Sequence[int], startup: float
) -> tuple[SimResult, Report]:
    policy = SchedulePolicy(schedule, startup_seconds=startup)
    result = simulate(trace, profile, policy, startup_seconds=startup, initial_replicas=policy.initial_replicas())
    return result, summarize(result, slo)


def search(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    slo: Slo,
    *,
    startup_seconds: float,
    goal: float = 0.99,
    runs: Sequence[StaticRun] | None = None,
    window_seconds: float = WINDOW_SECONDS,
    attempts: int = 6,
    descent_blocks: int = 0,
    candidates: Sequence[Sequence[int]] = (),
) -> Opt:
    """OPT for one trace and startup delay (pass `runs` from `static_runs` to share them across startups).

    `candidates` are more schedules to replay and keep if they reach the goal: a schedule found for a
    longer startup has every replica ready at the same window boundaries with a shorter one, for less, so
    searching startups from the longest down and handing each answer on keeps OPT monotone in the startup.
    """
    if not trace:
        raise ValueError("OPT needs a non-empty trace")
    evaluations = 0
    if runs is None:
        runs = static_runs(trace, profile, slo, goal=goal, window_seconds=window_seconds)
        evaluations = len(runs)
    runs = list(runs)
    meeting = [r for r in runs if r.report.attainment >= goal]
    static_best = meeting[0] if meeting else None
    total = len(trace)
    found_list: list[tuple[float, tuple[int, ...], SimResult, Report]] = []
    if static_best is not None:
        schedule = (static_best.replicas,) * len(static_best.misses)
        result, report = _replay(trace, profile, slo, schedule, startup_seconds)
        evaluations += 1
        if report.attainment >= goal:
            found_list.append((report.core_hours, schedule, result, report))
    for schedule in candidates:
        result, report = _replay(trace, profile, slo, tuple(schedule), startup_seconds)
        evaluations += 1
        if report.attainment >= goal:
            found_list.append((report.core_hours, tuple(schedule), result, report))
    budget = (1.0 - goal) * total
    for _ in range(attempts):
        lo, hi = 0.0, 1.0
        # Find a multiplier whose optimum fits the budget: grow it until it does, then bisect.
        while _dp(runs, penalty=hi, startup=startup_seconds, window=window_seconds)[2] > budget and hi < 1e9:
            hi *= 4.0
        for _ in range(30):
            mid = (lo + hi) / 2
            if _dp(runs, penalty=mid, startup=startup_seconds, window=window_seconds)[2] > budget:
                lo = mid
            else:
                hi = mid
        schedule, _, _ = _dp(runs, penalty=hi, startup=startup_seconds, window=window_seconds)
        result, report = _replay(trace, profile, slo, schedule, startup_seconds)
        evaluations += 1
        if report.attainment >= goal:
            found_list.append((report.core_hours, schedule, result, report))
            break
        budget *= 0.6
    if not found_list:
        raise RuntimeError(f"no schedule of up to {runs[-1].replicas} replicas reaches {goal:.2%}")
    _, schedule, result, report = min(found_list, key=lambda c: c[0])
    if descent_blocks:
        schedule, result, report, spent = _descend(
            trace, profile, slo, schedule, result, report, startup_seconds, goal, descent_blocks
        )
        evaluations += spent
    return Opt(schedule, report, result, static_best, goal, evaluations)


def _descend(
    trace: Sequence[TraceRequest],
    profile: EngineProfile,
    slo: Slo,
    schedule: tuple[int, ...],
    result: SimResult,
    report: Report,
    startup: float,
    goal: float,
    blocks: int,
) -> tuple[tuple[int, ...], SimResult, Report, int]:
    """Lower whole blocks of windows by one replica while the goal still holds (one pass, biggest first)."""
    spent = 0
    size = max(1, math.ceil(len(schedule) / blocks))
    order = sorted(range(0, len(schedule), size), key=lambda b: -sum(schedule[b : b + size]))
    for start in order:
        trial = tuple(max(1, n - 1) if start <= w < start + size else n for w, n in enumerate(schedule))
        if trial == schedule:
            continue
        trial_result, trial_report = _replay(trace, profile, slo, trial, startup)
        spent += 1
        if trial_report.attainment >= goal and trial_report.core_hours < report.core_hours:
            schedule, result, report = trial, trial_result, trial_report
    return schedule, result, report, spent


def work_bound(trace: Sequence[TraceRequest], profile: EngineProfile) -> float:
    """NeuronCore-hours no schedule can undercut, whatever it misses: the engine time the requests' tokens
    cost at the least (gamma per prompt token, beta per generated token after the first; the per-step alpha
    is shared and left out). A replica runs at most one engine-second per second, so billed replica-seconds
    are at least this. Weak, but a true bound: OPT's invariant. (LB_L is tighter and is not one: its
    per-second fluid demand charges a whole startup for a one-second peak that queueing within the TTFT
    budget absorbs, so a schedule missing 1 % can undercut it.)"""
    seconds = sum(profile.gamma * r.prompt_tokens + profile.beta * max(0, r.output_tokens - 1) for r in trace)
    return profile.cores * seconds / 3600.0
