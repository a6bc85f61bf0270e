"""`neuronfleet simulate` end to end on a small JSON Lines trace, through the real CLI parser."""

from __future__ import annotations

import json

import pytest

from neuronfleet import cli
from neuronfleet.sim import workloads


@pytest.fixture
def small_trace(tmp_path):
    path = tmp_path / "small.jsonl"
    rows = [{"timestamp": i * 250, "input_length": 300 + 10 * i, "output_length": 40} for i in range(240)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("policy", ["neuronfleet", "hpa", "keda-tokens", "kpa", "apa", "oracle"])
def test_simulate_prints_a_json_report_for_every_policy(small_trace, capsys, policy):
    code = cli.main(["simulate", "--trace", str(small_trace), "--policy", policy, "--startup", "60", "-o", "json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["requests"] == 240
    assert 0.0 <= report["attainment"] <= 1.0
    assert report["core_hours"] > 0
    assert report["oracle_core_hours"] <= report["core_hours"] * 10
    assert report["slo"]["min_tokens_per_second"] == 10.0


def test_rate_scale_and_slo_flags_reach_the_run(small_trace, capsys):
    args = ["simulate", "--trace", str(small_trace), "--policy", "static", "--target", "2", "-o", "json"]
    cli.main([*args])
    base = json.loads(capsys.readouterr().out)
    cli.main([*args, "--rate-scale", "2", "--min-tps", "5", "--ttft-base", "3"])
    faster = json.loads(capsys.readouterr().out)
    assert faster["horizon_seconds"] < base["horizon_seconds"]
    assert faster["slo"] == {"ttft_base": 3.0, "ttft_tokens_per_second": 4000.0, "min_tokens_per_second": 5.0}


def test_the_table_output_and_the_plot_are_written(small_trace, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "run.png"
    assert cli.main(["simulate", "--trace", str(small_trace), "--policy", "kpa", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "attainment" in out and "ratio_to_oracle" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "nope"], "unknown policy"),
        (["--profile", "nope"], "unknown profile"),
    ],
    ids=["unknown policy", "unknown profile"],
)
def test_bad_arguments_fail_with_a_message(small_trace, capsys, argv, message):
    assert cli.main(["simulate", "--trace", str(small_trace), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_trace_file_fails_with_a_message(tmp_path, capsys):
    assert cli.main(["simulate", "--trace", str(tmp_path / "absent.csv")]) == 2
    assert "error" in capsys.readouterr().err


def test_a_generated_workload_replays_like_a_trace_file(capsys):
    args = ["simulate", "--workload", "long-prompts", "--seed", "3", "--duration", "300", "--policy", "static"]
    assert cli.main([*args, "--target", "4", "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trace"] == "long-prompts (seed 3)"
    assert report["requests"] == len(workloads.generate("long-prompts", 3, duration=300.0))


def test_an_unknown_workload_is_refused_with_the_known_names(capsys):
    assert cli.main(["simulate", "--workload", "nope"]) == 2
    assert "known: steady" in capsys.readouterr().err
