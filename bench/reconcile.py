"""Benchmark: how fast the operator turns N ModelDeployments into children and status, beside a floor.

For N = 10, 100, 1000 (or --sizes) against the in-process API emulator on 127.0.0.1, with the
operator as a real `neuronfleet run` subprocess (so its memory is its own), and the same load on
the floor (`bench/floor_operator.py`: a bare kopf operator that creates one Deployment and writes
`status.observedGeneration`), runs alternating so both see the same machine:
- p50/p95 seconds from a ModelDeployment's creation to its child Deployment existing, and to its
  status being written (observedGeneration set),
- total seconds until every fleet converged,
- API requests the operator made per ModelDeployment (the emulator's request log; the benchmark
  creates objects through the store directly, so none of its own requests are counted),
- the operator's peak RSS (VmHWM).
Prints a table and the neuronfleet/floor ratios; asserts nothing.
Run: `.venv/bin/python bench/reconcile.py [--sizes 10 100 1000] [--runs 2]`.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from neuronfleet.api import constants
from neuronfleet.kube_emulator import ThreadedEmulator, write_kubeconfig

REPO = Path(__file__).resolve().parents[1]


def load_crd() -> dict[str, Any]:
    """The ModelDeployment CRD as shipped in crds/ (the file may hold comments and several documents)."""
    docs = yaml.safe_load_all((REPO / "crds" / "neuronfleet.io_modeldeployments.yaml").read_text())
    return next(d for d in docs if d and d.get("kind") == "CustomResourceDefinition")


NAMESPACE = "bench"


def _md(name: str) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"source": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "neuron": {"instanceType": "inf2.48xlarge", "tensorParallelSize": 8},
            "replicas": 1,
        },
    }


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def operator_command(which: str, kubeconfig: Path) -> list[str]:
    if which == "floor":
        return [sys.executable, str(REPO / "bench" / "floor_operator.py"), str(kubeconfig)]
    return [
        sys.executable, "-m", "neuronfleet.cli", "run", "--kubeconfig", str(kubeconfig), "--standalone",
        "--health-port", "0", "--metrics-port", "0", "--bind-address", "127.0.0.1",
    ]  # fmt: skip


def run_once(n: int, timeout: float, which: str = "neuronfleet") -> dict[str, Any]:
    created: dict[str, float] = {}
    child_at: dict[str, float] = {}
    status_at: dict[str, float] = {}

    def listen(info: Any, event: Any) -> None:
        name = event.obj["metadata"]["name"]
        now = time.monotonic()
        if info.plural == "deployments" and event.type == "ADDED":
            child_at.setdefault(name, now)
        elif info.plural == constants.PLURAL and (event.obj.get("status") or {}).get("observedGeneration"):
            status_at.setdefault(name, now)

    with ThreadedEmulator() as emu, tempfile.TemporaryDirectory() as tmp:
        store = emu.store
        crd = load_crd()
        crd_info = emu.call(store.resource, "apiextensions.k8s.io", "v1", "customresourcedefinitions")
        emu.call(store.create, crd_info, None, crd)
        ns_info = emu.call(store.resource, "", "v1", "namespaces")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        emu.call(store.create, ns_info, None, namespace)
        md_info = emu.call(store.resource, constants.GROUP, constants.VERSION, constants.PLURAL)
        emu.call(store.add_listener, listen)
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", emu.url)
        cmd = operator_command(which, kubeconfig)
        env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
        log = open(Path(tmp) / "operator.log", "wb")  # noqa: SIM115 - closed with the directory
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            # The operator is up once it has listed ModelDeployments (a watch is logged only when it ends).
            deadline = time.monotonic() + 60
            while not any(r.verb == "list" and r.resource == constants.PLURAL for r in emu.requests):
                if time.monotonic() > deadline or proc.poll() is not None:
                    tail = (Path(tmp) / "operator.log").read_text()[-2000:]
                    raise RuntimeError(f"the operator did not start:\n{tail}")
                time.sleep(0.05)
            time.sleep(0.5)
            before = len(emu.requests)
            start = time.monotonic()
            for i in range(n):
                name = f"md-{i:04d}"
                created[name] = time.monotonic()
                emu.call(store.create, md_info, NAMESPACE, _md(name))
            deadline = start + timeout
            while len(status_at) < n and time.monotonic() < deadline:
                time.sleep(0.05)
            total = time.monotonic() - start
            requests = _quiet_count(emu, before)
            breakdown = collections.Counter(
                f"{r.verb} {r.rbac_resource}" for r in list(emu.requests)[before:] if r.resource
            )
            rss = _peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    to_child = [child_at[k] - created[k] for k in created if k in child_at]
    to_status = [status_at[k] - created[k] for k in created if k in status_at]
    return {
        "operator": which,
        "n": n,
        "converged": len(status_at),
        "child_p50": _percentile(to_child, 0.5),
        "child_p95": _percentile(to_child, 0.95),
        "status_p50": _percentile(to_status, 0.5),
        "status_p95": _percentile(to_status, 0.95),
        "total": total,
        "requests_per_md": requests / n,
        "rss_mib": rss,
        "mean_status": statistics.fmean(to_status) if to_status else float("nan"),
        "breakdown": {k: v / n for k, v in breakdown.most_common()},
    }


def _quiet_count(emu: ThreadedEmulator, before: int, quiet: float = 1.0, limit: float = 30.0) -> int:
    """Requests made since `before`, counted once the log has been still for `quiet` seconds.

    Echoes of the last writes (watch events that trigger passes) keep coming for a moment after
    the last status lands; a fixed sleep would count a variable share of them.
    """
    deadline = time.monotonic() + limit
    seen, since = len(emu.requests), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = len(emu.requests)
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return seen - before


ROW = (
    "{operator:>11} {n:>5} {converged:>9} {child_p50:>9.3f} {child_p95:>9.3f} {status_p50:>10.3f} "
    "{status_p95:>10.3f} {total:>8.2f} {requests_per_md:>7.1f} {rss_mib:>12.1f}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--runs", type=int, default=2, help="alternating runs of each operator per size")
    parser.add_argument("--only", choices=("neuronfleet", "floor"), help="run one operator, no ratio")
    parser.add_argument("--breakdown", action="store_true", help="print requests per ModelDeployment by verb")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for convergence per size")
    args = parser.parse_args()
    header = (
        f"{'operator':>11} {'N':>5} {'converged':>9} {'child p50':>9} {'child p95':>9} {'status p50':>10} "
        f"{'status p95':>10} {'total s':>8} {'req/MD':>7} {'peak RSS MiB':>12}"
    )
    print(header)
    which = (args.only,) if args.only else ("neuronfleet", "floor")
    for n in args.sizes:
        rows: dict[str, list[dict[str, Any]]] = {w: [] for w in which}
        for _ in range(args.runs):
            for w in which:
                r = run_once(n, args.timeout, w)
                rows[w].append(r)
                print(ROW.format(**r), flush=True)
                if args.breakdown:
                    print("            " + ", ".join(f"{k} {v:.2f}" for k, v in r["breakdown"].items()))
        if len(which) == 2:
            ratios = [a["child_p95"] / b["child_p95"] for a, b in zip(rows["neuronfleet"], rows["floor"], strict=True)]
            totals = [a["total"] / b["total"] for a, b in zip(rows["neuronfleet"], rows["floor"], strict=True)]
            print(
                f"{'ratio':>11} {n:>5}  child p95 neuronfleet/floor: {', '.join(f'{x:.2f}' for x in ratios)}; "
                f"converged: {', '.join(f'{x:.2f}' for x in totals)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
