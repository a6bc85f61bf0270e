"""A real Prometheus (the Debian binary) on 127.0.0.1 for tests: the package's launcher, re-exported.

`neuronfleet demo` ships the launcher (tests/ is not installed), so tests use that same code:
`neuronfleet.demo.prometheus`. Targets go through file-based service discovery; `set_targets`
rewrites the file and waits until Prometheus lists exactly the new targets.
"""

from __future__ import annotations

from neuronfleet.demo.prometheus import (
    BINARY_ENV,
    JOB,
    PrometheusServer,
    Target,
    find_binary,
    free_port,
    missing_binary_reason,
    running_prometheus,
    start_prometheus,
)

__all__ = [
    "BINARY_ENV",
    "JOB",
    "PrometheusServer",
    "Target",
    "find_binary",
    "free_port",
    "missing_binary_reason",
    "running_prometheus",
    "start_prometheus",
]
