"""GGUF files the llama.cpp backend derives once and caches beside the converted checkpoints (model cache).

- `base_gguf`: the packaged 4-bit weights re-encoded for the CPU. llama.cpp has no batched (GEMM)
  kernel for Q4_1, so a prompt runs at about its decode speed (343 tokens/s here); the same weights
  dequantized to bf16 — the numbers the transformers bf16 path computes with — prefill 2.5x faster on a
  CPU with native bf16, and Q8_0 1.75x faster (`bench/agent_bench.py speed`, `llamacpp_weights`).
- `base_gguf(..., adapter=...)`: the same with a peft LoRA adapter merged into the matrices in float32
  before they are encoded (W + alpha/r * B @ A, as peft's `merge_and_unload`): llama.cpp then runs no
  adapter products at all (an unmerged adapter cost a quarter of the decode speed, 101 against 76 tokens/s
  on an AVX2 CPU, `bench/agent_bench.py speed`).
- `lora_gguf`: a peft LoRA adapter as a llama.cpp LoRA GGUF (kept for `SHOPASSIST_MERGE_LORA=0` and the
  packaged 4-bit file), in the layout llama.cpp's `convert_lora_to_gguf.py` writes (metadata
  `general.type = adapter`, `adapter.type = lora`, `adapter.lora.alpha`; per target weight
  `<gguf name>.lora_a` shaped (r, in) and `.lora_b` shaped (out, r)).

llama.cpp stores Llama's query and key rows permuted for its rotary layout, so a LoRA's `lora_b` rows
(merged or not) are permuted the same way.

Both are built with the `gguf` package (reader, writer, quantizers, tensor-name map), written to a
temporary name and renamed, and keyed by their source.
"""

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from assistant.config import model_cache_dir
from assistant.llm.base import ModelError

PEFT_PREFIX = "base_model.model."


def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute, on the output rows (HF rotate-half → llama.cpp interleaved)."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _derived(name: str, write) -> Path:
    """`<model cache>/gguf/<name>`, written by `write(path)` on first use; never half-written under that name."""
    target = model_cache_dir() / "gguf" / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as tmp:
            try:
                write(Path(tmp.name))
            except BaseException:
                os.unlink(tmp.name)
                raise
        os.replace(tmp.name, target)
    return target


FORMATS = {"bf16": "BF16", "f16": "F16", "q8_0": "Q8_0"}


def read_cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def has_amx(cpu_flags: str | None = None) -> bool:
    """Intel AMX tiles: llama.cpp's AMX weight buffers crash our multi-row decodes there (0.3.36)."""
    return "amx_tile" in (read_cpu_flags() if cpu_flags is None else cpu_flags)


def weight_format(cpu_flags: str | None = None) -> str:
    """The weights llama.cpp runs fastest on this CPU (`bench/agent_bench.py speed`, `llamacpp_weights`):

    - `f16`, with the adapter merged (`merges_adapter`), on CPUs without AMX: on an AVX2-only AMD EPYC
      prefill 458 against Q8_0's 344 tokens/s and the shipped agent's turn 1.27 s p50 against 1.84 s; on an
      AMD EPYC with avx512_bf16 (2026-12-07) the full tool-using turn 1.24 s p50 / 2.98 s p95 against
      1.46–1.62 / 3.35–3.83 s for bf16 with the adapter unmerged (2 runs each), decode after 1,000 tokens
      115 against 92 tokens/s, τ dev 164 against 175 s, and every core-suite decision the reference's;
    - `q8_0` on AMX CPUs, where llama.cpp's extra weight buffers stay off (`has_amx`): prefill as bf16's
      (455 against 451 tokens/s), decode faster (31.7 against 28.2 after 1,000 tokens).

    `SHOPASSIST_WEIGHTS` overrides: `bf16`, `f16`, `q8_0`, or `q4_1` for the packaged file as it is."""
    chosen = os.environ.get("SHOPASSIST_WEIGHTS", "").strip().lower()
    if chosen:
        if chosen not in FORMATS and chosen != "q4_1":
            raise ModelError(f"SHOPASSIST_WEIGHTS must be one of {', '.join([*FORMATS, 'q4_1'])}, got {chosen!r}")
        return chosen
    return "q8_0" if has_amx(cpu_flags) else "f16"


def merges_adapter(fmt: str) -> bool:
    """Whether the adapter is merged into `fmt` weights rather than run by llama.cpp as a LoRA at every step.

    Merged only into f16, whose 11-bit mantissa keeps the adapter's small update: next-token KL against the
    float32 reference 0.0006 merged, 0.0042 unmerged, and 66 against 57 tokens/s decode on an AVX2 CPU.
    bf16 would round the update to 8 bits (merged in bf16 on transformers, 6 of 122 suite decisions
    changed) and Q8_0 doubled the KL (0.0071 against 0.0031). `SHOPASSIST_MERGE_LORA=0` or `1` decides."""
    chosen = os.environ.get("SHOPASSIST_MERGE_LORA", "").strip()
    if chosen not in ("", "0", "1"):
        raise ModelError(f"SHOPASSIST_MERGE_LORA must be 0 or 1, got {chosen!r}")
    return chosen == "1" if chosen else fmt == "f16"


