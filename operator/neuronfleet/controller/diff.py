"""The diff engine: what to do about one child, given what the operator wants and what the API holds.

The reconcile pass (controller/reconciler.py) renders the desired children; for each, `child_step`
compares it with the live object and says create, patch, leave alone or refuse, and whether the
difference is drift (someone else changed the child) or the operator's own change of mind (a new
spec, an autoscaling decision, an upgrade). `controller/apply.py` does the I/O.

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

The same record tells drift from intent. A field where live differs from the render is drift only
if live also differs from what the operator last applied there: then somebody else wrote it, and
the patch is a repair (a ChildRepaired event). If live still holds what the operator last applied,
the operator changed its mind (the spec changed, the autoscaler decided), and the patch is an
update. Without a record (a child written by an older operator) nothing counts as drift.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from neuronfleet.api import quantities
from neuronfleet.controller import kinds
from neuronfleet.controller.refs import ResourceRef

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "Step",
    "StepKind",
    "child_step",
    "is_subset",
    "last_applied",
    "patch_body",
]

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "neuronfleet"
LAST_APPLIED_ANNOTATION = "neuronfleet.io/last-applied"
"""The owned fields (the merge patch body) the operator last wrote to a child, as compact JSON."""

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
    drift: str | None = None  # PATCH: the first owned field someone else changed; None for an update


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
    kind_of = kinds.of(desired)
    ref = kind_of.ref
    name = str(desired["metadata"]["name"])
    kind = kind_of.kind
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
    if kind_of.create_only:
        return Step(StepKind.NONE, ref, name, {}, f"{kind} {name} exists (never patched)")
    body = patch_body(desired)
    record = last_applied(live)
    dropped = _dropped(record, owned, live)
    diffs = list(_differences(body, live))
    if not diffs and not dropped:
        return Step(StepKind.NONE, ref, name, {}, f"{kind} {name} is up to date")
    why = [f"differs at {_path(diffs[0])}"] if diffs else []
    if dropped:
        why.append(f"keeps fields no longer rendered: {', '.join(_paths(dropped))}")
    drift = next((_path(d) for d in diffs if _drifted(d, record, live)), None)
    return Step(StepKind.PATCH, ref, name, _merge(body, dropped), f"{kind} {name} {'; '.join(why)}", drift)


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
    return next(_differences(desired, live), None) is None


_MISSING = object()
Path = tuple[str | int, ...]


def _differences(desired: Any, live: Any, path: Path = ()) -> Iterator[Path]:
    """Paths of the fields of `desired` that `live` lacks or holds differently (a list counts once)."""
    if isinstance(desired, Mapping):
        if live is None and not desired:
            return
        if not isinstance(live, Mapping):
            yield path
            return
        for key, value in desired.items():
            if value is None:
                continue
            if key not in live:
                if value not in ({}, [], ""):
                    yield (*path, key)
                continue
            yield from _differences(value, live[key], (*path, key))
        return
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if live is None and not desired:
            return
        if not isinstance(live, Sequence) or isinstance(live, str) or len(live) != len(desired):
            yield path
            return
        for i, (want, have) in enumerate(zip(desired, live, strict=True)):
            yield from _differences(want, have, (*path, i))
        return
    if not _scalar_equal(desired, live):
        yield path


def _at(obj: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, Sequence) or isinstance(obj, str) or part >= len(obj):
                return _MISSING
            obj = obj[part]
        else:
            if not isinstance(obj, Mapping) or part not in obj:
                return _MISSING
            obj = obj[part]
    return obj


def _drifted(path: Path, record: Mapping[str, Any] | None, live: Mapping[str, Any]) -> bool:
    """Whether live differs, at `path`, from what the operator last applied there (someone else wrote it)."""
    if record is None:
        return False
    was, now = _at(record, path), _at(live, path)
    if was is _MISSING:
        return False  # a field the operator never applied before: rendering it is an update
    if now is _MISSING:
        return True  # someone removed what the operator applied
    return not is_subset(was, now)


def _path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out or "."


def _scalar_equal(want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    a, b = quantities.parse(want), quantities.parse(have)
    return a is not None and a == b
