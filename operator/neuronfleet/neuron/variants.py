"""Fallback variants: the same model planned on each instance type it may be served from.

`spec.neuron.fallback` lists other ways to serve the fleet when the primary instance type cannot be
placed. Each variant is planned on its own by the same planner (its TP, resources, runtime profile,
startup estimate and therefore its compiled-artifact key differ), and gets a weight: the
**capacity units** one of its replicas is worth, in replicas of the primary. The autoscaler sizes
the fleet in those units, so a trn1 replica that serves 0.7 of a trn2 replica counts as 0.7.

Units come from published throughput of the exact shape where there is one, else from an estimate:

- published: peak generated tokens/s per replica on one benchmark (huggingface/optimum-neuron
  benchmark/vllm, guidellm 1500 +-150 prompt / 250 +-20 output tokens; reference/neuron-vllm.md
  section 5): Llama-3.1-8B on trn2 TP4 (one chip) 579 tok/s (single-instance/llama-3.1-8b-trn2);
  on trn1 TP8 (4 of 16 devices) 1600 tok/s for 4 replicas = 400 (data-parallel/llama3.1-8b, dp4);
  on inf2 TP8 (4 of 12 devices) 1226 tok/s for 3 replicas = 409 (dp3);
- estimated [INFERRED]: decode is bound by HBM bandwidth, so a replica's peak scales with the
  bandwidth of the devices it spans (Inferentia2 and Trainium 820 GiB/s per chip, Trainium2 2.9 TB/s;
  reference/neuron-vllm.md section 3) times what each family turns a GiB/s into, calibrated on the
  three published 8B shapes above: 0.122 tok/s per GiB/s on trn1, 0.125 on inf2, 0.214 on trn2.
  Counting bandwidth alone would make a trn1 TP8 replica worth 1.2 trn2 TP4 replicas; it measured 0.69.

A variant's name is its instance type with dashes (`trn1-32xlarge`); its Deployment is
`<ModelDeployment name>-<variant>` (render/variants.py). The primary is named `primary`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner
from neuronfleet.neuron.catalog import CATALOG, GIB, InstanceType, lookup
from neuronfleet.neuron.types import Plan, PlanRequest

__all__ = [
    "BANDWIDTH_PER_CHIP",
    "FAMILY_TOKENS_PER_GIB_S",
    "PRIMARY",
    "PUBLISHED_PEAK_TOKENS_PER_SECOND",
    "PlannedVariant",
    "VariantRequest",
    "capacity_units",
    "peak_tokens_per_second",
    "plan_variants",
    "variant_name",
]

PRIMARY = "primary"

BANDWIDTH_PER_CHIP: dict[str, float] = {
    "inf2": 820 * GIB,
    "trn1": 820 * GIB,
    "trn2": 2.9e12,
}
"""HBM bandwidth per Neuron chip, bytes/s (reference/neuron-vllm.md section 3)."""

PUBLISHED_PEAK_TOKENS_PER_SECOND: dict[tuple[str, str, int], float] = {
    ("meta-llama/Llama-3.1-8B-Instruct", "trn2", 4): 579.0,
    ("meta-llama/Llama-3.1-8B-Instruct", "trn1", 8): 1600.0 / 4,
    ("meta-llama/Llama-3.1-8B-Instruct", "inf2", 8): 1226.0 / 3,
}
"""Peak generated tokens/s of one replica by (model, instance family, TP), see the module docstring."""

FAMILY_TOKENS_PER_GIB_S: dict[str, float] = {
    family: PUBLISHED_PEAK_TOKENS_PER_SECOND[("meta-llama/Llama-3.1-8B-Instruct", family, tp)]
    / (BANDWIDTH_PER_CHIP[family] * chips / GIB)
    for family, tp, chips in (("trn2", 4, 1), ("trn1", 8, 4), ("inf2", 8, 4))
}
"""Tokens/s per GiB/s of HBM bandwidth, per family, calibrated on Llama-3.1-8B (module docstring)."""


@dataclasses.dataclass(frozen=True)
class VariantRequest:
    """One entry of spec.neuron.fallback, as plain data."""

    instance_type: str
    tensor_parallel_size: int | None = None
    runtime: str | None = None


@dataclasses.dataclass(frozen=True)
class PlannedVariant:
    """A variant and its plan; `units_per_replica` is in primary replicas."""

    name: str
    index: int  # 0 for the primary, then the fallback's position + 1 (the order of preference)
    plan: Plan
    units_per_replica: float
    units_reason: str

    @property
    def is_primary(self) -> bool:
        return self.index == 0


def variant_name(instance_type: str) -> str:
    """`trn1.32xlarge` -> `trn1-32xlarge`: a DNS label, used in the variant's Deployment name."""
    return instance_type.replace(".", "-")


