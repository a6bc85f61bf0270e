"""An in-process Kubernetes API server emulator for tests and the local demo.

It emulates the API server's storage and watch semantics (resourceVersions, optimistic
concurrency, status/scale subresources, finalizers, watches resumable from a resourceVersion,
CRDs that become served when posted, discovery) on 127.0.0.1, so the real ``kubernetes``
client, kopf and kubectl can talk to it. It runs no controllers unless asked: see
``controllers`` for an opt-in garbage collector and Deployment status writer, and ``scheduler``,
``provisioner`` and ``workloads`` for an opt-in kube-scheduler, Karpenter and pod-creating
Deployment controller over Neuron ``nodes`` (``pods/binding`` is served either way). Built directly
on aiohttp (a kopf dependency) rather than kmock, so it ships with neuronfleet for the demo.

Typical use::

    with ThreadedEmulator() as emu:          # or: async with Emulator() as emu
        write_kubeconfig(path, emu.url)
        emu.emulator.inject(method="PATCH", path="/deployments/", status=500, times=3)
"""

from __future__ import annotations

from pathlib import Path

from neuronfleet.kube_emulator.controllers import DeploymentController, GarbageCollector, JobController
from neuronfleet.kube_emulator.faults import Fault
from neuronfleet.kube_emulator.kubeconfig import kubeconfig, write_kubeconfig
from neuronfleet.kube_emulator.requests_log import RequestRecord, count, rbac_rules
from neuronfleet.kube_emulator.resources import ResourceInfo, ScaleSpec
from neuronfleet.kube_emulator.server import Emulator, ThreadedEmulator
from neuronfleet.kube_emulator.store import ApiError, PatchType, Store

__all__ = [
    "LOGIN_HANDLER_FILE",
    "URL_ENV",
    "ApiError",
    "DeploymentController",
    "Emulator",
    "Fault",
    "GarbageCollector",
    "JobController",
    "PatchType",
    "RequestRecord",
    "ResourceInfo",
    "ScaleSpec",
    "Store",
    "ThreadedEmulator",
    "count",
    "kubeconfig",
    "rbac_rules",
    "write_kubeconfig",
]

LOGIN_HANDLER_FILE = Path(__file__).with_name("kopf_login.py")
"""Pass this file to ``kopf run`` so kopf logs in to the URL in ``URL_ENV``."""

URL_ENV = "NEURONFLEET_EMULATOR_URL"
