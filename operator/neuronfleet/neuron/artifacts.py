"""The content-addressed key of a replica's compiled Neuron graphs (NEFFs).

A cold compile costs 5-20 minutes per replica, so compiled artifacts are worth sharing across
replicas, rollouts and ModelDeployments, but only when they were compiled for exactly the same
graphs: a false hit is a replica that fails in strict no-compile mode (or, with NxDI, silently
loads graphs of another shape), a false miss only costs one compile. So the key hashes everything
that changes the graphs and leaves out only what provably does not.

What goes in (mirroring the vLLM Neuron plugin's own cache key, reference/neuron-vllm.md 1d:
hash of FX graph, shapes/dtypes, compiler and NKI versions, compiler args, platform, collective
groups):
- the model id and revision (a moving revision such as `main` is hashed as written: pin a commit
  for the key to follow the weights; for s3:// and pvc:// sources bump `revision` when the
  checkpoint changes);
- the runtime profile and the image's identity: the digest when the image is pinned by one, else
  its tag without the registry (the AWS DLC tag carries the vLLM Neuron version and the SDK, e.g.
  `0.24.0.1.1.0-neuronx-py313-sdk2.32.0-ubuntu24.04` -> SDK 2.32.0, which fixes neuronx-cc and
  NKI). Mirroring an image to another registry keeps the key; a mutable tag such as `latest`
  cannot be seen through, so pin versioned tags or digests;
- the instance family (the compiler target: trn2 vs trn3, inf2 vs trn1), TP degree and LNC;
- for a replica spanning nodes, the group shape: nodes per replica (the local TP per node is in
  the hashed NEURON_LOCAL_TP and local_ranks_size too). One key serves every group of that shape;
  NxDI compiles per rank range (examples/multi_node.md gives each node its own compiled-model path),
  so each pod reads and writes `<key>/rank-<worker index>` below the key's directory. Single-node
  plans hash exactly as before this field existed, so their keys did not move;
- weight quantization (fp8 on vllm-neuron comes from the checkpoint and has no flag);
- every `vllm serve` argument of the plan (max model len, max num seqs, max num batched tokens,
  block size, prefix caching, KV blocks, dtype, KV-cache dtype, speculative config, the
  `--additional-config` bucket ladders) and the user's extra args, except the few flags listed in
  NON_COMPILING_FLAGS (served name, host, port, logging, API surface);
- every environment variable except those listed in NON_COMPILING_ENV (timeouts, tokens, cache
  locations, logging, EFA, the strict/CPU compile switches themselves).
Unknown flags and variables are hashed: the conservative side of the trade above.

What stays out: replicas, autoscaling, scheduling, the served name, the port, the
ModelDeployment's name and namespace, and the instance size within a family (inf2.24xlarge and
inf2.48xlarge run the same TP-8 graphs).

Layout on the shared filesystem (FSx for Lustre, EFS) under the cache root:
- vLLM Neuron: NEURON_LIBTORCH_REMOTE_CACHE is the root itself; the plugin content-addresses its
  own entries below it, so keys share identical graphs;
- NxDI: NEURON_COMPILED_ARTIFACTS is `<root>/<key>`, because NxDI loads whatever that directory
  holds without checking the config;
- a marker `<root>/neuronfleet/<key>.json`, written by the compile Job after a complete compile,
  is how a `require` fleet (or another operator) learns that the key's artifacts exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence

from neuronfleet.neuron.types import Plan

__all__ = [
    "KEY_LENGTH",
    "MARKER_DIR",
    "NON_COMPILING_ENV",
    "NON_COMPILING_ENV_PREFIXES",
    "NON_COMPILING_FLAGS",
    "ArtifactInputs",
    "artifact_dir",
    "artifact_key",
    "compile_args",
    "compile_env",
    "full_digest",
    "image_identity",
    "inputs",
    "keyed",
    "marker_path",
    "rank_artifact_dir",
    "sdk_version",
]

KEY_LENGTH = 16  # hex chars of sha256 shown in status and used in names: 64 bits, collisions negligible
MARKER_DIR = "neuronfleet"

# `vllm serve` flags that change no compiled graph -> whether the flag takes a value.
NON_COMPILING_FLAGS: dict[str, bool] = {
    "--served-model-name": True,
    "--host": True,
    "--port": True,
    "--uvicorn-log-level": True,
    "--api-key": True,
    "--root-path": True,
    "--allowed-origins": True,
    "--allowed-methods": True,
    "--allowed-headers": True,
    "--chat-template": True,
    "--response-role": True,
    "--tool-call-parser": True,
    "--max-log-len": True,
    "--ssl-keyfile": True,
    "--ssl-certfile": True,
    "--disable-log-requests": False,
    "--enable-log-requests": False,
    "--disable-log-stats": False,
    "--disable-uvicorn-access-log": False,
    "--enable-auto-tool-choice": False,
    "--disable-fastapi-docs": False,
}

# Environment that changes no compiled graph: time budgets, credentials, where caches live, the
# switches that only say whether compiling is allowed, logging, networking.
NON_COMPILING_ENV: frozenset[str] = frozenset(
    {
        "NEURON_SKIP_EFA_AFFINITY",
        "VLLM_NEURON_COMPILATION_TIMEOUT",
        "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS",
        "VLLM_ENGINE_READY_TIMEOUT_S",
        "VLLM_NEURON_DISABLE_WARMUP_COMPILE",
        "VLLM_NEURON_CPU_COMPILE",
        "NEURON_PLATFORM_TARGET_OVERRIDE",
        "NEURON_COMPILED_ARTIFACTS",
        "NEURON_LIBTORCH_REMOTE_CACHE",
        "NEURON_LIBTORCH_PARALLEL_COMPILE_WORKERS",
        "VLLM_CACHE_ROOT",
        "BASE_COMPILE_WORK_DIR",
        "NEURON_RT_VISIBLE_CORES",
        "NEURON_VISIBLE_DEVICES",
        "NEURON_RT_LOG_LEVEL",
        # Where a group's collective root and this pod's rank are: addressing, not graphs (the rank
        # range a pod compiles for is its own directory, see the module docstring).
        "NEURON_RT_ROOT_COMM_ID",
        "NEURON_RANK_ID",
        "MASTER_ADDR",
        "VLLM_LOGGING_LEVEL",
        "PROMETHEUS_MULTIPROC_DIR",
        "PYTHONUNBUFFERED",
        "TZ",
    }
)
NON_COMPILING_ENV_PREFIXES: tuple[str, ...] = ("HF_", "HUGGING", "AWS_", "FI_", "NEURONFLEET_")

_SDK = re.compile(r"sdk(\d+\.\d+(?:\.\d+)?)")


@dataclasses.dataclass(frozen=True)
class ArtifactInputs:
    """Exactly what the key hashes, in canonical form (printed by tests and `neuronfleet plan`)."""

    model: str
    revision: str  # "" when the spec pins none
    runtime: str
    image: str  # image_identity(): digest, else tag
    instance_family: str
    tensor_parallel_size: int
    logical_core_size: int
    quantization: str  # "" when none
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    nodes_per_replica: int = 1


def image_identity(image: str) -> str:
    """What identifies the compiler inside an image: its digest if pinned, else its tag.

    The registry and repository are dropped, so a mirrored copy keeps the key; an image without a
    tag is Docker's `latest`.
    """
    ref, _, digest = image.partition("@")
    if digest:
        return digest
    last = ref.rsplit("/", 1)[-1]
    _, sep, tag = last.partition(":")
    return tag if sep else "latest"


def sdk_version(image: str) -> str | None:
    """The Neuron SDK version in an AWS DLC tag (`...-sdk2.32.0-...` -> `2.32.0`), None if absent."""
    match = _SDK.search(image.partition("@")[0].rsplit("/", 1)[-1])
    return match.group(1) if match else None


def compile_args(args: Sequence[str]) -> tuple[str, ...]:
    """The serve arguments without the flags in NON_COMPILING_FLAGS (and their values)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        flag, has_inline, _ = arg.partition("=")
        takes_value = NON_COMPILING_FLAGS.get(flag)
        if takes_value is None:
            out.append(arg)
            i += 1
        elif takes_value and not has_inline:
            i += 2
        else:
            i += 1
    return tuple(out)