def _instance(plan: Plan, catalog: Sequence[InstanceType]) -> InstanceType:
    return lookup(plan.instance_type, tuple(catalog))


def peak_tokens_per_second(plan: Plan, catalog: Sequence[InstanceType] = CATALOG) -> tuple[float, str]:
    """A replica's peak generated tokens/s, and where the number comes from."""
    published = PUBLISHED_PEAK_TOKENS_PER_SECOND.get((plan.model, plan.instance_family, plan.tensor_parallel_size))
    if published is not None:
        return published, "published"
    instance = _instance(plan, catalog)
    per_chip = BANDWIDTH_PER_CHIP.get(plan.instance_family)
    efficiency = FAMILY_TOKENS_PER_GIB_S.get(plan.instance_family)
    if per_chip is None or efficiency is None:
        raise PlanError(f"no bandwidth figure for the {plan.instance_family} family to weigh its replicas")
    cores_per_chip = instance.logical_cores_per_chip(plan.logical_core_size)
    chips = max(plan.devices_per_replica, plan.cores_per_replica / cores_per_chip)
    return efficiency * per_chip * chips / GIB, "estimated from HBM bandwidth"


def capacity_units(primary: Plan, variant: Plan, catalog: Sequence[InstanceType] = CATALOG) -> tuple[float, str]:
    """One `variant` replica in `primary` replicas, with the reason (rounded to 0.01)."""
    base, base_source = peak_tokens_per_second(primary, catalog)
    mine, my_source = peak_tokens_per_second(variant, catalog)
    units = round(mine / base, 2)
    reason = (
        f"{variant.instance_type} TP {variant.tensor_parallel_size}: ~{mine:.0f} tok/s ({my_source}) against "
        f"{primary.instance_type} TP {primary.tensor_parallel_size}: ~{base:.0f} tok/s ({base_source}) -> "
        f"{units:g} primary replicas per replica"
    )
    return units, reason


def plan_variants(
    request: PlanRequest, fallback: Sequence[VariantRequest], catalog: Sequence[InstanceType] = CATALOG
) -> tuple[PlannedVariant, ...]:
    """The primary's plan, then each fallback planned on its own, in order of preference.

    A fallback takes the model and serving shape of `request`, and its own instance type, TP and
    runtime (unset: the planner's choice there, never the primary's, which may not exist on that
    family). LNC is the fallback type's default. A fallback that cannot serve the model raises a
    PlanError naming it, so the spec is refused as a whole rather than failing in an outage.
    """
    primary = planner.plan(request, catalog)
    out = [PlannedVariant(PRIMARY, 0, primary, 1.0, "the primary variant is the unit")]
    for position, variant in enumerate(fallback, start=1):
        if variant.instance_type == primary.instance_type:
            raise PlanError(
                f"spec.neuron.fallback[{position - 1}] repeats the primary instance type {primary.instance_type}"
            )
        derived = dataclasses.replace(
            request,
            instance_type=variant.instance_type,
            tensor_parallel_size=variant.tensor_parallel_size,
            runtime=variant.runtime,
            logical_core_size=None,
        )
        try:
            plan = planner.plan(derived, catalog)
        except PlanError as exc:
            raise PlanError(f"spec.neuron.fallback[{position - 1}] ({variant.instance_type}): {exc}") from exc
        units, reason = capacity_units(primary, plan, catalog)
        out.append(PlannedVariant(variant_name(variant.instance_type), position, plan, units, reason))
    return tuple(out)
