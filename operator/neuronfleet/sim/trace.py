"""Request traces: the Azure LLM inference CSV format and Mooncake-style JSON Lines.

The simulator replays real arrivals; these readers turn either public format into one
tuple of `TraceRequest` sorted by arrival, times in seconds from the first request.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["TraceRequest", "merge", "read_azure_csv", "read_jsonl", "read_trace", "scale_rate", "thin"]


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One request of a trace: arrival (s from trace start), prompt and output tokens."""

    arrival: float
    prompt_tokens: int
    output_tokens: int


def _parse_azure_time(text: str) -> float:
    # Seven fractional digits do not fit strptime's %f (six): cut to microseconds.
    text = text.strip()
    head, _, frac = text.partition(".")
    stamp = datetime.strptime(head, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)  # no zone given
    return stamp.timestamp() + (float("0." + frac) if frac else 0.0)


def _normalise(rows: Iterable[tuple[float, int, int]]) -> tuple[TraceRequest, ...]:
    ordered = sorted(rows, key=lambda row: row[0])
    if not ordered:
        return ()
    start = ordered[0][0]
    # Zero-token outputs still produce the first token in vLLM; count at least one.
    return tuple(TraceRequest(t - start, max(1, p), max(1, o)) for t, p, o in ordered)


def read_azure_csv(path: str | Path) -> tuple[TraceRequest, ...]:
    """Read the Azure 2023/2024 format: TIMESTAMP, ContextTokens, GeneratedTokens."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not an Azure LLM trace, missing columns {sorted(missing)}")
        rows = [
            (_parse_azure_time(row["TIMESTAMP"]), int(row["ContextTokens"]), int(row["GeneratedTokens"]))
            for row in reader
        ]
    return _normalise(rows)


def read_jsonl(path: str | Path) -> tuple[TraceRequest, ...]:
    """Read JSON Lines with timestamp (ms), input_length, output_length (Mooncake format)."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                rows.append((float(item["timestamp"]) / 1000.0, int(item["input_length"]), int(item["output_length"])))
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a trace line ({exc})") from exc
    return _normalise(rows)


def read_trace(path: str | Path) -> tuple[TraceRequest, ...]:
    """Read either format, chosen by the file name (.jsonl/.json: JSON Lines, else CSV)."""
    suffix = Path(path).suffix.lower()
    if suffix in {".jsonl", ".json"}:
        return read_jsonl(path)
    return read_azure_csv(path)


def scale_rate(trace: tuple[TraceRequest, ...], factor: float) -> tuple[TraceRequest, ...]:
    """Multiply the arrival rate by `factor` by dividing inter-arrival times.

    Dividing keeps the burst shape (a burst gets `factor` times denser and shorter); the
    alternative, superposing shifted copies, would smooth bursts out. The trace gets shorter.
    """
    if factor <= 0:
        raise ValueError("rate scale must be positive")
    return tuple(TraceRequest(r.arrival / factor, r.prompt_tokens, r.output_tokens) for r in trace)


def thin(trace: Sequence[TraceRequest], share: float, *, seed: int = 0) -> tuple[TraceRequest, ...]:
    """Keep each request with probability `share` (drawn from `seed`): the rate times `share`, same shape.

    Why: a fleet of large replicas (a 405B group serves a few requests at a time, on four nodes) needs a
    lighter load than the traces sized for an 8B fleet, with the same burst shape and duration;
    independent thinning keeps a Poisson process Poisson and every burst where it was.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    rng = random.Random(seed)
    return tuple(r for r in trace if rng.random() < share)


def merge(*traces: Sequence[TraceRequest]) -> tuple[TraceRequest, ...]:
    """Superpose traces on one clock (e.g. several seeds of a workload family: the rate times N)."""
    return tuple(sorted((r for t in traces for r in t), key=lambda r: r.arrival))
