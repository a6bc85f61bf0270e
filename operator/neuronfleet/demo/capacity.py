"""The demo's node pool as the user sizes it: `--nodes TYPE=N[,...]` and `--provisioning-delay`.

Pure parsing and defaults, plus `start_capacity`, which puts the emulator's scheduler and nodes (or
its Karpenter stand-in) to work on the demo's API server:

- without a delay every node exists from the start: N nodes of each TYPE;
- with a delay the pool starts empty and the Karpenter stand-in launches a node of a TYPE when a
  pod cannot be placed, which registers `delay` simulated seconds later, up to N of that TYPE (so
  the first replica's time to ready includes node provisioning, as on a cluster that scales).

Default: the plan's instance type, as many nodes as `maxReplicas` (or `replicas`) needs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from neuronfleet.kube_emulator import nodes
from neuronfleet.kube_emulator.provisioner import Pool, Provisioner, create_node
from neuronfleet.kube_emulator.scheduler import Scheduler
from neuronfleet.kube_emulator.store import Store
from neuronfleet.neuron.catalog import CATALOG
from neuronfleet.neuron.types import Plan

__all__ = ["Capacity", "default_nodes", "describe", "parse_nodes", "start_capacity"]


def parse_nodes(text: str) -> dict[str, int]:
    """`trn2.48xlarge=2,trn1.32xlarge=1` -> {type: count}; ValueError says what is wrong."""
    known = {i.name for i in CATALOG}
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or not count.strip().isdigit():
            raise ValueError(f"--nodes: {part!r} is not TYPE=N (e.g. trn2.48xlarge=2)")
        if name not in known:
            raise ValueError(f"--nodes: unknown instance type {name!r}; known: {', '.join(sorted(known))}")
        if name in out:
            raise ValueError(f"--nodes: {name} is given twice")
        out[name] = int(count)
    if not out:
        raise ValueError("--nodes: give at least one TYPE=N")
    return out


def default_nodes(plan: Plan, replicas: int) -> dict[str, int]:
    """Enough nodes of the plan's type for `replicas` replicas."""
    return {plan.instance_type: max(1, math.ceil(replicas / max(1, plan.replicas_per_node)))}


def describe(counts: Mapping[str, int], delay_seconds: float) -> str:
    """One line for the demo's start-up banner."""
    pool = ", ".join(f"{n} x {name}" for name, n in counts.items())
    if delay_seconds > 0:
        return f"up to {pool}, launched on demand {delay_seconds:g} s (simulated) after a pod cannot be placed"
    return pool


@dataclasses.dataclass
class Capacity:
    """What `start_capacity` started, to stop it in reverse order."""

    scheduler: Scheduler
    provisioner: Provisioner | None

    def stop(self) -> None:
        if self.provisioner is not None:
            self.provisioner.stop()
        self.scheduler.stop()


def start_capacity(store: Store, counts: Mapping[str, int], *, delay_wall_seconds: float) -> Capacity:
    """Nodes (or the Karpenter stand-in) and the scheduler on `store`; call from the emulator's loop."""
    provisioner = None
    if delay_wall_seconds > 0:
        pools = [Pool(name.replace(".", "-"), name, max_nodes=n) for name, n in counts.items()]
        provisioner = Provisioner(store, pools, delay_seconds=delay_wall_seconds).start()
    else:
        for name, n in counts.items():
            for i in range(n):
                create_node(store, nodes.node_object(f"{name.replace('.', '-')}-{i}", nodes.NodeShape.of(name)))
    scheduler = Scheduler(store, retry_seconds=30.0).start()
    return Capacity(scheduler, provisioner)
