"""The apps/v1 Deployment that runs a ModelDeployment's vLLM Neuron replicas.

`expected(md, plan, replicas=..., options=...)` is a pure builder. Choices that are not obvious
from the Kubernetes API (facts from the Neuron SDK docs and the AWS reference charts):

- Command: the AWS vLLM Neuron DLC's entrypoint execs its argv, so the pod sets only `args`
  (`vllm serve <source> <plan.args>`) and keeps the image's entrypoint. A custom image must
  exec its argv the same way.
- Neuron resources: the device-plugin resource from the plan, as requests and limits (extended
  resources must be equal in both). Pods needing more than one core are placed by the Neuron
  scheduler extension (`schedulerName`), which guarantees contiguous cores. With the dra
  allocation the pod instead references a ResourceClaimTemplate (claims.py): no Neuron extended
  resources, no scheduler name of the extension.
- Pods of a multi-node replica (a LeaderWorkerSet group, leaderworkerset.py) are built here too
  (`pod_template(..., role=...)`): every pod asks for its whole node plus the node's EFA devices
  (`vpc.amazonaws.com/efa`, or in the DRA claim), runs the same serve command with its rank's
  `start_rank_id` computed by a POSIX shell line (neuron/groups.py), and only the leader serves
  HTTP, so only the leader has the port and the probes.
- Startup: vLLM serves HTTP only after download + compile + load, 5-20 min on a cold cache. The
  startup probe budget is `failureThreshold = ceil(max(expected, floor) x safety / period)`, so it
  grows with the plan's estimate instead of the usual fixed 10 minutes; liveness and readiness
  start only after it succeeds. `progressDeadlineSeconds` is sized from the same budget so the
  Deployment does not report ProgressDeadlineExceeded during a normal compile.
- securityContext: the AWS DLC runs as root and keeps its caches under /root, and the Neuron
  device nodes are injected by the device plugin, so runAsNonRoot is only set when the operator is
  configured with a UID (`RenderOptions.run_as_user`) for a non-root image. Everything else is
  locked down: all capabilities dropped except IPC_LOCK (the Neuron runtime pins DMA buffers; the
  SDK's docker quickstart also adds SYS_ADMIN, which we do not grant), no privilege escalation,
  seccomp RuntimeDefault, no service-account token (vLLM never calls the API server), no
  Service-link env vars (a Service named `vllm` would inject VLLM_PORT=tcp://..., which vLLM
  reads as its own setting). The root filesystem stays writable: the Neuron compiler and
  vLLM write work dirs in several places.
- Secrets: the Hugging Face token only ever appears as a secretKeyRef; an inline HF_TOKEN in
  spec.serving.env is refused (PlanError), so a token never lands in the object or in Git.
- Disk: downloaded weights land in emptyDirs on the node, so the pod requests ephemeral-storage
  for them (plus scratch); a node without room is skipped at scheduling instead of evicting the
  pod mid-download.
- Replicas are an explicit argument: the controller passes spec.replicas when autoscaling is off
  and the live/autoscaler count when it is on (one writer of replicas).
- The annotation `neuronfleet.io/pod-template-hash` is a hash of the rendered pod template; the
  controller compares it with the live Deployment's to tell a real template change from fields
  the API server defaulted.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.errors import PlanError
from neuronfleet.neuron import artifacts as artifacts_layout
from neuronfleet.neuron import groups
from neuronfleet.neuron.types import Plan
from neuronfleet.render import claims, labels, names
from neuronfleet.render.options import RenderOptions

__all__ = [
    "ARTIFACT_KEY_ANNOTATION",
    "CONTAINER_NAME",
    "EFA_RESOURCE",
    "HTTP_PORT",
    "NEURON_TOLERATION",
    "ROLE_LEADER",
    "ROLE_REPLICA",
    "ROLE_WORKER",
    "TEMPLATE_HASH_ANNOTATION",
    "container_args",
    "ephemeral_storage_gib",
    "expected",
    "pod_template",
    "rolling_update",
    "serve_command",
    "serve_source",
    "startup_budget_seconds",
    "startup_failure_threshold",
    "template_hash",
]

CONTAINER_NAME = "vllm"
HTTP_PORT = 8000  # vLLM's default; /v1/*, /health and /metrics all live here
TEMPLATE_HASH_ANNOTATION = "neuronfleet.io/pod-template-hash"
# The artifact key the Deployment's template serves, so the controller knows which key the running
# replicas use while a rollout to a new key waits for its artifacts (controller/artifacts.py).
ARTIFACT_KEY_ANNOTATION = "neuronfleet.io/artifact-key"
NEURON_TOLERATION: dict[str, str] = {"key": "aws.amazon.com/neuron", "operator": "Exists", "effect": "NoSchedule"}
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
EFA_RESOURCE = "vpc.amazonaws.com/efa"  # the EFA device plugin's resource (aws-neuron-sdk deploy/faq.rst)
# Which pod a template is for: a single-node replica, or the leader / a worker of a multi-node group.
ROLE_REPLICA, ROLE_LEADER, ROLE_WORKER = "replica", "leader", "worker"
# Environment names that carry a Hugging Face token; they may only come from a Secret.
TOKEN_ENV_NAMES = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_HUB_TOKEN"})
GIB = 1024**3


def startup_budget_seconds(plan: Plan, options: RenderOptions) -> int:
    """Seconds the startup probe allows: the plan's estimate (floored) times the safety factor.

    Never less than the engine-ready timeout the planner gave vLLM: a kubelet that kills the pod
    before vLLM itself gives up would restart a slow cold compile from scratch, forever.
    """
    expected_s = max(plan.expected_startup_seconds, options.min_startup_seconds)
    engine_timeout = int(dict(plan.env).get("VLLM_ENGINE_READY_TIMEOUT_S", "0"))
    return max(math.ceil(expected_s * options.startup_safety_factor), engine_timeout)


def startup_failure_threshold(plan: Plan, options: RenderOptions) -> int:
    """failureThreshold of the startup probe: ceil(budget / period)."""
    return max(1, math.ceil(startup_budget_seconds(plan, options) / options.startup_probe_period_seconds))


def container_args(md: ModelDeployment, plan: Plan, source: str) -> list[str]:
    """argv for the image entrypoint: `vllm serve <source> <plan.args>` plus the model revision."""
    args = ["vllm", "serve", source, *plan.args]
    revision = md.spec.model.revision
    if revision and "--revision" not in plan.args:
        args += ["--revision", revision]
    return args


def serve_command(md: ModelDeployment, plan: Plan, options: RenderOptions) -> list[str]:
    """The container's args: `vllm serve ...`, or for a pod of a group the shell line that adds its rank.

    The shell line's `$` are doubled: Kubernetes expands `$(VAR)` in args and turns `$$` into `$`, so
    the shell receives the line exactly as groups.serve_script wrote it.
    """
    argv = container_args(md, plan, serve_source(md, options))
    if not plan.multi_node:
        return argv
    script = groups.serve_script(argv, local_tensor_parallel_size=plan.local_tensor_parallel_size)
    return ["/bin/sh", "-c", script.replace("$", "$$")]


def template_hash(template: dict[str, Any]) -> str:
    """A short stable hash of a pod template (canonical JSON)."""
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _quantity_gi(num_bytes: int) -> str:
    return f"{max(1, math.ceil(num_bytes / GIB))}Gi"


def _is_zero(value: int | str) -> bool:
    return str(value).strip().rstrip("%") in {"0", ""}


def _artifact_env(md: ModelDeployment, plan: Plan, options: RenderOptions) -> dict[str, str]:
    """Point the runtime at the compiled-artifact cache, when one is configured.

    NxDI loads (or compiles and saves) NEFFs in NEURON_COMPILED_ARTIFACTS; the vLLM Neuron plugin
    uses NEURON_LIBTORCH_REMOTE_CACHE as its shared (NFS/FSx) cache tier, and with
    VLLM_NEURON_DISABLE_WARMUP_COMPILE=1 a cache miss is fatal instead of a 20-minute compile, which
    is what the precompile and require policies promise.
    """
    artifacts = md.spec.neuron.compiled_artifacts
    if not (artifacts.pvc or artifacts.path):
        return {}
    path = artifacts.path or options.compiled_artifacts_path
    if plan.runtime == "nxdi":
        # NxDI loads whatever the directory holds without checking the config, so each artifact
        # key gets its own directory (neuron/artifacts.py) once the plan carries one; each rank range
        # of a group its own directory below that.
        key = plan.artifact_key
        where = artifacts_layout.artifact_dir(path, key, plan.runtime) if key else path
        if plan.multi_node:
            where = f"{where.rstrip('/')}/rank-$({groups.LWS_WORKER_INDEX})"
        return {"NEURON_COMPILED_ARTIFACTS": where}
    env = {"NEURON_LIBTORCH_REMOTE_CACHE": path}
    if artifacts.policy != "compileOnStart":
        env["VLLM_NEURON_DISABLE_WARMUP_COMPILE"] = "1"
    return env


def _env(md: ModelDeployment, plan: Plan, options: RenderOptions) -> list[dict[str, Any]]:
    """Planner env, then the user's env (wins by name), HF_HOME default, HF token from its Secret."""
    merged: dict[str, str] = dict(plan.env)
    merged.update(_artifact_env(md, plan, options))
    for var in md.spec.serving.env:
        merged[var.name] = var.value
    inline_tokens = sorted(TOKEN_ENV_NAMES & merged.keys())
    if inline_tokens:
        raise PlanError(
            f"spec.serving.env sets {', '.join(inline_tokens)} inline; put the token in a Secret and "
            "reference it with spec.model.tokenSecretRef"
        )
    merged.setdefault("HF_HOME", options.hf_home)
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in merged.items()]
    ref = md.spec.model.token_secret_ref
    if ref is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return env


