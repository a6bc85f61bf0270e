"""`neuronfleet plan` end to end through the real CLI parser (no cluster, no hardware needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from neuronfleet import cli


def test_an_impossible_request_exits_2_with_the_numbers_on_stderr(capsys):
    code = cli.main(["plan", "--model", "meta-llama/Llama-3.1-70B", "--instance-type", "inf2.xlarge"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "error:" in captured.err and "GiB" in captured.err and "legal: 1, 2" in captured.err


def test_an_illegal_tp_exits_2_naming_the_legal_degrees(capsys):
    code = cli.main(
        ["plan", "--model", "Llama-3.1-8B", "--instance-type", "trn1.32xlarge", "--tensor-parallel-size", "4"]
    )
    assert code == 2
    assert "legal degrees: 1, 2, 8, 16, 32" in capsys.readouterr().err


def test_json_output_parses_and_carries_the_plan(capsys):
    code = cli.main(
        ["plan", "--model", "meta-llama/Llama-3.3-70B-Instruct", "--instance-type", "trn2.48xlarge", "-o", "json"]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tensor_parallel_size"] == 16
    assert data["resource_name"] == "aws.amazon.com/neuron" and data["resource_count"] == 4
    assert data["env"]["NEURON_LOGICAL_NC_CONFIG"] == "2"
    assert "--additional-config" in data["args"]
    assert data["reasons"]


def test_yaml_output_parses_to_the_same_plan_as_json(capsys):
    argv = ["plan", "--model", "openai/gpt-oss-20b", "--instance-type", "trn2.48xlarge", "--max-num-seqs", "8"]
    cli.main([*argv, "-o", "json"])
    as_json = json.loads(capsys.readouterr().out)
    cli.main([*argv, "-o", "yaml"])
    assert yaml.safe_load(capsys.readouterr().out) == as_json


def test_table_output_shows_the_command_and_the_reasons(capsys):
    assert cli.main(["plan", "--model", "Llama-3.1-8B", "--instance-type", "inf2.48xlarge"]) == 0
    out = capsys.readouterr().out
    assert "vllm serve Llama-3.1-8B" in out
    assert "--num-gpu-blocks-override 32" in out
    assert "why:" in out and "smallest legal degree" in out


def test_the_installed_console_script_runs_plan():
    done = subprocess.run(
        [sys.executable, "-m", "neuronfleet.cli", "plan", "--model", "gpt-oss-120b", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["instance_family"] == "trn2"


def test_a_per_user_rate_sizes_the_prefill_chunk_on_a_calibrated_shape(capsys):
    base = ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--instance-type", "trn2.48xlarge"]
    base += ["--tensor-parallel-size", "4", "-o", "json"]
    assert cli.main([*base, "--per-user-tokens-per-second", "10"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["max_num_batched_tokens"] == 608
    assert data["args"][data["args"].index("--max-num-batched-tokens") + 1] == "608"
    assert cli.main(base) == 0
    assert json.loads(capsys.readouterr().out)["max_num_batched_tokens"] == 2048


def test_the_plan_prints_the_capacity_prior_and_the_slo_targets_it_implies(capsys):
    argv = ["plan", "--model", "meta-llama/Llama-3.3-70B-Instruct", "--instance-type", "trn2.48xlarge"]
    argv += ["--tensor-parallel-size", "32", "--max-num-seqs", "8", "--per-user-tokens-per-second", "10"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "capacity (roofline prior" in out and "tokens/s per user" in out
    assert "targets before any measurement" in out and "engineLoad" in out
    assert cli.main([*argv, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["capacity"]
    assert data["source"] == "roofline"
    assert [row["batch"] for row in data["curve"]] == [1, 2, 4, 8]
    assert data["slo"]["batch"] == 8 and 0 < data["slo"]["utilization"] < 1


def test_a_calibrated_shape_says_so_and_no_rate_means_no_targets(capsys):
    argv = ["plan", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--instance-type", "trn2.48xlarge"]
    assert cli.main([*argv, "--tensor-parallel-size", "4", "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["capacity"]
    assert data["source"] == "calibrated" and "slo" not in data
