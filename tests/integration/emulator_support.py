"""Helpers for tests that run against the in-process Kubernetes API emulator.

Plain functions and context managers (no pytest magic), so sync tests, async tests and
benchmarks can all use them; ``emulator_fixtures`` wraps them as fixtures.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import kubernetes

from neuronfleet.kube_emulator import (
    LOGIN_HANDLER_FILE,
    URL_ENV,
    DeploymentController,
    GarbageCollector,
    JobController,
    ThreadedEmulator,
    write_kubeconfig,
)

__all__ = [
    "LOGIN_HANDLER_FILE",
    "api_client",
    "emulator_url_env",
    "enable_controllers",
    "kopf_run_args",
    "running_emulator",
]

_T = TypeVar("_T")


@contextlib.contextmanager
def running_emulator(kubeconfig_path: Path | None = None) -> Iterator[ThreadedEmulator]:
    """An emulator in a background thread; writes a kubeconfig to ``kubeconfig_path`` if given."""
    with ThreadedEmulator() as emu:
        if kubeconfig_path is not None:
            write_kubeconfig(kubeconfig_path, emu.url)
        yield emu


def api_client(emu: ThreadedEmulator) -> kubernetes.client.ApiClient:
    """An official-client ApiClient for the emulator, independent of any KUBECONFIG."""
    config = kubernetes.client.Configuration()
    config.host = emu.url
    config.verify_ssl = False
    return kubernetes.client.ApiClient(config)


@contextlib.contextmanager
def emulator_url_env(emu: ThreadedEmulator) -> Iterator[None]:
    """Set the variable that the kopf login handler file reads, and restore it afterwards."""
    previous = os.environ.get(URL_ENV)
    os.environ[URL_ENV] = emu.url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(URL_ENV, None)
        else:
            os.environ[URL_ENV] = previous


def kopf_run_args(*operator_files: str | os.PathLike[str], extra: tuple[str, ...] = ()) -> list[str]:
    """``kopf run`` arguments for KopfRunner: standalone, all namespaces, emulator login."""
    return ["run", "--standalone", "-A", *extra, *map(str, operator_files), str(LOGIN_HANDLER_FILE)]


def enable_controllers(
    emu: ThreadedEmulator,
    *,
    garbage_collector: bool = True,
    deployments: bool = True,
    gc_delay: float = 0.0,
    ready_delay: float = 0.0,
    jobs: bool = False,
    job_seconds: float = 0.0,
    failing_jobs: frozenset[str] = frozenset(),
) -> tuple[GarbageCollector | None, DeploymentController | None, JobController | None]:
    """Switch on the OPTIONAL controller stand-ins (say so in the test that uses them)."""
    gc = emu.call(lambda: GarbageCollector(emu.store, delay=gc_delay).start()) if garbage_collector else None
    dc = emu.call(lambda: DeploymentController(emu.store, ready_delay=ready_delay).start()) if deployments else None
    jc = (
        emu.call(lambda: JobController(emu.store, run_seconds=job_seconds, fail=failing_jobs).start()) if jobs else None
    )
    return gc, dc, jc
