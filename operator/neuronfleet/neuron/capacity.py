"""Measured capacity of one vLLM replica per (model, instance type, TP degree): the step-time model.

Why it lives in neuron/: the operator derives per-replica autoscaling targets from a user's SLO
(`neuronfleet.autoscale.slo_targets`) and the simulator replays traces against the same numbers, so
the calibration exists once. A replica runs continuous batching; one engine step costs
`alpha + beta * decode_batch + gamma * prefill_tokens` seconds (the linear ITL = a + b*batch fit that
llm-d WVA uses, plus a prefill term as in Dynamo's regression). Each constant below is fitted to
published Neuron numbers (reference/neuron-vllm.md section 5) and cites them.

Every other shape gets a prior from a roofline (`roofline(plan)`), so an SLO can size any plan:
- alpha = a fixed per-step overhead + the weight bytes one token runs through / effective HBM bandwidth
  (a decode step at batch 1 reads every active weight once);
- beta = per extra sequence: its KV cache at a nominal context / effective bandwidth + its matmul FLOPs
  (2 x active parameters) at the prefill efficiency; MoE models add one token's active weights, since
  another sequence routes to other experts (an upper bound while the batch is under experts / top-k);
- gamma = one prompt token's FLOPs / (peak FLOP/s x efficiency).
Bandwidth and peak are the replica's share of its chips (TP x LNC physical cores over the chip's), with
the catalog's per-chip figures and their sources (`neuron/catalog.py`). The three efficiencies are not
free knobs: `STEP_OVERHEAD_SECONDS` and `HBM_EFFICIENCY` solve the two calibrated batch-1 step times
below exactly (two equations, two unknowns), `PREFILL_MFU` is the lower of the two calibrated prefill
efficiencies (the safe side: a slower prefill buys more replicas). `tests/unit/neuron/test_capacity_prior.py`
says how close the roofline lands on the calibrated profiles, and `bench/capacity_prior.py` prints it
against every published Neuron figure of reference/neuron-vllm.md section 5.

`prior(plan)` is what SLO targets start from: the calibrated curve where one exists, else the
roofline; the operator then corrects it from the fleet's own series (`autoscale/capacity_fit.py`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from neuronfleet.neuron import catalog
from neuronfleet.neuron.types import Plan, PlanRequest

__all__ = [
    "CALIBRATED_UNCERTAINTY",
    "HBM_EFFICIENCY",
    "LLAMA_8B_TRN2_TP4",
    "LLAMA_70B_TRN2_TP64",
    "NOMINAL_CONTEXT_TOKENS",
    "PREFILL_MFU",
    "PROFILES",
    "PUBLISHED",
    "ROOFLINE_UNCERTAINTY",
    "STEP_OVERHEAD_SECONDS",
    "CapacityProfile",
    "Prior",
    "PublishedFigure",
    "find",
    "for_plan",
    "get",
    "plan_request",
    "prior",
    "roofline",
    "slo_batch",
    "slo_prefill_chunk",
]


@dataclass(frozen=True)
class CapacityProfile:
    """One replica's capacity model; times in seconds, sizes in tokens."""

    name: str
    model: str
    instance_type: str
    tensor_parallel_size: int
    cores: int  # NeuronCores requested per replica (aws.amazon.com/neuroncore, logical at LNC2)
    alpha: float  # fixed cost of one engine step
    beta: float  # extra step cost per sequence in the decode batch
    gamma: float  # extra step cost per prefill token in the step
    max_num_seqs: int  # vLLM --max-num-seqs: running sequences per replica
    max_num_batched_tokens: int  # chunked-prefill token budget per step (decode tokens included)
    kv_cache_tokens: int  # KV-cache capacity of the replica

    def step_seconds(self, decode_batch: int, prefill_tokens: int) -> float:
        """Duration of one engine step."""
        return self.alpha + self.beta * decode_batch + self.gamma * prefill_tokens


