"""`helm lint`, `helm template` with default and non-default values, and what the output must be.

Every rendered built-in object is checked against the Kubernetes 1.30 OpenAPI schemas in strict
mode (kubernetes-validate: unknown fields fail), the whole output passes yamllint, and the
operator container's args are parsed by the real `neuronfleet run` parser, so a flag the chart
passes but the CLI does not know fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chart.chart_files import CHART, ROOT
from chart.conftest import KUBE_VERSION, Render, by_kind, one, run_helm
from neuronfleet import cli
from neuronfleet.commands import run as run_command

MONITORING_APIS = ("monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule")

# Values scenarios: ids read as sentences in the test report.
SCENARIOS: dict[str, dict[str, Any]] = {
    "default values": {},
    "namespace-scoped with two namespaces": {"watchNamespaces": ["ml-team-a", "ml-team-b"]},
    "everything opt-in switched on": {
        "image": {"digest": "sha256:" + "a" * 64},
        "operator": {
            "logFormat": "text",
            "verbose": True,
            "prometheusUrl": "http://prometheus-operated.monitoring:9090",
            "images": {"vllmNeuron": "registry.example.com/vllm-neuron:1", "nxdi": "registry.example.com/nxdi:1"},
            "neuronAllocation": "dra",
            "extraEnv": [{"name": "TZ", "value": "UTC"}],
        },
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "additionalAlertLabels": {"team": "ml-platform"}},
        "dashboard": {"enabled": True, "namespace": "monitoring", "annotations": {"grafana_folder": "Inference"}},
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/nf"}},
    },
    "single standalone replica without peering": {"replicaCount": 1, "peering": {"enabled": False}},
    "bring your own service account and RBAC": {
        "serviceAccount": {"create": False, "name": "platform-operator"},
        "rbac": {"create": False},
        "metrics": {"service": {"enabled": False}},
    },
}


def _render_scenario(render: Render, values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(values, api_versions=MONITORING_APIS, include_crds=True)


def test_helm_lint_strict_passes_with_default_values(helm: list[str]):
    proc = run_helm(helm, "lint", "--strict", str(CHART), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_helm_lint_strict_passes_with_every_option_on(helm: list[str], tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(SCENARIOS["everything opt-in switched on"]))
    proc = run_helm(helm, "lint", "--strict", str(CHART), "--values", str(values), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_every_rendered_builtin_object_is_valid_against_the_kubernetes_schema(render: Render, values):
    objects = _render_scenario(render, values)
    errors: list[str] = []
    checked = 0
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError:
            # Custom resources: ServiceMonitor/PrometheusRule/peering objects, checked in their own tests.
            assert obj["apiVersion"].split("/")[0] in {"monitoring.coreos.com", "kopf.dev"}, obj["kind"]
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata'].get('name')}: {str(exc).splitlines()[0]}")
    assert not errors, "\n".join(errors)
    assert checked >= 3  # at least the CRDs and the Deployment were really validated


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_rendered_output_passes_yamllint(render_text, values, tmp_path):
    text = render_text(values, api_versions=MONITORING_APIS, include_crds=True)
    out = tmp_path / "rendered.yaml"
    out.write_text(text)
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "yamllint"),
            "-f",
            "parsable",
            "-c",
            str(ROOT / "tests/chart/yamllint.yaml"),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_config_really_catches_broken_yaml(tmp_path):
    """Guard against a yamllint config that lets everything through."""
    out = tmp_path / "bad.yaml"
    out.write_text("a: 1\na: 2\n")
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "yamllint"), "-c", str(ROOT / "tests/chart/yamllint.yaml"), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "duplication" in proc.stdout


def _operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _parse_args(container: dict[str, Any]):
    args = cli.build_parser().parse_args(container["args"])
    assert args.func.__module__ == run_command.__name__
    return run_command.config_from_args(args)


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_operator_args_parse_with_the_real_cli(render: Render, values):
    config = _parse_args(_operator_container(render(values)))
    expected_namespaces = tuple(values.get("watchNamespaces", ()))
    assert config.namespaces == expected_namespaces
    assert config.standalone is (not values.get("peering", {}).get("enabled", True))
    operator = values.get("operator", {})
    assert config.prometheus_url == (operator.get("prometheusUrl") or None)
    assert config.image_vllm_neuron == (operator.get("images", {}).get("vllmNeuron") or None)
    assert config.log_format == operator.get("logFormat", "json")


@pytest.mark.parametrize("values", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_the_default_neuron_allocation_reaches_the_operator_flag(render: Render, values):
    args = cli.build_parser().parse_args(_operator_container(render(values))["args"])
    assert args.neuron_allocation == values.get("operator", {}).get("neuronAllocation", "devicePlugin")


def test_default_deployment_runs_two_hardened_replicas_with_peering(render: Render):
    objects = render()
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = _operator_container(objects)
    config = _parse_args(container)

    assert deployment["spec"]["replicas"] == 2
    assert config.peering == "neuronfleet" and config.peering_explicit and not config.standalone
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "neuronfleet"
    # kopf identifies each replica in the peering object by POD_ID.
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in container["env"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sec = container["securityContext"]
    assert sec["readOnlyRootFilesystem"] is True
    assert sec["allowPrivilegeEscalation"] is False
    assert sec["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": config.health_port, "metrics": config.metrics_port}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, {"health": 8080, "metrics": 8081}),
        ({"operator": {"healthPort": 9440, "metricsPort": 9441}}, {"health": 9440, "metrics": 9441}),
    ],
    ids=["default ports", "custom ports reach flags, container ports and probes"],
)
def test_ports_agree_between_flags_container_and_metrics_service(render: Render, values, expected):
    objects = render(values)
    container = _operator_container(objects)
    config = _parse_args(container)
    assert (config.health_port, config.metrics_port) == (expected["health"], expected["metrics"])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == expected
    service = one(objects, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    deployment_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= deployment_labels.items()


def test_image_digest_wins_over_tag_and_tag_defaults_to_app_version(render: Render):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert _operator_container(render())["image"].endswith(f":{chart['appVersion']}")
    digest = "sha256:" + "b" * 64
    image = _operator_container(render({"image": {"tag": "9.9.9", "digest": digest}}))["image"]
    assert image.endswith(f"@{digest}") and "9.9.9" not in image


def test_standalone_single_replica_renders_no_peering_object_and_no_pdb(render: Render):
    objects = render(SCENARIOS["single standalone replica without peering"])
    assert not by_kind(objects, "ClusterKopfPeering") and not by_kind(objects, "KopfPeering")
    assert not by_kind(objects, "PodDisruptionBudget")
    assert "--standalone" in _operator_container(objects)["args"]


def test_namespace_scoped_install_peers_in_every_watched_namespace(render: Render):
    objects = render(SCENARIOS["namespace-scoped with two namespaces"])
    peerings = by_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["ml-team-a", "ml-team-b"]
    assert not by_kind(objects, "ClusterKopfPeering")


def test_monitoring_objects_are_opt_in(render: Render):
    kinds = {o["kind"] for o in render(api_versions=MONITORING_APIS)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    opted = render(SCENARIOS["everything opt-in switched on"], api_versions=MONITORING_APIS)
    monitor = one(opted, "ServiceMonitor")
    service = one(opted, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    dashboards = one(opted, "ConfigMap")
    assert dashboards["metadata"]["namespace"] == "monitoring"
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_crds_are_rendered_with_include_crds_and_never_as_templates(render: Render):
    plain = {o["kind"] for o in render()}
    assert "CustomResourceDefinition" not in plain  # crds/ only: Helm installs them first, never deletes them
    crds = {o["metadata"]["name"] for o in by_kind(render(include_crds=True), "CustomResourceDefinition")}
    assert crds == {"modeldeployments.neuronfleet.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}


def _render_notes(helm: list[str], tmp_path, values: dict[str, Any]) -> str:
    """NOTES.txt as `helm install` prints it: helm template skips NOTES, so a copy of the chart wraps
    the same text in a named template and renders it into a ConfigMap (same engine, same values)."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    notes = (copy / "templates" / "NOTES.txt").read_text()
    (copy / "templates" / "_notes_probe.tpl").write_text('{{- define "notes.probe" }}' + notes + "{{- end }}")
    (copy / "templates" / "notes-probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "notes.probe" . | indent 4 }}\n'
    )
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = run_helm(
        helm,
        "template",
        "nf",
        str(copy),
        "-n",
        "nf",
        "--kube-version",
        KUBE_VERSION,
        "--values",
        str(values_file),
        "--show-only",
        "templates/notes-probe.yaml",
    ).stdout
    return yaml.safe_load(out)["data"]["notes"]


