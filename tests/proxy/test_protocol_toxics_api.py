"""The protocol toxics through the HTTP API: typed attributes, defaults, clear refusals."""

from __future__ import annotations

import pytest

from resilience.proxy import ToxiproxyClient
from resilience.proxy.client import ToxiproxyAPIError


@pytest.fixture
def proxy(client: ToxiproxyClient) -> str:
    client.create_proxy("pg", listen="127.0.0.1:0", upstream="127.0.0.1:9")
    return "pg"


def test_protocol_toxics_are_listed_by_our_server(client: ToxiproxyClient) -> None:
    types = client.toxic_types()
    assert types is not None
    assert {"postgres_error", "redis_error", "latency"} <= types


def test_postgres_error_defaults_and_typed_attributes(client: ToxiproxyClient, proxy: str) -> None:
    toxic = client.add_toxic(proxy, "postgres_error", stream="upstream")
    assert toxic.attributes == {"sqlstate": "40001", "message": "", "rate": 1, "prefix": ""}
    updated = client.update_toxic(proxy, toxic.name, attributes={"rate": 0.25, "prefix": "UPDATE"})
    assert updated.attributes["rate"] == 0.25
    assert updated.attributes["sqlstate"] == "40001"  # an update merges


@pytest.mark.parametrize(
    ("toxic", "stream", "attributes", "message"),
    [
        ("postgres_error", "downstream", {}, "works on the upstream stream only"),
        ("postgres_error", "upstream", {"sqlstate": "4001"}, "sqlstate must be an error SQLSTATE"),
        ("postgres_error", "upstream", {"sqlstate": "00000"}, "sqlstate must be an error SQLSTATE"),
        ("postgres_error", "upstream", {"rate": 1.5}, "rate must be a share between 0 and 1"),
        ("postgres_error", "upstream", {"rate": "half"}, "cannot unmarshal string"),
        ("redis_error", "upstream", {"error": "BAD\r\nX"}, "must be a non-empty line"),
        ("redis_error", "upstream", {"commands": 5}, "cannot unmarshal number"),
    ],
)
def test_bad_protocol_toxic_attributes_are_a_400_naming_the_problem(
    client: ToxiproxyClient,
    proxy: str,
    toxic: str,
    stream: str,
    attributes: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ToxiproxyAPIError, match=message) as caught:
        client.add_toxic(proxy, toxic, stream=stream, attributes=attributes)  # type: ignore[arg-type]
    assert caught.value.status == 400