def _weights(md: ModelDeployment, options: RenderOptions) -> tuple[list[dict], list[dict], list[dict]]:
    """(volumes, mounts, init containers) that put s3:// or pvc:// weights at options.weights_path."""
    source = md.spec.model.source
    if source.startswith("pvc://"):
        claim, _, sub_path = source.removeprefix("pvc://").partition("/")
        mount: dict[str, Any] = {"name": "model-weights", "mountPath": options.weights_path, "readOnly": True}
        if sub_path:
            mount["subPath"] = sub_path
        volume = {"name": "model-weights", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        return [volume], [mount], []
    if source.startswith("s3://"):
        volume = {"name": "model-weights", "emptyDir": {}}
        mount = {"name": "model-weights", "mountPath": options.weights_path, "readOnly": True}
        init = {
            "name": "fetch-weights",
            "image": options.s3_sync_image,
            "args": ["s3", "sync", "--only-show-errors", source, options.weights_path],
            "volumeMounts": [{"name": "model-weights", "mountPath": options.weights_path}],
            "securityContext": _container_security(options, neuron=False),
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
        }
        return [volume], [mount], [init]
    return [], [], []


def _compiled_artifacts(md: ModelDeployment, options: RenderOptions) -> tuple[list[dict], list[dict]]:
    """Volume and mount of the shared compiled-artifact cache, when a PVC is named."""
    artifacts = md.spec.neuron.compiled_artifacts
    if not artifacts.pvc:
        return [], []
    read_only = artifacts.policy != "compileOnStart"  # only compileOnStart replicas write NEFFs
    volume = {"name": "compiled-artifacts", "persistentVolumeClaim": {"claimName": artifacts.pvc}}
    mount = {
        "name": "compiled-artifacts",
        "mountPath": artifacts.path or options.compiled_artifacts_path,
        "readOnly": read_only,
    }
    return [volume], [mount]


def ephemeral_storage_gib(md: ModelDeployment, plan: Plan, options: RenderOptions) -> int:
    """Node disk a replica fills: downloaded weights (hf://, s3:// land in emptyDirs) plus scratch.

    Requested so the scheduler places the pod only where the download fits, instead of the kubelet
    evicting it half-way through a 140 GB download.
    """
    downloads = md.spec.model.source.startswith(("hf://", "s3://"))
    weights_gib = plan.weights_bytes * options.download_headroom / GIB if downloads else 0
    return math.ceil(weights_gib) + options.scratch_storage_gib


def _container_security(options: RenderOptions, *, neuron: bool) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], **({"add": ["IPC_LOCK"]} if neuron else {})},
    }
    if options.run_as_user is not None:
        ctx["runAsNonRoot"] = True
        ctx["runAsUser"] = options.run_as_user
    return ctx


