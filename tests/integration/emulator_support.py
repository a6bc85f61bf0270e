"""Helpers for tests that run against the in-process Kubernetes API emulator.

Plain functions and context managers (no pytest magic), so sync tests, async tests and
benchmarks can all use them; ``emulator_fixtures`` wraps them as fixtures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import kubernetes

from neuronfleet.kube_emulator import (
    LOGIN_HANDLER_FILE,
    URL_ENV,
    DeploymentController,
    GarbageCollector,
    JobController,
    ThreadedEmulator,
    leaderworkerset,
    nodes,
    write_kubeconfig,
)
from neuronfleet.kube_emulator.group_controller import LeaderWorkerSetController
from neuronfleet.kube_emulator.provisioner import Pool, Provisioner, create_node
from neuronfleet.kube_emulator.scheduler import Scheduler
from neuronfleet.kube_emulator.workloads import PodDeploymentController

__all__ = [
    "LOGIN_HANDLER_FILE",
    "Fleetworld",
    "api_client",
    "emulator_url_env",
    "enable_cluster",
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


@dataclasses.dataclass
class Fleetworld:
    """The opt-in stand-ins `enable_cluster` started, for tests to drive (add nodes, outages)."""

    emu: ThreadedEmulator
    scheduler: Any = None
    provisioner: Any = None
    controllers: list[Any] = dataclasses.field(default_factory=list)

    def add_nodes(self, instance_type: str, count: int, *, prefix: str = "node") -> None:
        """Register `count` Neuron nodes of `instance_type` (as kubelets of that shape would)."""
        start = len(self.nodes())

        def add() -> None:
            for i in range(count):
                name = f"{prefix}-{instance_type.replace('.', '-')}-{start + i}"
                create_node(self.emu.store, nodes.node_object(name, nodes.NodeShape.of(instance_type)))

        self.emu.call(add)

    def nodes(self) -> list[dict[str, Any]]:
        return self.emu.call(lambda: self.emu.store.objects(nodes.serve_nodes(self.emu.store)))


def enable_cluster(
    emu: ThreadedEmulator,
    *,
    node_pool: Mapping[str, int] | None = None,
    ready_delay: float = 0.1,
    provision: tuple[float, Sequence[Pool]] | None = None,
    leader_worker_sets: bool = False,
    garbage_collector: bool = True,
) -> Fleetworld:
    """Switch on a cluster's worth of OPTIONAL stand-ins (say so in the test that uses them).

    With `node_pool` (instance type -> count) or `provision` (delay, Karpenter pools): pods for every
    Deployment (the pod-creating controller) and a scheduler that binds them to Neuron nodes, and
    the Karpenter stand-in. With `leader_worker_sets`: the LeaderWorkerSet CRD and its group
    controller (its pods turn ready by themselves; no scheduler involved). And the garbage collector.
    """
    world = Fleetworld(emu)
    scheduling = node_pool is not None or provision is not None
    for instance_type, count in (node_pool or {}).items():
        world.add_nodes(instance_type, count)
    if scheduling:
        world.scheduler = emu.call(lambda: Scheduler(emu.store).start())
        world.controllers.append(emu.call(lambda: PodDeploymentController(emu.store, ready_delay=ready_delay).start()))
    if provision is not None:
        delay, pools = provision
        world.provisioner = emu.call(lambda: Provisioner(emu.store, pools, delay_seconds=delay).start())
    if leader_worker_sets:
        emu.call(lambda: leaderworkerset.install(emu.store))
        world.controllers.append(
            emu.call(lambda: LeaderWorkerSetController(emu.store, ready_delay=ready_delay).start())
        )
    if garbage_collector:
        world.controllers.append(emu.call(lambda: GarbageCollector(emu.store).start()))
    return world
