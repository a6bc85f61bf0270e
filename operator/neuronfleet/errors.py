"""The errors neuronfleet raises, as one small tree so callers catch by meaning.

    NeuronfleetError
     ├── PlanError            the spec is valid YAML/schema but cannot be served as asked
     │                        (model does not fit, TP not legal on the instance, ...).
     │                        Will not get better without a spec change: the controller turns it
     │                        into Degraded=True plus a Warning event and leaves running pods alone.
     ├── MetricsUnavailable   Prometheus could not be queried or returned no/stale data.
     │                        The autoscaler holds the current replica count.
     └── ConfigError          the operator's own configuration (flags, kubeconfig) is unusable.

Only `neuronfleet.controller` maps these to kopf's TemporaryError/PermanentError.
"""

from __future__ import annotations

__all__ = ["ConfigError", "MetricsUnavailable", "NeuronfleetError", "PlanError"]


class NeuronfleetError(Exception):
    """Base class of every error neuronfleet raises on purpose."""


class PlanError(NeuronfleetError):
    """A ModelDeployment that passed the schema but cannot be planned; the message names the numbers."""


class MetricsUnavailable(NeuronfleetError):
    """Prometheus is unreachable, answered an error, or has no fresh sample for a signal."""


class ConfigError(NeuronfleetError):
    """The operator's own configuration is invalid."""
