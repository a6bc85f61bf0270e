"""ModelDeployment spec: what a user writes. Reads like a kubebuilder `_types.go`.

Every field carries its meaning, default and unit in the docstring below it. Admission rules
that a schema can say (enums, ranges, CEL cross-field rules) sit here and reach the CRD;
what needs the planner (does the model fit, is TP legal on this instance) does not.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, model_validator

from neuronfleet.api.base import ApiModel, Replicas, cel

__all__ = [
    "DEFAULT_FALLBACK_AFTER_SECONDS",
    "INSTANCE_TYPES",
    "AutoscalingBehavior",
    "AutoscalingMetrics",
    "AutoscalingSlo",
    "AutoscalingSpec",
    "EnvVar",
    "FallbackVariant",
    "HPAScalingPolicy",
    "ModelArchSpec",
    "ModelDeploymentSpec",
    "ModelSpec",
    "MonitoringSpec",
    "NeuronSpec",
    "PrometheusSpec",
    "RolloutSpec",
    "ScalingRulesSpec",
    "SchedulingSpec",
    "SecretKeyRef",
    "ServingSpec",
    "SpeculativeDecodingSpec",
    "Toleration",
]

# The admission vocabulary of instance types: the planner's catalog less its entries with inferred
# numbers (a unit test keeps the two in step).
InstanceTypeName = Literal[
    "inf2.xlarge",
    "inf2.8xlarge",
    "inf2.24xlarge",
    "inf2.48xlarge",
    "trn1.2xlarge",
    "trn1.32xlarge",
    "trn1n.32xlarge",
    "trn2.48xlarge",
    "trn2u.48xlarge",
]
INSTANCE_TYPES: tuple[str, ...] = get_args(InstanceTypeName)
# Tensor-parallel degrees any Neuron instance documents; the planner checks the instance's own list.
# 256 and 512 are only reachable by a replica spanning several nodes (nodesPerReplica).
TensorParallelSize = Literal[1, 2, 4, 8, 16, 24, 32, 64, 128, 256, 512]
DNSLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class SecretKeyRef(ApiModel):
    """A key in a Secret in the ModelDeployment's namespace."""

    name: DNSLabel
    """Name of the Secret."""
    key: str = "token"
    """Key inside the Secret. Default: `token`."""


class ModelArchSpec(ApiModel):
    """The model's shape, for models missing from the built-in table. Sizes weights and KV cache."""

    params_billions: float = Field(gt=0, le=10000)
    """Total parameters in billions (all experts for mixture-of-experts models)."""
    num_layers: int = Field(ge=1, le=1000)
    """Transformer layers (`num_hidden_layers` in the HF config)."""
    num_attention_heads: int = Field(ge=1, le=1024)
    """Query heads (`num_attention_heads`)."""
    num_key_value_heads: int = Field(ge=1, le=1024)
    """KV heads (`num_key_value_heads`); replicated up to the TP degree on Neuron."""
    head_dim: int = Field(ge=1, le=1024)
    """Dimension of one attention head."""
    max_position_embeddings: int = Field(default=131072, ge=128, le=4194304)
    """Longest context the model supports, in tokens. Default: 131072."""
    is_moe: bool = False
    """Mixture-of-experts model. Default: false."""
    active_params_billions: float | None = Field(default=None, gt=0, le=10000)
    """Parameters one token runs through, in billions (MoE: shared layers + routed experts). Sizes the
    capacity prior that SLO targets start from. Default: all of paramsBillions."""


class ModelSpec(ApiModel):
    """Which model to serve and where its weights come from."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "self.source.startsWith('hf://') || has(self.id) || has(self.arch)",
                "model.id or model.arch is required when model.source is not an hf:// reference",
            ),
        )
    }

    source: str = Field(min_length=6, max_length=512, pattern=r"^(hf://|s3://|pvc://|file:///).+")
    """Where the weights are: `hf://org/name`, `s3://bucket/prefix`, `pvc://claim/path` or `file:///path`."""
    id: str | None = Field(default=None, max_length=256)
    """Model id for the built-in shape table (e.g. `meta-llama/Llama-3.1-8B-Instruct`). Default: the hf:// path."""
    revision: str | None = Field(default=None, max_length=128)
    """Hugging Face revision (branch, tag or commit). Default: the hub's default branch."""
    served_name: str | None = Field(default=None, max_length=256)
    """Name clients use in the OpenAI API `model` field. Default: the ModelDeployment's name."""
    token_secret_ref: SecretKeyRef | None = None
    """Secret holding a Hugging Face token (exposed as HF_TOKEN). Secrets are never written inline."""
    arch: ModelArchSpec | None = None
    """Explicit model shape; overrides the built-in table."""

    @model_validator(mode="after")
    def _needs_a_shape(self) -> ModelSpec:
        # Mirrors the CEL rule above, so offline tools reject what the API server would.
        if not self.source.startswith("hf://") and self.id is None and self.arch is None:
            raise ValueError("model.id or model.arch is required when model.source is not an hf:// reference")
        return self


