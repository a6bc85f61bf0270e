"""Trace readers: the Azure CSV format, JSON Lines, and rate scaling."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from neuronfleet.sim.trace import read_azure_csv, read_jsonl, read_trace, scale_rate

SHARED_TRACES = Path(__file__).resolve().parents[4] / "shared" / "data" / "traces"


def test_azure_csv_times_become_seconds_from_the_first_request_with_seven_digit_fractions(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:17:03.9799600,4808,10\n"
        "2023-11-16 18:17:04.0319600,3180,0\n"
        "2023-11-16 18:18:03.9799600,12,3\n"
    )
    trace = read_azure_csv(path)
    assert [r.arrival for r in trace] == pytest.approx([0.0, 0.052, 60.0])
    assert [(r.prompt_tokens, r.output_tokens) for r in trace] == [(4808, 10), (3180, 1), (12, 3)]


def test_a_csv_without_the_azure_columns_is_rejected(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,in,out\n1,2,3\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_azure_csv(path)


def test_jsonl_timestamps_in_milliseconds_are_sorted_and_rebased(tmp_path):
    path = tmp_path / "t.jsonl"
    lines = [
        {"timestamp": 2500, "input_length": 100, "output_length": 7, "hash_ids": [1]},
        {"timestamp": 500, "input_length": 30, "output_length": 2},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    trace = read_trace(path)
    assert [(r.arrival, r.prompt_tokens, r.output_tokens) for r in trace] == [(0.0, 30, 2), (2.0, 100, 7)]


def test_a_broken_jsonl_line_names_its_line_number(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"timestamp": 1, "input_length": 1, "output_length": 1}\n{"timestamp": 2}\n')
    with pytest.raises(ValueError, match=":2:"):
        read_jsonl(path)


def test_rate_scaling_divides_inter_arrival_times(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        "".join(json.dumps({"timestamp": t, "input_length": 1, "output_length": 1}) + "\n" for t in (0, 1000, 3000))
    )
    assert [r.arrival for r in scale_rate(read_trace(path), 2.0)] == [0.0, 0.5, 1.5]
    with pytest.raises(ValueError):
        scale_rate(read_trace(path), 0.0)


@pytest.mark.parametrize(
    ("name", "rows"),
    [("AzureLLMInferenceTrace_code.csv", 8819), ("AzureLLMInferenceTrace_conv.csv", 19366)],
    ids=["azure code", "azure conv"],
)
def test_the_shared_azure_traces_read_completely(name, rows):
    path = SHARED_TRACES / name
    if not path.exists():
        pytest.skip("shared traces not present next to the repository")
    trace = read_trace(path)
    assert len(trace) == rows
    assert trace[0].arrival == 0.0
    assert all(a.arrival <= b.arrival for a, b in itertools.pairwise(trace))
    assert 3400 < trace[-1].arrival < 3510


def test_thinning_keeps_about_the_share_in_order_and_the_same_seed_keeps_the_same_requests():
    from neuronfleet.sim.trace import TraceRequest, thin

    trace = tuple(TraceRequest(float(i), 10, 10) for i in range(4000))
    kept = thin(trace, 0.25, seed=3)
    assert 900 < len(kept) < 1100
    assert list(kept) == sorted(kept, key=lambda r: r.arrival)
    assert kept == thin(trace, 0.25, seed=3) != thin(trace, 0.25, seed=4)
    with pytest.raises(ValueError, match="share"):
        thin(trace, 0.0)


def test_merging_superposes_traces_on_one_clock():
    from neuronfleet.sim.trace import TraceRequest, merge

    a = (TraceRequest(0.0, 1, 1), TraceRequest(2.0, 1, 1))
    b = (TraceRequest(1.0, 2, 2),)
    assert [r.arrival for r in merge(a, b)] == [0.0, 1.0, 2.0]
