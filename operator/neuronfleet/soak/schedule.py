"""The soak's fault schedule: pure and seeded, so one seed replays the same storm.

`plan` lays faults out between `start` and `end`: first every kind once, in a shuffled order (so even a
short soak covers them all), then kinds drawn at random, with exponential gaps between them. Kinds that
cannot overlap themselves (one Prometheus, one killed operator, one spec change of a fleet at a time)
wait for the previous one to end. Durations scale with the soak: a long soak stops Prometheus for
minutes, a short one for seconds. A killed operator stays down longer than the peering lifetime in a
short soak (20 s there), so the standby takes over before the killed one returns; in a long soak the
downtime varies around kopf's default lifetime (60 s), so sometimes the restarted one takes over first.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

__all__ = ["EXCLUSIVE", "KINDS", "PlannedFault", "Roles", "plan"]

KINDS = (
    "api_errors",  # 409/429/500/503 answers to the next N requests
    "api_timeouts",  # the next N requests hang past the client's timeout
    "watch_cut",  # every watch stream ends (apiserver restart, watch timeout)
    "watch_expired",  # watches cut and kept down while a child is deleted; compaction: resumes get 410 Gone
    "operator_kill",  # SIGKILL the acting operator; restart it after a while
    "prometheus_outage",  # stop Prometheus; restart it with its data gone
    "replica_crash",  # a replica's pod dies and is replaced
    "replica_hang",  # a replica stops answering /metrics for a while
    "compile_failure",  # the compile Job of a new artifact key fails; the spec is reverted later
    "child_edit",  # a child edited or deleted by hand
    "spec_update",  # two spec updates, the second in the middle of the first's rollout
    "spec_unplannable",  # a spec no plan fits, for a while, then a plannable one again
    "md_recreate",  # a ModelDeployment deleted and created again under the same name
)

GLOBAL = frozenset({"api_errors", "api_timeouts", "watch_cut", "watch_expired", "operator_kill", "prometheus_outage"})
EXCLUSIVE: tuple[frozenset[str], ...] = (
    frozenset({"operator_kill"}),
    frozenset({"prometheus_outage"}),
    frozenset({"compile_failure"}),
    frozenset({"spec_update", "spec_unplannable", "md_recreate"}),
)


@dataclasses.dataclass(frozen=True)
class Roles:
    """Which fleet plays which part: `loaded` gets the trace, `spare` the spec changes, `compiled` a compile Job."""

    loaded: str
    spare: str
    compiled: str


@dataclasses.dataclass(frozen=True)
class PlannedFault:
    """One fault to inject at `at` seconds after the soak's start, lasting `seconds` (0: instant)."""

    at: float
    kind: str
    seconds: float = 0.0
    fleet: str = ""  # the fleet it targets; empty for the whole system
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def end(self) -> float:
        return self.at + self.seconds

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


def _durations(long: bool) -> Mapping[str, tuple[float, float]]:
    """Seconds each kind lasts, (low, high); a long soak holds outages for minutes."""
    if long:
        return {
            "operator_kill": (20.0, 90.0),
            "prometheus_outage": (60.0, 240.0),
            "replica_hang": (15.0, 60.0),
            "compile_failure": (20.0, 45.0),
            "spec_unplannable": (10.0, 30.0),
            "spec_update": (2.0, 5.0),
            "md_recreate": (1.0, 4.0),
            "api_errors": (2.0, 6.0),
            "api_timeouts": (20.0, 25.0),
            "watch_expired": (3.0, 10.0),
        }
    return {
        # Longer than the short soak's peering lifetime (20 s): the standby takes over from the
        # killed one before it comes back with a higher priority and takes over again.
        "operator_kill": (45.0, 55.0),
        "prometheus_outage": (8.0, 14.0),
        "replica_hang": (8.0, 14.0),
        "compile_failure": (14.0, 18.0),
        "spec_unplannable": (4.0, 8.0),
        "spec_update": (1.0, 3.0),
        "md_recreate": (1.0, 2.0),
        "api_errors": (2.0, 4.0),
        "api_timeouts": (20.0, 22.0),
        "watch_expired": (2.0, 4.0),
    }


def _target(kind: str, roles: Roles, rng: random.Random) -> str:
    if kind in GLOBAL:
        return ""
    if kind == "compile_failure":
        return roles.compiled
    if kind in ("spec_update", "spec_unplannable", "md_recreate"):
        return roles.spare
    return rng.choice((roles.loaded, roles.spare))


def _params(kind: str, rng: random.Random) -> tuple[tuple[str, Any], ...]:
    if kind == "api_errors":
        status = rng.choice((409, 429, 500, 503))
        method = rng.choice(("*", "PATCH", "GET"))
        # A real server answers 409 Conflict only to writes (a stale resourceVersion, a name taken);
        # kopf treats a 409 on a LIST as fatal and stops the whole operator.
        return (("status", status), ("times", rng.randint(3, 30)), ("method", "PATCH" if status == 409 else method))
    if kind == "api_timeouts":
        return (("times", rng.randint(2, 6)), ("method", rng.choice(("*", "PATCH"))))
    if kind == "watch_expired":  # what is deleted while nobody watches: the relist must notice
        return (("victim", rng.choice(("loaded", "spare"))), ("delete", rng.choice(("workload", "service"))))
    if kind == "child_edit":
        return (("action", rng.choice(("scale", "scale", "template", "delete_workload", "delete_service"))),)
    return ()


def plan(
    seed: int,
    *,
    start: float,
    end: float,
    roles: Roles,
    mean_gap: float,
    long: bool = False,
) -> list[PlannedFault]:
    """Faults between `start` and `end` (every one has ended by `end`), ordered by start time."""
    rng = random.Random(seed)
    durations = _durations(long)
    busy_until: dict[frozenset[str], float] = {}
    faults: list[PlannedFault] = []
    coverage = list(KINDS)
    rng.shuffle(coverage)
    t = start
    while t < end or coverage:
        covering = bool(coverage)
        kind = coverage.pop(0) if coverage else rng.choice(KINDS)
        low, high = durations.get(kind, (0.0, 0.0))
        seconds = round(rng.uniform(low, high), 1)
        group = next((g for g in EXCLUSIVE if kind in g), None)
        earliest = busy_until.get(group, start) if group else start
        at = round(max(t, earliest), 1)
        if covering and at + seconds > end and end - seconds >= earliest:
            at = round(end - seconds, 1)  # the first round covers every kind: late ones go as late as fits
        if at + seconds <= end:  # a fault that would outlast the window is left out
            if group:
                busy_until[group] = at + seconds + 1.0
            faults.append(PlannedFault(at, kind, seconds, _target(kind, roles, rng), _params(kind, rng)))
        t += rng.expovariate(1.0 / mean_gap)
    return sorted(faults, key=lambda f: (f.at, f.kind))
