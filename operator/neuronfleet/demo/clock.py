"""Compressed time: the demo's simulated seconds run `compression` times faster than the wall clock.

Everything the demo simulates (trace arrivals, engine steps, replica startup) lives on this one
timeline, so a replica's tokens, latencies and concurrency are those of the uncompressed system at
the matching simulated instant. The operator and Prometheus keep the wall clock: their windows
and intervals are wall seconds, which is why the demo's ModelDeployment uses short ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["CompressedClock"]


class CompressedClock:
    """Simulated time = (wall - start) x compression; immutable once made."""

    def __init__(self, compression: float, *, wall: Callable[[], float] = time.monotonic) -> None:
        if compression <= 0:
            raise ValueError("compression must be positive")
        self.compression = float(compression)
        self._wall = wall
        self.start = wall()

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        return (self._wall() - self.start) * self.compression

    def wall_seconds(self, simulated: float) -> float:
        """How long `simulated` seconds take on the wall clock."""
        return simulated / self.compression

    def wall_at(self, simulated_instant: float) -> float:
        """The wall-clock reading (same base as `wall`) at a simulated instant."""
        return self.start + simulated_instant / self.compression
