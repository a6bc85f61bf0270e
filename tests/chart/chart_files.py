"""Packaging files generated from the operator's code, and the one command that regenerates them.

These files are copies of facts owned by Python code or the project's metadata; writing them by
hand twice would let them drift, so they are generated and a test fails when they are stale:

- `crds/neuronfleet.io_modeldeployments.yaml`: byte-identical to the root `crds/` file, which
  `neuronfleet crd` generates from the pydantic API.
- `files/rbac-rules.yaml`: `neuronfleet.controller.rbac.RULES` (every API call the operator makes,
  with why), split per resource and annotated with the scope and peering role each resource has,
  so the RBAC template can build a ClusterRole (cluster-wide) or Roles (per watched namespace).
- `images/operator/requirements.txt`: exact versions of neuronfleet's runtime dependency closure
  (no dev tools), taken from the virtualenv the tests ran in; the operator image installs it with
  `--no-deps`. Its test checks names and version ranges, not equality with the local virtualenv,
  which may legitimately resolve newer versions; `--write` refreshes the pins.

Regenerate after changing the API or rbac.py:  .venv/bin/python tests/chart/chart_files.py --write
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

from neuronfleet.controller import rbac

__all__ = [
    "CHART",
    "CLUSTER_SCOPED",
    "CRD_NAME",
    "MODE_ONLY",
    "OPERATOR_REQUIREMENTS",
    "PEERING_GROUPS",
    "ROOT",
    "RULES_FILE",
    "expected_files",
    "operator_requirements_text",
    "rbac_rules",
    "rbac_rules_text",
    "runtime_closure",
    "stale_files",
]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "neuronfleet"
RULES_FILE = CHART / "files" / "rbac-rules.yaml"
CRD_NAME = "neuronfleet.io_modeldeployments.yaml"
OPERATOR_REQUIREMENTS = ROOT / "images" / "operator" / "requirements.txt"

# Cluster-scoped resources among those the operator touches (everything else is namespaced).
# Facts of the Kubernetes API and of kopf's peering CRDs (charts/neuronfleet/crds/kopf.dev_peerings.yaml).
CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
        ("kopf.dev", "clusterkopfpeerings"),
        ("zalando.org", "clusterkopfpeerings"),
    }
)
# Resources kopf touches in one watch mode only (from kopf 1.45's reactor): ClusterKopfPeering
# when serving all namespaces, KopfPeering in each served namespace otherwise, and the namespace
# list only when serving a list of namespaces (to notice them appear and disappear).
MODE_ONLY: dict[tuple[str, str], str] = {
    ("kopf.dev", "clusterkopfpeerings"): "clusterWide",
    ("zalando.org", "clusterkopfpeerings"): "clusterWide",
    ("kopf.dev", "kopfpeerings"): "namespaced",
    ("zalando.org", "kopfpeerings"): "namespaced",
    ("", "namespaces"): "namespaced",
}
PEERING_GROUPS = frozenset({"kopf.dev", "zalando.org"})

_HEADER = """\
# Generated from operator/neuronfleet/controller/rbac.py by tests/chart/chart_files.py. Do not edit:
# run `.venv/bin/python tests/chart/chart_files.py --write` instead (a test fails when this is stale).
# One rule per resource, with
#   scope:   Cluster or Namespaced: ClusterRole or per-namespace Role when watchNamespaces is set;
#   mode:    any, clusterWide (watchNamespaces empty) or namespaced (a list): when it is granted;
#   peering: a kopf peering kind, granted only with peering.enabled;
#   why:     why the operator needs it.
"""


def rbac_rules() -> list[dict[str, Any]]:
    """rbac.RULES, one entry per (group, resource), in the table's order."""
    out: list[dict[str, Any]] = []
    for rule in rbac.RULES:
        for resource in rule.resources:
            base = resource.split("/", 1)[0]
            out.append(
                {
                    "apiGroups": [rule.api_group],
                    "resources": [resource],
                    "verbs": list(rule.verbs),
                    "scope": "Cluster" if (rule.api_group, base) in CLUSTER_SCOPED else "Namespaced",
                    "mode": MODE_ONLY.get((rule.api_group, base), "any"),
                    "peering": rule.api_group in PEERING_GROUPS,
                    "why": rule.why,
                }
            )
    return out


def rbac_rules_text() -> str:
    body = yaml.safe_dump({"rules": rbac_rules()}, sort_keys=False, width=120, default_flow_style=None)
    return _HEADER + body


def runtime_closure(distribution: str = "neuronfleet") -> dict[str, str]:
    """name -> installed version of every runtime dependency of `distribution`, transitively (no extras)."""
    found: dict[str, str] = {}

    def visit(name: str) -> None:
        key = name.lower().replace("_", "-")
        if key in found:
            return
        dist = importlib.metadata.distribution(name)
        found[key] = dist.version
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                visit(req.name)

    visit(distribution)
    found.pop(distribution)
    return found


def operator_requirements_text() -> str:
    pins = "".join(f"{name}=={version}\n" for name, version in sorted(runtime_closure().items()))
    return (
        "# Runtime dependencies of the operator image, pinned to the versions the test suite ran with.\n"
        "# Generated by tests/chart/chart_files.py from the project virtualenv; do not edit.\n" + pins
    )


def expected_files() -> dict[Path, str]:
    """Every generated file and its expected content."""
    return {
        CHART / "crds" / CRD_NAME: (ROOT / "crds" / CRD_NAME).read_text(),
        RULES_FILE: rbac_rules_text(),
    }


def stale_files() -> list[Path]:
    return [path for path, text in expected_files().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite stale files (default: only list them)")
    args = parser.parse_args(argv)
    stale = stale_files()
    for path in stale:
        print(f"{'wrote' if args.write else 'stale'}: {path.relative_to(ROOT)}")
        if args.write:
            path.write_text(expected_files()[path])
    if args.write:
        OPERATOR_REQUIREMENTS.write_text(operator_requirements_text())
        print(f"wrote: {OPERATOR_REQUIREMENTS.relative_to(ROOT)}")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main())
