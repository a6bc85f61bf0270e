"""The one I/O path for children: create what is missing, patch what differs, delete what is turned off.

Every write to a child goes through `apply`: the rendered objects, the replica count the
autoscaler decided (it is a field of the rendered Deployment), the compile Jobs of the artifact
gate, and the deletions. So each child has one writer, and every write updates the child's
last-applied record in the same request; a patch is called a repair only when someone else
changed the child (`diff.Step.drift`) or deleted it (`Cache.deleted_by_others`).

Reads come from the cache (controller/cache.py), writes' answers go back into it. A create that
finds the name taken (a previous attempt whose answer was lost, a cache behind the server) reads
the object once and decides again.

Field ownership: the operator owns exactly the fields it renders (plus labels, annotations and
its controller ownerReference), patched with a JSON merge patch (lists replaced whole); fields
others add are left alone. Server-side apply would do this natively; the emulator the tests and
the demo run on does not implement it. A child controlled by another owner, or an unlabelled
object on the name, is never touched (`refused`).

Failures never stop the other children:
- a kind the API server does not serve ("the server could not find the requested resource") is
  reported in `unserved`, and the kind is skipped for a while (`Runtime.served`);
- a write the server rejects for good (403 Forbidden, 422 Invalid, 400) is reported in `rejected`;
- anything else (timeouts, 409 on a patch, 429, 5xx) is kept in `errors`, and the pass is retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import kopf

from neuronfleet.controller import diff, kinds
from neuronfleet.controller.cache import Cache
from neuronfleet.controller.diff import Step, StepKind
from neuronfleet.controller.kinds import ChildKind
from neuronfleet.controller.kube import KubeClient, KubeError
from neuronfleet.controller.state import Runtime

__all__ = ["Applied", "Deletion", "apply", "with_owner"]

log = logging.getLogger(__name__)

_REJECTED = (400, 403, 422)  # the server will refuse the same request again: tell the user


@dataclasses.dataclass(frozen=True)
class Deletion:
    """A child to delete if it exists and this ModelDeployment controls it."""

    kind: str
    name: str
    why: str


@dataclasses.dataclass
class Applied:
    """What `apply` did to the children, and what it could not do."""

    created: list[str] = dataclasses.field(default_factory=list)  # "Deployment x"
    updated: list[str] = dataclasses.field(default_factory=list)  # patched on the operator's own intent
    repaired: list[str] = dataclasses.field(default_factory=list)  # recreated or patched back after drift
    deleted: list[str] = dataclasses.field(default_factory=list)
    refused: list[str] = dataclasses.field(default_factory=list)  # someone else's object on a child's name
    rejected: list[str] = dataclasses.field(default_factory=list)  # the server refused the write: reasons
    unserved: list[ChildKind] = dataclasses.field(default_factory=list)
    errors: list[KubeError] = dataclasses.field(default_factory=list)  # worth retrying
    changed_since: bool = False  # a child changed again right after this pass wrote it: look again
    # Each workload's spec.replicas before this pass, by name (None: it did not exist).
    replicas_before: dict[str, int | None] = dataclasses.field(default_factory=dict)

    @property
    def writes(self) -> list[tuple[str, str]]:
        """(kind, action) of every write made, for the operator's metrics."""
        out = [(w.split(" ", 1)[0], "create") for w in self.created]
        out += [(w.split(" ", 1)[0], "patch") for w in self.updated + self.repaired if w not in self.created]
        out += [(w.split(" ", 1)[0], "delete") for w in self.deleted]
        return out


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


async def apply(
    rt: Runtime,
    owner: Mapping[str, Any],
    children: Sequence[Mapping[str, Any]],
    deletions: Sequence[Deletion] = (),
    *,
    logger: logging.Logger | logging.LoggerAdapter = log,
) -> Applied:
    """Converge the children, phase by phase (`ChildKind.phase`), then delete what the spec turned off.

    What pods reference (claim templates) goes first, then the workloads (Deployments, the
    LeaderWorkerSet), then everything else together: pods take minutes to start on Neuron, so
    nothing gains from the Service or PDB a few milliseconds earlier, and when many fleets are
    created at once every fleet's workload is asked for before anyone's Service.
    """
    namespace = owner["metadata"]["namespace"]
    owner_uid = str(owner["metadata"].get("uid", ""))
    result = Applied()

    async def one(child: Mapping[str, Any]) -> None:
        kind = kinds.of(child)
        name = str(child["metadata"]["name"])
        if kind.phase == 1:
            live = rt.cache.get(kind.kind, namespace, name)
            result.replicas_before[name] = None if live is None else (live.get("spec") or {}).get("replicas")
        if not rt.served(kind):
            result.unserved.append(kind)
            return
        try:
            await _converge(rt, namespace, owner_uid, kind, with_owner(child, owner), result, logger)
            rt.mark_served(kind)
        except KubeError as exc:
            _failed(rt, kind, f"{kind.kind} {name}", exc, result, logger)

    for phase in (0, 1):
        for child in children:
            if kinds.of(child).phase == phase:
                await one(child)
    await asyncio.gather(*(one(c) for c in children if kinds.of(c).phase > 1))
    for deletion in deletions:
        kind = kinds.by_kind(deletion.kind)
        try:
            await _delete(rt.kube, rt.cache, namespace, owner_uid, kind, deletion, result, logger)
        except KubeError as exc:
            _failed(rt, kind, f"{kind.kind} {deletion.name}", exc, result, logger)
    return result


