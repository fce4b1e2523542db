"""Start the real web app (shoppers' app and staff console) with the scripted RuleModel
(assistant/scripted_models.py) for browser and load tests.

python tests/ui_server.py --port P --index-state DIR [--network-log FILE]
(store, logs, saved conversations, staff password: $SHOPASSIST_STATE_DIR)

With --network-log, every non-loopback connection or name lookup is refused and recorded in FILE (a
line each), installed before anything else is imported: the app must start and serve without one.
"""

import argparse
import sys
from pathlib import Path

from network_guard import install

if "--network-log" in sys.argv:
    _log = Path(sys.argv[sys.argv.index("--network-log") + 1])
    _log.write_text("")

    def _record(what: str) -> None:
        with _log.open("a") as fh:
            fh.write(what + "\n")

    install(_record, "the test")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.offline import enforce_offline  # noqa: E402

enforce_offline()

from assistant.scripted_models import RuleModel as ScriptedModel  # noqa: E402
from assistant.store import Store  # noqa: E402
from retrieval.chroma_index import chroma_client, open_collection  # noqa: E402
from retrieval.search import ProductSearch  # noqa: E402
from ui.app import serve  # noqa: E402
from ui.serve import make_hub  # noqa: E402
from ui.staff import staff_login  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--index-state", type=Path, required=True, help="state dir holding the Chroma index")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--network-log", type=Path, help="refuse and record non-loopback connections here")
    args = parser.parse_args()
    search = ProductSearch(open_collection(chroma_client(args.index_state / "chroma"), "tau-retail", create=False))
    with Store.open("tau-retail") as store:
        hub = make_hub(ScriptedModel(args.delay), store, search, "tau-retail")
        print(f"ready on {args.port}", flush=True)
        serve(hub, staff_login(), port=args.port)


if __name__ == "__main__":
    main()
