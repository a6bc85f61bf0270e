"""Plain data exchanged between the API layer, the planner and the renderer.

The planner is a pure function `plan(request, catalog) -> Plan`; it never sees pydantic or
Kubernetes objects, so the simulator, the CLI and the controller can all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ModelArch", "Plan", "PlanRequest", "SpeculativeRequest"]


@dataclass(frozen=True)
class ModelArch:
    """What the planner needs to know about a model's shape to size weights and KV cache."""

    name: str
    params_billions: float
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    max_position_embeddings: int = 131072
    # Mixture-of-experts models: all experts are resident, so params_billions is the total.
    is_moe: bool = False
    # Parameters one token runs through (MoE: shared layers + the routed experts); None: all of them.
    # The capacity roofline reads these per decoded token and spends 2 FLOPs on each.
    active_params_billions: float | None = None
    # Instance families with a documented Neuron recipe for this model; None: any family. The
    # planner only picks an instance in these families on its own, and warns when told otherwise.
    supported_families: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SpeculativeRequest:
    """EAGLE speculative decoding with a draft model."""

    model: str
    num_speculative_tokens: int = 3
    method: str = "eagle3"
    # Shape of the draft model for memory sizing; None: estimated as a one-layer EAGLE head.
    arch: ModelArch | None = None


@dataclass(frozen=True)
class PlanRequest:
    """Everything the planner reads from a ModelDeployment spec. None means: the planner chooses."""

    model: str  # a built-in model id (e.g. "meta-llama/Llama-3.1-8B-Instruct") or any name with `arch`
    source: str  # what `vllm serve` loads: an HF id or a local path inside the pod
    served_name: str
    arch: ModelArch | None = None  # explicit shape; overrides the built-in table
    instance_type: str | None = None
    tensor_parallel_size: int | None = None
    logical_core_size: int | None = None  # LNC, trn2/trn3 only
    runtime: str | None = None  # "vllm-neuron" | "nxdi"; None: by instance family
    dtype: str = "bfloat16"
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    max_model_len: int = 8192
    max_num_seqs: int = 32
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    enable_prefix_caching: bool | None = None  # None: the runtime profile's default
    speculative: SpeculativeRequest | None = None
    extra_args: tuple[str, ...] = ()
    extra_env: tuple[tuple[str, str], ...] = ()
    port: int = 8000
    # True when compiled artifacts for this exact shape are known to exist (cache hit): startup
    # is then download + load, without the multi-minute compile.
    compiled_cache_hit: bool = False
    # spec.autoscaling.slo's per-user tokens/s: with a calibrated capacity profile, the planner sizes
    # the chunked-prefill budget so a step carrying prefill still gives every decode this rate.
    slo_tokens_per_second: float | None = None
    # spec.neuron.allocation: "devicePlugin" | "dra"; None: `default_allocation`, the operator's
    # --neuron-allocation (render.options.RenderOptions.default_allocation).
    allocation: str | None = None
    default_allocation: str = "devicePlugin"
    nodes_per_replica: int | None = None  # None: 1 when the model fits one node, else the fewest that fit
    efa: bool = True  # EFA devices for the pods of a multi-node replica


@dataclass(frozen=True)
class Plan:
    """The sharding plan for one replica: what the renderer turns into a pod."""

    model: str
    instance_type: str
    instance_family: str  # inf2 | trn1 | trn2 | trn3
    runtime: str  # "vllm-neuron" | "nxdi"
    tensor_parallel_size: int
    logical_core_size: int  # 1 on inf2/trn1
    cores_per_replica: int  # logical NeuronCores one replica uses (= TP)
    devices_per_replica: int  # Neuron devices (chips) one replica spans
    resource_name: str  # "aws.amazon.com/neuroncore" or "aws.amazon.com/neuron"
    resource_count: int
    replicas_per_node: int
    needs_contiguous_cores: bool  # >1 core: the Neuron scheduler extension must place the pod
    weights_bytes: int
    kv_cache_bytes: int
    memory_needed_bytes: int  # weights + KV + overhead
    memory_available_bytes: int  # TP x memory per core
    host_memory_bytes: int  # suggested pod memory request
    host_cpus: int  # suggested pod CPU request
    expected_startup_seconds: int  # download + compile + load, from the cache policy
    args: tuple[str, ...]  # `vllm serve` arguments after the model
    env: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...] = field(default=())  # why each choice was made, for `neuronfleet plan`
    # Content-addressed key of the compiled graphs this plan needs (neuron/artifacts.py); empty
    # until the caller, who knows the image and revision, fills it in with `artifacts.keyed`.
    artifact_key: str = ""
    max_num_seqs: int = 32  # --max-num-seqs the plan serves with
    max_num_batched_tokens: int = 2048  # --max-num-batched-tokens: the per-step token (chunk) budget
    kv_bytes_per_token: int = 0  # KV cache bytes one token takes across the replica (heads replicated up to TP)
    active_weights_bytes: int = 0  # weight bytes one token runs through (MoE: the active share); 0: weights_bytes
    flops_per_token: float = 0.0  # 2 x active parameters: FLOPs one token costs the matrix multiplies
    # How pods get devices: "devicePlugin" (resource_name is an extended resource) or "dra"
    # (resource_name is the DeviceClass neuron.aws.com, resource_count devices in one claim).
    allocation: str = "devicePlugin"
    # A replica spanning nodes is a group of `nodes_per_replica` pods, one per node, each with
    # `resource_count` devices and `tensor_parallel_size // nodes_per_replica` ranks (neuron/groups.py).
    nodes_per_replica: int = 1
    parallelism: str = "tensor"  # "tensor" (one node) | "tensorAcrossNodes"
    efa_devices_per_pod: int = 0  # EFA devices each pod of a multi-node replica asks for
    ultraserver_nodes: int = 0  # >0: the group is placed inside one UltraServer of this node config

    @property
    def multi_node(self) -> bool:
        return self.nodes_per_replica > 1

    @property
    def local_tensor_parallel_size(self) -> int:
        """Ranks (NeuronCores) on each node of the replica."""
        return self.tensor_parallel_size // self.nodes_per_replica
