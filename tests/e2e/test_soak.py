"""The chaos soak, short: two minutes of every fault kind on the demo's whole stack, and no violation.

The real pieces: `neuronfleet run` twice as subprocesses with kopf peering, a real Prometheus
(Debian binary; skipped loudly without it), simulated replicas under trace load, the API emulator.
The seed is fixed, so the storm is the same on every run; the convergence bound is generous (60 s)
because a loaded two-core machine slows the operator, not because the operator may take that long.
`python bench/soak.py --duration 1800` is the long version (README "Chaos soak").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuronfleet.soak import schedule
from neuronfleet.soak.runner import SoakConfig, run_soak

pytestmark = [pytest.mark.slow, pytest.mark.prometheus]


async def test_a_short_soak_with_every_fault_kind_breaks_no_invariant(prometheus_binary: str, tmp_path: Path):
    config = SoakConfig(duration=120.0, seed=11, settle=60.0, out=tmp_path / "report", workdir=tmp_path / "work")
    report = await run_soak(config)

    injected = report["faults_by_kind"]
    assert set(injected) == set(schedule.KINDS), f"every kind of fault was injected: {injected}"
    assert report["faults_failed_to_inject"] == []
    assert report["samples"] > 60
    (kill,) = [f for f in report["faults"] if f["kind"] == "operator_kill"]
    assert kill["restarted"].endswith("#2"), kill
    # Both operators acted: the first until the second took over at start, then again while it was dead.
    assert set(report["writes_by_operator"]) == {"operator-a", "operator-b"}, report["writes_by_operator"]
    violations = "\n".join(f"t={v['t']} {v['invariant']} {v['subject']}: {v['evidence']}" for v in report["violations"])
    assert report["violations_total"] == 0, violations
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert written["faults_by_kind"] == injected
    assert (tmp_path / "report" / "soak.png").stat().st_size > 10_000