def test_notes_tell_how_to_upgrade_crds_and_what_is_served(helm: list[str], tmp_path):
    notes = _render_notes(helm, tmp_path, {})
    assert "kubectl apply --server-side -f crds/" in notes
    assert "serves ModelDeployments in every namespace" in notes
    scoped = _render_notes(helm, tmp_path / "scoped", {"watchNamespaces": ["a", "b"]})
    assert "serves ModelDeployments in: a, b." in scoped


@pytest.mark.parametrize("kube_version", ["1.30.0", "1.33.0", "1.37.0"], ids=lambda v: f"Kubernetes {v}")
def test_default_objects_are_valid_on_every_supported_kubernetes_version(render: Render, kube_version: str):
    for obj in render(include_crds=True):
        if obj["apiVersion"].startswith("kopf.dev/"):
            continue
        kubernetes_validate.validate(obj, kube_version, strict=True)


def test_helm_package_ships_crds_files_and_schema(helm: list[str], tmp_path):
    import tarfile

    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("neuronfleet-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    for wanted in (
        "neuronfleet/crds/neuronfleet.io_modeldeployments.yaml",
        "neuronfleet/crds/kopf.dev_peerings.yaml",
        "neuronfleet/files/rbac-rules.yaml",
        "neuronfleet/files/argocd/health.lua",
        "neuronfleet/files/dashboards/neuronfleet-fleets.json",
        "neuronfleet/values.schema.json",
        "neuronfleet/templates/NOTES.txt",
    ):
        assert wanted in names, wanted


