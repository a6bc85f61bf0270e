"""ModelDeployment status: what the operator observes and writes, every field declared.

A real API server prunes undeclared status fields, so anything the operator writes must be here;
the contract tests patch a complete status and read it back. `status.kopf` stays declared for
objects that earlier versions (which kept kopf's handler progress there) wrote.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from neuronfleet.api.base import ApiModel

__all__ = [
    "CapacityCurveStatus",
    "CapacityStatus",
    "Condition",
    "MetricsStatus",
    "ModelDeploymentStatus",
    "PlanStatus",
    "ServiceLevelStatus",
    "VariantStatus",
]


class Condition(ApiModel):
    """A Kubernetes-shaped condition (metav1.Condition)."""

    model_config = ApiModel.model_config | {"frozen": False}

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    """Condition type: Ready, Progressing, Degraded, ScalingActive, ScalingLimited, MetricsAvailable,
    CompiledArtifactsReady, OptionalChildrenApplied, ServiceLevelMet."""
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    """True, False or Unknown."""
    reason: str = Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    """CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable details."""
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this condition was computed from."""


class PlanStatus(ApiModel):
    """The sharding plan the planner chose for the current spec."""

    model_config = ApiModel.model_config | {"frozen": False}

    model: str | None = None
    """Model id the plan was sized for."""
    instance_type: str | None = None
    """Instance type of the nodes."""
    runtime: str | None = None
    """Runtime profile: vllm-neuron or nxdi."""
    tensor_parallel_size: int | None = None
    """NeuronCores per replica (tensor parallelism), across all its nodes."""
    nodes_per_replica: int | None = None
    """Nodes one replica spans (above 1: a LeaderWorkerSet group of this many pods)."""
    parallelism: str | None = None
    """How the replica is sharded: tensor (within one node) or tensorAcrossNodes."""
    allocation: str | None = None
    """How pods get their Neuron devices: devicePlugin or dra."""
    logical_core_size: int | None = None
    """Logical NeuronCore config (LNC)."""
    cores_per_replica: int | None = None
    """Logical NeuronCores one replica uses."""
    devices_per_replica: int | None = None
    """Neuron devices (chips) one replica spans."""
    resource_name: str | None = None
    """What each pod asks for: aws.amazon.com/neuroncore or aws.amazon.com/neuron, or the DeviceClass
    neuron.aws.com with the dra allocation."""
    resource_count: int | None = None
    """Amount of that resource per pod (per node of a multi-node replica)."""
    replicas_per_node: int | None = None
    """Replicas that fit on one node."""
    memory_needed_gi_b: float | None = Field(default=None, alias="memoryNeededGiB")
    """Weights + KV cache + overhead per replica, GiB."""
    memory_available_gi_b: float | None = Field(default=None, alias="memoryAvailableGiB")
    """Device memory of the replica's cores, GiB."""
    expected_startup_seconds: int | None = None
    """Expected time from pod start to ready (download, compile, load)."""
    artifact_key: str | None = None
    """Content-addressed key of the compiled Neuron artifacts this plan needs."""
    max_num_batched_tokens: int | None = None
    """Per-step token budget (prefill chunk plus decodes) the replicas run with."""
    summary: str | None = None
    """One-line summary of the plan."""


class MetricsStatus(ApiModel):
    """The last metric values the autoscaler read from Prometheus."""

    model_config = ApiModel.model_config | {"frozen": False}

    tokens_per_second: float | None = None
    """Fleet generation tokens/s."""
    concurrency: float | None = None
    """Fleet running + waiting requests."""
    waiting: float | None = None
    """Fleet waiting requests."""
    kv_cache_usage: float | None = None
    """Mean KV-cache usage, 0-1."""
    sampled_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    """Time of the newest sample (RFC 3339)."""


class ServiceLevelStatus(ApiModel):
    """The service level users got, measured from vLLM's latency histograms (autoscale/service_level.py)."""

    model_config = ApiModel.model_config | {"frozen": False}

    attainment: float | None = Field(default=None, ge=0, le=1)
    """Share of requests within spec.autoscaling.slo over the window (a lower bound: TTFT misses and
    per-user-rate misses are added up)."""
    ttft_attainment: float | None = Field(default=None, ge=0, le=1)
    """Share of requests whose first token came within their TTFT budget."""
    tpot_attainment: float | None = Field(default=None, ge=0, le=1)
    """Share of finished requests that got the per-user token rate."""
    ttft_p50_seconds: float | None = Field(default=None, alias="ttftP50Seconds")
    """Median time to first token, seconds (from vllm:time_to_first_token_seconds)."""
    ttft_p99_seconds: float | None = Field(default=None, alias="ttftP99Seconds")
    """99th percentile time to first token, seconds."""
    itl_p50_seconds: float | None = Field(default=None, alias="itlP50Seconds")
    """Median inter-token latency, seconds (from vllm:inter_token_latency_seconds)."""
    itl_p99_seconds: float | None = Field(default=None, alias="itlP99Seconds")
    """99th percentile inter-token latency, seconds."""
    window_seconds: float | None = None
    """Window the figures cover, seconds."""
    samples: int | None = Field(default=None, ge=0)
    """Requests that got a first token in the window."""
    source: str | None = Field(default=None, pattern=r"^(histograms|model)$")
    """histograms: measured; model: not measurable now, the capacity model alone sizes the fleet."""
    reason: str | None = None
    """Measured, TooFewSamples, HistogramsMissing or MetricsUnavailable."""
    message: str | None = Field(default=None, max_length=4096)
    """How the figures were read, or why they could not be."""
    utilization: float | None = Field(default=None, ge=0, le=1)
    """Planned share of engine time the targets are derived with now (the feedback's output)."""
    feedback: str | None = None
    """What the feedback loop did last and why (autoscale/feedback.py)."""
    sampled_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    """When the window ended (RFC 3339)."""


