"""Refuse and record every non-loopback connection or name lookup (stdlib only: import it first).

Used by the subprocess probes (tests/offline_probe.py, tests/ui_server.py) to show that indexing,
search and the web app need no network.
"""

import ipaddress
import socket
from collections.abc import Callable

_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def install(record: Callable[[str], None], who: str) -> None:
    """From now on, non-loopback connects and lookups raise and are passed to `record`."""

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else None
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(host):
            record(f"connect {address}")
            raise OSError(101, f"network is disabled by {who}")
        return _connect(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not is_loopback(host):
            record(f"resolve {host}")
            raise socket.gaierror(-2, f"network is disabled by {who}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = guarded_connect
    socket.getaddrinfo = guarded_getaddrinfo
