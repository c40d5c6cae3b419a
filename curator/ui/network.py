"""Where the app may listen."""

from __future__ import annotations

import ipaddress
import socket


class UnsafeBindAddress(ValueError):
    pass


def check_bind_address(host: str) -> None:
    """Refuse to listen beyond this machine without a login (``curator serve --login``)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise UnsafeBindAddress(f"cannot resolve host {host!r}: {exc}") from None
    if not all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses):
        raise UnsafeBindAddress(
            f"refusing to listen on {host!r} without a login: it is reachable from other "
            "machines; add accounts (curator annotator add NAME) and use --login, or keep "
            "--host 127.0.0.1"
        )
