"""What a pass applies: the rendered children, the compile Jobs and the deletions, as plain data.

Pure: the ModelDeployment, its variants' plans, the artifact gate's decision per variant, the
replica count per variant and the live children come in; the children to apply and the children to
delete come out. `controller/apply.py` does the writes, so replica counts, Jobs and deletions all
go through the one apply path.

What it never does while a running fleet depends on it:
- delete the workload of one kind (Deployment or LeaderWorkerSet) before the workload of the other
  kind exists, so a spec that moves to multi-node groups on a cluster without LeaderWorkerSet keeps
  its Deployment; with `rollout.maxSurge` above 0 the old one goes only once the new one is ready;
- delete a ResourceClaimTemplate while a rollout may still recreate a pod that claims from it;
- apply a variant's workload while its compiled artifacts are not ready (the gate is closed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import ModelDeploymentSpec
from neuronfleet.controller import artifacts
from neuronfleet.controller.apply import Deletion
from neuronfleet.controller.status import rollout_of
from neuronfleet.controller.workloads import Workload, view
from neuronfleet.render import children, leaderworkerset
from neuronfleet.render import variants as render_variants
from neuronfleet.render.deployment import TEMPLATE_HASH_ANNOTATION
from neuronfleet.render.options import RenderOptions

__all__ = ["Desired", "desired", "units"]

Live = Callable[[str, str], Mapping[str, Any] | None]
"""(kind, name) -> the live object from the cache, or None."""


@dataclasses.dataclass(frozen=True)
class Desired:
    children: tuple[dict[str, Any], ...]  # in render order, without ownerReferences
    deletions: tuple[Deletion, ...] = ()
    replicas: dict[str, int] = dataclasses.field(default_factory=dict)  # per workload name, held ones included


def units(spec: ModelDeploymentSpec, live_units: int | None, decided: int | None) -> int:
    """The replicas the fleet asks for, in primary replicas: one writer per mode.

    Autoscaling off: spec.replicas (which `kubectl scale md` writes through the scale subresource).
    Autoscaling on: the autoscaler's last decision, clamped to the current bounds so a new min/max
    applies at once. Before this process has decided (a restart, a fleet just switched to
    autoscaling), what the live workloads hold, clamped the same way (KServe's
    PreserveDeploymentReplicas): a restart never resizes a fleet. A new fleet starts at
    spec.replicas, clamped.
    """
    if not spec.autoscaling.enabled:
        return spec.replicas
    low, high = spec.autoscaling.min_replicas, spec.autoscaling.max_replicas
    current = decided if decided is not None else spec.replicas if live_units is None else live_units
    return max(low, min(high, current))


def desired(
    md: ModelDeployment,
    fleet: Sequence[Workload],
    gates: Sequence[artifacts.Decision],
    *,
    replicas: Mapping[str, int],
    retire: Sequence[str] = (),
    live: Live,
    claim_templates: Sequence[str] = (),
    options: RenderOptions,
) -> Desired:
    """The children for this spec, gates and allocation, and what to delete (see the module docstring).

    `fleet` is every variant's workload, primary first, with `gates` in the same order; `replicas`
    is the allocation per variant name, `retire` the drained fallback variants to delete, and
    `claim_templates` the names of the fleet's live ResourceClaimTemplates.
    """
    variants = [w.variant for w in fleet]
    primary = fleet[0]
    plan = primary.variant.plan
    counts: dict[str, int] = {}
    rendered = children.desired(md, plan, replicas=replicas.get(primary.variant.name, 0), options=options)
    counts[primary.name] = replicas.get(primary.variant.name, 0)
    if not gates[0].may_roll_out:
        rendered = [c for c in rendered if c.get("kind") != primary.kind]
    for workload, gate in zip(fleet[1:], gates[1:], strict=True):
        wanted = replicas.get(workload.variant.name, 0)
        if workload.variant.name in retire:
            continue
        if wanted == 0 and live(workload.kind, workload.name) is None:
            continue  # not in use, nothing to drain
        counts[workload.name] = wanted
        if gate.may_roll_out:
            rendered.append(render_variants.expected(md, variants, workload.variant, replicas=wanted, options=options))
    jobs: dict[str, dict[str, Any]] = {}
    for gate in gates:
        if gate.create is not None:
            jobs.setdefault(gate.create["metadata"]["name"], dict(gate.create))
    rendered += list(jobs.values())

    deletions = [Deletion(ref.kind, ref.name, "turned off in the spec") for ref in children.undesired(md)]
    deletions += _other_workload(md, primary, live)
    workload = next((c for c in rendered if c.get("kind") == primary.kind), None)
    deletions += _stale_claim_templates(md, primary, live, claim_templates, workload)
    retired_jobs = {name for gate in gates for name in gate.delete}
    deletions += [Deletion("Job", name, "artifact key superseded or rechecked") for name in sorted(retired_jobs)]
    for workload in fleet[1:]:
        if workload.variant.name in retire and live(workload.kind, workload.name) is not None:
            deletions.append(Deletion(workload.kind, workload.name, "fallback variant drained"))
    return Desired(tuple(rendered), tuple(deletions), counts)


def _other_workload(md: ModelDeployment, primary: Workload, live: Live) -> list[Deletion]:
    """The primary's workload of the kind the plan no longer uses, once the new one can take over."""
    plan = primary.variant.plan
    old = next(
        (ref for ref in children.undesired(md, plan) if ref.kind in ("Deployment", leaderworkerset.KIND)), None
    )
    if old is None or live(old.kind, old.name) is None:
        return []
    new = live(primary.kind, primary.name)
    if new is None:
        return []  # the new kind is not there (not served, gate closed): the old workload keeps serving
    surge = md.spec.rollout.max_surge
    if surge not in (0, "0", "0%") and not rollout_of(view(primary, new), None).complete:
        return []  # room for both: the old one serves until the new one is ready
    why = "replicas now span nodes" if plan.multi_node else "replicas fit one node again"
    return [Deletion(old.kind, old.name, why)]


def _stale_claim_templates(
    md: ModelDeployment,
    primary: Workload,
    live: Live,
    templates: Sequence[str],
    rendered: Mapping[str, Any] | None,
) -> list[Deletion]:
    """Claim templates of earlier plans, once no pod of the workload can still claim from them: the live
    workload runs the template rendered now, and its rollout is complete."""
    plan = primary.variant.plan
    if not templates or rendered is None:
        return []
    current = live(primary.kind, primary.name)
    if current is not None and _template_hash(current) != _template_hash(rendered):
        return []  # the new template is not applied yet (or not rolled out)
    done = current is None or rollout_of(view(primary, current), None).complete
    stale = children.stale_claim_templates(md, plan, templates, rollout_done=done)
    return [Deletion(ref.kind, ref.name, "claim template of an earlier plan") for ref in stale]


def _template_hash(obj: Mapping[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_HASH_ANNOTATION)