class CompiledArtifactsSpec(ApiModel):
    """Where compiled Neuron artifacts (NEFFs) live and whether a replica may compile on start."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.policy) || self.policy == 'compileOnStart' || has(self.pvc) || has(self.path)",
                "compiledArtifacts.pvc or compiledArtifacts.path is required unless policy is compileOnStart",
            ),
        )
    }

    policy: Literal["compileOnStart", "precompile", "require"] = "compileOnStart"
    """compileOnStart: each replica compiles on a cache miss (5-20 min). precompile: the operator runs a
    compile Job once per artifact key, replicas start in strict no-compile mode. require: never compile,
    wait for artifacts. Default: compileOnStart."""
    pvc: str | None = Field(default=None, max_length=253)
    """PersistentVolumeClaim (shared filesystem such as FSx for Lustre or EFS) holding the artifacts."""
    path: str | None = Field(default=None, max_length=1024, pattern=r"^/.*")
    """Path of the artifact cache inside the pod. Default: /var/cache/neuronfleet on the PVC."""

    @model_validator(mode="after")
    def _needs_a_location(self) -> CompiledArtifactsSpec:
        if self.policy != "compileOnStart" and self.pvc is None and self.path is None:
            raise ValueError(
                "compiledArtifacts.pvc or compiledArtifacts.path is required unless policy is compileOnStart"
            )
        return self


DEFAULT_FALLBACK_AFTER_SECONDS = 300
"""How long the primary may fail to place replicas before a fallback variant serves the rest.

Karpenter caches an instance type it could not launch (insufficient capacity) for 3 minutes before
it retries (karpenter.sh docs v1.6, concepts/nodepools, Capacity Type), and a launched Neuron node
takes minutes to register; five minutes lets one retry happen before the fleet pays for a second
instance type [INFERRED design choice]."""

_FALLBACK_DISTINCT = "neuron.fallback instance types must be distinct"
_FALLBACK_NOT_PRIMARY = "neuron.fallback must not repeat neuron.instanceType"


class FallbackVariant(ApiModel):
    """Another way to serve the same model, used when the primary instance type cannot be placed."""

    instance_type: InstanceTypeName
    """EC2 instance type of this variant's nodes."""
    tensor_parallel_size: TensorParallelSize | None = None
    """NeuronCores per replica on this variant. Default: the smallest legal degree that fits there."""
    runtime: Literal["vllm-neuron", "nxdi"] | None = None
    """Runtime profile on this variant. Default: by instance family (nxdi on inf2/trn1, vllm-neuron on trn2)."""


