"""Per-replica autoscaling targets derived from a service level and a replica's capacity curve.

Why: users know the service they promise (each user gets R tokens/s, the first token within T0 + p/kappa
seconds for a p-token prompt) far better than what "1500 tokens/s per replica" means on a Neuron
replica. Given the replica's calibrated step time `alpha + beta * batch + gamma * prefill_tokens`
(`neuronfleet.neuron.capacity`), the SLO fixes the targets:

- Interactivity against concurrency: users get R tokens/s only while a decode step takes at most 1/R,
  so the batch is at most B*(R) = (1/R - alpha) / beta, also capped by `max_num_seqs` and by the KV
  cache over the mean context. Faster users means fewer of them per replica (`tradeoff` tabulates it).
- Shared engine time: a replica serving at the SLO's pace runs R steps a second; every concurrent
  request costs R*beta of each second, every prompt token/s gamma, and the fixed step cost leaves
  1 - R*alpha. `types.LoadModel` carries those weights, and the `engine_load` signal sizes the fleet on
  concurrency and prompt tokens/s together (they compete for the same steps), against a planned
  `utilization`. This is the fluid capacity model of the simulator's oracle bound (sim/oracle.py), so
  the operator's idea of "needed" matches the benchmark's.
- Slots: concurrency (running + waiting) above the slot count queues requests for a slot, which costs
  TTFT: the concurrency target is `SLOT_SHARE` of B*, leaving a quarter of the slots for what arrives
  while a new replica starts.

The planned utilization is below 1 because the fluid model is optimistic: a replica's steps run back
to back at their own pace, bursts arrive inside a scrape interval, and a prefill chunk stalls the
decodes it shares a step with. The defaults come from the benchmark (bench/autoscaler.py, Llama-3.1-8B
trn2 TP4, SLO 10 tok/s and 1 s + p/4000 tok/s): on the Azure conv trace, utilization 0.5 with the
slot share 0.75 kept attainment at 99.7-99.9 % for startups of 60 s to 20 min at 1.00-1.16x the
oracle bound; utilization 0.6 lost 0.1-0.3 points, and the full slot count (B*) let the first
minutes of a 60 s-startup run fall to 74 % in the worst 5-minute window (overall 98.0 %).

The TTFT half of the SLO enters as checks and as a chunk-size recommendation, not as a target: an idle
replica must meet the budget (else no fleet size can, and the SLO is refused), and a prefill chunk of
c tokens stalls every decode in its step to alpha + beta*B + gamma*c seconds, so
`max_prefill_chunk_tokens` is the chunk budget that keeps such a step within the per-user token time.
The planner applies it (`neuron/planner.py`: `--max-num-batched-tokens` from the SLO), and the profile
passed here carries the planned budget (`capacity.for_plan`), so the prefill speed below is the real one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from neuronfleet.autoscale import types
from neuronfleet.neuron.capacity import CapacityProfile, slo_batch, slo_prefill_chunk

__all__ = [
    "DEFAULT_UTILIZATION",
    "SLOT_SHARE",
    "DerivedTargets",
    "ServiceLevel",
    "SloUnreachable",
    "derive",
    "load_model",
    "slo_batch",
    "status_targets",
    "tradeoff",
]

DEFAULT_UTILIZATION = 0.5
"""Planned share of engine time at the SLO's pace; see the module docstring for how it was chosen."""

SLOT_SHARE = 0.75
"""Concurrency target as a share of the SLO batch B*; see the module docstring."""

# Status keys, named like the spec's `autoscaling.metrics` fields (engineLoad exists only derived).
_STATUS_KEYS = {
    "tokens_per_second": "tokensPerSecondPerReplica",
    "concurrency": "concurrencyPerReplica",
    "waiting": "waitingPerReplica",
    "kv_cache_usage": "kvCacheUsage",
    "prompt_tokens_per_second": "promptTokensPerSecondPerReplica",
    "engine_load": "engineLoad",
}


class SloUnreachable(ValueError):
    """No fleet size meets the SLO on this profile (a single idle replica already misses it)."""


@dataclass(frozen=True)
class ServiceLevel:
    """What each request is promised: a per-user token rate and a TTFT budget of T0 + p / kappa."""

    per_user_tokens_per_second: float  # R: 1 / time per output token
    ttft_seconds: float  # T0: budget of a zero-length prompt
    ttft_prompt_tokens_per_second: float | None = None  # kappa; None: a flat TTFT budget

    def ttft_budget(self, prompt_tokens: int) -> float:
        """Seconds allowed from arrival to first token for a prompt of this length."""
        kappa = self.ttft_prompt_tokens_per_second
        return self.ttft_seconds + (prompt_tokens / kappa if kappa else 0.0)


