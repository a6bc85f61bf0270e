"""The one I/O path for children: read live, create what is missing, patch what differs.

Field ownership: the operator owns exactly the fields it renders (plus labels, annotations and
its controller ownerReference). A child that differs on those is brought back with a JSON merge
patch of the rendered fields (lists such as containers are replaced whole, so they match the
render exactly); fields others add (server defaults, other controllers' annotations, HPA-free
replicas when autoscaling preserves them) are left alone. Map keys the renderer stops emitting
are removed through the child's last-applied record (`reconcile.LAST_APPLIED_ANNOTATION`), the
way kubectl's client-side apply does it. Server-side apply with a field manager would do both
natively; the emulator the tests and the demo run on does not implement it, so the operator uses
merge patches everywhere.

A child controlled by another owner, or an unlabelled object squatting on the name, is never
touched: the pass reports it (Degraded=True, ApplyFailed) and carries on with the others.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kopf

from neuronfleet.controller import reconcile
from neuronfleet.controller.kube import KubeClient, KubeError
from neuronfleet.controller.reconcile import Step, StepKind
from neuronfleet.controller.refs import ResourceRef

__all__ = ["ApplyResult", "apply_children", "delete_undesired", "with_owner"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ApplyResult:
    """What a pass did to the children, and the live objects it ended with."""

    live: dict[tuple[str, str], dict[str, Any]] = dataclasses.field(default_factory=dict)  # (kind, name)
    created: list[str] = dataclasses.field(default_factory=list)  # "Deployment x"
    patched: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)  # reasons

    def object(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.live.get((kind, name))


def with_owner(child: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    """The child in the owner's namespace with the owner's controller reference.

    `kopf.append_owner_reference` rather than `kopf.adopt`: adopt also copies the owner's labels
    onto the child, and a GitOps tool's tracking label (Argo CD's app.kubernetes.io/instance)
    copied there would make the tool claim, and prune, objects it never rendered.
    """
    obj = dict(child)
    obj["metadata"] = dict(obj.get("metadata") or {})
    obj["metadata"]["namespace"] = owner["metadata"]["namespace"]
    kopf.append_owner_reference(obj, owner=dict(owner), controller=True, block_owner_deletion=True)
    return obj


async def apply_children(
    kube: KubeClient,
    owner: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]],
    *,
    known: Mapping[tuple[str, str], dict[str, Any] | None] | None = None,
    on_write: Callable[[str, str, str], None] | None = None,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> ApplyResult:
    """Converge each child in order.

    `known` holds live objects the caller already read this pass; `on_write(kind, name,
    resourceVersion)` is told about each write as soon as it is answered, before its watch event
    can arrive, so the caller can recognise the echo of its own write.
    """
    namespace = owner["metadata"]["namespace"]
    owner_uid = str(owner["metadata"].get("uid", ""))
    wanted = [with_owner(child, owner) for child in children]
    known = dict(known or {})

    async def read(obj: Mapping[str, Any]) -> dict[str, Any] | None:
        key = (str(obj["kind"]), str(obj["metadata"]["name"]))
        if key in known:
            return known[key]
        return await kube.get_or_none(reconcile.child_ref(obj), namespace, key[1])

    lives = await asyncio.gather(*(read(obj) for obj in wanted))
    result = ApplyResult()
    for desired, live in zip(wanted, lives, strict=True):
        step = reconcile.child_step(desired, live, owner_uid=owner_uid)
        kind, name = str(desired["kind"]), step.name
        if step.kind is StepKind.NONE:
            result.live[(kind, name)] = dict(live or {})
            continue
        final = await _execute(kube, namespace, step, desired, result, logger=logger, owner_uid=owner_uid)
        if final is not None:
            result.live[(kind, name)] = final
            if on_write is not None:
                on_write(kind, name, str((final.get("metadata") or {}).get("resourceVersion", "")))
    return result


async def _execute(
    kube: KubeClient,
    namespace: str,
    step: Step,
    desired: Mapping[str, Any],
    result: ApplyResult,
    *,
    logger: logging.Logger | logging.LoggerAdapter,
    owner_uid: str,
    retried: bool = False,
) -> dict[str, Any] | None:
    kind = str(desired["kind"])
    what = f"{kind} {step.name}"
    if step.kind is StepKind.NONE:
        return None
    if step.kind is StepKind.REFUSE:
        logger.warning("Refused to touch %s: %s", what, step.reason, extra={"child": what})
        result.refused.append(step.reason)
        return None
    try:
        if step.kind is StepKind.CREATE:
            obj = await kube.create(step.ref, namespace, step.body)
            result.created.append(what)
            logger.info("Created %s", what, extra={"child": what})
        else:
            obj = await kube.patch(step.ref, namespace, step.name, step.body)
            result.patched.append(what)
            logger.info("Patched %s (%s)", what, step.reason, extra={"child": what})
    except KubeError as exc:
        # Someone (a previous attempt whose answer was lost, a second replica) created it first:
        # read it and decide again, once.
        if step.kind is StepKind.CREATE and exc.conflict and not retried:
            live = await kube.get_or_none(step.ref, namespace, step.name)
            again = reconcile.child_step(desired, live, owner_uid=owner_uid)
            if again.kind is StepKind.NONE:
                return live
            return await _execute(
                kube, namespace, again, desired, result, logger=logger, owner_uid=owner_uid, retried=True
            )
        raise
    return obj


async def delete_undesired(
    kube: KubeClient,
    owner: Mapping[str, Any],
    refs: Sequence[tuple[ResourceRef, str]],
    *,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> list[str]:
    """Delete children a spec turned off, if present and ours; a kind the cluster lacks counts as absent."""
    namespace = owner["metadata"]["namespace"]
    owner_uid = str(owner["metadata"].get("uid", ""))
    deleted = []
    for ref, name in refs:
        try:
            live = await kube.get_or_none(ref, namespace, name)
        except KubeError as exc:
            if exc.status in (404, 405):
                continue
            raise
        if live is None:
            continue
        owners = (live.get("metadata") or {}).get("ownerReferences") or ()
        if not any(o.get("uid") == owner_uid and o.get("controller") for o in owners):
            continue
        try:
            await kube.delete(ref, namespace, name)
        except KubeError as exc:
            if not exc.not_found:
                raise
        logger.info("Deleted %s %s (turned off in the spec)", ref.plural, name, extra={"child": f"{ref.plural}/{name}"})
        deleted.append(f"{ref.plural}/{name}")
    return deleted
