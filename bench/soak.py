"""Chaos soak: the demo's stack, two peered `neuronfleet run` processes, a seeded storm of faults.

    python bench/soak.py --duration 1800 --seed 1 --out bench/results/soak-1800

Faults (seeded, overlapping): API 409/429/500/503 bursts and timeouts, watch streams cut, 410 Gone
after compaction, the acting operator SIGKILLed and restarted, Prometheus stopped and restarted with
its data gone, replicas crashing or hanging, a failing compile Job, children edited and deleted by
hand, spec updates mid-rollout (one unplannable), a ModelDeployment deleted and recreated.
Invariants are checked from the API server, its request log and the operators' processes; the exit
status is 1 when any was violated. See README "Chaos soak".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
from pathlib import Path

from neuronfleet.soak import report as soak_report
from neuronfleet.soak.runner import SoakConfig, SoakError, run_soak


def parse_args(argv: list[str] | None = None) -> SoakConfig | Path:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=120.0,
        help="seconds of warm-up plus faults (default 120); then up to --settle seconds for the fleets "
        "to converge. 600 or more is a long soak: Prometheus outages last minutes, faults come every ~20 s",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule (default 1)")
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="convergence bound T: every fleet converges within T seconds of the last fault touching it (default 60)",
    )
    parser.add_argument("--warmup", type=float, default=25.0, help="seconds before the first fault (default 25)")
    parser.add_argument(
        "--mean-gap", type=float, default=None, help="mean seconds between faults (default 3.5, or 20 when long)"
    )
    parser.add_argument(
        "--rss-bound", type=float, default=64.0, help="largest RSS growth allowed, MiB per hour (default 64)"
    )
    parser.add_argument(
        "--load-fraction",
        type=float,
        default=0.25,
        help="share of the demo trace's requests replayed on the loaded fleet (default 0.25: about 17 requests "
        "per wall second; the whole trace saturates the one event loop that also serves the API)",
    )
    parser.add_argument("--out", type=Path, default=None, help="directory for report.json, report.md and soak.png")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here (default: a temporary directory)")
    parser.add_argument(
        "--recheck",
        type=Path,
        default=None,
        metavar="DIR",
        help="run no soak: judge a saved one again (DIR/timeline.jsonl, DIR/report.json) with this version's "
        "checkers of the API timeline, and print the violations",
    )
    args = parser.parse_args(argv)
    if args.recheck is not None:
        return args.recheck
    return SoakConfig(
        duration=args.duration,
        seed=args.seed,
        settle=args.settle,
        warmup=args.warmup,
        mean_gap=args.mean_gap,
        rss_bound_mib_per_hour=args.rss_bound,
        load_fraction=args.load_fraction,
        out=args.out,
        workdir=args.workdir,
    )


def recheck(directory: Path) -> int:
    """Re-judge a saved soak; exit status 1 when a violation is found."""
    report = json.loads((directory / "report.json").read_text())
    lines = (directory / "timeline.jsonl").read_text().splitlines()
    found = soak_report.recheck(lines, report)
    for v in found:
        print(f"t={v.t:.1f} {v.invariant} {v.subject}: {v.evidence}")
    counts = collections.Counter(v.invariant for v in found)
    print(f"{len(found)} violations of the API-timeline invariants: {dict(sorted(counts.items()))}")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    if isinstance(config, Path):
        return recheck(config)
    try:
        report = asyncio.run(run_soak(config))
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    return 1 if report["violations_total"] else 0


if __name__ == "__main__":
    sys.exit(main())
