"""``host:port`` strings as Go's ``net`` package reads and writes them.

Listen addresses are resolved the way ``net.ResolveTCPAddr`` does before a
bind; the resolved form (``127.0.0.1:PORT``, ``[::1]:PORT``) is what the API
reports. Errors carry Go's wording (``missing port in address``, ``no such
host``) because the API returns them verbatim with status 500.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

__all__ = ["AddressError", "format_addr", "resolve_tcp", "split_host_port"]

DEFAULT_LISTEN_HOST = "127.0.0.1"


class AddressError(ValueError):
    """An address Go would refuse; ``str()`` is Go's message."""


def split_host_port(addr: str) -> tuple[str, str]:
    """Split ``host:port`` / ``[v6]:port`` like Go's ``net.SplitHostPort``."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise AddressError(f"address {addr}: missing ']' in address")
        host, rest = addr[1:end], addr[end + 1 :]
        if not rest.startswith(":"):
            raise AddressError(f"address {addr}: missing port in address")
        return host, rest[1:]
    colon = addr.rfind(":")
    if colon < 0:
        raise AddressError(f"address {addr}: missing port in address")
    host, port = addr[:colon], addr[colon + 1 :]
    if ":" in host:
        raise AddressError(f"address {addr}: too many colons in address")
    return host, port


def _parse_port(addr: str, port: str) -> int:
    if port.isdigit():
        value = int(port)
        if value <= 65535:
            return value
        raise AddressError(f"address {addr}: invalid port")
    if port == "":
        return 0
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise AddressError(f"lookup tcp/{port}: unknown port") from None


def format_addr(host: str, port: int) -> str:
    """``host:port`` with IPv6 hosts bracketed, as Go's ``TCPAddr.String``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


async def resolve_tcp(addr: str) -> tuple[str, int]:
    """Resolve addr to ``(ip, port)``, preferring IPv4 like Go for ``localhost``.

    An empty host means 127.0.0.1 (the real server binds every interface; we
    deliberately do not). Raises :class:`AddressError`.
    """
    host, port_text = split_host_port(addr)
    port = _parse_port(addr, port_text)
    if host == "":
        return DEFAULT_LISTEN_HOST, port
    literal = _literal_ip(host)
    if literal is not None:
        return literal, port
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise AddressError(f"lookup {host}: no such host") from None
    if not infos:
        raise AddressError(f"lookup {host}: no such host")
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0]), port
