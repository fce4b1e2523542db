"""Index and query a catalog with every non-loopback connection refused; prints a JSON report.

Run by tests/test_offline.py in a fresh interpreter, so model loading is covered too. The guard is
installed before anything else is imported.
"""

import json
import sys

from network_guard import install

attempts: list[str] = []
install(attempts.append, "offline_probe")

from retrieval.offline import enforce_offline  # noqa: E402

enforce_offline()

from retrieval.catalog import read_catalog_file  # noqa: E402
from retrieval.chroma_index import chroma_client, index_catalog, open_collection  # noqa: E402
from retrieval.search import ProductSearch  # noqa: E402

catalog, chroma_path = sys.argv[1], sys.argv[2]
collection = open_collection(chroma_client(chroma_path), "offline")
report = index_catalog(collection, read_catalog_file(catalog), progress=False)
hits = ProductSearch(collection).search("waterproof boots for hiking", k=2)
print(json.dumps({"indexed": report.upserted, "hits": [h.item_id for h in hits], "attempts": attempts}))
