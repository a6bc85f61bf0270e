"""Operator-level rendering defaults: the knobs a platform team sets once, not per ModelDeployment.

The controller builds one `RenderOptions` from its flags/Helm values and passes it to every
render call; tests and `neuronfleet render` use the defaults. Keeping them in one frozen record
means the renderer stays a pure function of (ModelDeployment, Plan, replicas, options).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["DEFAULT_IMAGES", "RenderOptions"]

# AWS Neuron Deep Learning Containers per runtime profile (aws-neuron/deep-learning-containers
# README, SDK 2.32 snapshot): the vLLM Neuron plugin image is trn2/trn3 only; the NxDI image covers
# inf2, trn1, trn2 and trn3.
DEFAULT_IMAGES: Mapping[str, str] = MappingProxyType(
    {
        "vllm-neuron": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:"
        "0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04",
        "nxdi": "public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:0.16.0-neuronx-py312-sdk2.31.1-ubuntu24.04",
    }
)


@dataclass(frozen=True)
class RenderOptions:
    """Defaults that apply to every ModelDeployment this operator renders."""

    images: Mapping[str, str] = field(default_factory=lambda: DEFAULT_IMAGES)
    """Container image per runtime profile, used when spec.serving.image is empty."""

    startup_probe_period_seconds: int = 10
    """How often the startup probe polls /health while the replica downloads, compiles and loads."""
    startup_safety_factor: float = 1.5
    """Budget = expected startup x this factor: compile time varies with node load and cache hits."""
    min_startup_seconds: int = 300
    """Floor of the startup budget, so a tiny plan estimate never kills a replica during image pull."""
    progress_margin_seconds: int = 600
    """Added to the startup budget for the Deployment's progressDeadlineSeconds (scheduling, pull)."""

    shm_size: str = "16Gi"
    """sizeLimit of the memory-backed /dev/shm: vLLM's worker processes exchange tensors through it."""
    termination_grace_period_seconds: int = 120
    """Time for vLLM to finish in-flight requests after SIGTERM (long generations take a while)."""
    pre_stop_sleep_seconds: int = 10
    """Keep serving while endpoint removal propagates to Services and routers, then SIGTERM."""
    revision_history_limit: int = 3
    """Old ReplicaSets kept for `kubectl rollout undo`."""

    run_as_user: int | None = None
    """UID for images with a non-root user. None keeps the image's user (the AWS DLC runs as root)."""

    hf_home: str = "/var/cache/huggingface"
    """Where downloaded weights go: an emptyDir, so the download is explicit and writable for any UID."""
    weights_path: str = "/models/weights"
    """Where s3:// and pvc:// weights are mounted; must match what the planner passes to `vllm serve`."""
    compiled_artifacts_path: str = "/var/cache/neuronfleet"
    """Default mount path of the compiled-artifact PVC when spec.neuron.compiledArtifacts.path is empty."""
    scratch_storage_gib: int = 10
    """Node-disk scratch per replica on top of downloaded weights (compiler work dirs, logs)."""
    download_headroom: float = 1.1
    """Downloaded weights take this much more disk than their parameter bytes (tokenizer, configs, shards)."""
    s3_sync_image: str = "public.ecr.aws/aws-cli/aws-cli:2.22.35"
    """Init container image that copies s3:// weights into the pod (credentials via IRSA/Pod Identity)."""

    default_allocation: str = "devicePlugin"
    """How pods get Neuron devices when spec.neuron.allocation is empty: devicePlugin or dra (the operator's
    --neuron-allocation, Helm value operator.neuronAllocation). The controller passes it to the planner
    (`convert.plan_request(md, default_allocation=...)`); the renderer itself follows the plan."""

    def image_for(self, runtime: str) -> str:
        try:
            return self.images[runtime]
        except KeyError as exc:
            raise KeyError(f"no default image for runtime profile {runtime!r}; set spec.serving.image") from exc