def _affects_compile(name: str) -> bool:
    return name not in NON_COMPILING_ENV and not name.startswith(NON_COMPILING_ENV_PREFIXES)


def compile_env(env: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The environment that may change compiled graphs, last value per name, sorted by name."""
    merged = dict(env)
    return tuple(sorted((k, v) for k, v in merged.items() if _affects_compile(k)))


def inputs(plan: Plan, *, image: str, revision: str | None = None, quantization: str | None = None) -> ArtifactInputs:
    """The key's inputs for `plan` served from `image` at model `revision`."""
    return ArtifactInputs(
        model=plan.model,
        revision=revision or "",
        runtime=plan.runtime,
        image=image_identity(image),
        instance_family=plan.instance_family,
        tensor_parallel_size=plan.tensor_parallel_size,
        logical_core_size=plan.logical_core_size,
        quantization=quantization or "",
        args=compile_args(plan.args),
        env=compile_env(plan.env),
        nodes_per_replica=plan.nodes_per_replica,
    )


def full_digest(values: ArtifactInputs) -> str:
    """sha256 over the canonical JSON of the inputs (hex, 64 chars).

    `nodes_per_replica` is hashed only above 1, so single-node keys are the ones they always were.
    """
    fields = dataclasses.asdict(values)
    if fields["nodes_per_replica"] == 1:
        del fields["nodes_per_replica"]
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def artifact_key(values: ArtifactInputs) -> str:
    """The short key shown in status.plan.artifactKey and used in Job names and cache paths."""
    return full_digest(values)[:KEY_LENGTH]


def keyed(plan: Plan, *, image: str, revision: str | None = None, quantization: str | None = None) -> Plan:
    """`plan` with its artifact_key filled in."""
    key = artifact_key(inputs(plan, image=image, revision=revision, quantization=quantization))
    return dataclasses.replace(plan, artifact_key=key)


def artifact_dir(root: str, key: str, runtime: str) -> str:
    """Where the runtime reads and writes this key's artifacts (see the module docstring)."""
    root = root.rstrip("/") or "/"
    if runtime == "nxdi":
        return f"{root.rstrip('/')}/{key}"
    return root


def rank_artifact_dir(root: str, key: str, rank: str) -> str:
    """One rank range's NxDI artifacts inside the key's directory (`rank` may be a `$(VAR)` reference)."""
    return f"{artifact_dir(root, key, 'nxdi')}/rank-{rank}"


def marker_path(root: str, key: str) -> str:
    """The file whose existence says the key's artifacts are complete."""
    return f"{root.rstrip('/')}/{MARKER_DIR}/{key}.json"
