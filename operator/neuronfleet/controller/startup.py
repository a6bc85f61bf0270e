"""What the operator sets up when it starts and tears down when it stops.

Credentials for kopf come from the same client configuration the reconcile passes use
(--kubeconfig, in-cluster, $KUBECONFIG), so both always talk to the same API server. The
dependencies (API client, cache, render options, metrics, work queue, autoscaler, clock) go into
kopf's memo in the startup handler (kopf's docs/memos.rst), never into module globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable

import kopf
import kubernetes

from neuronfleet.controller import autoscaling, metrics, reconciler
from neuronfleet.controller.kube import KubeClient
from neuronfleet.controller.leadership import Leadership
from neuronfleet.controller.settings import OperatorConfig
from neuronfleet.controller.state import FleetKey, Runtime
from neuronfleet.controller.workqueue import WorkQueue, later
from neuronfleet.render.options import DEFAULT_IMAGES, RenderOptions

__all__ = ["connection_info", "populate_memo", "release_memo", "render_options"]

log = logging.getLogger(__name__)


def connection_info(configuration: kubernetes.client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the same client configuration the reconcile passes use."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def render_options(config: OperatorConfig) -> RenderOptions:
    images = dict(DEFAULT_IMAGES)
    if config.image_vllm_neuron:
        images["vllm-neuron"] = config.image_vllm_neuron
    if config.image_nxdi:
        images["nxdi"] = config.image_nxdi
    return RenderOptions(images=images, default_allocation=config.neuron_allocation)


async def populate_memo(
    memo: kopf.Memo, config: OperatorConfig, configuration: kubernetes.client.Configuration
) -> None:
    """Every dependency the handlers use, set once at startup; nothing lives in module globals."""
    # run_operator puts kopf's pause state here; an operator embedded without it always acts.
    leadership: Leadership = getattr(memo, "leadership", None) or Leadership(always_active=True)
    timeout = (min(5.0, config.kube_timeout), config.kube_timeout)
    kube = KubeClient(configuration, workers=config.kube_workers, timeout=timeout, before_write=leadership.check)
    runtime = Runtime(
        kube=kube,
        render_options=render_options(config),
        metrics=metrics.OperatorMetrics(),
        unserved_recheck=config.unserved_recheck,
    )

    async def run_pass(key: Hashable) -> None:
        assert isinstance(key, FleetKey)
        if not leadership.active:
            leadership.park(key)  # runs when this operator is the active one again
            return
        started = time.monotonic()
        runtime.metrics.reconciles.labels(handler="reconcile").inc()
        try:
            async with runtime.lock(key):
                await reconciler.reconcile(runtime, key)
        except Exception:
            runtime.metrics.errors.labels(handler="reconcile").inc()
            raise
        finally:
            runtime.metrics.duration.labels(handler="reconcile").observe(time.monotonic() - started)

    memo.config = config
    memo.runtime = runtime
    memo.queue = WorkQueue(run_pass, retry=config.retry_delay, retry_max=config.retry_delay_max)
    runtime.requeue = later(memo.queue.add)
    runtime.enqueue = memo.queue.add
    memo.autoscaler = autoscaling.Autoscaler(
        runtime,
        default_prometheus_url=config.prometheus_url,
        interval_override=config.autoscale_interval,
        service_level_window=config.service_level_window,
        may_act=lambda: leadership.active,
    )

    def leadership_changed(active: bool) -> None:
        """Paused: forget what was decided (it goes stale). Active again: resync, then every fleet gets a pass."""
        if not active:
            runtime.decisions.clear()
            runtime.announced.clear()
            memo.autoscaler.reset()
            return
        for key in leadership.unpark() | set(runtime.managed):
            memo.queue.add(key)

    memo.leadership = leadership
    leadership.subscribe(leadership_changed)
    memo.leadership_task = asyncio.get_running_loop().create_task(leadership.watch(), name="leadership")
    memo.metrics_server = None
    if config.metrics_port is not None:
        server = metrics.serve(runtime.metrics, host=config.bind_address, port=config.metrics_port)
        await server.__aenter__()
        memo.metrics_server = server
        log.info("Serving operator metrics on %s:%s/metrics", config.bind_address, config.metrics_port)


async def release_memo(memo: kopf.Memo) -> None:
    """Stop what `populate_memo` started (the operator is exiting)."""
    task = getattr(memo, "leadership_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    autoscaler = getattr(memo, "autoscaler", None)
    if autoscaler is not None:
        await autoscaler.close()
    queue = getattr(memo, "queue", None)
    if queue is not None:
        await queue.close()
    server = getattr(memo, "metrics_server", None)
    if server is not None:
        await server.__aexit__(None, None, None)
    runtime = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.kube.close()