def _tolerations(md: ModelDeployment) -> list[dict[str, Any]]:
    out = [dict(NEURON_TOLERATION)]
    for tol in md.spec.scheduling.tolerations:
        item = tol.model_dump(by_alias=True, exclude_none=True)
        if item not in out:
            out.append(item)
    return out


def _scheduler_name(md: ModelDeployment, plan: Plan) -> str | None:
    """The user's scheduler, else the Neuron scheduler extension for multi-core device-plugin pods.

    DRA plans never need the extension (the claim's constraint keeps the devices connected) and so
    never set `needs_contiguous_cores`; an explicit spec.scheduling.schedulerName still wins.
    """
    if md.spec.scheduling.scheduler_name:
        return md.spec.scheduling.scheduler_name
    if plan.needs_contiguous_cores and plan.allocation != groups.DRA:
        return md.spec.neuron.scheduler_name
    return None


def _device_resources(plan: Plan) -> dict[str, str]:
    """Extended resources a pod asks for: the Neuron devices or cores, and EFA for a group's pods."""
    if plan.allocation == groups.DRA:
        return {}
    out = {plan.resource_name: str(plan.resource_count)}
    if plan.efa_devices_per_pod:
        out[EFA_RESOURCE] = str(plan.efa_devices_per_pod)
    return out


