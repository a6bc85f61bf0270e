"""The pure half of a reconcile pass: what to ask for, and what to do about each child.

A pass is level-based (controller-runtime's rule): it never asks why it runs (create, update,
resume, a child changed). It plans the spec, renders the desired children, and compares each
with what the API server holds. This module decides; `controller/apply.py` does the I/O.

Comparison is "desired is a subset of live": every field the operator renders must be present
and equal in the live object, and anything the API server or other controllers added
(defaults such as `dnsPolicy`, `protocol: TCP`, `clusterIP`, status) is ignored. That keeps a
pass that changed nothing free of writes, unlike a naive equality check that would fight
server defaulting on every pass (controllerutil.CreateOrUpdate's known trap). Quantities are
compared by value (`"32Gi"` equals `34359738368`), because the API server canonicalises them.

A subset check cannot see a map key the renderer stopped emitting (a nodeSelector entry, a label,
a resource limit removed from the spec), and a merge patch of the new render leaves it in place.
So every child carries what the operator last applied (`LAST_APPLIED_ANNOTATION`, like kubectl's
client-side apply), and a key that was in it, is gone from the render and is still live is
patched to null: removed, while keys others added stay untouched.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.api.spec import ModelDeploymentSpec
from neuronfleet.controller.refs import ResourceRef

__all__ = [
    "CHILD_KINDS",
    "LAST_APPLIED_ANNOTATION",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "Step",
    "StepKind",
    "child_ref",
    "child_step",
    "desired_replicas",
    "is_subset",
    "last_applied",
    "owner_reference",
    "patch_body",
    "quantity",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "neuronfleet"
LAST_APPLIED_ANNOTATION = "neuronfleet.io/last-applied"
"""The owned fields (the merge patch body) the operator last wrote to a child, as compact JSON."""

# Every kind the renderer may emit, and where it lives in the API. controller/rbac.py grants
# exactly these (a test keeps the two in step).
CHILD_KINDS: Mapping[tuple[str, str], ResourceRef] = {
    ("apps/v1", "Deployment"): ResourceRef("apps", "v1", "deployments"),
    ("v1", "Service"): ResourceRef("", "v1", "services"),
    ("policy/v1", "PodDisruptionBudget"): ResourceRef("policy", "v1", "poddisruptionbudgets"),
    ("monitoring.coreos.com/v1", "PodMonitor"): ResourceRef("monitoring.coreos.com", "v1", "podmonitors"),
    ("v1", "ConfigMap"): ResourceRef("", "v1", "configmaps"),
    ("batch/v1", "Job"): ResourceRef("batch", "v1", "jobs"),
}

# Metadata the operator owns on a child; name, namespace, uid, managedFields... are not ours.
_OWNED_METADATA = ("labels", "annotations", "ownerReferences")


class StepKind(enum.StrEnum):
    CREATE = "create"  # absent: create it
    PATCH = "patch"  # present, differs on owned fields: merge-patch the owned fields
    NONE = "none"  # present and matching: leave it alone
    REFUSE = "refuse"  # present but controlled by someone else: never touch it


@dataclasses.dataclass(frozen=True)
class Step:
    """What a pass does to one child, and why (the reason ends up in logs, events, conditions)."""

    kind: StepKind
    ref: ResourceRef
    name: str
    body: Mapping[str, Any]  # the object to create, or the merge patch
    reason: str = ""


def child_ref(child: Mapping[str, Any]) -> ResourceRef:
    """The API location of a rendered child; unknown kinds are a programming error."""
    key = (str(child.get("apiVersion")), str(child.get("kind")))
    try:
        return CHILD_KINDS[key]
    except KeyError as exc:
        raise ValueError(f"the renderer emitted {key[1]} {key[0]}, which the controller does not know") from exc


def desired_replicas(spec: ModelDeploymentSpec, live_deployment: Mapping[str, Any] | None) -> int:
    """Replicas to render: one writer per mode (STYLE 9).

    Autoscaling off: spec.replicas (which `kubectl scale` writes through the scale subresource).
    Autoscaling on: the live count, which only the autoscaler changes (KServe's
    PreserveDeploymentReplicas), clamped to the current bounds so a new min/max applies at once;
    a fleet not created yet starts at spec.replicas clamped the same way.
    """
    if not spec.autoscaling.enabled:
        return spec.replicas
    low, high = spec.autoscaling.min_replicas, spec.autoscaling.max_replicas
    live = None
    if live_deployment is not None:
        live = (live_deployment.get("spec") or {}).get("replicas")
    current = spec.replicas if live is None else int(live)
    return max(low, min(high, current))


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    """The controller ownerReference every child carries: garbage collection cascades deletion."""
    return {
        "apiVersion": md.api_version,
        "kind": md.kind,
        "name": md.name,
        "uid": str(md.metadata.get("uid", "")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def patch_body(desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that sets every owned field of `desired` and nothing else."""
    body = {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    meta = desired.get("metadata") or {}
    body["metadata"] = {k: meta[k] for k in _OWNED_METADATA if k in meta}
    return body


def child_step(desired: Mapping[str, Any], live: Mapping[str, Any] | None, *, owner_uid: str) -> Step:
    """Create, patch, leave alone, or refuse one child (`desired` already carries its ownerReference)."""
    ref = child_ref(desired)
    name = str(desired["metadata"]["name"])
    kind = str(desired.get("kind"))
    owned = patch_body(desired)
    desired = _recording(desired, owned)
    if live is None:
        return Step(StepKind.CREATE, ref, name, desired, f"{kind} {name} is missing")
    controller = _controller_of(live)
    if controller is not None and controller.get("uid") != owner_uid:
        owner = f"{controller.get('kind')} {controller.get('name')}"
        return Step(StepKind.REFUSE, ref, name, {}, f"{kind} {name} already exists and is controlled by {owner}")
    labels = (live.get("metadata") or {}).get("labels") or {}
    if controller is None and labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return Step(StepKind.REFUSE, ref, name, {}, f"{kind} {name} already exists and is not managed by neuronfleet")
    body = patch_body(desired)
    dropped = _dropped(last_applied(live), owned, live)
    diff = _first_difference(body, live)
    if diff is None and not dropped:
        return Step(StepKind.NONE, ref, name, {}, f"{kind} {name} is up to date")
    why = [f"differs at {diff}"] if diff is not None else []
    if dropped:
        why.append(f"keeps fields no longer rendered: {', '.join(_paths(dropped))}")
    return Step(StepKind.PATCH, ref, name, _merge(body, dropped), f"{kind} {name} {'; '.join(why)}")


def last_applied(live: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the operator last applied to `live` (LAST_APPLIED_ANNOTATION); None when unknown or unreadable."""
    text = ((live or {}).get("metadata") or {}).get("annotations", {}).get(LAST_APPLIED_ANNOTATION)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _recording(desired: Mapping[str, Any], owned: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` with LAST_APPLIED_ANNOTATION set to its owned fields."""
    out = dict(desired)
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        LAST_APPLIED_ANNOTATION: json.dumps(owned, sort_keys=True, separators=(",", ":")),
    }
    out["metadata"] = meta
    return out


def _dropped(previous: Any, current: Any, live: Any) -> dict[str, Any]:
    """Nested nulls for map keys in `previous`, absent from `current`, still in `live` (lists: replaced whole)."""
    if not (isinstance(previous, Mapping) and isinstance(live, Mapping)):
        return {}
    current = current if isinstance(current, Mapping) else {}
    out: dict[str, Any] = {}
    for key, was in previous.items():
        if key not in live:
            continue
        now = current.get(key)
        if isinstance(was, Mapping) and isinstance(live[key], Mapping) and (now is None or isinstance(now, Mapping)):
            # Key by key, so what others added to the same map (annotations, labels) stays.
            inner = _dropped(was, now or {}, live[key])
            if inner:
                out[key] = inner
        elif now is None:
            out[key] = None
    return out


def _merge(body: Mapping[str, Any], nulls: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(body)
    for key, value in nulls.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _paths(nulls: Mapping[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for key, value in nulls.items():
        path = f"{prefix}.{key}"
        found.extend(_paths(value, path) if isinstance(value, Mapping) else [path])
    return found


def is_subset(desired: Any, live: Any) -> bool:
    """Whether every field of `desired` is present and equal in `live` (see the module docstring)."""
    return _first_difference(desired, live) is None


def _first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The path of the first field of `desired` that `live` lacks or holds differently, else None."""
    if isinstance(desired, Mapping):
        if live is None and not desired:
            return None
        if not isinstance(live, Mapping):
            return path or "."
        for key, value in desired.items():
            if value is None:
                continue
            sub = f"{path}.{key}"
            if key not in live:
                if value in ({}, [], ""):
                    continue
                return sub
            found = _first_difference(value, live[key], sub)
            if found is not None:
                return found
        return None
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if live is None and not desired:
            return None
        if not isinstance(live, Sequence) or isinstance(live, str) or len(live) != len(desired):
            return path or "."
        for i, (want, have) in enumerate(zip(desired, live, strict=True)):
            found = _first_difference(want, have, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    return None if _scalar_equal(desired, live) else (path or ".")


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    a, b = quantity(want), quantity(have)
    return a is not None and a == b


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (or plain number) as an exact number; None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None