class CapacityCurveStatus(ApiModel):
    """One replica's step-time curve in use: alpha + beta * batch + gamma * prefill tokens, seconds."""

    model_config = ApiModel.model_config | {"frozen": False}

    alpha_seconds: float | None = None
    """Fixed cost of one engine step."""
    beta_seconds: float | None = None
    """Extra step cost per sequence in the decode batch."""
    gamma_seconds: float | None = None
    """Extra step cost per prefill token in the step."""
    source: str | None = Field(default=None, pattern=r"^(calibrated|roofline|fitted)$")
    """calibrated: a measured profile; roofline: derived from the instance's bandwidth and FLOPs; fitted:
    learned from this fleet's own series (autoscale/capacity_fit.py)."""
    confidence: float | None = Field(default=None, ge=0, le=1)
    """How sure the fit is of the step time at the SLO batch (1 - relative standard error)."""
    samples: int | None = Field(default=None, ge=0)
    """Scrape windows the fit has learned from."""
    slo_batch: int | None = None
    """Largest decode batch that still gives each user the SLO's rate on this curve."""


class VariantStatus(ApiModel):
    """One way the fleet is served: the primary instance type or a fallback variant."""

    model_config = ApiModel.model_config | {"frozen": False}

    name: str
    """Variant name: `primary`, or the fallback's instance type with dashes (its Deployment is `<name>-<variant>`)."""
    instance_type: str | None = None
    """Instance type of the variant's nodes."""
    tensor_parallel_size: int | None = None
    """NeuronCores per replica on this variant."""
    capacity_units_per_replica: float | None = None
    """What one replica of this variant serves, in primary replicas (the autoscaler counts in these units)."""
    desired_replicas: int | None = None
    """Replicas asked of this variant's Deployment."""
    replicas: int | None = None
    """Pods of this variant."""
    ready_replicas: int | None = None
    """Pods of this variant passing readiness."""
    unschedulable_replicas: int | None = None
    """Pods of this variant that no node can take now (PodScheduled=False, Unschedulable)."""


class CapacityStatus(ApiModel):
    """Where the fleet's replicas can be placed, per variant."""

    model_config = ApiModel.model_config | {"frozen": False}

    in_use: str | None = None
    """Variants with replicas, e.g. `trn2.48xlarge=3,trn1.32xlarge=2` (the Variants column of kubectl get)."""
    variants: list[VariantStatus] = Field(default_factory=list)
    """Replicas per variant, primary first."""
    unschedulable_message: str | None = None
    """The scheduler's reason for the oldest unschedulable replica, as kubectl describe pod shows it."""
    capacity_units: float | None = None
    """Capacity placed or on its way, in primary replicas (what the autoscaler counts as current)."""


class ModelDeploymentStatus(ApiModel):
    """Observed state, reconstituted from the children and Prometheus on every pass."""

    model_config = ApiModel.model_config | {"frozen": False}

    observed_generation: int | None = None
    """The spec generation the operator last acted on."""
    replicas: int | None = None
    """Pods of the fleet (the child Deployment's status.replicas); the scale subresource reads it."""
    ready_replicas: int | None = None
    """Pods passing readiness."""
    updated_replicas: int | None = None
    """Pods running the current template."""
    available_replicas: int | None = None
    """Pods available for at least minReadySeconds."""
    desired_replicas: int | None = None
    """Replicas the operator asks for (spec.replicas, or the autoscaler's decision)."""
    selector: str | None = None
    """Label selector of the pods, for the scale subresource (HPA, KEDA, kubectl scale)."""
    last_scale_time: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    """When the autoscaler last changed the replica count."""
    last_scale_reason: str | None = None
    """Reason of the last autoscaling decision."""
    plan: PlanStatus | None = None
    """The current sharding plan."""
    metrics: MetricsStatus | None = None
    """Last metric values read for autoscaling."""
    autoscaling_targets: dict[str, float] | None = None
    """Per-replica targets in force (from spec or derived from an SLO)."""
    service_level: ServiceLevelStatus | None = None
    """The service level measured from vLLM's latency histograms, with spec.autoscaling.slo."""
    capacity_curve: CapacityCurveStatus | None = None
    """The replica's step-time curve the SLO targets are derived from, and how sure it is."""
    capacity: CapacityStatus | None = None
    """Replicas per variant and what cannot be placed (see the CapacityAvailable condition)."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Ready, Progressing, Degraded, ScalingActive, ScalingLimited, MetricsAvailable, CompiledArtifactsReady,
    OptionalChildrenApplied, CapacityAvailable, ServiceLevelMet."""
    kopf: dict[str, Any] | None = Field(default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    """Handler progress stored by the kopf framework (opaque)."""
