"""A record of every API request, to derive the RBAC rules an operator really needs.

Tests compare :func:`rbac_rules` of a run with the Helm chart's ClusterRole, the
benchmark divides :func:`count` by the number of ModelDeployments, and the chaos soak tells
which operator wrote what, and when, by each record's ``user`` and ``at``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

__all__ = ["RequestRecord", "count", "rbac_rules"]


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request, in the terms RBAC uses (verb, apiGroup, resource, subresource)."""

    verb: str
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    path: str
    code: int = 0
    user: str = ""  # the authenticated user (see Emulator.tokens); "system:anonymous" without a known token
    at: float = 0.0  # arrival time, time.time()

    @property
    def write(self) -> bool:
        """A request that changes state (an audit log's "write" verbs)."""
        return self.verb in ("create", "update", "patch", "delete", "deletecollection")

    @property
    def rbac_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def rbac_rules(records: Iterable[RequestRecord]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource[/subresource]) -> verbs used; discovery requests are left out."""
    rules: dict[tuple[str, str], set[str]] = {}
    for record in records:
        if not record.resource:
            continue
        rules.setdefault((record.group, record.rbac_resource), set()).add(record.verb)
    return rules


def count(
    records: Iterable[RequestRecord],
    *,
    verb: str | None = None,
    group: str | None = None,
    resource: str | None = None,
    subresource: str | None = None,
) -> int:
    """How many recorded requests match every given field."""
    return sum(
        1
        for r in records
        if (verb is None or r.verb == verb)
        and (group is None or r.group == group)
        and (resource is None or r.resource == resource)
        and (subresource is None or r.subresource == subresource)
    )
