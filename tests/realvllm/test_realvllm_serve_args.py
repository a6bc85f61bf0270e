"""The `vllm serve` command lines the operator renders, parsed by vLLM's own CLI parser.

For every example ModelDeployment in examples/ and each runtime profile the planner accepts for
it, the Deployment's container args go through vLLM 0.32's real `serve` parser, its
`validate`, and `AsyncEngineArgs.from_cli_args` (tests/realvllm/parse_serve_args.py, run by the
vLLM virtualenv's python). A flag vLLM does not know fails here, and every flag must land on the
value the renderer meant. The Neuron-only keys inside `--additional-config` are vLLM's opaque
JSON; our own schema (`neuron.vllm_args.validate_additional_config`) checks them. Nothing is
mocked except that no model is loaded (the model id is reported as parsed, then replaced by an
empty local directory so no hub lookup happens).
"""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from neuronfleet.api import convert, resource
from neuronfleet.errors import PlanError
from neuronfleet.neuron import planner, vllm_args
from neuronfleet.render import children, deployment
from neuronfleet.render.options import RenderOptions
from realvllm import vllm_support

pytestmark = [pytest.mark.realvllm, pytest.mark.slow]

EXAMPLES = sorted((vllm_support.REPO / "examples").glob("*.yaml"))
PARSER_SCRIPT = Path(__file__).with_name("parse_serve_args.py")


@dataclass(frozen=True)
class Case:
    id: str
    runtime: str
    argv: list[str]  # starting at "serve"
    source: str


