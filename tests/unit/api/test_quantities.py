"""Kubernetes quantities as exact numbers, as the API server reads them."""

from __future__ import annotations

import pytest

from neuronfleet.api import quantities


@pytest.mark.parametrize(
    ("value", "number"),
    [
        pytest.param("32Gi", 32 * 2**30, id="binary suffix"),
        pytest.param("500m", 0.5, id="milli"),
        pytest.param("1k", 1000, id="decimal suffix"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param(".5", 0.5, id="a leading dot"),
        pytest.param(8000, 8000, id="plain int"),
        pytest.param("vllm:0.1", None, id="not a quantity"),
        pytest.param(True, None, id="a boolean is not a number"),
    ],
)
def test_quantities_parse_like_the_api_server(value: object, number: float | None) -> None:
    parsed = quantities.parse(value)
    assert (None if parsed is None else float(parsed)) == number