# Llama-3.1-8B on one Trainium2 chip (trn2, TP4 at LNC2), optimum-neuron vLLM benchmark
# (huggingface/optimum-neuron benchmark/vllm/single-instance/llama-3.1-8b-trn2/vllm-results.csv,
# guidellm 1500 in / 250 out, batch 32): sync ITL 22 ms, TTFT 197 ms; at 2.27 req/s 537 tok/s with
# ITL 48 ms; max 579 tok/s.
# - alpha + beta = 22 ms (sync ITL, batch 1).
# - gamma = (197 ms - 22 ms) / 1500 tokens = 0.117 ms/token (sync TTFT is one prefill step).
# - At 2.27 req/s: batch = 537 tok/s * 48 ms = 25.8; prefill takes 2.27*1500*0.117 ms = 0.40 s/s, so
#   20.8 steps/s share the remaining 0.60 s: 20.8*alpha + 537*beta = 0.60 -> beta 0.28 ms, alpha 21.7 ms.
#   Check: batch 32 with the same prefill share gives 615 tok/s against the published max 579.
# - KV: vllm-neuron caps the KV budget at 0.30 x HBM x gpu_memory_utilization
#   (determine_available_memory_design.md) = 0.30 * 96 GiB * 0.9 = 26 GiB; Llama-3.1-8B BF16 keeps
#   128 KiB/token (32 layers, 8 KV heads, 128 dim) -> about 200k tokens.
# - max_num_batched_tokens 2048: the vllm-neuron default with prefix caching (reference-configuration.md).
LLAMA_8B_TRN2_TP4 = CapacityProfile(
    name="llama-3.1-8b-trn2-tp4",
    model="meta-llama/Llama-3.1-8B-Instruct",
    instance_type="trn2.48xlarge",
    tensor_parallel_size=4,
    cores=4,
    alpha=0.0217,
    beta=0.00028,
    gamma=0.000117,
    max_num_seqs=32,
    max_num_batched_tokens=2048,
    kv_cache_tokens=200_000,
)

# Llama-3.3-70B BF16 on a whole trn2.48xlarge (TP64 at LNC2), NxDI + vLLM
# (aws-neuron-sdk libraries/nxd-inference/tutorials/llama70b_perf_comparison.csv: 10k in / 1.5k out,
# concurrency 1: TTFT p50 814 ms, TPOT 19.6 ms).
# - alpha + beta = 19.6 ms (TPOT at batch 1).
# - gamma = (814 ms - 19.6 ms) / 10,000 tokens = 0.079 ms/token.
# - beta: no published trn2 batch sweep; the trn1.32xl TP32 numbers for 70B (about-neuron/benchmarks/
#   trn1: TPOT 24.5 ms at BS1, 28 ms at BS4) give 1.17 ms/sequence; scaled by the trn2/trn1 BS1 ratio
#   19.6/24.5 -> 0.93 ms. alpha = 19.6 - 0.93 = 18.7 ms.
# - max_num_seqs 32, KV: 64 cores x 24 GiB, capped at 0.30 x 1536 GiB x 0.9 = 415 GiB; 320 KiB/token
#   (80 layers, 8 KV heads, 128 dim) replicated x8 at TP64 -> 2.5 MiB/token -> about 165k tokens.
LLAMA_70B_TRN2_TP64 = CapacityProfile(
    name="llama-3.3-70b-trn2-tp64",
    model="meta-llama/Llama-3.3-70B-Instruct",
    instance_type="trn2.48xlarge",
    tensor_parallel_size=64,
    cores=64,
    alpha=0.0187,
    beta=0.00093,
    gamma=0.000079,
    max_num_seqs=32,
    max_num_batched_tokens=2048,
    kv_cache_tokens=165_000,
)

PROFILES: dict[str, CapacityProfile] = {p.name: p for p in (LLAMA_8B_TRN2_TP4, LLAMA_70B_TRN2_TP64)}
"""Calibrated profiles by name."""


STEP_OVERHEAD_SECONDS = 0.015
"""Fixed cost of an engine step beyond reading the weights (scheduling, sampling, collective launches).
Solves the calibrated batch-1 steps with `HBM_EFFICIENCY`: 8B on one trn2 chip reads 16.1 GB at 2.9 TB/s
(5.5 ms) in 21.7 ms, 70B on 16 chips reads 141 GB at 46.4 TB/s (3.0 ms) in 18.7 ms: 21.7 - 18.7 =
(5.54 - 3.04) / efficiency gives 0.83, and 18.7 - 3.04 / 0.83 = 15 ms."""

HBM_EFFICIENCY = 0.83
"""Share of the HBM bandwidth a decode step streams weights and KV at (see `STEP_OVERHEAD_SECONDS`)."""

PREFILL_MFU = 0.17
"""Share of the dense BF16 peak prefill reaches: the calibrated gammas give 0.206 (8B trn2 TP4: 16.1
GFLOP/token at 667 TFLOPS in 0.117 ms) and 0.167 (70B TP64: 141 GFLOP at 10.7 PFLOPS in 0.079 ms); the
lower one, so an uncalibrated shape's prefill is not assumed faster than measured ones."""