def _probe(path: str, *, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def pod_template(
    md: ModelDeployment, plan: Plan, options: RenderOptions, *, role: str = ROLE_REPLICA
) -> dict[str, Any]:
    """The pod template of a replica (role replica), or of a group's leader or workers."""
    serving = md.spec.serving
    scheduling = md.spec.scheduling
    weight_volumes, weight_mounts, init_containers = _weights(md, options)
    artifact_volumes, artifact_mounts = _compiled_artifacts(md, options)
    neuron_resource = _device_resources(plan)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": serving.image or options.image_for(plan.runtime),
        "imagePullPolicy": serving.image_pull_policy,
        "args": serve_command(md, plan, options),
        "env": _env(md, plan, options),
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "resources": {
            "requests": {
                "cpu": str(plan.host_cpus),
                "memory": _quantity_gi(plan.host_memory_bytes),
                "ephemeral-storage": f"{ephemeral_storage_gib(md, plan, options)}Gi",
                **neuron_resource,
            },
            # No CPU limit (throttling slows the host side of every decode step); memory limit =
            # request keeps a runaway replica from taking the node's page cache with it.
            "limits": {"memory": _quantity_gi(plan.host_memory_bytes), **neuron_resource},
        },
        "startupProbe": _probe(
            "/health",
            period=options.startup_probe_period_seconds,
            timeout=5,
            failures=startup_failure_threshold(plan, options),
        ),
        # Readiness pulls a busy or dead engine out of the Service quickly; liveness is generous,
        # restarting a Neuron replica costs a reload (minutes), so only a long-dead engine is killed.
        "readinessProbe": _probe("/health", period=10, timeout=5, failures=3),
        "livenessProbe": _probe("/health", period=30, timeout=10, failures=6),
        "lifecycle": {"preStop": {"sleep": {"seconds": options.pre_stop_sleep_seconds}}},
        "securityContext": _container_security(options, neuron=True),
        "volumeMounts": [
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "hf-cache", "mountPath": options.hf_home},
            *weight_mounts,
            *artifact_mounts,
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if plan.allocation == groups.DRA:
        container["resources"]["claims"] = [{"name": claims.CLAIM_NAME}]
    if role == ROLE_WORKER:
        # A worker rank runs no HTTP server: nothing to probe or to route to; it is ready once running.
        for key in ("ports", "startupProbe", "readinessProbe", "livenessProbe"):
            del container[key]
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": options.termination_grace_period_seconds + options.pre_stop_sleep_seconds,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "nodeSelector": {**scheduling.node_selector, INSTANCE_TYPE_LABEL: plan.instance_type},
        "tolerations": _tolerations(md),
        "containers": [container],
        "volumes": [
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": options.shm_size}},
            {"name": "hf-cache", "emptyDir": {}},
            *weight_volumes,
            *artifact_volumes,
        ],
    }
    if options.run_as_user is not None:
        uid = options.run_as_user
        pod_spec["securityContext"].update(runAsNonRoot=True, runAsUser=uid, fsGroup=uid)
    if init_containers:
        pod_spec["initContainers"] = init_containers
    if plan.allocation == groups.DRA:
        pod_spec["resourceClaims"] = claims.pod_claims(md, plan)
    scheduler = _scheduler_name(md, plan)
    if scheduler:
        pod_spec["schedulerName"] = scheduler
    if scheduling.priority_class_name:
        pod_spec["priorityClassName"] = scheduling.priority_class_name
    if scheduling.affinity:
        pod_spec["affinity"] = dict(scheduling.affinity)
    return {
        "metadata": {
            "labels": labels.pod_labels(md),
            "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER_NAME},
        },
        "spec": pod_spec,
    }