class NeuronSpec(ApiModel):
    """How each replica is placed and sharded on Neuron hardware."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.fallback) || self.fallback.all(x, self.fallback.exists_one(y, "
                "y.instanceType == x.instanceType))",
                _FALLBACK_DISTINCT,
            ),
            (
                "!has(self.fallback) || !has(self.instanceType) || "
                "self.fallback.all(x, x.instanceType != self.instanceType)",
                _FALLBACK_NOT_PRIMARY,
            ),
        )
    }

    instance_type: InstanceTypeName | None = None
    """EC2 instance type of the Neuron nodes. Default: the planner picks the smallest that fits."""
    tensor_parallel_size: TensorParallelSize | None = None
    """NeuronCores (logical, at the current LNC) per replica, across all its nodes. Above one node's cores
    the replica spans several nodes. Default: the smallest legal degree that fits."""
    logical_core_size: Literal[1, 2] | None = None
    """Logical NeuronCore config (LNC), trn2/trn3 only. Default: the instance's default (2 on trn2)."""
    allocation: Literal["devicePlugin", "dra"] | None = None
    """How pods get their Neuron devices. devicePlugin: the aws.amazon.com/neuron (or neuroncore) extended
    resources, placed by the Neuron scheduler extension when a pod needs more than one core. dra: a
    resource.k8s.io/v1 ResourceClaimTemplate on DeviceClass neuron.aws.com asking for one connected set of
    devices (matching resource.aws.com/devicegroupN_id) with the logical NeuronCore size in the claim's
    config; needs Kubernetes 1.34+ and the Neuron DRA driver (not the device plugin) on those nodes.
    Default: the operator's --neuron-allocation (devicePlugin unless the chart or flag changes it)."""
    nodes_per_replica: int | None = Field(default=None, ge=1, le=16)
    """Nodes one replica spans. Above 1 a replica is a group of pods, one per node, with tensor parallelism
    across the nodes: a LeaderWorkerSet group (leaderworkerset.x-k8s.io must be installed in the cluster).
    Default: 1 when the model fits one node, else the fewest nodes it fits on."""
    efa: bool = True
    """Give every pod of a multi-node replica its node's EFA devices, for the collectives between the nodes.
    Single-node replicas never use EFA. Default: true."""
    scheduler_name: str = Field(default="my-scheduler", max_length=253)
    """Scheduler of the Neuron scheduler extension, used for pods needing more than one core with the
    devicePlugin allocation (DRA needs none). Default: my-scheduler."""
    compiled_artifacts: CompiledArtifactsSpec = Field(
        default_factory=CompiledArtifactsSpec, json_schema_extra={"default": {}}
    )
    """Compiled-artifact cache and policy."""
    fallback: list[FallbackVariant] = Field(default_factory=list, max_length=4, json_schema_extra={"default": []})
    """Variants to serve from, in order of preference, when the primary instance type cannot place replicas
    for fallbackAfterSeconds. Each is planned on its own (TP, resources, compiled artifacts) and runs in its
    own Deployment `<name>-<variant>` behind the one Service; the fleet drains back to the primary when it
    can place replicas again. Default: none."""
    fallback_after_seconds: int = Field(default=DEFAULT_FALLBACK_AFTER_SECONDS, ge=30, le=86400)
    """Seconds a replica may wait unschedulable before the next variant serves its share. Default: 300."""

    @model_validator(mode="after")
    def _fallback_variants(self) -> NeuronSpec:
        # Mirrors the CEL rules above.
        types = [v.instance_type for v in self.fallback]
        if len(set(types)) != len(types):
            raise ValueError(_FALLBACK_DISTINCT)
        if self.instance_type is not None and self.instance_type in types:
            raise ValueError(_FALLBACK_NOT_PRIMARY)
        return self


class SpeculativeDecodingSpec(ApiModel):
    """EAGLE speculative decoding with a draft model."""

    draft_model: str = Field(min_length=1, max_length=512)
    """Draft model (HF id or path inside the pod)."""
    num_speculative_tokens: int = Field(default=3, ge=1, le=16)
    """Tokens proposed per step. Default: 3."""
    method: Literal["eagle", "eagle3"] = "eagle3"
    """EAGLE variant. vLLM Neuron (trn2/trn3) supports eagle3 only. Default: eagle3."""


class EnvVar(ApiModel):
    """An extra environment variable for the vLLM container (escape hatch)."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Variable name."""
    value: str = Field(default="", max_length=32768)
    """Value."""