NOMINAL_CONTEXT_TOKENS = 2048
"""Context a decoding sequence holds when the prior prices its KV reads (prompt + answer so far): about
the Azure chat trace's mean prompt plus answer (1155 + 211), rounded up to a power of two. The online fit
replaces it with what the fleet's own traffic costs."""

ROOFLINE_UNCERTAINTY = 1.0
"""Relative standard deviation of a roofline prior's constants: a factor of two either way. Published
batch-1 step times land 0.77-2.3x the roofline's (bench/capacity_prior.py): software stacks differ."""

CALIBRATED_UNCERTAINTY = 0.25
"""Relative standard deviation of a calibrated profile's constants (fitted to published figures of one
software stack; the serving stack deployed may differ)."""


@dataclass(frozen=True)
class Prior:
    """The step-time curve SLO targets start from, where it comes from, and how unsure it is."""

    profile: CapacityProfile
    source: str  # "calibrated" | "roofline"
    relative_uncertainty: float  # relative standard deviation of alpha, beta, gamma


@dataclass(frozen=True)
class PublishedFigure:
    """One published low-concurrency latency of a vLLM / NxDI replica on Neuron, to check priors against."""

    model: str
    instance_type: str
    tensor_parallel_size: int
    concurrency: int  # requests in flight: the decode batch
    step_seconds: float  # time per output token (ITL) at that concurrency
    ttft_seconds: float | None  # time to first token of one `prompt_tokens` prompt, when published
    prompt_tokens: int
    source: str


PUBLISHED: tuple[PublishedFigure, ...] = (
    PublishedFigure(
        "meta-llama/Llama-3.3-70B-Instruct", "trn2.48xlarge", 64, 1, 0.0196, 0.814, 10000,
        "aws-neuron-sdk libraries/nxd-inference/tutorials/llama70b_perf_comparison.csv (NxDI + vLLM)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-8B-Instruct", "trn2.48xlarge", 4, 1, 0.022, 0.197, 1500,
        "optimum-neuron benchmark/vllm/single-instance/llama-3.1-8b-trn2/vllm-results.csv (sync)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-8B-Instruct", "trn2.48xlarge", 8, 2, 0.0105, 0.051, 512,
        "vllm-neuron docs/tutorials/tutorial-eagle3-speculative-decoding-llama-3-1.md (baseline, concurrency 2)",
    ),
    PublishedFigure(
        "openai/gpt-oss-120b", "trn2.48xlarge", 16, 1, 0.0070, 0.252, 512,
        "vllm-neuron docs/tutorials/tutorial-eagle3-speculative-decoding-gpt-oss.md (baseline)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 8, 1, 0.0266, 0.475, 1500,
        "optimum-neuron benchmark/vllm/data-parallel/llama3.1-8b/vllm-results-dp3.csv (sync, 3x TP8 on 12 chips)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-8B-Instruct", "inf2.48xlarge", 24, 1, 0.0064, 0.025, 128,
        "aws-neuron-sdk about-neuron/benchmarks/inf2/latency_data_decoder.csv (transformers-neuronx, SDK 2.18)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-8B-Instruct", "trn1.32xlarge", 32, 1, 0.0059, 0.015, 128,
        "aws-neuron-sdk about-neuron/benchmarks/trn1/latency_data_decoder.csv (transformers-neuronx, SDK 2.18)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-70B-Instruct", "inf2.48xlarge", 24, 1, 0.033, 0.310, 1024,
        "aws-neuron-sdk about-neuron/benchmarks/inf2/latency_data_decoder.csv (transformers-neuronx, SDK 2.18)",
    ),
    PublishedFigure(
        "meta-llama/Llama-3.1-70B-Instruct", "trn1.32xlarge", 32, 1, 0.0245, None, 128,
        "aws-neuron-sdk about-neuron/benchmarks/trn1/latency_data_decoder.csv (transformers-neuronx, SDK 2.18)",
    ),
)  # fmt: skip
"""Published Neuron latencies (reference/neuron-vllm.md section 5) of shapes the planner can plan: what
`bench/capacity_prior.py` prints the roofline against. The first two are the calibrated profiles' sources."""


