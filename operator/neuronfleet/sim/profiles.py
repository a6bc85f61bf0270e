"""Engine profiles for the simulator: the capacity numbers of `neuronfleet.neuron.capacity`.

The calibration (step time `alpha + beta * decode_batch + gamma * prefill_tokens` per (model,
instance, TP), each constant citing its published source) lives in `neuron/capacity.py`, so the
operator's SLO-derived targets and the simulator use the same data. This module keeps the
simulator's names.

Beside the two calibrated profiles, **derived** ones: shapes nobody has published a batch sweep for,
whose engine is the roofline prior of the planner's own plan (`capacity.roofline`), exactly what the
operator starts an SLO from for that plan. Their names end in `-derived` and each says what it was
derived from; a benchmark row on one measures the autoscaler on the prior's curve, not on a measured
engine. They are:

- `llama-3.1-405b-trn1-tp128-derived`: Llama-3.1-405B on trn1.32xlarge as examples/llama31-405b-trn1-lws.yaml
  plans it, a group of 4 nodes (TP 128 = 32 per node x 4 nodes, the ai-on-eks LeaderWorkerSet recipe's
  shape, reference/neuron-vllm.md section 6), 8 sequences of 8192 tokens. The roofline sums the 64 chips'
  bandwidth and FLOPs and has no term for the collectives crossing nodes over EFA, so it is optimistic
  for a group [INFERRED]. The only published 405B figure on Neuron is one trn2.48xlarge at TP 64 (a
  single node, BS1: TPOT 37.9 ms; reference/neuron-vllm.md section 5); the roofline of that plan gives
  36.7 ms, which `tests/unit/sim/test_sim_profiles.py` checks;
- `llama-3.1-8b-trn1-tp8-derived` and `llama-3.1-8b-inf2-tp4-derived`: Llama-3.1-8B as the planner plans
  it on trn1.32xlarge and inf2.48xlarge when they are fallback variants of the trn2 TP4 primary
  (`neuron.variants.plan_variants` with no TP given).
"""

from __future__ import annotations

import dataclasses
import functools

from neuronfleet.neuron import capacity, planner
from neuronfleet.neuron.types import Plan, PlanRequest
from neuronfleet.neuron.variants import VariantRequest, plan_variants

__all__ = [
    "DERIVED_SUFFIX",
    "LLAMA_8B_TRN2_TP4",
    "LLAMA_70B_TRN2_TP64",
    "LLAMA_405B_TRN1_REQUEST",
    "PROFILES",
    "DerivedProfile",
    "EngineProfile",
    "derive",
    "derived",
    "derived_names",
    "get_profile",
    "is_derived",
    "profile_names",
]

EngineProfile = capacity.CapacityProfile
LLAMA_8B_TRN2_TP4 = capacity.LLAMA_8B_TRN2_TP4
LLAMA_70B_TRN2_TP64 = capacity.LLAMA_70B_TRN2_TP64
PROFILES: dict[str, EngineProfile] = capacity.PROFILES

DERIVED_SUFFIX = "-derived"

LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"
LLAMA_405B_TRN1_REQUEST = PlanRequest(
    model=LLAMA_405B,
    source=LLAMA_405B,
    served_name="llama31-405b",
    instance_type="trn1.32xlarge",
    max_model_len=8192,
    max_num_seqs=8,
)
"""What examples/llama31-405b-trn1-lws.yaml asks the planner for (the test plans both and compares)."""


@dataclasses.dataclass(frozen=True)
class DerivedProfile:
    """A profile derived from the roofline of a plan, with the request it was planned from."""

    profile: EngineProfile
    plan: Plan
    request: PlanRequest | None  # None: planned elsewhere (a fallback variant's plan)
    source: str  # what it was derived from, for tables and docs

    def deployed(self, slo_tokens_per_second: float | None) -> EngineProfile:
        """The engine the operator deploys for an SLO: the plan's chunk budget cut for the per-user rate."""
        if slo_tokens_per_second is None or self.request is None:
            return self.profile
        plan = planner.plan(dataclasses.replace(self.request, slo_tokens_per_second=slo_tokens_per_second))
        return dataclasses.replace(capacity.roofline(plan), name=self.profile.name)


def _short(model: str) -> str:
    name = model.rsplit("/", 1)[-1].lower()
    return name.removesuffix("-instruct")


def derive(plan: Plan, request: PlanRequest | None, source: str) -> DerivedProfile:
    """The roofline of `plan`, named `<model>-<family>-tp<TP>-derived`."""
    name = f"{_short(plan.model)}-{plan.instance_family}-tp{plan.tensor_parallel_size}{DERIVED_SUFFIX}"
    return DerivedProfile(dataclasses.replace(capacity.roofline(plan), name=name), plan, request, source)


@functools.cache
def _derived() -> dict[str, DerivedProfile]:
    out = [
        derive(
            planner.plan(LLAMA_405B_TRN1_REQUEST),
            LLAMA_405B_TRN1_REQUEST,
            "roofline of the planner's plan of examples/llama31-405b-trn1-lws.yaml (a group of 4 trn1.32xlarge)",
        )
    ]
    primary = capacity.plan_request(LLAMA_8B_TRN2_TP4)
    fallbacks = [VariantRequest("trn1.32xlarge"), VariantRequest("inf2.48xlarge")]
    for variant in plan_variants(primary, fallbacks)[1:]:
        request = dataclasses.replace(
            primary,
            instance_type=variant.plan.instance_type,
            tensor_parallel_size=None,
            runtime=None,
            logical_core_size=None,
        )
        out.append(
            derive(
                variant.plan,
                request,
                f"roofline of the planner's fallback plan on {variant.plan.instance_type} for {LLAMA_8B_TRN2_TP4.name}",
            )
        )
    return {d.profile.name: d for d in out}


def derived_names() -> tuple[str, ...]:
    return tuple(_derived())


def derived(name: str) -> DerivedProfile | None:
    """The derived profile of that name (None: not a derived one)."""
    return _derived().get(name)


def is_derived(profile: EngineProfile) -> bool:
    """Whether the engine is a roofline prior rather than a calibration."""
    return profile.name.endswith(DERIVED_SUFFIX)


def profile_names() -> tuple[str, ...]:
    """Calibrated profiles, then derived ones."""
    return (*PROFILES, *derived_names())


def get_profile(name: str) -> EngineProfile:
    """Look a profile up by name (calibrated or derived), with the known names in the error."""
    if name in PROFILES:
        return PROFILES[name]
    found = derived(name)
    if found is None:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(profile_names())}")
    return found.profile