class ServingSpec(ApiModel):
    """vLLM serving options. Defaults follow the runtime profile."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.maxNumBatchedTokens) || self.maxNumBatchedTokens >= self.maxNumSeqs",
                "serving.maxNumBatchedTokens must be >= serving.maxNumSeqs",
            ),
        )
    }

    runtime: Literal["vllm-neuron", "nxdi"] | None = None
    """Runtime profile: vllm-neuron (the vLLM Neuron plugin, trn2/trn3) or nxdi (vLLM + NxD Inference,
    inf2/trn1/trn2). Default: by instance family."""
    image: str | None = Field(default=None, max_length=512)
    """Container image. Default: the operator's image for the runtime profile."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    """Image pull policy. Default: IfNotPresent."""
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Weight and activation dtype. Default: bfloat16."""
    quantization: Literal["fp8", "mxfp8", "mxfp4"] | None = None
    """Weight quantization, where the runtime supports it. Default: none."""
    kv_cache_dtype: Literal["auto", "fp8"] = "auto"
    """KV-cache dtype; fp8 halves KV memory. Default: auto (the model dtype)."""
    max_model_len: int = Field(default=8192, ge=128, le=1048576)
    """Longest sequence (prompt + output) in tokens. Default: 8192."""
    max_num_seqs: int = Field(default=32, ge=1, le=1024)
    """Decode batch = most concurrent sequences per replica. Default: 32."""
    max_num_batched_tokens: int | None = Field(default=None, ge=1, le=1048576)
    """Prefill chunk in tokens. Default: the runtime profile's default."""
    block_size: int | None = Field(default=None, ge=8, le=4096)
    """KV-cache block size in tokens. Default: the runtime profile's default."""
    enable_prefix_caching: bool | None = None
    """Automatic prefix caching. Default: on for vllm-neuron, off for nxdi."""
    speculative_decoding: SpeculativeDecodingSpec | None = None
    """EAGLE speculative decoding. Default: off."""
    extra_args: list[str] = Field(default_factory=list, json_schema_extra={"default": []}, max_length=64)
    """Extra `vllm serve` arguments appended last (escape hatch)."""
    env: list[EnvVar] = Field(default_factory=list, json_schema_extra={"default": []}, max_length=64)
    """Extra environment variables for the vLLM container (escape hatch)."""

    @model_validator(mode="after")
    def _chunk_holds_a_batch(self) -> ServingSpec:
        if self.max_num_batched_tokens is not None and self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError("serving.maxNumBatchedTokens must be >= serving.maxNumSeqs")
        return self


class AutoscalingMetrics(ApiModel):
    """Per-replica targets. Each is optional; desired replicas = the max over the targets set."""

    tokens_per_second_per_replica: float | None = Field(default=None, gt=0, le=1e6)
    """Generated tokens/s one replica should carry (rate of vllm:generation_tokens_total)."""
    concurrency_per_replica: float | None = Field(default=None, gt=0, le=1e5)
    """Running + waiting requests one replica should carry."""
    waiting_per_replica: float | None = Field(default=None, gt=0, le=1e5)
    """Waiting (queued) requests per replica before scaling up."""
    kv_cache_usage: float | None = Field(default=None, gt=0, le=1)
    """Mean KV-cache usage (0-1) to keep replicas at."""
    prompt_tokens_per_second_per_replica: float | None = Field(default=None, gt=0, le=1e7)
    """Prompt (prefill) tokens/s one replica should carry (rate of vllm:prompt_tokens_total). The signal
    that matters for prompt-heavy, bursty traffic, where generated tokens/s stays low while prefill
    saturates the replicas."""


class AutoscalingSlo(ApiModel):
    """A service level to derive the per-replica targets from, instead of raw thresholds.

    The operator sizes replicas with the capacity curve of this (model, instance type, TP degree): the
    calibrated profile where one exists, else a roofline of the plan (weights and KV bytes over HBM
    bandwidth, FLOPs over the NeuronCores' peak), to be refined online from the fleet's own vLLM series.
    It shows the targets in status.autoscalingTargets. Targets set in `metrics` win over the derived
    ones. With a calibrated profile, the SLO also sizes the engine: unless serving.maxNumBatchedTokens is
    set, the prefill chunk budget is cut so a step that carries prefill still gives every decode the
    per-user rate (status.plan.maxNumBatchedTokens); this holds whether autoscaling is enabled or not,
    so toggling it never rolls the fleet."""

    per_user_tokens_per_second: float = Field(gt=0, le=1000)
    """Output tokens/s every user must get (1 / time per output token)."""
    time_to_first_token_seconds: float = Field(gt=0, le=600)
    """First-token budget of a short prompt, in seconds."""
    ttft_prompt_tokens_per_second: float | None = Field(default=None, gt=0, le=1e7)
    """Extra TTFT allowed per prompt token, as a rate: the budget of a p-token prompt is
    timeToFirstTokenSeconds + p / this. Default: none (a flat budget)."""
    target_utilization: float | None = Field(default=None, gt=0, le=1)
    """Share of a replica's engine time to plan for at the SLO's pace (0-1); lower buys headroom for
    bursts. Default: derived (autoscale/slo_policy.py: a queueing bound on the measured prompt mix and
    the attainment goal, corrected by the measured service level; status.serviceLevel.utilization).
    Set, it is used as given and never adapted."""
    attainment: float | None = Field(default=None, ge=0.5, le=0.9999)
    """Share of requests that must meet this SLO (0.5-0.9999), judged over 5-minute windows from vLLM's
    latency histograms (status.serviceLevel, condition ServiceLevelMet). Default: 0.99."""


