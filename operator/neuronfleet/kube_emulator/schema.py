"""Structural-schema handling for custom resources: pruning, defaulting, validation.

The real API server prunes unknown fields, applies ``default``s and rejects objects that
break the CRD's ``openAPIV3Schema`` before anything is stored. An emulator that skipped this
would accept specs a cluster refuses and hide missing defaults, so it is done here for the
keywords CRDs use: type, nullable, enum, minimum/maximum (with boolean exclusive forms),
minLength/maxLength, pattern, minItems/maxItems, required, properties, items,
additionalProperties, x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string.
NOT checked: ``x-kubernetes-validations`` (CEL), ``format``, list-type uniqueness, anyOf/oneOf.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["admit", "apply_defaults", "prune", "validate"]

_TOP_LEVEL = ("apiVersion", "kind", "metadata")


def _preserves(schema: Mapping[str, Any]) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def prune(schema: Mapping[str, Any], value: Any, *, root: bool = False) -> Any:
    """Drop fields the schema does not declare (unless it preserves unknown fields)."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        result = {}
        for key, item in value.items():
            if root and key in _TOP_LEVEL:
                result[key] = item
            elif properties is not None and key in properties:
                result[key] = prune(properties[key], item)
            elif isinstance(additional, Mapping):
                result[key] = prune(additional, item)
            elif _preserves(schema) or additional is True:
                result[key] = item
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [prune(schema["items"], item) for item in value]
    return value


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Fill in ``default``s of missing (or non-nullable null) properties, depth first."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if value.get(key, ...) is None and not sub.get("nullable"):
                del value[key]
            if key not in value and "default" in sub:
                value[key] = _copy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
        additional = schema.get("additionalProperties")
        if isinstance(additional, Mapping):
            for key in [k for k in value if k not in properties]:
                value[key] = apply_defaults(additional, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def _range_errors(schema: Mapping[str, Any], value: float, where: str) -> list[str]:
    errors = []
    if "minimum" in schema:
        low, exclusive = schema["minimum"], schema.get("exclusiveMinimum") is True
        if value < low or (exclusive and value == low):
            errors.append(
                f"{where}: Invalid value: {value}: should be greater than {'' if exclusive else 'or equal to '}{low}"
            )
    if "maximum" in schema:
        high, exclusive = schema["maximum"], schema.get("exclusiveMaximum") is True
        if value > high or (exclusive and value == high):
            errors.append(
                f"{where}: Invalid value: {value}: should be less than {'' if exclusive else 'or equal to '}{high}"
            )
    return errors


def validate(schema: Mapping[str, Any], value: Any, path: str = "") -> list[str]:
    """Errors in the API server's ``path: Invalid value: ...`` style; empty when valid."""
    where = path or "<root>"
    if value is None:
        return [] if schema.get("nullable") else [f"{where}: Invalid value: null: must not be null"]
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or isinstance(value, str)):
            return [f"{where}: Invalid value: {value!r}: must be an integer or a string"]
    elif "type" in schema and not _TYPES.get(schema["type"], lambda v: True)(value):
        return [f"{where}: Invalid value: {value!r}: must be of type {schema['type']}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(repr(v) for v in schema["enum"])
        errors.append(f"{where}: Unsupported value: {value!r}: supported values: {allowed}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        errors += _range_errors(schema, value, where)
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: Invalid value: {value!r}: should be at least {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: Too long: may not be longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{where}: Invalid value: {value!r}: should match '{schema['pattern']}'")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: Invalid value: should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        if isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(value):
                errors += validate(schema["items"], item, f"{path}[{index}]")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(f"{path + '.' if path else ''}{key}: Required value")
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub_path = f"{path}.{key}" if path else key
            if key in properties:
                errors += validate(properties[key], item, sub_path)
            elif isinstance(additional, Mapping):
                errors += validate(additional, item, sub_path)
    return errors


def admit(schema: Mapping[str, Any], obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Prune, default and validate a whole custom resource (metadata is left alone)."""
    pruned = prune(schema, obj, root=True)
    body = {k: v for k, v in pruned.items() if k not in _TOP_LEVEL}
    body = apply_defaults(schema, body)
    top_schema = {**schema, "required": [r for r in schema.get("required") or [] if r not in _TOP_LEVEL]}
    properties = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _TOP_LEVEL}
    errors = validate({**top_schema, "properties": properties}, body)
    return {**{k: pruned[k] for k in _TOP_LEVEL if k in pruned}, **body}, errors
