"""The HTTP API answers exactly as Toxiproxy 2.12 (TOXIPROXY.md §2-§4, §11)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from resilience.proxy import ProxyServerProcess, ToxiproxyClient

from .conftest import UpstreamServers, connect, recv_exact


@pytest.fixture
def http(server: ProxyServerProcess, client: ToxiproxyClient) -> httpx.Client:
    with httpx.Client(base_url=server.api_url, timeout=5.0) as session:
        yield session


def err(response: httpx.Response) -> tuple[int, str]:
    assert response.text.endswith("\n")
    body = json.loads(response.text)
    assert body["status"] == response.status_code
    return response.status_code, body["error"]


def make(http: httpx.Client, name: str = "p1", **extra: object) -> dict[str, object]:
    body = {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", **extra}
    response = http.post("/proxies", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_version_body_and_content_type(http: httpx.Client) -> None:
    response = http.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert len(response.headers["x-toxiproxy-request-id"]) == 20


def test_unknown_path_trailing_slash_and_wrong_method(http: httpx.Client) -> None:
    for path in ("/nope", "/proxies/", "/proxies/a/toxics/", "/"):
        response = http.get(path)
        assert response.status_code == 404
        assert response.text == "404 page not found\n"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
    for method, path in (("PUT", "/proxies"), ("DELETE", "/reset"), ("HEAD", "/version")):
        response = http.request(method, path)
        assert response.status_code == 405
        assert response.content == b""


def test_browser_user_agent_is_forbidden(http: httpx.Client) -> None:
    response = http.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert response.status_code == 403
    assert response.text == "User agent not allowed\n"


def test_metrics_is_404_without_flags(http: httpx.Client) -> None:
    assert http.get("/metrics").status_code == 404


def test_create_proxy_shape_and_bound_listen(http: httpx.Client) -> None:
    response = http.post(
        "/proxies", json={"name": "p1", "listen": "localhost:0", "upstream": "x:1"}
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "toxics"]
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert body["upstream"] == "x:1"
    assert body["enabled"] is True
    assert body["toxics"] == []
    assert http.get("/proxies/p1").json() == body
    assert http.get("/proxies").json() == {"p1": body}


def test_create_proxy_errors(http: httpx.Client) -> None:
    make(http)
    cases = [
        (b"", 400, "bad request body: EOF"),
        (b'{"name": "x"', 400, "bad request body: unexpected EOF"),
        (
            b"[]",
            400,
            "bad request body: json: cannot unmarshal array into Go value of type toxiproxy.Proxy",
        ),
        (
            b'{"name": 5}',
            400,
            "bad request body: json: cannot unmarshal number into Go struct "
            "field Proxy.name of type string",
        ),
        (
            b'{"name":"a","upstream":"b","enabled":"yes"}',
            400,
            "bad request body: json: cannot "
            "unmarshal string into Go struct field Proxy.enabled of type bool",
        ),
        (b'{"upstream": "x:1"}', 400, "missing required field: name"),
        (b'{"name": "", "upstream": ""}', 400, "missing required field: name"),
        (b'{"name": "z"}', 400, "missing required field: upstream"),
        (b'{"name": "p1", "upstream": "x:1"}', 409, "proxy already exists"),
        (
            b'{"name": "q", "upstream": "x:1", "listen": "local373"}',
            500,
            "listen tcp: address local373: missing port in address",
        ),
    ]
    for body, status, message in cases:
        assert err(http.post("/proxies", content=body)) == (status, message), body


def test_create_on_port_in_use_is_500_and_adds_nothing(http: httpx.Client) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        response = http.post(
            "/proxies", json={"name": "q", "listen": f"127.0.0.1:{port}", "upstream": "x:1"}
        )
        assert err(response) == (
            500,
            f"listen tcp 127.0.0.1:{port}: bind: address already in use",
        )
    assert http.get("/proxies/q").status_code == 404


def test_trailing_garbage_unknown_fields_and_case_insensitive_names(http: httpx.Client) -> None:
    response = http.post(
        "/proxies",
        content=b'{"NAME":"g","Upstream":"u:1","listen":"127.0.0.1:0","x":1} trailing garbage',
    )
    assert response.status_code == 201
    assert response.json()["name"] == "g"


def test_created_disabled_echoes_listen_and_refuses(http: httpx.Client) -> None:
    body = make(http, "d", enabled=False)
    assert body["listen"] == "127.0.0.1:0"
    assert body["enabled"] is False


def test_proxy_not_found_everywhere(http: httpx.Client) -> None:
    for method, path in (
        ("GET", "/proxies/x"),
        ("POST", "/proxies/x"),
        ("PATCH", "/proxies/x"),
        ("DELETE", "/proxies/x"),
        ("GET", "/proxies/x/toxics"),
        ("POST", "/proxies/x/toxics"),
        ("GET", "/proxies/x/toxics/t"),
        ("PATCH", "/proxies/x/toxics/t"),
        ("DELETE", "/proxies/x/toxics/t"),
    ):
        assert err(http.request(method, path)) == (404, "proxy not found"), (method, path)


def test_update_proxy(http: httpx.Client, upstreams: UpstreamServers) -> None:
    first = make(http, upstream=f"127.0.0.1:{upstreams.echo_port}")
    port = int(str(first["listen"]).rsplit(":", 1)[1])
    assert err(http.patch("/proxies/p1", content=b"")) == (400, "bad request body: EOF")
    sock = connect(port)
    sock.sendall(b"hi")
    assert recv_exact(sock, 2) == b"hi"
    # same addresses, enabled true: nothing changes, the connection survives
    same = http.post("/proxies/p1", json={"enabled": True, "name": "ignored"})
    assert same.status_code == 200
    assert same.json() == first
    sock.sendall(b"again")
    assert recv_exact(sock, 5) == b"again"
    # disable: connection closed, connects refused, port kept for re-enable
    off = http.patch("/proxies/p1", json={"enabled": False}).json()
    assert off["enabled"] is False
    assert off["listen"] == first["listen"]
    assert sock.recv(10) == b""
    sock.close()
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    on = http.patch("/proxies/p1", json={"enabled": True}).json()
    assert on["listen"] == first["listen"]
    # a new :0 listen always restarts on a fresh port
    moved = http.patch("/proxies/p1", json={"listen": "127.0.0.1:0"}).json()
    assert moved["listen"] != first["listen"]
    assert err(http.patch("/proxies/p1", json={"listen": "nosuchhost.invalid:1"}))[0] == 500


def test_delete_proxy(http: httpx.Client) -> None:
    make(http)
    response = http.delete("/proxies/p1")
    assert response.status_code == 204
    assert response.content == b""
    assert http.get("/proxies").json() == {}


def test_toxic_create_defaults_shape_and_status_200(http: httpx.Client) -> None:
    make(http)
    response = http.post("/proxies/p1/toxics", json={"type": "latency"})
    assert response.status_code == 200
    assert response.content == (
        b'{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream",'
        b'"type":"latency","stream":"downstream","toxicity":1}'
    )
    up = http.post(
        "/proxies/p1/toxics",
        json={
            "type": "slicer",
            "stream": "UpStream",
            "toxicity": 0.3,
            "attributes": {"average_size": 8},
        },
    ).json()
    assert up["name"] == "slicer_UpStream"
    assert up["stream"] == "UpStream"
    assert up["toxicity"] == 0.3
    assert up["attributes"] == {"average_size": 8, "size_variation": 0, "delay": 0}
    listed = http.get("/proxies/p1/toxics").json()
    assert [t["name"] for t in listed] == ["slicer_UpStream", "latency_downstream"]
    assert http.get("/proxies/p1").json()["toxics"] == listed


def test_every_toxic_type_has_all_attributes_zero_filled(http: httpx.Client) -> None:
    make(http)
    expected = {
        "latency": {"latency": 0, "jitter": 0},
        "bandwidth": {"rate": 0},
        "slow_close": {"delay": 0},
        "timeout": {"timeout": 0},
        "reset_peer": {"timeout": 0},
        "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},
        "limit_data": {"bytes": 0},
        "noop": {},
    }
    for type_name, attrs in expected.items():
        sent = {"average_size": 1} if type_name == "slicer" else {}
        body = http.post("/proxies/p1/toxics", json={"type": type_name, "attributes": sent})
        assert body.status_code == 200, body.text
        assert body.json()["attributes"] == attrs


def test_toxic_create_errors_in_order(http: httpx.Client) -> None:
    make(http)
    http.post("/proxies/p1/toxics", json={"type": "latency", "name": "dup", "stream": "upstream"})
    prefix = "bad request body: json: cannot unmarshal "
    cases = [
        (b"", (400, "bad request body: EOF")),
        (
            b'{"type":"latency","stream":"sideways"}',
            (400, "stream was invalid, can be either upstream or downstream"),
        ),
        (
            b'{"type":"nope","stream":""}',
            (400, "stream was invalid, can be either upstream or downstream"),
        ),
        (b'{"type":"nope"}', (400, "invalid toxic type")),
        (b'{"type":"down"}', (400, "invalid toxic type")),
        (b"{}", (400, "invalid toxic type")),
        (b'{"type":"timeout","name":"dup"}', (409, "toxic already exists")),
        (
            b'{"type":"latency","attributes":{"latency":"1"}}',
            (400, prefix + "string into Go struct field .attributes.latency of type int64"),
        ),
        (
            b'{"type":"latency","attributes":{"latency":1.5}}',
            (400, prefix + "number 1.5 into Go struct field .attributes.latency of type int64"),
        ),
        (
            b'{"type":"latency","attributes":[1,2]}',
            (
                400,
                prefix + "array into Go struct field ToxicWrapper.attributes of type "
                "toxics.NoopToxic",
            ),
        ),
        (
            b'{"type":"latency","toxicity":"x"}',
            (400, prefix + "string into Go struct field ToxicWrapper.toxicity of type float32"),
        ),
        (
            b'{"type":"bandwidth","attributes":{"rate":-1}}',
            (400, "invalid attribute: bandwidth rate must be >= 0 (KB/s)"),
        ),
        (
            b'{"type":"slicer","attributes":{"average_size":0}}',
            (400, "invalid attribute: slicer average_size must be >= 1 (bytes)"),
        ),
        (
            b'{"type":"slicer"}',
            (400, "invalid attribute: slicer average_size must be >= 1 (bytes)"),
        ),
    ]
    for body, expected in cases:
        assert err(http.post("/proxies/p1/toxics", content=body)) == expected, body


def test_toxicity_and_negative_values_are_echoed(http: httpx.Client) -> None:
    make(http)
    body = http.post(
        "/proxies/p1/toxics",
        json={"type": "latency", "toxicity": 2.5, "attributes": {"latency": -5, "x": 1}},
    ).json()
    assert body["toxicity"] == 2.5
    assert body["attributes"] == {"latency": -5, "jitter": 0}


def test_toxic_update_merges_and_ignores_identity_fields(http: httpx.Client) -> None:
    make(http)
    http.post("/proxies/p1/toxics", json={"type": "latency", "attributes": {"latency": 9}})
    response = http.patch(
        "/proxies/p1/toxics/latency_downstream",
        json={"attributes": {"jitter": 7}, "name": "x", "type": "timeout", "stream": "upstream"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "attributes": {"latency": 9, "jitter": 7},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    again = http.post("/proxies/p1/toxics/latency_downstream", json={"toxicity": 0.5}).json()
    assert again["toxicity"] == 0.5
    assert again["attributes"] == {"latency": 9, "jitter": 7}
    assert err(http.patch("/proxies/p1/toxics/none", json={})) == (404, "toxic not found")
    assert err(http.patch("/proxies/p1/toxics/latency_downstream", content=b"{")) == (
        400,
        "bad request body: unexpected EOF",
    )


def test_toxic_get_and_delete(http: httpx.Client) -> None:
    make(http)
    created = http.post("/proxies/p1/toxics", json={"type": "noop", "name": "n"}).json()
    assert http.get("/proxies/p1/toxics/n").json() == created
    response = http.delete("/proxies/p1/toxics/n")
    assert response.status_code == 204
    assert response.content == b""
    assert err(http.get("/proxies/p1/toxics/n")) == (404, "toxic not found")
    assert err(http.delete("/proxies/p1/toxics/n")) == (404, "toxic not found")


def test_reset_enables_and_removes_toxics(http: httpx.Client) -> None:
    make(http, enabled=False)
    http.post("/proxies/p1/toxics", json={"type": "latency"})
    response = http.post("/reset", content=b"garbage")
    assert response.status_code == 204
    assert response.content == b""
    proxy = http.get("/proxies/p1").json()
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []


def test_populate(http: httpx.Client) -> None:
    assert http.post("/populate", json=[]).content == b'{"proxies":null}'
    entries = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": "x:1"},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": "x:2", "enabled": False},
    ]
    response = http.post("/populate", json=entries)
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [p["name"] for p in proxies] == ["a", "b"]
    assert proxies[1]["listen"] == "127.0.0.1:0"
    assert proxies[1]["enabled"] is False
    # an identical entry is kept (toxics too), whatever its enabled says
    a_listen = proxies[0]["listen"]
    http.post("/proxies/a/toxics", json={"type": "noop"})
    same = [{"name": "a", "listen": a_listen, "upstream": "x:1", "enabled": False}]
    kept = http.post("/populate", json=same).json()["proxies"][0]
    assert kept["enabled"] is True
    assert len(kept["toxics"]) == 1
    # a :0 listen always replaces it: new port, toxics gone
    fresh = http.post("/populate", json=entries[:1]).json()["proxies"][0]
    assert fresh["listen"] != a_listen
    assert fresh["toxics"] == []


def test_populate_errors(http: httpx.Client) -> None:
    response = http.post("/populate", json=[{"name": "a", "upstream": "x:1"}, {"upstream": "y"}])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.content == (
        b'{"error":"missing required field: name at proxy 2","status":400,"proxies":null}'
    )
    assert http.get("/proxies").json() == {}
    missing = http.post("/populate", json=[{"name": "a"}]).json()
    assert missing["error"] == "missing required field: upstream at proxy 1"
    obj = http.post("/populate", json={"name": "a"}).json()
    assert obj["status"] == 400
    assert obj["error"].startswith(
        "bad request body: json: cannot unmarshal object into Go value of type []struct"
    )
    partial = http.post(
        "/populate",
        json=[
            {"name": "ok", "listen": "127.0.0.1:0", "upstream": "x:1"},
            {"name": "bad", "listen": "local373", "upstream": "x:1"},
            {"name": "never", "listen": "127.0.0.1:0", "upstream": "x:1"},
        ],
    )
    assert partial.status_code == 500
    body = partial.json()
    assert body["error"] == "listen tcp: address local373: missing port in address"
    assert [p["name"] for p in body["proxies"]] == ["ok"]
    assert sorted(http.get("/proxies").json()) == ["ok"]


def test_error_headers(http: httpx.Client) -> None:
    response = http.get("/proxies/nope")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == b'{"error":"proxy not found","status":404}\n'


def test_proxies_are_keyed_by_name_in_sorted_order(http: httpx.Client) -> None:
    for name in ("zeta", "alpha", "mid"):
        make(http, name)
    assert list(http.get("/proxies").json()) == ["alpha", "mid", "zeta"]
