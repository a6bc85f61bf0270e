"""`neuronfleet run` flags map onto the operator's configuration and kopf's arguments."""

from __future__ import annotations

import pytest

from neuronfleet import cli
from neuronfleet.commands.run import config_from_args


def config(*argv: str):
    return config_from_args(cli.build_parser().parse_args(["run", *argv]))


def test_defaults_serve_all_namespaces_with_health_metrics_and_optional_peering() -> None:
    c = config()
    assert c.clusterwide and c.namespaces == ()
    assert (c.health_port, c.metrics_port, c.log_format) == (8080, 8081, "text")
    kwargs = c.kopf_kwargs()
    assert kwargs["liveness_endpoint"] == "http://0.0.0.0:8080/healthz"
    assert "peering_name" not in kwargs  # the default peering is used when present, never required
    assert c.peering == "neuronfleet" and not kwargs["standalone"]


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        pytest.param(("-n", "a", "--namespace", "b", "-n", "a"), "namespaces", ("a", "b"), id="namespaces dedupe"),
        pytest.param(("--standalone",), "peering", None, id="standalone has no peering"),
        pytest.param(("--health-port", "0"), "health_port", None, id="health port 0 turns the endpoint off"),
        pytest.param(("--log-format", "json"), "log_format", "json", id="json logs"),
        pytest.param(("--image-nxdi", "my/nxdi:1"), "image_nxdi", "my/nxdi:1", id="image override"),
        pytest.param(("--prometheus-url", "http://p:9090"), "prometheus_url", "http://p:9090", id="prometheus url"),
        pytest.param(("--service-level-window", "60"), "service_level_window", 60.0, id="service-level window"),
        pytest.param((), "service_level_window", 300.0, id="service-level window of 5 minutes by default"),
        pytest.param(("--peering-lifetime", "20"), "peering_lifetime", 20, id="peering lifetime"),
        pytest.param((), "peering_lifetime", 60, id="kopf's peering lifetime by default"),
    ],
)
def test_each_flag_lands_in_the_config(argv: tuple[str, ...], field: str, value: object) -> None:
    assert getattr(config(*argv), field) == value


def test_a_named_peering_is_required() -> None:
    kwargs = config("--peering", "team-a").kopf_kwargs()
    assert kwargs["peering_name"] == "team-a"


def test_namespaces_and_all_namespaces_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        config("--namespace", "a", "--all-namespaces")


@pytest.mark.parametrize(
    "value", ["5", "nope", "100000"], ids=["shorter than a few scrapes", "not a number", "over a day"]
)
def test_a_service_level_window_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        config("--service-level-window", value)


@pytest.mark.parametrize("value", ["5", "20.5", "4000"])
def test_a_peering_lifetime_kopf_could_not_keep_alive_is_refused(value: str) -> None:
    with pytest.raises(SystemExit):
        config("--peering-lifetime", value)


def test_the_peering_lifetime_reaches_kopf() -> None:
    import kopf

    from neuronfleet.controller.settings import configure_kopf

    settings = kopf.OperatorSettings()
    configure_kopf(settings, config("--peering", "p", "--peering-lifetime", "20"))
    assert (settings.peering.name, settings.peering.lifetime) == ("p", 20)
