"""Where the app may listen."""

from __future__ import annotations

import ipaddress
import socket


class UnsafeBindAddress(ValueError):
    pass


def check_bind_address(host: str) -> None:
    """Refuse to listen beyond this machine: the app has no login yet."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise UnsafeBindAddress(f"cannot resolve host {host!r}: {exc}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise UnsafeBindAddress(
            f"refusing to listen on {host!r}: it is reachable from other machines and the app "
            "has no login yet; use --host 127.0.0.1 (and an SSH tunnel to reach it remotely)"
        )
