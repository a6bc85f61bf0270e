"""Label and field selectors, parsed once and matched against plain object dicts.

The emulator filters LIST and WATCH results the way the API server does, so tests that
rely on ``labelSelector=``/``fieldSelector=`` see the same subset a cluster would return.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["FieldSelector", "LabelSelector", "SelectorError", "label_selector_string"]


class SelectorError(ValueError):
    """A selector string that the API server would reject with 400 Bad Request."""


_KEY = r"[A-Za-z0-9./_-]+"
_SET_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside a set's parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


@dataclasses.dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # one of: =, !=, in, notin, exists, !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "!=":
            return not present or value not in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``: equality-based and set-based requirements, all ANDed."""

    requirements: tuple[_Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text:
            return cls()
        reqs = []
        for part in _split_top_level(text):
            eq = _EQ_RE.match(part)
            if eq:
                key, op, value = eq.groups()
                reqs.append(_Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
                continue
            st = _SET_RE.match(part)
            if not st:
                raise SelectorError(f"unable to parse requirement: {part!r}")
            negated, key, op, values = st.groups()
            if op:
                if negated:
                    raise SelectorError(f"unable to parse requirement: {part!r}")
                vals = frozenset(v.strip() for v in values.split(",") if v.strip())
                reqs.append(_Requirement(key, op, vals))
            else:
                reqs.append(_Requirement(key, "!exists" if negated else "exists"))
        return cls(tuple(reqs))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.requirements:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req.matches(labels) for req in self.requirements)


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    """A parsed ``fieldSelector``: ``path=value``/``path!=value`` terms over dotted paths.

    The real server accepts only a few fields per kind (always ``metadata.name`` and
    ``metadata.namespace``); the emulator accepts any dotted path, a superset.
    """

    terms: tuple[tuple[tuple[str, ...], bool, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        if not text:
            return cls()
        terms = []
        for part in _split_top_level(text):
            match = re.match(r"^\s*([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
            if not match:
                raise SelectorError(f"invalid field selector: {part!r}")
            path, op, value = match.groups()
            terms.append((tuple(path.split(".")), op != "!=", value))
        return cls(tuple(terms))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for path, equal, value in self.terms:
            current: Any = obj
            for step in path:
                current = current.get(step) if isinstance(current, Mapping) else None
            actual = "" if current is None else str(current).lower() if isinstance(current, bool) else str(current)
            if (actual == value) != equal:
                return False
        return True


def label_selector_string(selector: Mapping[str, Any] | None) -> str:
    """Render a ``LabelSelector`` object (matchLabels/matchExpressions) as a query string.

    Needed for the ``status.selector`` of the scale subresource, which is a string.
    """
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        values = ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