def roofline(plan: Plan) -> CapacityProfile:
    """The step-time curve of any planned replica from its bytes and FLOPs (see the module docstring)."""
    instance = catalog.lookup(plan.instance_type)
    chips = plan.cores_per_replica * plan.logical_core_size / instance.physical_cores_per_chip
    bandwidth = chips * instance.hbm_bandwidth_per_chip * HBM_EFFICIENCY
    compute = chips * instance.bf16_flops_per_chip * PREFILL_MFU
    if bandwidth <= 0 or compute <= 0:
        raise ValueError(f"{instance.name}: the catalog has no bandwidth or FLOP/s figures for a roofline")
    active = plan.active_weights_bytes or plan.weights_bytes
    flops = plan.flops_per_token or 2.0 * plan.weights_bytes  # 2 FLOPs per parameter, 1 byte per parameter at worst
    kv_per_token = max(1, plan.kv_bytes_per_token)
    moe_extra = active / bandwidth if active < plan.weights_bytes else 0.0
    beta = NOMINAL_CONTEXT_TOKENS * kv_per_token / bandwidth + flops / compute + moe_extra
    return CapacityProfile(
        name=f"{plan.model.rsplit('/', 1)[-1].lower()}-{plan.instance_type}-tp{plan.tensor_parallel_size}-roofline",
        model=plan.model,
        instance_type=plan.instance_type,
        tensor_parallel_size=plan.tensor_parallel_size,
        cores=plan.cores_per_replica,
        alpha=STEP_OVERHEAD_SECONDS + active / bandwidth,
        beta=beta,
        gamma=flops / compute,
        max_num_seqs=plan.max_num_seqs,
        max_num_batched_tokens=plan.max_num_batched_tokens,
        kv_cache_tokens=max(plan.max_num_seqs, plan.kv_cache_bytes // kv_per_token),
    )


def prior(plan: Plan) -> Prior:
    """The calibrated curve of the planned shape where one exists, else its roofline."""
    calibrated = for_plan(plan)
    if calibrated is not None:
        return Prior(calibrated, "calibrated", CALIBRATED_UNCERTAINTY)
    return Prior(roofline(plan), "roofline", ROOFLINE_UNCERTAINTY)


def get(name: str) -> CapacityProfile:
    """Look a profile up by name, with the known names in the error."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None


def find(model: str, instance_type: str, tensor_parallel_size: int) -> CapacityProfile | None:
    """The profile calibrated for exactly this deployment shape; None when there is none."""
    model = model.lower()
    for profile in PROFILES.values():
        if (
            profile.model.lower() == model
            and profile.instance_type == instance_type
            and profile.tensor_parallel_size == tensor_parallel_size
        ):
            return profile
    return None


def plan_request(profile: CapacityProfile, **overrides: object) -> PlanRequest:
    """A request for one replica of exactly the profile's shape (model, instance, TP, batch).

    The simulator and the benchmarks plan through it, so what they simulate is what the planner
    would deploy; `overrides` set any other PlanRequest field.
    """
    fields: dict[str, object] = {
        "model": profile.model,
        "source": profile.model,
        "served_name": profile.name,
        "instance_type": profile.instance_type,
        "tensor_parallel_size": profile.tensor_parallel_size,
        "max_num_seqs": profile.max_num_seqs,
        **overrides,
    }
    return PlanRequest(**fields)  # type: ignore[arg-type]


def for_plan(plan: Plan) -> CapacityProfile | None:
    """The calibrated curve of the planned shape, with the plan's own batch and chunk limits.

    The step-time constants belong to (model, instance, TP); `max_num_seqs` and the chunked-prefill
    budget are serving options the plan sets, so they come from the plan, not the calibration run.
    """
    profile = find(plan.model, plan.instance_type, plan.tensor_parallel_size)
    if profile is None:
        return None
    return dataclasses.replace(
        profile, max_num_seqs=plan.max_num_seqs, max_num_batched_tokens=plan.max_num_batched_tokens
    )


def slo_batch(profile: CapacityProfile, per_user_tokens_per_second: float) -> int:
    """Largest decode batch whose step still gives each user `per_user_tokens_per_second`."""
    fit = (1.0 / per_user_tokens_per_second - profile.alpha) / profile.beta
    return max(0, min(profile.max_num_seqs, math.floor(fit + 1e-9)))


def slo_prefill_chunk(profile: CapacityProfile, per_user_tokens_per_second: float, batch: int | None = None) -> int:
    """Prompt tokens one step may carry beside `batch` decodes (default: the SLO batch) within 1/R.

    Why: vLLM fills each step's token budget with prefill chunks first come, and every decode in
    that step waits for them; a 2048-token chunk beside 32 decodes makes an 8B step 270 ms, so users
    of a 10 tok/s SLO miss it on an idle fleet. 0 when even the decodes alone use the whole step.
    """
    batch = slo_batch(profile, per_user_tokens_per_second) if batch is None else batch
    spare = 1.0 / per_user_tokens_per_second - profile.step_seconds(batch, 0)
    return max(0, math.floor(spare / profile.gamma + 1e-9))
