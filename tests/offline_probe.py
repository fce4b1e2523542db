"""Index and query a catalog with every non-loopback connection refused; prints a JSON report.

Run by tests/test_offline.py in a fresh interpreter, so model loading is covered too. The guard is
installed before anything else is imported.
"""

import ipaddress
import json
import socket
import sys

attempts: list[str] = []
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
        attempts.append(f"connect {address}")
        raise OSError(101, "network is disabled by offline_probe")
    return _connect(self, address)


def guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_loopback(host):
        attempts.append(f"resolve {host}")
        raise socket.gaierror(-2, "network is disabled by offline_probe")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = guarded_connect
socket.getaddrinfo = guarded_getaddrinfo

from assistant.offline import enforce_offline  # noqa: E402

enforce_offline()

from retrieval.catalog import read_catalog_file  # noqa: E402
from retrieval.chroma_index import chroma_client, index_catalog, open_collection  # noqa: E402
from retrieval.search import ProductSearch  # noqa: E402

catalog, chroma_path = sys.argv[1], sys.argv[2]
collection = open_collection(chroma_client(chroma_path), "offline")
report = index_catalog(collection, read_catalog_file(catalog), progress=False)
hits = ProductSearch(collection).search("waterproof boots for hiking", k=2)
print(json.dumps({"indexed": report.upserted, "hits": [h.item_id for h in hits], "attempts": attempts}))
