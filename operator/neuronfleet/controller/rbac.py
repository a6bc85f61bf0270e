"""Every permission the operator uses, as data: the Helm chart's ClusterRole is checked against it.

Kubebuilder keeps RBAC markers beside `Reconcile`; this table is the Python equivalent. An
integration test records every request the operator makes against the API emulator and fails
if one is not covered here, so a new API call cannot ship without its permission (and a
permission nobody uses shows up as an entry without a `why` that still holds).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from neuronfleet.api import constants
from neuronfleet.controller.kinds import CHILD_KINDS, POD

__all__ = ["RULES", "Rule", "cluster_role_rules", "covers"]

_READ = ("get", "list", "watch")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One ClusterRole rule and the reason it exists."""

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str


def _child_rules() -> tuple[Rule, ...]:
    rules: dict[str, set[str]] = {}
    for kind in CHILD_KINDS:
        rules.setdefault(kind.ref.group, set()).add(kind.ref.plural)
    return tuple(
        Rule(
            group,
            tuple(sorted(plurals)),
            (*_READ, "create", "patch", "delete"),
            "children: watched into the cache, created, patched on owned fields, deleted when turned off",
        )
        for group, plurals in sorted(rules.items())
    )


RULES: tuple[Rule, ...] = (
    Rule(
        constants.GROUP,
        (constants.PLURAL,),
        _READ,
        "watch ModelDeployments into the cache (the operator never writes their spec or metadata)",
    ),
    Rule(
        constants.GROUP,
        (f"{constants.PLURAL}/status",),
        ("get", "patch"),
        "status written once per pass, when it changed",
    ),
    *_child_rules(),
    Rule(
        POD.group,
        (POD.plural,),
        ("list", "watch"),
        "pods watched into the cache: where each starting replica is (download, compile, load) for status",
    ),
    Rule("", ("events",), ("create", "patch"), "events on ModelDeployments (kopf posts core/v1 Events)"),
    Rule("events.k8s.io", ("events",), ("create", "patch"), "events, for API servers that route them here"),
    Rule(
        "apiextensions.k8s.io",
        ("customresourcedefinitions",),
        ("list", "watch"),
        "kopf scans CRDs to serve the ModelDeployment kind (and peering kinds) as they appear",
    ),
    Rule("", ("namespaces",), ("list", "watch"), "kopf follows namespaces when serving a list of them"),
    Rule(
        "kopf.dev",
        ("clusterkopfpeerings", "kopfpeerings"),
        ("get", "list", "watch", "patch"),
        "kopf peering: two operator replicas agree which one acts",
    ),
    Rule(
        "zalando.org",
        ("clusterkopfpeerings", "kopfpeerings"),
        ("get", "list", "watch", "patch"),
        "kopf peering under its legacy group",
    ),
)


def covers(api_group: str, resource: str, verb: str) -> bool:
    """Whether RULES grant `verb` on `resource` (with `/subresource`, as RBAC names it)."""
    return any(api_group == r.api_group and resource in r.resources and verb in r.verbs for r in RULES)


def cluster_role_rules() -> list[dict[str, Any]]:
    """RULES as the `rules:` of a ClusterRole (what the chart's template should render)."""
    return [{"apiGroups": [r.api_group], "resources": list(r.resources), "verbs": list(r.verbs)} for r in RULES]
