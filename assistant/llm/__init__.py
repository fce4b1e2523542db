"""Model backends behind one `generate(messages, tools) -> ChatMessage` interface.

`load_chat_model()` picks the backend from arguments or the environment:
- `SHOPASSIST_LLM_URL` set: an OpenAI-compatible endpoint (`SHOPASSIST_LLM_MODEL`, `SHOPASSIST_LLM_API_KEY`);
- otherwise a local model, `SHOPASSIST_MODEL` (a packaged base model name or a checkpoint folder) with
  `SHOPASSIST_ADAPTER` (a LoRA adapter folder; the shipped one by default) and `SHOPASSIST_THREADS`, on
  `SHOPASSIST_BACKEND`: `auto` (default) runs a packaged model on llama.cpp when llama-cpp-python is
  installed (`make install` builds it) and on transformers otherwise; `llamacpp` or `transformers` force one.
"""

import os
from pathlib import Path

from assistant.config import MODELS_DIR
from assistant.llm.base import ChatModel, GenerationSettings, ModelError, ToolChoice
from assistant.llm.checkpoints import BASE_MODELS, DEFAULT_MODEL, ModelNotFoundError

__all__ = [
    "BASE_MODELS",
    "DEFAULT_MODEL",
    "ChatModel",
    "GenerationSettings",
    "ModelError",
    "ModelNotFoundError",
    "ToolChoice",
    "load_chat_model",
]


def load_chat_model(
    model: str | None = None,
    adapter: str | Path | None = None,
    threads: int | None = None,
    url: str | None = None,
    settings: GenerationSettings | None = None,
    backend: str | None = None,
) -> ChatModel:
    url = url or os.environ.get("SHOPASSIST_LLM_URL")
    if url:
        from assistant.llm.openai_backend import OpenAIChatModel

        name = model or os.environ.get("SHOPASSIST_LLM_MODEL", "default")
        return OpenAIChatModel(url, name, os.environ.get("SHOPASSIST_LLM_API_KEY"), settings=settings)

    threads = threads or _env_threads()
    model = model or os.environ.get("SHOPASSIST_MODEL", DEFAULT_MODEL)
    adapter = adapter or os.environ.get("SHOPASSIST_ADAPTER") or shipped_adapter(model)
    if str(adapter).lower() == "none":
        adapter = None
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"no LoRA adapter at {adapter} (expected adapter_config.json there)")
    if pick_backend(model, backend) == "llamacpp":
        from assistant.llm.llamacpp_backend import LlamaCppChatModel

        return LlamaCppChatModel(model, adapter, threads, settings=settings)

    from assistant.llm.transformers_backend import TransformersChatModel

    return TransformersChatModel(
        model,
        adapter,
        threads,
        dtype=os.environ.get("SHOPASSIST_DTYPE", "auto"),
        settings=settings,
        merge_adapter={"0": False, "1": True}.get(os.environ.get("SHOPASSIST_MERGE_LORA", "")),  # unset: by dtype
    )


def pick_backend(model: str, backend: str | None = None) -> str:
    """`llamacpp` or `transformers`: llama.cpp runs the packaged GGUF files (not checkpoint folders).

    `auto` takes llama.cpp, except on CPUs with AMX: there llama.cpp's AMX kernels crash (0.3.36, so they
    stay off) while torch's bf16 matrix products run on the AMX tiles: τ customer-service turns took half
    the time on transformers (p50 2.53 s against 5.12 s), shopping turns longer (3.27 s against 2.02 s;
    docs/BENCHMARKS.md, 2026-12-03)."""
    backend = backend or os.environ.get("SHOPASSIST_BACKEND", "").strip() or "auto"
    if backend not in ("auto", "llamacpp", "transformers"):
        raise ModelError(f"SHOPASSIST_BACKEND must be auto, llamacpp or transformers, got {backend!r}")
    from assistant.llm.llamacpp_backend import available

    if backend == "llamacpp" and not available():
        raise ModelError("SHOPASSIST_BACKEND=llamacpp needs llama-cpp-python (`make install` builds it)")
    if backend == "llamacpp" and model not in BASE_MODELS:
        raise ModelNotFoundError(f"the llama.cpp backend runs the packaged models only ({', '.join(BASE_MODELS)})")
    if backend == "auto":
        from assistant.llm.gguf_files import has_amx

        return "llamacpp" if model in BASE_MODELS and available() and not has_amx() else "transformers"
    return backend


def _env_threads() -> int | None:
    value = os.environ.get("SHOPASSIST_THREADS", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ModelError(f"SHOPASSIST_THREADS must be a whole number ≥ 1, got {value!r}")
    return int(value)


def shipped_adapter(model: str) -> Path | None:
    """The fine-tuned adapter that ships for a packaged base model (`models/agent-smollm2`), if any."""
    path = MODELS_DIR / f"agent-{model}"
    return path if model in BASE_MODELS and (path / "adapter_config.json").is_file() else None