def _argv(args: list[str]) -> list[str]:
    """The argv vLLM sees. A multi-node group's pods start through a shell line (each rank computes its
    start_rank_id); it is run here as the kubelet and sh would, for the leader (LWS_WORKER_INDEX=0),
    with `vllm` a shell function that prints its arguments instead of serving."""
    if args[:2] != ["/bin/sh", "-c"]:
        return args
    script = args[2].replace("$$", "$")  # the kubelet's escape for a literal $ (container args)
    script = script.removeprefix("exec ")
    shell = f"vllm() {{ printf '%s\\0' vllm \"$@\"; }}; {script}"
    out = subprocess.run(
        ["/bin/sh", "-c", shell],
        env={"LWS_WORKER_INDEX": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().split("\0")[:-1]


def rendered_cases() -> tuple[list[Case], list[str]]:
    """Every example under every runtime profile the planner accepts; and the refusals, with why."""
    cases: list[Case] = []
    refused: list[str] = []
    for path in EXAMPLES:
        (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for runtime in vllm_args.RUNTIMES:
            obj = copy.deepcopy(doc)
            obj["spec"].setdefault("serving", {})["runtime"] = runtime
            md = resource.load(obj)
            try:
                plan = planner.plan(convert.plan_request(md))
            except PlanError as error:
                refused.append(f"{path.name} on {runtime}: {error}")
                continue
            options = RenderOptions()
            objects = children.desired(md, plan, replicas=1, options=options)
            (workload,) = [o for o in objects if o["kind"] in ("Deployment", "LeaderWorkerSet")]
            if workload["kind"] == "LeaderWorkerSet":  # a multi-node group: the leader serves the API
                template = workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
            else:
                template = workload["spec"]["template"]
            (container,) = template["spec"]["containers"]
            argv = _argv(list(container["args"]))
            assert argv[:2] == ["vllm", "serve"], argv
            cases.append(Case(f"{path.stem} on {runtime}", runtime, argv[1:], deployment.serve_source(md, options)))
    return cases, refused


CASES, REFUSED = rendered_cases()
MISSPELLED = Case("misspelled flag", "nxdi", [*CASES[0].argv, "--max-num-seqz", "4"], CASES[0].source)
WRONG_TYPE = Case("non-integer value", "nxdi", [*CASES[0].argv, "--max-num-batched-tokens", "many"], CASES[0].source)


@pytest.fixture(scope="module")
def parsed(vllm_python: Path, vllm_env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """All command lines parsed in one run of the vLLM venv's python (importing vLLM takes ~20 s)."""
    payload = json.dumps([{"id": c.id, "argv": c.argv} for c in [*CASES, MISSPELLED, WRONG_TYPE]])
    proc = subprocess.run(
        [str(vllm_python), str(PARSER_SCRIPT)],
        input=payload,
        capture_output=True,
        text=True,
        env=vllm_env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["id"]: r for r in json.loads(proc.stdout)}


def flag_values(argv: list[str]) -> list[tuple[str, str | None]]:
    """(flag, value or None for a switch) for every `--flag [value]` after the model positional."""
    out: list[tuple[str, str | None]] = []
    rest = argv[2:]
    i = 0
    while i < len(rest):
        flag = rest[i]
        assert flag.startswith("--"), f"stray argument {flag!r} in {argv}"
        if "=" in flag:
            name, value = flag.split("=", 1)
            out.append((name, value))
            i += 1
        elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            out.append((flag, rest[i + 1]))
            i += 2
        else:
            out.append((flag, None))
            i += 1
    return out


def assert_lands_on(values: dict[str, Any], flag: str, value: str | None) -> None:
    """The parsed namespace holds what the flag said, in the type vLLM gave it."""
    if value is None:  # a switch: --enable-x sets enable_x, --no-enable-x clears it
        negated = flag.startswith("--no-")
        dest = flag.removeprefix("--no-" if negated else "--").replace("-", "_")
        assert dest in values, f"{flag} set no attribute"
        assert values[dest] is (not negated), f"{flag} -> {dest}={values[dest]!r}"
        return
    dest = flag.removeprefix("--").replace("-", "_")
    assert dest in values, f"{flag} set no attribute"
    got = values[dest]
    if isinstance(got, dict):
        assert got == json.loads(value), flag
    elif isinstance(got, list):
        assert got == [value], flag
    elif isinstance(got, bool) or got is None:
        raise AssertionError(f"{flag} {value!r} parsed to {got!r}")
    elif isinstance(got, int | float):
        assert got == type(got)(value), flag
    else:
        assert str(got) == value, flag


def test_both_runtime_profiles_are_covered_by_some_example() -> None:
    assert {c.runtime for c in CASES} == set(vllm_args.RUNTIMES), REFUSED
    assert len(CASES) >= len(EXAMPLES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.id} parses in vLLM with every flag as meant" for c in CASES])
def test_rendered_serve_args_parse_in_real_vllm_and_mean_what_the_renderer_meant(
    parsed: dict[str, dict[str, Any]], case: Case
) -> None:
    result = parsed[case.id]
    assert result["ok"], f"vLLM rejected {case.argv}: {result['error']}"
    values = result["values"]
    assert values["subparser"] == "serve"
    assert values["model_tag"] == case.source
    for flag, value in flag_values(case.argv):
        assert_lands_on(values, flag, value)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.id} has only documented Neuron keys" for c in CASES])
def test_the_additional_config_vllm_parsed_passes_our_neuron_schema(
    parsed: dict[str, dict[str, Any]], case: Case
) -> None:
    config = parsed[case.id]["values"]["additional_config"]
    assert config, "the planner always sends Neuron options"
    assert set(config) == {vllm_args.ADDITIONAL_CONFIG_SECTION[case.runtime]}
    vllm_args.validate_additional_config(case.runtime, config)
    other = next(r for r in vllm_args.RUNTIMES if r != case.runtime)
    with pytest.raises(PlanError, match="not understood"):
        vllm_args.validate_additional_config(other, config)


@pytest.mark.parametrize(
    ("case", "message"),
    [(MISSPELLED, "unrecognized arguments: --max-num-seqz"), (WRONG_TYPE, "invalid")],
    ids=["a misspelled flag is rejected by vLLM", "a non-integer count is rejected by vLLM"],
)
def test_the_parser_check_is_not_vacuous(parsed: dict[str, dict[str, Any]], case: Case, message: str) -> None:
    result = parsed[case.id]
    assert not result["ok"]
    assert message in " ".join(result["error"])
