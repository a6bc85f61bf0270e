"""The Argo CD health check (charts/neuronfleet/files/argocd/health.lua) under a real Lua 5.1.

Argo CD runs custom health scripts in gopher-lua (Lua 5.1) with only the base, table, package and
a trimmed os library open: no `string`, no `math` (argo-cd util/lua/lua.go, SkipOpenLibs). lupa's
Lua 5.1 opens everything, so the sandbox below removes those libraries *and* the string metatable
(`s:find(...)` would otherwise still work), so a script that needs them fails here as in Argo CD.
The Argo CD controller itself is the boundary we cannot run; the fixture objects stand in for it.
The same fixtures also run under gopher-lua (the interpreter Argo CD embeds) through a small Go
harness built from Debian's packages, when they are installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart.chart_files import CHART, ROOT
from neuronfleet.controller import status as status_mod

lupa51 = pytest.importorskip("lupa.lua51", reason="lupa (Lua 5.1) not installed: Argo CD health test NOT run")

SCRIPT = (CHART / "files" / "argocd" / "health.lua").read_text()
FIXTURES = sorted((Path(__file__).parent / "fixtures" / "argocd").glob("*.yaml"))
HEALTH_KEY = "resource.customizations.health.neuronfleet.io_ModelDeployment"
# The LeaderWorkerSet a multi-node fleet runs on has no built-in Argo CD check: the chart ships one.
LWS_SCRIPT = (CHART / "files" / "argocd" / "leaderworkerset-health.lua").read_text()
LWS_FIXTURES = sorted((Path(__file__).parent / "fixtures" / "argocd-lws").glob("*.yaml"))
LWS_HEALTH_KEY = "resource.customizations.health.leaderworkerset.x-k8s.io_LeaderWorkerSet"


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def run_health(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Run a health script the way Argo CD does: global `obj`, returned table, no string/math."""
    lua = lupa51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
    lua.execute("getmetatable('').__index = nil")
    globals_ = lua.globals()
    for library in ("string", "math", "io", "os", "debug"):
        globals_[library] = None
    globals_.obj = _to_lua(lua, obj)
    result = lua.execute(script)
    return dict(result.items())


def test_sandbox_rejects_scripts_that_need_the_string_or_math_library():
    """The harness is as strict as Argo CD: both library calls and string methods fail."""
    for script in (
        'return {status = string.upper("healthy")}',
        'local s = "Healthy"; return {status = s:lower()}',
        "return {status = tostring(math.floor(1.5))}",
    ):
        with pytest.raises(lupa51.LuaError):
            run_health(script, {})
    assert run_health('return {status = "Healthy", message = 1 .. "/" .. 2}', {}) == {
        "status": "Healthy",
        "message": "1/2",
    }


@pytest.mark.parametrize("script", [SCRIPT, LWS_SCRIPT], ids=["ModelDeployment", "LeaderWorkerSet"])
def test_script_does_not_mention_the_string_or_math_library(script: str):
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    assert not re.search(r"\b(string|math)\s*\.", code)
    assert not re.search(r":\s*(find|sub|match|gsub|format|lower|upper|len)\s*\(", code)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem.replace("-", " ") for p in FIXTURES])
def test_health_of_fixture_objects(path: Path):
    fixture = yaml.safe_load(path.read_text())
    assert run_health(SCRIPT, fixture["object"]) == fixture["expected"]


@pytest.mark.parametrize(
    "path", LWS_FIXTURES, ids=[f"LeaderWorkerSet {p.stem.replace('-', ' ')}" for p in LWS_FIXTURES]
)
def test_health_of_leaderworkerset_fixture_objects(path: Path):
    fixture = yaml.safe_load(path.read_text())
    assert run_health(LWS_SCRIPT, fixture["object"]) == fixture["expected"]


def test_the_missing_crd_fixture_carries_the_renderers_wording():
    from neuronfleet.api.conditions import Reason
    from neuronfleet.render import leaderworkerset
    from plan_builders import make_plan

    fixture = yaml.safe_load(
        (Path(__file__).parent / "fixtures" / "argocd" / "degraded-leaderworkerset-crd-missing.yaml").read_text()
    )
    (degraded,) = [c for c in fixture["object"]["status"]["conditions"] if c["type"] == "Degraded"]
    assert degraded["reason"] == Reason.LEADER_WORKER_SET_MISSING
    assert degraded["message"] == leaderworkerset.missing_api_message(make_plan(nodes_per_replica=4))


def test_fixtures_cover_every_status_argo_cd_shows_for_a_model_deployment():
    statuses = {yaml.safe_load(p.read_text())["expected"]["status"] for p in FIXTURES}
    assert statuses == {"Healthy", "Progressing", "Degraded", "Unknown"}


def _deployment(replicas: int, *, ready: int, updated: int, total: int | None = None) -> dict[str, Any]:
    total = replicas if total is None else total
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 2,
            "replicas": total,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "availableReplicas": ready,
        },
    }


# Statuses computed by the operator's own pure status function, so the script and the operator
# agree on what each condition means.
OPERATOR_STATES = {
    "all replicas ready is Healthy": (
        status_mod.Observed(generation=3, plan=None, deployment=_deployment(2, ready=2, updated=2)),
        "Healthy",
        "2 of 2 replicas ready",
    ),
    "a template rollout is Progressing": (
        status_mod.Observed(
            generation=3, plan=None, deployment=_deployment(2, ready=2, updated=1, total=3)
        ),
        "Progressing",
        "RolloutInProgress: 1 of 2 replicas updated",
    ),
    "a scale-up waiting for compiles is Progressing": (
        status_mod.Observed(
            generation=3,
            plan=None,
            deployment=_deployment(4, ready=2, updated=4),
            desired_replicas=4,
        ),
        "Progressing",
        "Scaling: 2 of 4 updated replicas available",
    ),
    "a plan failure is Degraded with its message": (
        status_mod.Observed(
            generation=3,
            plan=None,
            plan_failure="model does not fit: needs 140.0 GiB, 8 cores of inf2 hold 128.0 GiB",
            deployment=_deployment(2, ready=2, updated=2),
        ),
        "Degraded",
        "PlanFailed: model does not fit: needs 140.0 GiB, 8 cores of inf2 hold 128.0 GiB",
    ),
    "no child Deployment yet is Progressing": (
        status_mod.Observed(generation=1, plan=None, deployment=None),
        "Progressing",
        "RolloutInProgress: the Deployment does not exist yet",
    ),
}


