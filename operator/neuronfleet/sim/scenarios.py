"""Capacity scenarios: the node pools a fleet and its oracle share (issue 17: a pool cap, a provisioning delay,
an outage of the primary type for 20 minutes in the middle of a trace).

Every scenario launches nodes on demand, as Karpenter does, each registering `provisioning_seconds` after
its launch; the warm fleet's nodes exist at t=0, and a node empty for the NodePool's `consolidateAfter`
is removed (`sim.shapes.CONSOLIDATE_AFTER_SECONDS`).

- `provisioning`: that alone: every node the fleet grows into arrives late.
- `pool-cap`: the primary type is capped at `primary_cap_nodes` nodes (a reservation or Capacity Block
  of that size, or a NodePool limit); fallback types are not.
- `outage`: the primary type has no capacity for `outage_seconds` centred on the middle of the trace: its
  nodes are reclaimed at the start and none launches until the end.

There is no published figure for how long a Neuron node takes from launch to taking pods; the default
`PROVISIONING_SECONDS` is 2 minutes [INFERRED: an EC2 launch, boot and kubelet registration, the
demo's example `--provisioning-delay 120`], and the benchmark says which value it ran.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from neuronfleet.sim.shapes import Pool, ReplicaShape

__all__ = ["NAMES", "OUTAGE_SECONDS", "PROVISIONING_SECONDS", "Scenario", "scenarios"]

PROVISIONING_SECONDS = 120.0
OUTAGE_SECONDS = 1200.0
NAMES = ("provisioning", "pool-cap", "outage")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named capacity timeline: one pool per variant's instance type."""

    name: str
    description: str
    pools: dict[str, Pool]

    def for_shapes(self, shapes: Sequence[ReplicaShape]) -> dict[str, Pool]:
        """The pools of the types `shapes` run on (a fleet without fallback sees only its primary's)."""
        types = {s.instance_type for s in shapes}
        return {t: p for t, p in self.pools.items() if t in types}


def scenarios(
    shapes: Sequence[ReplicaShape],
    duration_seconds: float,
    *,
    primary_cap_nodes: int,
    provisioning_seconds: float = PROVISIONING_SECONDS,
    outage_seconds: float = OUTAGE_SECONDS,
) -> tuple[Scenario, ...]:
    """The three scenarios for a fleet of `shapes` (primary first) over a trace of `duration_seconds`."""
    if primary_cap_nodes < 1:
        raise ValueError(f"primary_cap_nodes must be >= 1, got {primary_cap_nodes}")
    if not 0 < outage_seconds < duration_seconds:
        raise ValueError(f"the outage ({outage_seconds:g} s) must fit in the trace ({duration_seconds:g} s)")
    primary = shapes[0].instance_type
    base = {s.instance_type: Pool(s.instance_type, provisioning_seconds=provisioning_seconds) for s in shapes}
    start = (duration_seconds - outage_seconds) / 2
    delay = f"nodes launched on demand, {provisioning_seconds:g} s to register"
    return (
        Scenario("provisioning", delay, base),
        Scenario(
            "pool-cap",
            f"{primary} capped at {primary_cap_nodes} node(s); {delay}",
            {**base, primary: dataclasses.replace(base[primary], max_nodes=primary_cap_nodes)},
        ),
        Scenario(
            "outage",
            f"no {primary} from {start:g} s to {start + outage_seconds:g} s (nodes reclaimed); {delay}",
            {**base, primary: dataclasses.replace(base[primary], outages=((start, start + outage_seconds),))},
        ),
    )
