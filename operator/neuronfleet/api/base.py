"""The pydantic base every API type shares: camelCase on the wire, docstrings as descriptions."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = ["ApiModel", "Replicas", "cel"]


class ApiModel(BaseModel):
    """Fields are snake_case in Python and camelCase in YAML; unknown fields are errors.

    `use_attribute_docstrings` turns the docstring under each field into its CRD description,
    so `kubectl explain` reads the same text as the code.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        frozen=True,
    )


def cel(*rules: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    """`x-kubernetes-validations` entries from (rule, message) pairs, for `json_schema_extra`."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


Replicas = Annotated[int, Field(ge=0, le=1000)]