def base_gguf(packaged: Path, fmt: str, adapter: Path | None = None, base_config: dict | None = None) -> Path:
    """The packaged GGUF with its Q4_1 matrices in `fmt` (the packaged file itself for `q4_1`), with
    `adapter` merged into them when given (`base_config`: the model's config.json, for the tensor names)."""
    if fmt == "q4_1" and adapter is None:
        return packaged
    stat = packaged.stat()
    key = f"{packaged}:{stat.st_size}:{stat.st_mtime_ns}"
    if adapter is not None:
        key += ":" + _adapter_digest(adapter)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    merged = "" if adapter is None else f"-{Path(adapter).name}"
    name = f"{packaged.stem}{merged}-{fmt}-{digest}.gguf"
    if (cached := model_cache_dir() / "gguf" / name).is_file():
        return cached
    if adapter is None and not _has_q4_1(packaged):  # reading the tensor table takes seconds: only before converting
        return packaged
    deltas = lora_deltas(Path(adapter), base_config or {}) if adapter is not None else {}
    what = "with the adapter merged " if deltas else ""
    print(f"shopassist: re-encoding {packaged.name} {what}as {fmt} for llama.cpp (once, seconds) ...", file=sys.stderr)
    return _derived(name, lambda out: write_base_gguf(packaged, fmt, out, deltas))


def _has_q4_1(path: Path) -> bool:
    import gguf

    return any(t.tensor_type == gguf.GGMLQuantizationType.Q4_1 for t in gguf.GGUFReader(str(path)).tensors)


def write_base_gguf(packaged: Path, fmt: str, out: Path, deltas: dict[str, np.ndarray] | None = None) -> None:
    """`deltas`: float32 updates by GGUF tensor name, added to those matrices before they are encoded."""
    import gguf
    from gguf.quants import dequantize, quantize

    deltas = deltas or {}
    kind = getattr(gguf.GGMLQuantizationType, FORMATS.get(fmt, "Q4_1"))
    reader = gguf.GGUFReader(str(packaged))
    missing = set(deltas) - {t.name for t in reader.tensors}
    if missing:
        raise ModelError(f"{packaged.name} has no tensors {sorted(missing)[:3]} for the adapter")
    writer = gguf.GGUFWriter(str(out), reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    for field in reader.fields.values():  # metadata copied as gguf's own gguf_new_metadata script does
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        array = field.types[0] == gguf.GGUFValueType.ARRAY
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=field.types[-1] if array else None)
    for tensor in reader.tensors:
        if tensor.name in deltas:
            merged = dequantize(tensor.data, tensor.tensor_type) + deltas[tensor.name]
            writer.add_tensor(tensor.name, quantize(merged, kind), raw_dtype=kind)
        elif tensor.tensor_type == gguf.GGMLQuantizationType.Q4_1 and kind != tensor.tensor_type:
            writer.add_tensor(tensor.name, quantize(dequantize(tensor.data, tensor.tensor_type), kind), raw_dtype=kind)
        else:  # norms (F32) and the Q8_0 embedding stay as they are
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _adapter_digest(adapter: Path) -> str:
    weights = Path(adapter) / "adapter_model.safetensors"
    return hashlib.sha256(weights.read_bytes() + (Path(adapter) / "adapter_config.json").read_bytes()).hexdigest()[:16]


def lora_pairs(adapter: Path, base_config: dict) -> tuple[float, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The adapter's alpha and, by llama.cpp weight name (`blk.0.attn_q.weight`), its float32 (A, B) pairs in
    llama.cpp's layout."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA" or config.get("use_dora") or config.get("use_rslora"):
        raise ModelError(f"{adapter}: only plain LoRA adapters can run on llama.cpp")
    if base_config.get("model_type") != "llama":
        kind = base_config.get("model_type")
        raise ModelError(f"{adapter}: the llama.cpp adapter export supports Llama models, not {kind}")
    n_head, n_kv = base_config["num_attention_heads"], base_config["num_key_value_heads"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base_config["num_hidden_layers"])
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    pairs = {}
    for key in sorted(k for k in tensors if k.endswith(".lora_A.weight")):
        module = key.removeprefix(PEFT_PREFIX).removesuffix(".lora_A.weight")
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise ModelError(f"{adapter}: no llama.cpp tensor for {module}")
        lora_a = tensors[key].astype(np.float32)
        lora_b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        if module.endswith("self_attn.q_proj"):
            lora_b = _permute(lora_b, n_head)
        elif module.endswith("self_attn.k_proj"):
            lora_b = _permute(lora_b, n_kv)
        pairs[name] = (np.ascontiguousarray(lora_a), np.ascontiguousarray(lora_b))
    return float(config["lora_alpha"]), pairs


def lora_deltas(adapter: Path, base_config: dict) -> dict[str, np.ndarray]:
    """alpha/r * B @ A per llama.cpp weight name: what `merge_and_unload` adds to each weight."""
    alpha, pairs = lora_pairs(adapter, base_config)
    return {name: (alpha / a.shape[0]) * (b @ a) for name, (a, b) in pairs.items()}


def lora_gguf(adapter: Path, base_config: dict) -> Path:
    """The llama.cpp GGUF of a peft LoRA folder (written on first use, keyed by the adapter's content)."""
    digest = _adapter_digest(adapter)
    return _derived(f"lora-{adapter.name}-{digest}.gguf", lambda out: write_lora_gguf(adapter, base_config, out))


def write_lora_gguf(adapter: Path, base_config: dict, out: Path) -> None:
    import gguf

    alpha, pairs = lora_pairs(adapter, base_config)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name, (lora_a, lora_b) in pairs.items():
        writer.add_tensor(f"{name}.lora_a", lora_a)
        writer.add_tensor(f"{name}.lora_b", lora_b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