def test_example_argo_cd_application_values_render_and_satisfy_the_schema(render: Render):
    docs = list(yaml.safe_load_all((ROOT / "examples" / "argocd" / "application.yaml").read_text()))
    (operator_app,) = [d for d in docs if d["spec"]["source"].get("path") == "charts/neuronfleet"]
    helm_source = operator_app["spec"]["source"]["helm"]
    objects = render(helm_source["valuesObject"], api_versions=MONITORING_APIS)
    kinds = {o["kind"] for o in objects}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "ClusterKopfPeering"} <= kinds
    assert operator_app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert "ServerSideApply=true" in operator_app["spec"]["syncPolicy"]["syncOptions"]
    # The models' Application must come later and must not ignore differences in spec.
    for app in docs:
        if app is not operator_app:
            assert int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > -1
            assert "ignoreDifferences" not in app["spec"]


@pytest.mark.parametrize(
    "path",
    [
        "charts/neuronfleet/values.yaml",
        "charts/neuronfleet/Chart.yaml",
        "charts/neuronfleet/crds/kopf.dev_peerings.yaml",
        "charts/neuronfleet/files/rbac-rules.yaml",
        "examples/argocd/application.yaml",
        "examples/argocd/argocd-cm.yaml",
        "examples/argocd/argo-cd-values.yaml",
    ],
)
def test_shipped_yaml_files_pass_yamllint_without_warnings(path: str):
    proc = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "yamllint"),
            "--strict",
            "-f",
            "parsable",
            "-c",
            str(ROOT / "tests/chart/yamllint.yaml"),
            str(ROOT / path),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
