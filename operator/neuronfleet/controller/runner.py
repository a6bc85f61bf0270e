"""Run the operator: kopf embedded with an explicit registry, settings and memo.

`run_operator()` is what `neuronfleet run` awaits, and what tests and the benchmark run in a
thread against the API emulator: the same handlers, settings and startup in every case. kopf is
embedded (`kopf.operator(...)` with a fresh `OperatorRegistry`) instead of `kopf run module.py`,
so several operators can live in one process (handlers never leak between them) and nothing
depends on kopf's module loader, which caches `-m` imports and would trip over this repository's
`operator/` folder shadowing the standard library's `operator`.

It is `kopf.operator()` spelled out (`spawn_tasks` + `run_tasks`, kopf's own definition of it), so
the operator can read kopf's pause state from the spawned tasks (controller/leadership.py).
"""

from __future__ import annotations

import asyncio
import threading

import kopf

from neuronfleet.controller import handlers, leadership
from neuronfleet.controller.kube import load_configuration
from neuronfleet.controller.settings import OperatorConfig, configure_kopf

__all__ = ["build_registry", "run_operator"]


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    """A registry holding this operator's handlers and nothing else."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, config, load_configuration(config.kubeconfig))
    return registry


async def run_operator(
    config: OperatorConfig,
    *,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    memo: kopf.Memo | None = None,
) -> None:
    """Run until `stop_flag` is set (or SIGINT/SIGTERM when on the main thread)."""
    settings = kopf.OperatorSettings()
    configure_kopf(settings, config)
    memo = memo if memo is not None else kopf.Memo()
    memo.leadership = leadership.Leadership()  # inactive until kopf's pause state is attached below
    current = asyncio.current_task()
    existing = {task for task in asyncio.all_tasks() if task is not current}
    tasks = await kopf.spawn_tasks(
        registry=build_registry(config),
        settings=settings,
        memo=memo,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        **config.kopf_kwargs(),
    )
    memo.leadership.attach(leadership.pause_toggles(tasks), enter=leadership.kopf_event_posting(tasks))
    await kopf.run_tasks(tasks, ignored=existing)