async def _converge(
    rt: Runtime,
    namespace: str,
    owner_uid: str,
    kind: ChildKind,
    desired: Mapping[str, Any],
    result: Applied,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    name = str(desired["metadata"]["name"])
    step = diff.child_step(desired, rt.cache.get(kind.kind, namespace, name), owner_uid=owner_uid)
    if step.kind is StepKind.CREATE:
        try:
            await _write(rt, namespace, kind, step, result, logger)
            return
        except KubeError as exc:
            if not exc.conflict:
                raise
        # Taken: our own earlier write whose answer was lost, or a cache behind the server. Read, decide again.
        live = await rt.kube.get_or_none(kind.ref, namespace, name)
        if live is not None:
            rt.cache.observe(kind.kind, live)
        step = diff.child_step(desired, live, owner_uid=owner_uid)
        if step.kind is StepKind.CREATE:
            raise KubeError(409, "Conflict", f"{kind.kind} {name} was taken and is gone again")
    await _write(rt, namespace, kind, step, result, logger)


async def _write(
    rt: Runtime,
    namespace: str,
    kind: ChildKind,
    step: Step,
    result: Applied,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    what = f"{kind.kind} {step.name}"
    if step.kind is StepKind.NONE:
        return
    if step.kind is StepKind.REFUSE:
        logger.warning("Refused to touch %s: %s", what, step.reason, extra={"child": what})
        result.refused.append(step.reason)
        return
    if step.kind is StepKind.CREATE:
        recreated = rt.cache.deleted_by_others(kind.kind, namespace, step.name)
        with rt.cache.writing(kind.kind, namespace, step.name):
            answer = await rt.kube.create(kind.ref, namespace, step.body)
        result.changed_since |= not rt.cache.record_write(kind.kind, answer)
        result.created.append(what)
        if recreated:
            result.repaired.append(what)
            logger.warning("Recreated %s, which was deleted outside the operator", what, extra={"child": what})
        else:
            logger.info("Created %s", what, extra={"child": what})
        return
    with rt.cache.writing(kind.kind, namespace, step.name):
        answer = await rt.kube.patch(kind.ref, namespace, step.name, step.body)
    result.changed_since |= not rt.cache.record_write(kind.kind, answer)
    if step.drift is not None:
        result.repaired.append(what)
        logger.warning("Repaired %s: %s was changed outside the operator", what, step.drift, extra={"child": what})
    else:
        result.updated.append(what)
        logger.info("Updated %s (%s)", what, step.reason, extra={"child": what})


async def _delete(
    kube: KubeClient,
    cache: Cache,
    namespace: str,
    owner_uid: str,
    kind: ChildKind,
    deletion: Deletion,
    result: Applied,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    live = cache.get(kind.kind, namespace, deletion.name)
    if live is None:
        return
    owners = (live.get("metadata") or {}).get("ownerReferences") or ()
    if not any(o.get("uid") == owner_uid and o.get("controller") for o in owners):
        return
    cache.record_delete(kind.kind, namespace, deletion.name)
    try:
        await kube.delete(kind.ref, namespace, deletion.name)
    except KubeError as exc:
        if not exc.not_found:
            cache.observe(kind.kind, live)  # still there: put it back, the retry deletes it again
            raise
    what = f"{kind.kind} {deletion.name}"
    logger.info("Deleted %s (%s)", what, deletion.why, extra={"child": what})
    result.deleted.append(what)


def _failed(
    rt: Runtime,
    kind: ChildKind,
    what: str,
    exc: KubeError,
    result: Applied,
    logger: logging.Logger | logging.LoggerAdapter,
) -> None:
    if exc.kind_not_served:
        rt.mark_unserved(kind)
        result.unserved.append(kind)
        logger.warning("The API server does not serve %s %s; skipped %s", kind.api_version, kind.kind, what)
    elif exc.status in _REJECTED:
        result.rejected.append(f"{what}: {exc}")
        logger.warning("The API server refused %s: %s", what, exc, extra={"child": what})
    else:
        result.errors.append(exc)
        logger.warning("Failed to apply %s: %s", what, exc, extra={"child": what})
