"""Default autoscaling behaviour: HPA's, and the slower scale-down neuronfleet uses on Neuron.

HPA's defaults (kubernetes/website, horizontal-pod-autoscale.md; `behavior` section) suit pods that
start in seconds. A vLLM replica on Neuron needs minutes to become ready (weights, NEFF load, or a
compile on a cache miss), so the two directions are not symmetric:

- Scale-up stays as fast as HPA's (no stabilization, max(100 %, 4 pods) per 15 s): a replica asked
  for late costs a whole cold start of SLO misses, and the starting-replicas guard in `decide` already
  prevents paying twice for the same demand.
- Scale-down is slower: a 600 s window (HPA: 300 s) spans a typical cold start (AIBrix reports
  2-3 min, llm-d WVA 2-7 min), so a replica is not given up for a dip shorter than the time it would
  take to get it back; then at most max(1 pod, 20 %) per 60 s, so a fleet sheds capacity in steps
  while the stabilization keeps watching (HPA: 100 % per 15 s).

Measured (bench/autoscaler.py, Llama-3.1-8B trn2 TP4): tying the window to the startup delay does
not pay. Three times the startup (180 s for a 60 s start) let the bursty Azure code trace, whose
bursts recur every few minutes, shed replicas between bursts: 9-10 flaps/hour and 6-17 points of
attainment lost for 15-20 % fewer NeuronCore-hours. For a 20-minute cold start (a 3600 s window)
it holds the hour's peak: 14-75 % more NeuronCore-hours on both traces, for up to 12 points more
attainment on the code trace only. 600 s sits between the burst gaps of the code trace and the
slow drift of the conv trace.

`HPA_SCALE_UP` / `HPA_SCALE_DOWN` are HPA's own values, for the simulator's HPA baseline and for users
who ask for them explicitly.
"""

from __future__ import annotations

from neuronfleet.autoscale import types

__all__ = [
    "HPA_SCALE_DOWN",
    "HPA_SCALE_UP",
    "MAX_METRIC_AGE_SECONDS",
    "SCALE_DOWN",
    "SCALE_UP",
    "SYNC_PERIOD_SECONDS",
    "TOLERANCE",
]

TOLERANCE = 0.1
"""HPA's default: no change while the usage ratio is within 10 % of 1."""

SYNC_PERIOD_SECONDS = 15.0
"""How often the operator decides; HPA's --horizontal-pod-autoscaler-sync-period default."""

MAX_METRIC_AGE_SECONDS = 60.0
"""Samples older than this count as missing (four 15 s scrapes): hold instead of acting on old news."""

HPA_SCALE_UP = types.ScalingRules(
    stabilization_seconds=0,
    policies=(types.ScalingPolicy("Percent", 100, 15), types.ScalingPolicy("Pods", 4, 15)),
    select_policy="Max",
    tolerance=TOLERANCE,
)
"""HPA: scale up at once, by up to max(100 %, 4 pods) per 15 s."""

HPA_SCALE_DOWN = types.ScalingRules(
    stabilization_seconds=300,
    policies=(types.ScalingPolicy("Percent", 100, 15),),
    select_policy="Max",
    tolerance=TOLERANCE,
)
"""HPA: scale down to the highest recommendation of the last 300 s, by up to 100 % per 15 s."""

SCALE_UP = HPA_SCALE_UP
"""neuronfleet's default scale-up: HPA's (see the module docstring for why)."""

SCALE_DOWN = types.ScalingRules(
    stabilization_seconds=600,
    policies=(types.ScalingPolicy("Pods", 1, 60), types.ScalingPolicy("Percent", 20, 60)),
    select_policy="Max",
    tolerance=TOLERANCE,
)
"""neuronfleet's default scale-down: a 600 s window, then max(1 pod, 20 %) per 60 s."""
