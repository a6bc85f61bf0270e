"""A picture of one run: demand, the policy's replicas and the oracle's, over time.

matplotlib is an optional extra (`pip install neuronfleet[plot]`), imported only when a plot is
asked for, so the simulator itself stays dependency-free.
"""

from __future__ import annotations

from pathlib import Path

from neuronfleet.sim.runner import Run

__all__ = ["plot_run"]


def _steps(series: list[tuple[float, int, int]], horizon: float, column: int) -> tuple[list[float], list[int]]:
    xs: list[float] = []
    ys: list[int] = []
    for row in series:
        xs.append(row[0] / 60.0)
        ys.append(row[column])
    xs.append(horizon / 60.0)
    ys.append(ys[-1] if ys else 0)
    return xs, ys


def plot_run(run: Run, path: str | Path) -> None:
    """Write a PNG: requests/s per minute, N*(t), the oracle's and the policy's replicas."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("plotting needs matplotlib: pip install 'neuronfleet[plot]'") from exc

    result, report, plan = run.result, run.report, run.plan
    horizon = result.horizon
    minutes = int(horizon // 60) + 1
    per_minute = [0] * minutes
    for request in result.requests:
        per_minute[min(minutes - 1, int(request.arrival // 60))] += 1

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=(1, 2))
    top.bar([m + 0.5 for m in range(minutes)], [c / 60.0 for c in per_minute], width=1.0, color="0.6")
    top.set_ylabel("requests/s")
    top.set_title(
        f"{report.policy} on {report.profile}, startup {report.startup_seconds:g} s: "
        f"attainment {report.attainment:.1%}, {report.core_hours:.1f} NeuronCore-h "
        f"({report.ratio_to_oracle or 0:.2f}x LB_L)"
    )
    need_x = [i / 60.0 for i in range(len(plan.needed))]
    bottom.plot(need_x, plan.needed, color="0.7", linewidth=0.8, label="N*(t) fluid need")
    oracle_x = [i / 60.0 for i in range(0, int(horizon) + 1, 5)]
    bottom.step(oracle_x, [plan.replicas_at(x * 60.0) for x in oracle_x], where="post", label="oracle (LB_L)")
    xs, billed = _steps(result.replica_series, horizon, 1)
    bottom.step(xs, billed, where="post", label=f"{report.policy}: billed")
    xs, ready = _steps(result.replica_series, horizon, 2)
    bottom.step(xs, ready, where="post", linestyle="--", label=f"{report.policy}: ready")
    bottom.set_xlabel("minutes")
    bottom.set_ylabel("replicas")
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