@dataclass(frozen=True)
class DerivedTargets:
    """The targets one SLO implies on one profile, and the numbers behind them."""

    targets: types.Targets
    load_model: types.LoadModel
    batch: int  # B*: sequences one replica decodes while every user still gets R tok/s
    batch_limit: str  # which bound set B*: "slo", "maxNumSeqs" or "kvCache"
    decode_tokens_per_second: float  # R * B*: generated tokens/s of a replica full of SLO-paced users
    prefill_tokens_per_second: float  # prompt tokens/s of a replica doing nothing else (full chunks)
    max_prefill_chunk_tokens: int  # chunk budget keeping a step with B* decodes within 1/R (0: none does)
    longest_prompt_tokens: float  # longest prompt an idle replica prefills within budget (inf: any)


def load_model(profile: CapacityProfile, per_user_tokens_per_second: float) -> types.LoadModel:
    """Engine-time weights of concurrency and prompt tokens/s at the SLO's pace."""
    rate = per_user_tokens_per_second
    return types.LoadModel(
        per_request=rate * profile.beta, per_prompt_token=profile.gamma, available=1.0 - rate * profile.alpha
    )


def tradeoff(profile: CapacityProfile, rates: Sequence[float]) -> tuple[tuple[float, int, float], ...]:
    """(per-user tokens/s, batch B*, generated tokens/s per replica) for each rate: faster users, fewer."""
    rows = []
    for rate in rates:
        batch = slo_batch(profile, rate)
        rows.append((float(rate), batch, rate * batch))
    return tuple(rows)


def derive(
    slo: ServiceLevel,
    profile: CapacityProfile,
    *,
    utilization: float = DEFAULT_UTILIZATION,
    mean_context_tokens: float | None = None,
    slot_share: float = SLOT_SHARE,
) -> DerivedTargets:
    """Targets for `decide` from an SLO on a profile; raises `SloUnreachable` when no fleet meets it.

    `mean_context_tokens` (prompt + output) bounds the batch by the KV cache; None: the cache is
    assumed not to bind before `max_num_seqs`. `slot_share` is the concurrency target as a share of B*
    (`slo_policy` derives it from the goal; the default is the fixed share used before).
    """
    rate = slo.per_user_tokens_per_second
    if rate <= 0 or slo.ttft_seconds <= 0:
        raise ValueError("the per-user rate and the TTFT budget must be > 0")
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization}")
    single = profile.step_seconds(1, 0)
    if single > 1.0 / rate:
        raise SloUnreachable(
            f"{profile.name}: one user alone gets {1.0 / single:.1f} tokens/s, below the SLO's {rate:g}"
        )
    first_step = profile.step_seconds(0, 1)
    if first_step > slo.ttft_seconds:
        raise SloUnreachable(
            f"{profile.name}: the first token takes at least {first_step:.3f}s, "
            f"above the TTFT budget {slo.ttft_seconds:g}s"
        )

    batch = slo_batch(profile, rate)
    limit = "maxNumSeqs" if batch == profile.max_num_seqs else "slo"
    if mean_context_tokens:
        kv_batch = int(profile.kv_cache_tokens // mean_context_tokens)
        if kv_batch < batch:
            batch, limit = max(1, kv_batch), "kvCache"

    chunk = profile.max_num_batched_tokens
    prefill_speed = chunk / profile.step_seconds(0, chunk)
    max_chunk = slo_prefill_chunk(profile, rate, batch)

    # Idle replica, prompt p in chunks of c: about alpha * p / c + gamma * p seconds. The budget grows
    # by p / kappa, so past some length even an idle replica misses it.
    per_token = profile.alpha / chunk + profile.gamma
    kappa = slo.ttft_prompt_tokens_per_second
    growth = 1.0 / kappa if kappa else 0.0
    longest = math.inf if growth >= per_token else (slo.ttft_seconds - profile.alpha) / (per_token - growth)

    if not 0 < slot_share <= 1:
        raise ValueError(f"slot share must be in (0, 1], got {slot_share}")
    targets = types.Targets(concurrency=slot_share * batch, engine_load=utilization)
    return DerivedTargets(
        targets=targets,
        load_model=load_model(profile, rate),
        batch=batch,
        batch_limit=limit,
        decode_tokens_per_second=rate * batch,
        prefill_tokens_per_second=prefill_speed,
        max_prefill_chunk_tokens=max_chunk,
        longest_prompt_tokens=longest,
    )


def status_targets(targets: types.Targets) -> dict[str, float]:
    """The targets in force, keyed like the spec's metrics, for `status.autoscalingTargets`."""
    return {key: float(value) for name, key in _STATUS_KEYS.items() if (value := getattr(targets, name)) is not None}
