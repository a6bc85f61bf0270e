"""The compile and check Jobs of a compiled-artifact key, and the shell wrapper they run.

The Jobs are rendered from real plans and validated against the Kubernetes 1.31 schema. The
wrapper scripts are run for real with bash/sh against stand-in serve commands (a process that
exits, one that fails, one that serves /health on 127.0.0.1); the Neuron compiler itself cannot
run here, so what "compiling" does inside the command is out of reach of these tests.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from neuronfleet.api import convert
from neuronfleet.errors import PlanError
from neuronfleet.neuron import artifacts, planner
from neuronfleet.render import compile_job, deployment, labels
from neuronfleet.render.options import DEFAULT_IMAGES, RenderOptions

from .builders import make_md

KUBERNETES_VERSION = "1.31.0"
RENDER = RenderOptions()


def md_and_plan(runtime: str, policy: str = "precompile", name: str = "llama3-8b"):
    neuron = {"compiledArtifacts": {"policy": policy, "pvc": "neff-cache"}}
    if runtime == "vllm-neuron":
        neuron |= {"instanceType": "trn2.48xlarge", "tensorParallelSize": 4}
    else:
        neuron |= {"instanceType": "inf2.48xlarge"}
    md = make_md(name, neuron=neuron, serving={"runtime": runtime})
    plan = planner.plan(convert.plan_request(md))
    plan = artifacts.keyed(plan, image=DEFAULT_IMAGES[plan.runtime], revision=None)
    return md, plan


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container["env"]}


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


@pytest.mark.parametrize("runtime", ["vllm-neuron", "nxdi"])
@pytest.mark.parametrize("kind", ["compile", "check"])
def test_artifact_jobs_pass_strict_schema_validation(runtime: str, kind: str):
    md, plan = md_and_plan(runtime)
    render = compile_job.compile_job if kind == "compile" else compile_job.check_job
    kubernetes_validate.validate(render(md, plan, render=RENDER), KUBERNETES_VERSION, strict=True)


def test_a_vllm_neuron_key_is_compiled_on_cpu_with_the_serving_image_and_command():
    md, plan = md_and_plan("vllm-neuron")
    job = compile_job.compile_job(md, plan, render=RENDER)
    serving = deployment.expected(md, plan, replicas=1, options=RENDER)["spec"]["template"]["spec"]["containers"][0]
    (container,) = pod_of(job)["containers"]
    env = env_of(container)
    assert container["image"] == serving["image"]
    assert container["args"][4:] == serving["args"]  # bash -c SCRIPT $0, then the serve argv
    assert env["VLLM_NEURON_CPU_COMPILE"] == "1"
    assert env["NEURON_PLATFORM_TARGET_OVERRIDE"] == "trn2"
    assert "VLLM_NEURON_DISABLE_WARMUP_COMPILE" not in env  # the Job is the one place that compiles
    assert env_of(serving)["VLLM_NEURON_DISABLE_WARMUP_COMPILE"] == "1"
    assert not any(r.startswith("aws.amazon.com/") for r in container["resources"]["requests"])
    assert "schedulerName" not in pod_of(job)
    assert pod_of(job)["nodeSelector"] == {}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "compiled-artifacts")
    assert mount["readOnly"] is False


def test_cpu_compile_can_be_turned_off_so_vllm_neuron_compiles_on_a_neuron_node():
    md, plan = md_and_plan("vllm-neuron")
    options = compile_job.CompileJobOptions(cpu_compile=False)
    (container,) = pod_of(compile_job.compile_job(md, plan, render=RENDER, options=options))["containers"]
    assert "VLLM_NEURON_CPU_COMPILE" not in env_of(container)
    assert container["resources"]["requests"][plan.resource_name] == str(plan.resource_count)


def test_an_nxdi_key_compiles_on_a_neuron_node_with_the_replicas_resources_into_its_own_directory():
    md, plan = md_and_plan("nxdi")
    job = compile_job.compile_job(md, plan, render=RENDER)
    pod = pod_of(job)
    (container,) = pod["containers"]
    assert container["resources"]["requests"][plan.resource_name] == str(plan.resource_count)
    assert container["resources"]["limits"][plan.resource_name] == str(plan.resource_count)
    assert pod["nodeSelector"][deployment.INSTANCE_TYPE_LABEL] == "inf2.48xlarge"
    assert env_of(container)["NEURON_COMPILED_ARTIFACTS"] == f"/var/cache/neuronfleet/{plan.artifact_key}"
    assert "VLLM_NEURON_CPU_COMPILE" not in env_of(container)


def test_the_compile_pods_are_never_selected_by_the_fleets_service():
    md, plan = md_and_plan("vllm-neuron")
    pod_labels = compile_job.compile_job(md, plan, render=RENDER)["spec"]["template"]["metadata"]["labels"]
    selector = labels.selector(md)
    assert not all(pod_labels.get(k) == v for k, v in selector.items())
    assert pod_labels[compile_job.ARTIFACT_KEY_LABEL] == plan.artifact_key


def test_the_deadline_covers_twice_the_cold_compile_and_the_engine_timeout():
    md, plan = md_and_plan("nxdi")
    options = compile_job.CompileJobOptions()
    job = compile_job.compile_job(md, plan, render=RENDER, options=options)
    cold = planner.expected_startup_seconds(plan.weights_bytes, runtime=plan.runtime, cache_hit=False)
    deadline = job["spec"]["activeDeadlineSeconds"]
    assert deadline >= 2 * cold + options.deadline_margin_seconds
    assert deadline >= int(dict(plan.env)["VLLM_ENGINE_READY_TIMEOUT_S"])
    assert job["spec"]["backoffLimit"] == options.backoff_limit
    assert pod_of(job)["restartPolicy"] == "Never"
    assert "startupProbe" not in pod_of(job)["containers"][0]


def test_a_bigger_model_gets_a_longer_compile_deadline():
    _, small = md_and_plan("nxdi")
    big = dataclasses.replace(small, weights_bytes=small.weights_bytes * 8)
    options = compile_job.CompileJobOptions()
    assert compile_job.compile_deadline_seconds(big, options) > compile_job.compile_deadline_seconds(small, options)


def test_the_check_job_mounts_the_cache_read_only_and_never_retries():
    md, plan = md_and_plan("vllm-neuron", policy="require")
    job = compile_job.check_job(md, plan, render=RENDER)
    (container,) = pod_of(job)["containers"]
    assert job["spec"]["backoffLimit"] == 0
    assert all(m["readOnly"] for m in container["volumeMounts"])
    assert (
        env_of(container)["NEURONFLEET_ARTIFACT_MARKER"]
        == f"/var/cache/neuronfleet/neuronfleet/{plan.artifact_key}.json"
    )
    assert not any(r.startswith("aws.amazon.com/") for r in container["resources"]["requests"])


NAMES = {
    "a short name": ("llama3-8b", "llama3-8b-compile-"),
    "a name too long for a label value": ("a" * 70, "a" * (63 - 3 - len("-compile-") - 16) + "-compile-"),
}


@pytest.mark.parametrize(("name", "prefix"), NAMES.values(), ids=NAMES.keys())
def test_job_names_are_deterministic_per_key_and_fit_a_label_value(name: str, prefix: str):
    md, plan = md_and_plan("nxdi", name=name)
    job_name = compile_job.compile_job(md, plan, render=RENDER)["metadata"]["name"]
    assert job_name == prefix + plan.artifact_key
    assert len(job_name) <= 63
    assert compile_job.check_job_name(md, plan.artifact_key) != job_name


def test_a_plan_without_a_key_or_a_spec_without_a_pvc_renders_no_job():
    md, plan = md_and_plan("nxdi")
    with pytest.raises(ValueError, match="artifact key"):
        compile_job.compile_job(md, dataclasses.replace(plan, artifact_key=""), render=RENDER)
    path_only = make_md(neuron={"compiledArtifacts": {"policy": "precompile", "path": "/cache"}})
    with pytest.raises(ValueError, match="pvc"):
        compile_job.check_job(path_only, plan, render=RENDER)


# --- the wrapper scripts, run for real -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_compile(tmp_path: Path, command: list[str], port: int = 9) -> tuple[subprocess.CompletedProcess, Path]:
    marker = tmp_path / "cache" / "neuronfleet" / "k1.json"
    env = {
        **os.environ,
        "NEURONFLEET_ARTIFACT_KEY": "k1",
        "NEURONFLEET_ARTIFACT_MARKER": str(marker),
        "NEURONFLEET_PORT": str(port),
    }
    script = compile_job.COMPILE_SCRIPT.replace("sleep 10", "sleep 0.2")
    proc = subprocess.run(
        ["bash", "-c", script, "neuronfleet-compile", *command], env=env, capture_output=True, text=True, timeout=60
    )
    return proc, marker


def test_the_wrapper_writes_the_marker_when_the_compile_command_exits_cleanly(tmp_path: Path):
    proc, marker = run_compile(tmp_path, [sys.executable, "-c", "print('compiled')"])
    assert proc.returncode == 0, proc.stderr
    assert '"key":"k1"' in marker.read_text()


def test_a_failing_compile_fails_the_job_with_its_exit_code_and_leaves_no_marker(tmp_path: Path):
    proc, marker = run_compile(tmp_path, [sys.executable, "-c", "import sys; sys.exit(3)"])
    assert proc.returncode == 3
    assert "exited with 3" in proc.stderr
    assert not marker.exists()


def test_an_existing_marker_skips_the_compile(tmp_path: Path):
    marker = tmp_path / "cache" / "neuronfleet" / "k1.json"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    proc, _ = run_compile(tmp_path, [sys.executable, "-c", "import sys; sys.exit(9)"])
    assert proc.returncode == 0
    assert "already complete" in proc.stdout


SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_a_command_that_reaches_health_is_stopped_and_counted_as_compiled(tmp_path: Path):
    port = free_port()
    proc, marker = run_compile(tmp_path, [sys.executable, "-c", SERVER, str(port)], port=port)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()


@pytest.mark.parametrize(("present", "code"), [(True, 0), (False, 1)], ids=["marker present", "marker missing"])
def test_the_check_script_succeeds_only_when_the_marker_exists(tmp_path: Path, present: bool, code: int):
    marker = tmp_path / "k1.json"
    if present:
        marker.write_text("{}")
    env = {**os.environ, "NEURONFLEET_ARTIFACT_KEY": "k1", "NEURONFLEET_ARTIFACT_MARKER": str(marker)}
    proc = subprocess.run(["sh", "-c", compile_job.CHECK_SCRIPT], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == code


def test_a_dra_key_compiled_on_cpu_claims_no_neuron_devices_and_on_a_neuron_node_keeps_its_claim():
    md = make_md(
        "llama3-8b",
        neuron={
            "instanceType": "trn2.48xlarge",
            "tensorParallelSize": 4,
            "allocation": "dra",
            "compiledArtifacts": {"policy": "precompile", "pvc": "neff-cache"},
        },
    )
    plan = artifacts.keyed(planner.plan(convert.plan_request(md)), image=DEFAULT_IMAGES["vllm-neuron"])
    on_cpu = pod_of(compile_job.compile_job(md, plan, render=RENDER))
    assert "resourceClaims" not in on_cpu and "claims" not in on_cpu["containers"][0]["resources"]
    on_neuron = pod_of(
        compile_job.compile_job(md, plan, render=RENDER, options=compile_job.CompileJobOptions(cpu_compile=False))
    )
    assert on_neuron["resourceClaims"][0]["resourceClaimTemplateName"].startswith("llama3-8b-neuron-")
    kubernetes_validate.validate(compile_job.compile_job(md, plan, render=RENDER), "1.34.0", strict=True)


def test_precompile_is_refused_for_a_replica_spanning_nodes_with_the_reason():
    md = make_md(
        "llama31-405b",
        model={"source": "hf://meta-llama/Llama-3.1-405B-Instruct"},
        neuron={"instanceType": "trn1.32xlarge", "compiledArtifacts": {"policy": "precompile", "pvc": "neff-cache"}},
        serving={"maxModelLen": 8192, "maxNumSeqs": 8},
    )
    plan = artifacts.keyed(planner.plan(convert.plan_request(md)), image=DEFAULT_IMAGES["nxdi"])
    assert plan.nodes_per_replica == 4
    with pytest.raises(PlanError, match=r"precompile is not supported for replicas spanning nodes \(4 nodes\)"):
        compile_job.compile_job(md, plan, render=RENDER)
    compile_job.check_job(md, plan, render=RENDER)  # require still works: it only checks the marker
