"""The errors neuronfleet raises, as one small tree so callers catch by meaning.

    NeuronfleetError
     ├── PlanError            the spec is valid YAML/schema but cannot be served as asked
     │    │                   (model does not fit, TP not legal on the instance, ...).
     │    │                   Will not get better without a spec change: the controller turns it
     │    │                   into Degraded=True plus a Warning event and leaves running pods alone.
     │    └── SpecError       the spec breaks a rule of the API models that the CRD schema did not
     │                        enforce (a CRD older than the operator, a rule only Python can check).
     │                        Also a ValueError, for offline tools that validate YAML.
     └── MetricsUnavailable   Prometheus could not be queried or returned no/stale data.
                              The autoscaler holds the current replica count.

Only `neuronfleet.controller` maps these to conditions and retries, and only `PlanError` reaches a
user as a message: any other exception in a reconcile pass is a bug, logged with its traceback and
retried with backoff.
"""

from __future__ import annotations

__all__ = ["MetricsUnavailable", "NeuronfleetError", "PlanError", "SpecError"]


class NeuronfleetError(Exception):
    """Base class of every error neuronfleet raises on purpose."""


class PlanError(NeuronfleetError):
    """A ModelDeployment that passed the schema but cannot be planned; the message names the numbers."""


class SpecError(PlanError, ValueError):
    """A ModelDeployment that breaks a rule of the API models; the message names each field."""


class MetricsUnavailable(NeuronfleetError):
    """Prometheus is unreachable, answered an error, or has no fresh sample for a signal."""
