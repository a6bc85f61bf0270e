"""The whole ModelDeployment object, and loading it from YAML/dicts with precise errors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neuronfleet import errors
from neuronfleet.api import constants
from neuronfleet.api.spec import ModelDeploymentSpec
from neuronfleet.api.status import ModelDeploymentStatus

__all__ = ["ModelDeployment", "dump_spec", "format_validation_error", "load"]


class ModelDeployment(BaseModel):
    """A ModelDeployment as stored by the API server."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["neuronfleet.io/v1alpha1"] = Field(default=constants.API_VERSION, alias="apiVersion")
    kind: Literal["ModelDeployment"] = constants.KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem, with the camelCase path a user wrote (spec.autoscaling.maxReplicas)."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        lines.append(f"{path}: {err['msg']}" if path else err["msg"])
    return "; ".join(lines)


def load(obj: dict[str, Any]) -> ModelDeployment:
    """Validate a ModelDeployment dict (from YAML or the API server); raises SpecError (a ValueError) with a
    precise message."""
    try:
        return ModelDeployment.model_validate(obj, by_alias=True)
    except ValidationError as exc:
        raise errors.SpecError(f"invalid ModelDeployment: {format_validation_error(exc)}") from exc


def dump_spec(spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The spec as the API server stores it after defaulting: camelCase, no nulls."""
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")
