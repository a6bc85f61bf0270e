"""What the simulator needs from an autoscaling policy: a sync period and a desired count.

Policies keep their own history between syncs (like the controllers they model) and see the
fleet only through `FleetView`; their formulas live in pure functions beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from neuronfleet.sim.observe import FleetView

__all__ = ["FleetPolicy"]


class FleetPolicy(Protocol):
    """An autoscaler as the simulator drives it."""

    name: str
    sync_seconds: float  # how often `desired` runs (HPA 15 s, KPA tick 2 s, ...)
    scrape_seconds: float  # how often the replicas' metrics are sampled for this policy

    def desired(self, view: FleetView, now: float) -> int | Mapping[str, int]:
        """The replica count to write now (min/max already applied): the primary's, or one per variant
        (a variant left out keeps its count)."""
        ...
