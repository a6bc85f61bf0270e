"""The operator's own configuration (from `neuronfleet run` flags) and how it tunes kopf.

One frozen `OperatorConfig` carries every flag, so the CLI, the Helm chart's container args,
tests and the benchmark build the same thing. `configure_kopf` is the only place that knows
kopf's settings names; each choice says why it differs from kopf's default.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any

import kopf

__all__ = [
    "DEFAULT_PEERING",
    "FIELD_MANAGER",
    "UNSERVED_RECHECK_SECONDS",
    "OperatorConfig",
    "configure_kopf",
]

DEFAULT_PEERING = "neuronfleet"
UNSERVED_RECHECK_SECONDS = 60.0
"""How long a kind the API server said it does not serve is skipped before a pass tries it again. A
cluster gains a CRD by an install, not by itself: once a minute keeps the request rate negligible and
picks the kind up soon after."""
# Who the operator says it is: events' reportingComponent, patches' fieldManager.
FIELD_MANAGER = "neuronfleet"


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    """Everything `neuronfleet run` accepts. Empty `namespaces` means all namespaces."""

    namespaces: tuple[str, ...] = ()
    health_port: int | None = 8080  # None: no liveness endpoint
    metrics_port: int | None = 8081  # None: no metrics endpoint
    bind_address: str = "0.0.0.0"  # in a pod the kubelet and Prometheus connect from outside
    log_format: str = "text"  # text | json
    peering: str | None = DEFAULT_PEERING  # None with standalone
    peering_explicit: bool = False  # --peering given: the peering object must exist
    standalone: bool = False
    # kopf peering lets only the highest-priority live replica act, and pauses ALL replicas that tie.
    # Replicas of one Deployment get identical flags, so each draws a random priority at start:
    # exactly one acts, and a standby takes over when it stops. --priority pins it.
    priority: int | None = None
    # Seconds a peering entry lives without a heartbeat (kopf's settings.peering.lifetime): how long
    # standbys wait before taking over from a replica that died without removing its entry.
    peering_lifetime: int = 60
    prometheus_url: str | None = None
    service_level_window: float = 300.0  # seconds of the measured service level (autoscale/service_level.py)
    image_vllm_neuron: str | None = None  # None: render.options.DEFAULT_IMAGES
    image_nxdi: str | None = None
    neuron_allocation: str = "devicePlugin"  # --neuron-allocation: devicePlugin | dra, when the spec says nothing
    kubeconfig: str | None = None
    verbose: bool = False
    # Not flags: knobs for tests and the benchmark (a real cluster wants the defaults).
    watch_server_timeout: int = 300  # seconds a watch stays open; an int: a real server refuses 300.0
    retry_delay: float = 2.0  # first delay after a failed pass; doubles up to `retry_delay_max`
    retry_delay_max: float = 30.0
    autoscale_interval: float | None = None  # overrides every spec.autoscaling.intervalSeconds (tests)
    kube_workers: int = 8  # concurrent API calls of the reconcile passes
    kube_timeout: float = 15.0  # seconds to wait for one answer of the API server
    unserved_recheck: float = UNSERVED_RECHECK_SECONDS

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    def kopf_kwargs(self) -> dict[str, Any]:
        """Arguments of `kopf.operator()` that follow from the flags."""
        kwargs: dict[str, Any] = {
            "clusterwide": self.clusterwide,
            "namespaces": list(self.namespaces),
            "standalone": self.standalone,
        }
        if self.health_port is not None:
            kwargs["liveness_endpoint"] = f"http://{self.bind_address}:{self.health_port}/healthz"
        # An explicit --peering makes the peering object mandatory (kopf waits for it); the default
        # name is used when the chart installed it and silently skipped when it did not.
        if not self.standalone and self.peering_explicit:
            kwargs["peering_name"] = self.peering
        return kwargs


class _NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: the operator has no change handlers, so there is nothing to diff.

    kopf builds an object's "essence" (a deep copy) and clears handler progress from it on every
    watch event, for every resource, whether or not a change handler will use it; with an event
    stream of thousands of children that copy was a quarter of the operator's CPU.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return kopf.BodyEssence()

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


class _NoProgress(kopf.ProgressStorage):
    """No handler progress in the objects: retries are the work queue's, in memory."""

    def fetch(self, *, key: Any, body: Any) -> None:
        return None

    def store(self, *, key: Any, record: Any, body: Any, patch: Any) -> None:
        return None

    def purge(self, *, key: Any, body: Any, patch: Any) -> None:
        return None

    def touch(self, *, body: Any, patch: Any, value: Any) -> None:
        return None

    def clear(self, *, essence: Any) -> Any:
        return essence


def configure_kopf(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """Tune kopf for a level-based operator that never blocks deletion."""
    # Who we are in Events (reportingComponent) instead of "kopf".
    settings.posting.reporting_component = FIELD_MANAGER
    # Warnings and our own info events only; kopf's per-handler chatter would flood the object.
    settings.posting.level = logging.WARNING
    # No finalizer on ModelDeployments: children go by ownerReference GC. kopf adds one only for
    # delete handlers, timers and daemons, and the operator has none. Its handlers are event and
    # index handlers only, so kopf keeps no progress or last-handled state in the objects either
    # (status.kopf stays declared in the CRD for objects written by earlier versions).
    settings.persistence.finalizer = "neuronfleet.io/kopf-finalizer"
    settings.persistence.diffbase_storage = _NoDiffBase()
    settings.persistence.progress_storage = _NoProgress()
    # Watches end on the server's timeout and resume from the last resourceVersion; a client
    # timeout a bit longer catches a silently dead connection.
    settings.watching.server_timeout = int(config.watch_server_timeout)
    settings.watching.client_timeout = config.watch_server_timeout + 10
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    if config.peering and not config.standalone:
        settings.peering.name = config.peering
        settings.peering.priority = (
            config.priority if config.priority is not None else random.SystemRandom().randint(1, 2**31 - 1)
        )
        settings.peering.lifetime = int(config.peering_lifetime)
    settings.peering.standalone = config.standalone
