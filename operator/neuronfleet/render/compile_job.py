"""The batch/v1 Jobs that fill and check the compiled-artifact cache for one artifact key.

Two Jobs, both named after the ModelDeployment and the key (deterministic: a second pass finds the
first pass's Job instead of starting another compile):

- compile (policy `precompile`): runs the serving command once, with compiling allowed, writing
  into the shared cache. It starts from the serving pod template, so the image, `vllm serve`
  arguments, weights volumes, token and env are the replicas' own; only what compiling needs
  differs:
  - vllm-neuron with `cpu_compile` on (the default): CPU-only, `VLLM_NEURON_CPU_COMPILE=1` and
    `NEURON_PLATFORM_TARGET_OVERRIDE=<family>` (the plugin compiles the graphs without a device,
    reference/neuron-vllm.md 1d, vllm-neuron docs design/compilation/cpu_compilation.md), no
    Neuron resources, CPU/memory sized for the compiler; nxdi has no CPU mode, so it compiles on a
    Neuron node with the replica's resources and placement;
  - the strict switch `VLLM_NEURON_DISABLE_WARMUP_COMPILE` is removed and the cache mount is
    writable;
  - a small shell wrapper runs the command, waits until it either serves `/health` (compiled and
    loaded on a Neuron node) or exits 0, then stops it and writes the key's marker file
    (`artifacts.marker_path`) atomically. A marker already present exits at once, so re-running a
    compile Job (after its Job object was deleted, say) costs seconds, not a compile.
  - `backoffLimit` retries a flaky compile a few times; `activeDeadlineSeconds` is twice the
    planner's cold-start estimate (at least vLLM's engine-ready timeout) plus a margin for
    scheduling and the image pull, so a hung compile ends as a failed Job with a reason.
- check (policy `require`): a tiny CPU pod that mounts the cache read-only and succeeds only if
  the key's marker exists; the controller re-runs it while waiting. Never compiles.

The Jobs' pods carry `app.kubernetes.io/component: artifact-compiler`, never the serving
component, so the fleet's Service, PDB and PodMonitor never select them.

What runs for real here is only the rendering; the wrapper's behaviour on a Neuron node or in
CPU-compile mode is not exercised on hardware in this repository.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

from neuronfleet.api.resource import ModelDeployment
from neuronfleet.errors import PlanError
from neuronfleet.neuron import artifacts, planner
from neuronfleet.neuron.types import Plan
from neuronfleet.render import deployment, labels
from neuronfleet.render.options import RenderOptions

__all__ = [
    "ARTIFACT_KEY_LABEL",
    "ATTEMPT_LABEL",
    "CHECK_SCRIPT",
    "COMPILE_SCRIPT",
    "COMPONENT",
    "MODE_LABEL",
    "CompileJobOptions",
    "check_job",
    "check_job_name",
    "compile_deadline_seconds",
    "compile_job",
    "compile_job_name",
    "job_labels",
    "job_selector",
    "uses_cpu_compile",
]

COMPONENT = "artifact-compiler"
ARTIFACT_KEY_LABEL = "neuronfleet.io/artifact-key"
MODE_LABEL = "neuronfleet.io/artifact-job"
ATTEMPT_LABEL = "neuronfleet.io/attempt"
GIB = 1024**3

# Runs "$@" (the serving command); success = it served /health or exited 0; then the marker.
COMPILE_SCRIPT = """set -u
marker="$NEURONFLEET_ARTIFACT_MARKER"
if [ -f "$marker" ]; then
  echo "neuronfleet: artifacts for key $NEURONFLEET_ARTIFACT_KEY are already complete ($marker)"
  exit 0
fi
echo "neuronfleet: compiling artifacts for key $NEURONFLEET_ARTIFACT_KEY"
"$@" &
pid=$!
served=0
while kill -0 "$pid" 2>/dev/null; do
  if curl -fsS -o /dev/null "http://127.0.0.1:${NEURONFLEET_PORT}/health"; then
    served=1
    break
  fi
  sleep 10
done
if [ "$served" = 1 ]; then
  kill -TERM "$pid"
  wait "$pid" || true
else
  wait "$pid"
  code=$?
  if [ "$code" != 0 ]; then
    echo "neuronfleet: the compile command exited with $code" >&2
    exit "$code"
  fi
fi
mkdir -p "$(dirname "$marker")"
printf '{"key":"%s","completedAt":"%s"}\\n' "$NEURONFLEET_ARTIFACT_KEY" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \\
  > "$marker.tmp"
