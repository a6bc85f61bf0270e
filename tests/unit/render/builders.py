"""Builders for render tests: a ModelDeployment from overrides, and a hand-made Plan.

`make_plan` (from tests/plan_builders.py, shared with the controller tests) stands in for the
planner where a test is about rendering, not planning: its defaults are the shape of a
Llama-3.1-8B replica on inf2.48xlarge at TP 8, and every field can be overridden to probe one
rendering rule at a time.
"""

from __future__ import annotations

import copy
from typing import Any

from neuronfleet.api import resource
from neuronfleet.api.resource import ModelDeployment
from plan_builders import GIB, make_plan

__all__ = ["GIB", "deep_merge", "make_md", "make_plan"]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def make_md(name: str = "llama3-8b", *, namespace: str = "ml", **spec_overrides: Any) -> ModelDeployment:
    """A ModelDeployment with a minimal spec, deep-merged with `spec_overrides` (camelCase keys)."""
    spec: dict[str, Any] = {"model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"}}
    return resource.load(
        {
            "apiVersion": "neuronfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": deep_merge(spec, spec_overrides),
        }
    )
