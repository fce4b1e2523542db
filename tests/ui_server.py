"""Start the real Gradio app with the scripted model (tests/fakes.py) for browser and load tests.

python tests/ui_server.py --port P --index-state DIR   (store and logs under $SHOPASSIST_STATE_DIR)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from assistant.offline import enforce_offline  # noqa: E402

enforce_offline()

from fakes import ScriptedModel  # noqa: E402

from assistant.store import Store  # noqa: E402
from retrieval.chroma_index import chroma_client, open_collection  # noqa: E402
from retrieval.search import ProductSearch  # noqa: E402
from ui.app import build_app, launch  # noqa: E402
from ui.serve import make_hub  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--index-state", type=Path, required=True, help="state dir holding the Chroma index")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    search = ProductSearch(open_collection(chroma_client(args.index_state / "chroma"), "tau-retail", create=False))
    with Store.open("tau-retail") as store:
        hub = make_hub(ScriptedModel(args.delay), store, search, "tau-retail")
        print(f"ready on {args.port}", flush=True)
        launch(build_app(hub), port=args.port)


if __name__ == "__main__":
    main()