def serve_source(md: ModelDeployment, options: RenderOptions) -> str:
    """What `vllm serve` loads: the HF id for hf://, the local path for file://, else the mounted weights."""
    source = md.spec.model.source
    if source.startswith("hf://"):
        return source.removeprefix("hf://")
    if source.startswith("file://"):
        return source.removeprefix("file://")
    return options.weights_path


def rolling_update(md: ModelDeployment) -> dict[str, int | str]:
    """spec.rollout as `{maxSurge, maxUnavailable}`; both 0 is refused (a rollout could never start)."""
    rollout = md.spec.rollout
    if _is_zero(rollout.max_surge) and _is_zero(rollout.max_unavailable):
        raise PlanError("spec.rollout: maxSurge and maxUnavailable cannot both be 0 (a rollout could never start)")
    return {"maxSurge": rollout.max_surge, "maxUnavailable": rollout.max_unavailable}


def expected(md: ModelDeployment, plan: Plan, *, replicas: int, options: RenderOptions) -> dict[str, Any]:
    """The Deployment for `md` running `plan` with `replicas` pods (no ownerReferences; see children)."""
    if replicas < 0:
        raise ValueError(f"replicas must be >= 0, got {replicas}")
    rollout = rolling_update(md)
    template = pod_template(md, plan, options)
    budget = startup_budget_seconds(plan, options)
    annotations = {TEMPLATE_HASH_ANNOTATION: template_hash(template)}
    if plan.artifact_key:
        annotations[ARTIFACT_KEY_ANNOTATION] = plan.artifact_key
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **labels.object_meta(md, names.deployment_name(md)),
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels.selector(md)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": rollout,
            },
            "revisionHistoryLimit": options.revision_history_limit,
            "progressDeadlineSeconds": budget + options.progress_margin_seconds,
            "template": template,
        },
    }
