"""Engine profiles for the simulator: the capacity numbers of `neuronfleet.neuron.capacity`.

The calibration (step time `alpha + beta * decode_batch + gamma * prefill_tokens` per (model,
instance, TP), each constant citing its published source) lives in `neuron/capacity.py`, so the
operator's SLO-derived targets and the simulator use the same data. This module keeps the
simulator's names.
"""

from __future__ import annotations

from neuronfleet.neuron import capacity

__all__ = ["LLAMA_8B_TRN2_TP4", "LLAMA_70B_TRN2_TP64", "PROFILES", "EngineProfile", "get_profile"]

EngineProfile = capacity.CapacityProfile
LLAMA_8B_TRN2_TP4 = capacity.LLAMA_8B_TRN2_TP4
LLAMA_70B_TRN2_TP64 = capacity.LLAMA_70B_TRN2_TP64
PROFILES: dict[str, EngineProfile] = capacity.PROFILES


def get_profile(name: str) -> EngineProfile:
    """Look a profile up by name, with the known names in the error."""
    return capacity.get(name)