mv "$marker.tmp" "$marker"
echo "neuronfleet: artifacts for key $NEURONFLEET_ARTIFACT_KEY are complete"
"""

CHECK_SCRIPT = """if [ -f "$NEURONFLEET_ARTIFACT_MARKER" ]; then
  echo "neuronfleet: artifacts for key $NEURONFLEET_ARTIFACT_KEY found"
  exit 0
fi
echo "neuronfleet: no artifacts for key $NEURONFLEET_ARTIFACT_KEY at $NEURONFLEET_ARTIFACT_MARKER" >&2
exit 1
"""


@dataclasses.dataclass(frozen=True)
class CompileJobOptions:
    """Operator-level knobs of the artifact Jobs."""

    cpu_compile: bool = True
    """Compile vllm-neuron graphs on CPU nodes (VLLM_NEURON_CPU_COMPILE); nxdi always needs Neuron."""
    cpu_compile_cpus: int = 16
    """CPU request of a CPU compile (neuronx-cc runs NEURON_LIBTORCH_PARALLEL_COMPILE_WORKERS=8 jobs)."""
    cpu_compile_min_memory_gib: int = 32
    """Memory floor of a CPU compile; it also scales with the weights (1.5x)."""
    cpu_node_selector: tuple[tuple[str, str], ...] = ()
    """Node labels for CPU compiles (e.g. a compile node pool). Default: anywhere."""
    backoff_limit: int = 2
    """Pod retries of a compile before the Job fails."""
    deadline_margin_seconds: int = 900
    """Added to the compile budget for scheduling and pulling a multi-GB image."""
    check_image: str = "public.ecr.aws/docker/library/busybox:1.36"
    """Image of the marker check (policy require): anything with /bin/sh."""
    check_deadline_seconds: int = 300
    """activeDeadlineSeconds of a marker check."""


def _name(md: ModelDeployment, infix: str, key: str, attempt: int = 1) -> str:
    # Job names end up in the pods' job-name label, a label value: at most 63 characters.
    # Room for "-<attempt>" is always kept, so retries never shorten the fleet's part of the name.
    suffix = f"-{infix}-{key}"
    base = md.name[: 63 - len(suffix) - 3].rstrip("-.") + suffix
    return base if attempt == 1 else f"{base}-{attempt}"


def compile_job_name(md: ModelDeployment, key: str, attempt: int = 1) -> str:
    """`<name>-compile-<key>`, then `-2`, `-3` for automatic retries (failed Jobs stay for their logs)."""
    return _name(md, "compile", key, attempt)


def check_job_name(md: ModelDeployment, key: str) -> str:
    return _name(md, "check", key)


def job_labels(md: ModelDeployment, key: str, mode: str, attempt: int = 1) -> dict[str, str]:
    """Labels of an artifact Job and its pods: the fleet's, with another component and the key."""
    return {
        **labels.child_labels(md),
        labels.COMPONENT: COMPONENT,
        ARTIFACT_KEY_LABEL: key,
        MODE_LABEL: mode,
        ATTEMPT_LABEL: str(attempt),
    }


def job_selector(md: ModelDeployment) -> str:
    """Label selector of every artifact Job of a fleet (all keys, both modes)."""
    return f"{labels.INSTANCE}={labels.instance_value(md)},{labels.COMPONENT}={COMPONENT}"


def uses_cpu_compile(plan: Plan, options: CompileJobOptions) -> bool:
    """Whether the key is compiled on a CPU node: vllm-neuron only, and only when enabled."""
    return options.cpu_compile and plan.runtime == "vllm-neuron"


def compile_deadline_seconds(plan: Plan, options: CompileJobOptions) -> int:
    """activeDeadlineSeconds of a compile: 2x the cold estimate (>= engine-ready timeout) + margin."""
    cold = planner.expected_startup_seconds(plan.weights_bytes, runtime=plan.runtime, cache_hit=False)
    engine_timeout = int(dict(plan.env).get("VLLM_ENGINE_READY_TIMEOUT_S", "0"))
    return max(2 * cold, engine_timeout) + options.deadline_margin_seconds


def _cache_root(md: ModelDeployment, render: RenderOptions) -> str:
    return md.spec.neuron.compiled_artifacts.path or render.compiled_artifacts_path


def _job(
    md: ModelDeployment, name: str, key: str, mode: str, pod_spec: dict[str, Any], attempt: int = 1, **spec: Any
) -> dict[str, Any]:
    meta = labels.object_meta(md, name)
    meta["labels"] = job_labels(md, key, mode, attempt)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            **spec,
            "template": {"metadata": {"labels": job_labels(md, key, mode, attempt)}, "spec": pod_spec},
        },
    }


