"""toxiproxy-python (the reference client) drives every feature it has."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.utils import can_connect_to

from resilience.proxy import ProxyServerProcess, ToxiproxyClient

from .conftest import UpstreamServers, connect, recv_exact


@pytest.fixture
def tp(server: ProxyServerProcess, client: ToxiproxyClient) -> Iterator[toxiproxy.Toxiproxy]:
    from toxiproxy.api import APIConsumer

    previous = (APIConsumer.host, APIConsumer.port)
    api = toxiproxy.Toxiproxy()
    api.update_api_consumer("127.0.0.1", server.port)
    yield api
    api.update_api_consumer(*previous)  # its API address is process-wide state


def test_version_and_running(tp: toxiproxy.Toxiproxy) -> None:
    assert tp.running()
    assert tp.version() == b'{"version": "2.12.0"}\n'


def test_create_list_get_destroy(tp: toxiproxy.Toxiproxy) -> None:
    proxy = tp.create(upstream="localhost:3306", name="mysql")
    host, port = proxy.listen.split(":")
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert set(tp.proxies()) == {"mysql"}
    assert tp.get_proxy("mysql").listen == proxy.listen
    with pytest.raises(ProxyExists):
        tp.create(upstream="localhost:3306", name="mysql")
    assert tp.destroy(proxy)
    assert tp.get_proxy("mysql") is None
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxics_add_list_destroy(tp: toxiproxy.Toxiproxy, upstreams: UpstreamServers) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{upstreams.echo_port}", name="echo")
    proxy.add_toxic(type="latency", attributes={"latency": 120})
    proxy.add_toxic(type="timeout", stream="upstream", name="t", toxicity=0.0)
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "t"}
    latency = toxics["latency_downstream"]
    assert latency.attributes == {"latency": 120, "jitter": 0}
    assert latency.toxicity == 1
    port = int(proxy.listen.split(":")[1])
    sock = connect(port)
    started = time.perf_counter()
    sock.sendall(b"ping")
    assert recv_exact(sock, 4) == b"ping"
    assert time.perf_counter() - started >= 0.119
    sock.close()
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="sideways")
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency")
    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.get_toxic("latency_downstream") is None
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_down_disables_and_keeps_port_and_toxics(
    tp: toxiproxy.Toxiproxy, upstreams: UpstreamServers
) -> None:
    proxy = tp.create(upstream=f"127.0.0.1:{upstreams.echo_port}", name="echo")
    proxy.add_toxic(type="latency", attributes={"latency": 1})
    port = int(proxy.listen.split(":")[1])
    with proxy.down():
        assert tp.get_proxy("echo").enabled is False
        with pytest.raises(ConnectionRefusedError):
            connect(port)
    again = tp.get_proxy("echo")
    assert again.enabled is True
    assert again.listen == proxy.listen
    assert set(again.toxics()) == {"latency_downstream"}
    sock = connect(port)
    sock.sendall(b"x")
    assert recv_exact(sock, 1) == b"x"
    sock.close()


def test_reset_and_populate_and_destroy_all(tp: toxiproxy.Toxiproxy) -> None:
    proxy = tp.create(upstream="localhost:3306", name="one")
    host, port = proxy.listen.split(":")
    proxy.disable()
    assert not can_connect_to(host, int(port))
    proxy.add_toxic(type="latency", attributes={"latency": 123})
    assert tp.reset()
    assert can_connect_to(host, int(port))
    assert tp.get_proxy("one").enabled is True
    assert tp.get_proxy("one").listen == proxy.listen
    assert proxy.toxics() == {}
    created = tp.populate(
        [
            {"name": "one", "upstream": "localhost:3306", "listen": tp.get_proxy("one").listen},
            {"name": "two", "upstream": "localhost:3307", "listen": "127.0.0.1:0"},
        ]
    )
    assert [p.name for p in created] == ["two"]
    tp.destroy_all()
    assert tp.proxies() == {}
