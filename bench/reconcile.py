"""Benchmark: how fast the operator turns N ModelDeployments into children and status.

For N = 10, 100, 1000 (or --sizes) against the in-process API emulator on 127.0.0.1, with the
operator as a real `neuronfleet run` subprocess (so its memory is its own):
- p50/p95 seconds from a ModelDeployment's creation to its child Deployment existing, and to its
  status being written (observedGeneration set),
- total seconds until every fleet converged,
- API requests the operator made per ModelDeployment (the emulator's request log; the benchmark
  creates objects through the store directly, so none of its own requests are counted),
- the operator's peak RSS (VmHWM).
Prints a table; asserts nothing. Run: `.venv/bin/python bench/reconcile.py [--sizes 10 100 1000]`.
"""

from __future__ import annotations

import argparse
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


def run_once(n: int, timeout: float) -> dict[str, float]:
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
        cmd = [
            sys.executable, "-m", "neuronfleet.cli", "run", "--kubeconfig", str(kubeconfig), "--standalone",
            "--health-port", "0", "--metrics-port", "0", "--bind-address", "127.0.0.1",
        ]  # fmt: skip
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
            time.sleep(1.0)  # let echoes of the last writes settle before counting requests
            requests = len(emu.requests) - before
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for convergence per size")
    args = parser.parse_args()
    header = (
        f"{'N':>5} {'converged':>9} {'child p50':>9} {'child p95':>9} {'status p50':>10} {'status p95':>10} "
        f"{'total s':>8} {'req/MD':>7} {'peak RSS MiB':>12}"
    )
    print(header)
    for n in args.sizes:
        r = run_once(n, args.timeout)
        print(
            f"{r['n']:>5} {r['converged']:>9} {r['child_p50']:>9.3f} {r['child_p95']:>9.3f} {r['status_p50']:>10.3f} "
            f"{r['status_p95']:>10.3f} {r['total']:>8.2f} {r['requests_per_md']:>7.1f} {r['rss_mib']:>12.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
