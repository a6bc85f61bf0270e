"""What one tick of the SLO path shows, as plain data: status.serviceLevel, status.capacityCurve, ServiceLevelMet.

Why a module of its own: the operator's autoscaler runs the SLO path (`slo_policy`: measure, fit, feed
back, derive) once per interval, and the reconcile pass is the only writer of status
(`controller/status.py`). So the autoscaler turns its tick into this `SloReport` and hands it over with
its decision; the pass copies it into the status as it is. Keeping it pure and plain (dicts of JSON
scalars, one condition tuple, two numbers) means every pass between two ticks computes the same status,
and tests check it without a cluster.

Fields follow `api/status.py` (`ServiceLevelStatus`, `CapacityCurveStatus`); the condition and its
reasons follow `api/conditions.py` (ServiceLevelMet). A non-finite number is left out rather than
written: a NaN never compares equal, so it would make every pass rewrite the status.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from neuronfleet.autoscale import capacity_fit, service_level, slo_policy, slo_targets

__all__ = ["METRICS_UNAVAILABLE", "SloReport", "report"]

METRICS_UNAVAILABLE = "MetricsUnavailable"
"""Reason of serviceLevel and of ServiceLevelMet=Unknown when no service-level query was answered."""


@dataclass(frozen=True)
class SloReport:
    """Everything the status and the operator's gauges need from one tick of the SLO path."""

    service_level: Mapping[str, Any]  # status.serviceLevel
    capacity_curve: Mapping[str, Any]  # status.capacityCurve
    condition: tuple[str, str, str]  # ServiceLevelMet: (status, reason, message)
    target_scale: float  # the feedback's factor on every derived target
    goal: float  # the attainment goal judged against (spec.autoscaling.slo.attainment or 0.99)
    planned_utilization: float | None  # engine-load target in force (None when the SLO is unreachable)
    unreachable: str | None = None  # why no fleet meets the SLO on the curve in force (Degraded), else None

    @property
    def met(self) -> bool | None:
        """ServiceLevelMet as a boolean; None while it cannot be judged."""
        status = self.condition[0]
        return None if status == "Unknown" else status == "True"


def report(
    state: slo_policy.FleetState,
    derivation: slo_policy.Derivation | None,
    *,
    slo: slo_targets.ServiceLevel,
    goal: float,
    sampled_at: str,
    unavailable: str | None = None,
    unreachable: str | None = None,
) -> SloReport:
    """The report of a tick that ended at `sampled_at` (RFC 3339).

    `unavailable`: why no service-level query was answered this tick (the state was not updated);
    `derivation` is None when the SLO is unreachable on the curve in force (`unreachable` says why).
    """
    loop = state.feedback
    utilization = None if derivation is None else derivation.utilization
    basis = ""
    if derivation is not None and derivation.pooled_rise is not None:
        basis = f"; utilization planned on the router's pooling, for a rise of x{derivation.pooled_rise:.2f}"
    extra = {"utilization": utilization, "feedback": f"{loop.reason}: {loop.message}{basis}", "sampledAt": sampled_at}
    measurement = state.measurement
    if unavailable is not None or measurement is None:
        unavailable = unavailable or "nothing measured yet"
        level: dict[str, Any] = {
            "windowSeconds": None if measurement is None else measurement.window_seconds,
            "samples": 0,
            "source": "model",
            "reason": METRICS_UNAVAILABLE,
            "message": f"no service-level query was answered: {unavailable}",
        }
        condition = ("Unknown", METRICS_UNAVAILABLE, level["message"])
    else:
        level = dict(service_level.status(measurement))
        condition = service_level.condition(measurement, goal)
    level.update(extra)
    curve = state.curve()
    if derivation is not None:
        batch = derivation.derived.batch
    else:
        batch = slo_targets.slo_batch(curve, slo.per_user_tokens_per_second)
    return SloReport(
        service_level=_finite(level),
        capacity_curve=_finite(capacity_fit.status(state.fit, state.prior.profile, slo_batch=max(1, batch))),
        condition=condition,
        target_scale=loop.scale,
        goal=goal,
        planned_utilization=utilization,
        unreachable=unreachable,
    )


def _finite(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields without None and non-finite numbers (see the module docstring)."""
    return {k: v for k, v in fields.items() if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
