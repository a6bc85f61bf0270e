"""How a replica's expected startup splits into phases: downloading, compiling, loading.

The planner's `expected_startup_seconds` is one number for probes and the autoscaler; status and
the startup-phase estimate need its parts. The rates and costs are the planner's (download at
250 MiB/s, cold compile by runtime profile, 60 s to fetch cached NEFFs, load at 1 GiB/s plus
warm-up), so the phases add up to the planner's estimate before its rounding.

With a compiled-cache hit there is no compile phase: fetching the cached NEFFs counts as loading.
Weights on a PVC or a local path need no download phase.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from neuronfleet.neuron import planner
from neuronfleet.neuron.catalog import GIB

__all__ = ["COMPILING", "DOWNLOADING", "LOADING", "PhaseEstimate", "expected_phases", "phase_at"]

DOWNLOADING = "downloading"
COMPILING = "compiling"
LOADING = "loading"


@dataclasses.dataclass(frozen=True)
class PhaseEstimate:
    name: str
    seconds: float


def expected_phases(
    weights_bytes: int, *, runtime: str, cache_hit: bool, downloads: bool = True
) -> tuple[PhaseEstimate, ...]:
    """The phases of one replica's start, in order, with their expected durations."""
    phases: list[PhaseEstimate] = []
    if downloads:
        phases.append(PhaseEstimate(DOWNLOADING, weights_bytes / planner.DOWNLOAD_BYTES_PER_SECOND))
    load = weights_bytes / planner.LOAD_BYTES_PER_SECOND + planner.WARMUP_SECONDS
    if cache_hit:
        phases.append(PhaseEstimate(LOADING, planner.CACHE_HIT_COMPILE_SECONDS + load))
    else:
        base, per_gib = planner.COMPILE_COST[runtime]
        phases.append(PhaseEstimate(COMPILING, base + per_gib * weights_bytes / GIB))
        phases.append(PhaseEstimate(LOADING, load))
    return tuple(phases)


def phase_at(elapsed_seconds: float, phases: Sequence[PhaseEstimate]) -> tuple[str, float, float]:
    """(phase, seconds into it, its expected length) after `elapsed_seconds` of startup.

    Past the total the last phase is reported as overrunning (seconds into it > its length).
    """
    if not phases:
        raise ValueError("no phases")
    start = 0.0
    for phase in phases:
        if elapsed_seconds < start + phase.seconds:
            return phase.name, max(0.0, elapsed_seconds - start), phase.seconds
        start += phase.seconds
    last = phases[-1]
    return last.name, elapsed_seconds - (start - last.seconds), last.seconds