def _require_key(md: ModelDeployment, plan: Plan) -> str:
    if not plan.artifact_key:
        raise ValueError("the plan has no artifact key; fill it with neuron.artifacts.keyed first")
    if not md.spec.neuron.compiled_artifacts.pvc:
        # A path alone is local to each pod: a Job could neither fill nor see the replicas' cache.
        raise ValueError("artifact Jobs need spec.neuron.compiledArtifacts.pvc (a shared filesystem)")
    return plan.artifact_key


def compile_job(
    md: ModelDeployment,
    plan: Plan,
    *,
    render: RenderOptions,
    options: CompileJobOptions | None = None,
    attempt: int = 1,
) -> dict[str, Any]:
    """The Job compiling `plan.artifact_key` into the shared cache (policy precompile)."""
    options = options or CompileJobOptions()
    key = _require_key(md, plan)
    if plan.multi_node:
        # NxDI compiles each node's rank range into its own directory (neuron/artifacts.py); one pod
        # cannot fill the cache for a group, and an Indexed Job per group shape is not built yet.
        raise PlanError(
            f"policy precompile is not supported for replicas spanning nodes ({plan.nodes_per_replica} nodes): "
            "each node compiles its own rank range; use compileOnStart (the first group fills the shared "
            "cache) or require"
        )
    serving = deployment.expected(md, plan, replicas=1, options=render)["spec"]["template"]["spec"]
    pod = copy.deepcopy(serving)
    pod["restartPolicy"] = "Never"
    pod.pop("terminationGracePeriodSeconds", None)
    container = pod["containers"][0]
    container["name"] = "compile"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe", "lifecycle"):
        container.pop(probe, None)
    root = _cache_root(md, render)
    env = [e for e in container["env"] if e["name"] != "VLLM_NEURON_DISABLE_WARMUP_COMPILE"]
    env += [
        {"name": "NEURONFLEET_ARTIFACT_KEY", "value": key},
        {"name": "NEURONFLEET_ARTIFACT_MARKER", "value": artifacts.marker_path(root, key)},
        {"name": "NEURONFLEET_PORT", "value": str(deployment.HTTP_PORT)},
    ]
    if uses_cpu_compile(plan, options):
        env += [
            {"name": "VLLM_NEURON_CPU_COMPILE", "value": "1"},
            {"name": "NEURON_PLATFORM_TARGET_OVERRIDE", "value": plan.instance_family},
        ]
        memory = max(options.cpu_compile_min_memory_gib, math.ceil(1.5 * plan.weights_bytes / GIB))
        requests = container["resources"]["requests"]
        container["resources"] = {
            "requests": {
                "cpu": str(options.cpu_compile_cpus),
                "memory": f"{memory}Gi",
                "ephemeral-storage": requests["ephemeral-storage"],
            },
            "limits": {"memory": f"{memory}Gi"},
        }
        container["securityContext"]["capabilities"] = {"drop": ["ALL"]}
        pod["nodeSelector"] = dict(options.cpu_node_selector)
        pod.pop("schedulerName", None)
        pod.pop("resourceClaims", None)  # a CPU compile claims no Neuron devices (DRA)
    container["env"] = env
    for mount in container["volumeMounts"]:
        if mount["name"] == "compiled-artifacts":
            mount["readOnly"] = False
    container["args"] = ["/bin/bash", "-c", COMPILE_SCRIPT, "neuronfleet-compile", *container["args"]]
    return _job(
        md,
        compile_job_name(md, key, attempt),
        key,
        "compile",
        pod,
        attempt,
        backoffLimit=options.backoff_limit,
        activeDeadlineSeconds=compile_deadline_seconds(plan, options),
    )


def check_job(
    md: ModelDeployment, plan: Plan, *, render: RenderOptions, options: CompileJobOptions | None = None
) -> dict[str, Any]:
    """The Job that succeeds only if `plan.artifact_key`'s marker exists (policy require)."""
    options = options or CompileJobOptions()
    key = _require_key(md, plan)
    spec = md.spec.neuron.compiled_artifacts
    root = _cache_root(md, render)
    volumes = [{"name": "compiled-artifacts", "persistentVolumeClaim": {"claimName": spec.pvc, "readOnly": True}}]
    mounts = [{"name": "compiled-artifacts", "mountPath": root, "readOnly": True}]
    container = {
        "name": "check",
        "image": options.check_image,
        "command": ["/bin/sh", "-c", CHECK_SCRIPT],
        "env": [
            {"name": "NEURONFLEET_ARTIFACT_KEY", "value": key},
            {"name": "NEURONFLEET_ARTIFACT_MARKER", "value": artifacts.marker_path(root, key)},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    pod = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    return _job(
        md,
        check_job_name(md, key),
        key,
        "check",
        pod,
        backoffLimit=0,
        activeDeadlineSeconds=options.check_deadline_seconds,
    )
