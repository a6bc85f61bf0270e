"""The CLI entry point: sub-commands are listed and `crd` prints the shipped CRD."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neuronfleet import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_available_commands(capsys):
    parser = cli.build_parser()
    parser.print_help()
    out = capsys.readouterr().out
    assert "crd" in out


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "usage: neuronfleet" in capsys.readouterr().err


def test_crd_prints_the_file_shipped_in_crds():
    out = subprocess.run(
        [sys.executable, "-m", "neuronfleet.cli", "crd"], check=True, capture_output=True, text=True
    ).stdout
    assert out == (ROOT / "crds" / "neuronfleet.io_modeldeployments.yaml").read_text()


def test_run_takes_the_default_neuron_allocation_and_refuses_unknown_ones(capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["run"]).neuron_allocation == "devicePlugin"
    assert parser.parse_args(["run", "--neuron-allocation", "dra"]).neuron_allocation == "dra"
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["run", "--neuron-allocation", "cdi"])
    assert exc.value.code == 2
    assert "invalid choice: 'cdi'" in capsys.readouterr().err