class HPAScalingPolicy(ApiModel):
    """A rate limit: at most `value` pods (or percent of current) per `periodSeconds`."""

    type: Literal["Pods", "Percent"]
    """Pods or Percent."""
    value: int = Field(ge=1, le=10000)
    """Pods, or percent of the current replicas."""
    period_seconds: int = Field(ge=1, le=1800)
    """Window the limit applies to, in seconds."""


class ScalingRulesSpec(ApiModel):
    """One direction's behaviour, shaped like HPA's behavior.scaleUp / scaleDown."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    """Look-back window over recommendations, in seconds. Default: 0 for scale-up; 600 for scale-down
    (longer than HPA's 300: a Neuron replica given up for a short dip takes minutes to come back)."""
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    """Which policy wins when several apply; Disabled stops this direction. Default: Max."""
    policies: list[HPAScalingPolicy] | None = Field(default=None, max_length=8)
    """Rate limits. Default: scale-up max(100%, 4 pods) per 15 s; scale-down max(1 pod, 20%) per 60 s."""
    tolerance: float | None = Field(default=None, ge=0, le=1)
    """No change while the metric ratio is within this fraction of 1. Default: 0.1."""


class AutoscalingBehavior(ApiModel):
    """Scale-up and scale-down behaviour."""

    scale_up: ScalingRulesSpec = Field(default_factory=ScalingRulesSpec, json_schema_extra={"default": {}})
    """Scale-up behaviour."""
    scale_down: ScalingRulesSpec = Field(default_factory=ScalingRulesSpec, json_schema_extra={"default": {}})
    """Scale-down behaviour."""


_QUERY_KEYS = (
    "tokensPerSecond",
    "concurrency",
    "waiting",
    "kvCacheUsage",
    "promptTokensPerSecond",
    "completionsPerSecond",
    "concurrencyGrowth",
    "sampledAt",
    "failingScrapes",
)


class PrometheusSpec(ApiModel):
    """Where the operator reads vLLM metrics, and how to select this fleet's series."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.queries) || self.queries.all(k, k in " + str(list(_QUERY_KEYS)) + ")",
                "prometheus.queries keys must be among " + ", ".join(_QUERY_KEYS),
            ),
        )
    }

    url: str | None = Field(default=None, max_length=512, pattern=r"^https?://.+")
    """Prometheus base URL. Default: the operator's --prometheus-url."""
    rate_window: str = Field(default="1m", pattern=r"^[0-9]+(s|m|h)$")
    """Window of rate() over token counters. Default: 1m."""
    selector: str | None = Field(default=None, max_length=1024)
    """PromQL label matchers selecting this fleet's series (without braces), for clusters with other
    relabeling. Default: namespace="<ns>",app_kubernetes_io_instance="<name>"."""
    queries: dict[str, Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=9)
    """Full PromQL overrides by signal (tokensPerSecond, concurrency, waiting, kvCacheUsage,
    promptTokensPerSecond, completionsPerSecond, concurrencyGrowth, sampledAt, failingScrapes); `$selector`
    and `$window` are substituted."""

    @model_validator(mode="after")
    def _query_keys(self) -> PrometheusSpec:
        unknown = sorted(set(self.queries or {}) - set(_QUERY_KEYS))
        if unknown:
            raise ValueError(f"prometheus.queries keys must be among {', '.join(_QUERY_KEYS)}; got {unknown}")
        return self


_NO_TARGET = "autoscaling.metrics needs at least one target when autoscaling is enabled, unless autoscaling.slo is set"


class AutoscalingSpec(ApiModel):
    """Built-in autoscaling on vLLM metrics from Prometheus. When enabled the operator alone sets replicas."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
            ),
            (
                "!has(self.enabled) || !self.enabled || has(self.slo) || "
                "has(self.metrics.tokensPerSecondPerReplica) || has(self.metrics.concurrencyPerReplica) || "
                "has(self.metrics.waitingPerReplica) || has(self.metrics.kvCacheUsage) || "
                "has(self.metrics.promptTokensPerSecondPerReplica)",
                _NO_TARGET,
            ),
        )
    }

    enabled: bool = False
    """Turn built-in autoscaling on. Default: false (spec.replicas and the scale subresource rule)."""
    min_replicas: int = Field(default=1, ge=1, le=1000)
    """Fewest replicas. Default: 1."""
    max_replicas: int = Field(default=4, ge=1, le=1000)
    """Most replicas. Default: 4."""
    interval_seconds: int = Field(default=15, ge=5, le=600)
    """How often the operator decides, in seconds. Default: 15."""
    metrics: AutoscalingMetrics = Field(default_factory=AutoscalingMetrics, json_schema_extra={"default": {}})
    """Per-replica targets."""
    slo: AutoscalingSlo | None = None
    """Service level to derive per-replica targets from (see AutoscalingSlo). Default: none."""
    behavior: AutoscalingBehavior = Field(default_factory=AutoscalingBehavior, json_schema_extra={"default": {}})
    """Stabilization windows and rate limits."""
    prometheus: PrometheusSpec = Field(default_factory=PrometheusSpec, json_schema_extra={"default": {}})
    """Prometheus endpoint and series selection."""

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        # Mirrors the CEL rule, so offline tools (`neuronfleet render`) reject what the API server would.
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must be <= autoscaling.maxReplicas")
        m = self.metrics
        targets = (
            m.tokens_per_second_per_replica,
            m.concurrency_per_replica,
            m.waiting_per_replica,
            m.kv_cache_usage,
            m.prompt_tokens_per_second_per_replica,
        )
        if self.enabled and self.slo is None and all(t is None for t in targets):
            raise ValueError(_NO_TARGET)
        return self


IntOrPercent = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]


class RolloutSpec(ApiModel):
    """Rolling-update parameters. Neuron capacity is scarce, so the default needs no spare node.

    Both count replicas: for replicas spanning several nodes, whole groups (a surge of 1 is one more group
    of nodesPerReplica nodes)."""

    max_surge: IntOrPercent = 0
    """Extra replicas during a rollout (count or percent). Default: 0, no spare Neuron capacity needed."""
    max_unavailable: IntOrPercent = 1
    """Replicas that may be down during a rollout (count or percent). Default: 1."""


class Toleration(ApiModel):
    """A pod toleration (same fields as core/v1 Toleration)."""

    key: str | None = None
    """Taint key."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal."""
    value: str | None = None
    """Taint value."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect; empty matches all."""
    toleration_seconds: int | None = None
    """For NoExecute: how long the pod stays bound after the taint appears."""


class SchedulingSpec(ApiModel):
    """Pod placement on top of what the planner sets (instance type selector, Neuron toleration)."""

    node_selector: dict[str, str] = Field(default_factory=dict, json_schema_extra={"default": {}})
    """Extra node labels to match."""
    tolerations: list[Toleration] = Field(default_factory=list, json_schema_extra={"default": []}, max_length=32)
    """Extra tolerations (aws.amazon.com/neuron:NoSchedule is always added)."""
    affinity: dict[str, object] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """core/v1 Affinity, passed through unchanged."""
    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the pods."""
    scheduler_name: str | None = Field(default=None, max_length=253)
    """Scheduler for the pods; overrides neuron.schedulerName."""


class MonitoringSpec(ApiModel):
    """Prometheus Operator integration."""

    pod_monitor: bool = False
    """Create a PodMonitor (monitoring.coreos.com/v1) for the vLLM pods. Default: false."""
    scrape_interval: str = Field(default="15s", pattern=r"^[0-9]+(ms|s|m)$")
    """Scrape interval of the PodMonitor. Default: 15s."""


class ModelDeploymentSpec(ApiModel):
    """Desired state of a fleet of vLLM replicas of one model on Neuron."""

    model: ModelSpec
    """The model to serve."""
    neuron: NeuronSpec = Field(default_factory=NeuronSpec, json_schema_extra={"default": {}})
    """Instance type, tensor parallelism and LNC. Omitted fields are chosen by the planner."""
    serving: ServingSpec = Field(default_factory=ServingSpec, json_schema_extra={"default": {}})
    """vLLM serving options."""
    replicas: Replicas = 1
    """Replicas when autoscaling is off (the scale subresource writes this). A replica spanning several nodes
    is one group of nodesPerReplica pods, and counts once. Default: 1."""
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec, json_schema_extra={"default": {}})
    """Built-in autoscaling on Prometheus tokens/s and concurrency."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, json_schema_extra={"default": {}})
    """Rolling-update parameters."""
    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec, json_schema_extra={"default": {}})
    """Pod placement."""
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, json_schema_extra={"default": {}})
    """Prometheus Operator integration."""