@pytest.mark.parametrize(("observed", "health", "message"), OPERATOR_STATES.values(), ids=OPERATOR_STATES.keys())
def test_health_of_statuses_the_operator_computes(observed, health, message):
    status = status_mod.compute_status(observed, None, now="2026-11-26T05:00:00Z")
    obj = {"metadata": {"name": "m", "namespace": "ml", "generation": observed.generation}, "status": status}
    assert run_health(SCRIPT, obj) == {"status": health, "message": message}


def test_a_newer_generation_is_progressing_until_the_operator_catches_up():
    observed = status_mod.Observed(generation=3, plan=None, deployment=_deployment(2, ready=2, updated=2))
    status = status_mod.compute_status(observed, None, now="2026-11-26T05:00:00Z")
    assert run_health(SCRIPT, {"metadata": {"generation": 3}, "status": status})["status"] == "Healthy"
    assert run_health(SCRIPT, {"metadata": {"generation": 4}, "status": status}) == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 4",
    }


def _lua_blocks(markdown: str) -> list[str]:
    blocks = re.findall(r"```lua\n(.*?)```", markdown, flags=re.S)
    assert len(blocks) == 2
    return blocks


@pytest.mark.parametrize(
    "where",
    ["docs/argocd.md", "examples/argocd/argocd-cm.yaml", "examples/argocd/argo-cd-values.yaml"],
    ids=["the Argo CD guide", "the argocd-cm ConfigMap example", "the argo-cd Helm chart values example"],
)
def test_shipped_copies_of_the_scripts_are_identical(where: str):
    text = (ROOT / where).read_text()
    if where.endswith(".md"):
        shipped = dict(zip((HEALTH_KEY, LWS_HEALTH_KEY), _lua_blocks(text), strict=True))
    elif "values" in where:
        shipped = yaml.safe_load(text)["configs"]["cm"]
    else:
        shipped = yaml.safe_load(text)["data"]
    assert shipped[HEALTH_KEY] == SCRIPT
    assert shipped[LWS_HEALTH_KEY] == LWS_SCRIPT


# --- The same checks under gopher-lua, the interpreter Argo CD embeds --------------------------

GO_HARNESS = Path(__file__).parent / "argocd_lua" / "main.go"
GOPATH = Path("/usr/share/gocode")  # Debian's golang-github-yuin-gopher-lua-dev installs here


@pytest.fixture(scope="module")
def argocd_health(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Go harness built against Debian's gopher-lua (GOPATH mode, offline, a few seconds)."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src" / "github.com" / "yuin" / "gopher-lua").is_dir():
        pytest.skip(
            "go or gopher-lua missing (Debian golang-go golang-github-yuin-gopher-lua-dev): "
            "Argo CD's own Lua interpreter NOT run"
        )
    out = tmp_path_factory.mktemp("argocd-health")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(out / "gocache")}
    binary = out / "argocd-health"
    proc = subprocess.run([go, "build", "-o", str(binary), str(GO_HARNESS)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return binary


def run_gopher(binary: Path, script: str, objects: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, str]]:
    script_file = tmp_path / "health.lua"
    script_file.write_text(script)
    paths = []
    for i, obj in enumerate(objects):
        path = tmp_path / f"obj-{i}.json"
        path.write_text(json.dumps(obj))
        paths.append(str(path))
    proc = subprocess.run([str(binary), str(script_file), *paths], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_gopher_lua_harness_rejects_the_string_library_like_argo_cd(argocd_health: Path, tmp_path: Path):
    (result,) = run_gopher(argocd_health, 'return {status = string.upper("healthy")}', [{}], tmp_path)
    assert "attempt to index a non-table object(nil)" in result["error"]
    (result,) = run_gopher(argocd_health, 'local s = "x"; return {status = s:upper()}', [{}], tmp_path)
    assert "error" in result


@pytest.mark.parametrize(
    ("script", "paths"), [(SCRIPT, FIXTURES), (LWS_SCRIPT, LWS_FIXTURES)], ids=["ModelDeployment", "LeaderWorkerSet"]
)
def test_gopher_lua_gives_every_fixture_the_expected_health(
    argocd_health: Path, tmp_path: Path, script: str, paths: list[Path]
):
    fixtures = [yaml.safe_load(p.read_text()) for p in paths]
    results = run_gopher(argocd_health, script, [f["object"] for f in fixtures], tmp_path)
    assert results == [f["expected"] for f in fixtures]


def test_gopher_lua_agrees_with_lua51_on_operator_computed_statuses(argocd_health: Path, tmp_path: Path):
    objects = []
    for observed, _, _ in OPERATOR_STATES.values():
        status = status_mod.compute_status(observed, None, now="2026-11-26T05:00:00Z")
        objects.append({"metadata": {"name": "m", "generation": observed.generation}, "status": status})
    expected = [{"status": health, "message": message} for _, health, message in OPERATOR_STATES.values()]
    assert run_gopher(argocd_health, SCRIPT, objects, tmp_path) == expected
