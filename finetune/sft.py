"""Supervised fine-tuning of the agent on dialogue logs.

Run: `shopassist train sft --config finetune/configs/smollm2_lora.yaml`
  or `python -m finetune.sft --config finetune/configs/smollm2_lora.yaml`


transformers `Trainer` + peft LoRA (or full fine-tuning). Each dialogue is rendered exactly as the
backend renders it at inference (same chat template, same tool list, same tool-call text), and the loss
covers only what the assistant writes — its replies and tool calls with their end-of-turn marker —
never the system prompt, customer turns or tool outputs. Length-grouped batches, optional gradient
checkpointing, checkpoints every `save_steps` (a re-run resumes from the newest), a loss-curve PNG, and
the adapter saved with `shopassist.json`, the prompt profile the model was trained with.
"""

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.dialogues import Dialogue, load_dialogues
from assistant.llm.base import PromptProfile
from assistant.llm.prompting import to_template_messages
from assistant.messages import ChatMessage
from assistant.prompts import render
from assistant.tools import ToolRegistry
from retrieval.errors import ShopassistError

IGNORE = -100


class ConfigError(ShopassistError, ValueError):
    """The training config is unreadable or has unknown or invalid fields."""


@dataclass
class SFTConfig:
    data: list[str]  # dialogue JSONL files (docs/DATA.md)
    output_dir: str = "runs/sft"
    model: str = "smollm2"  # packaged base model or checkpoint folder
    store_name: str = "tau-retail"
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    max_length: int = 1536
    batch_size: int = 4
    grad_accum: int = 1
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    warmup_ratio: float = 0.05
    gradient_checkpointing: bool = False
    bf16: bool = True  # bf16 autocast where the hardware has it (GPUs, CPUs with avx512_bf16/AMX)
    logging_steps: int = 5
    save_steps: int = 50
    seed: int = 0
    threads: int | None = None
    skip: int = 0  # leave out the first N dialogues (of the data files in order), e.g. those an earlier stage saw
    limit: int = 0  # then use only the first N dialogues (0 = all)
    init_adapter: str | None = None  # continue training this saved LoRA adapter (a second stage) instead of a new one
    profile: PromptProfile = field(default_factory=PromptProfile.fine_tuned)

    @classmethod
    def from_yaml(cls, path: Path) -> "SFTConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from None
        return cls.from_dict(raw or {}, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> "SFTConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: a config is a mapping of fields (data: [...], model: ...), got {raw!r:.40}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if not raw.get("data"):
            raise ConfigError(f"{where}: 'data' must list at least one dialogue JSONL file")
        raw = dict(raw)
        if isinstance(raw.get("profile"), dict):
            fields = {f.name for f in dataclasses.fields(PromptProfile)}
            if bad := sorted(set(raw["profile"]) - fields):
                known = ", ".join(sorted(fields))
                raise ConfigError(f"{where}: unknown profile field(s) {', '.join(bad)}; known: {known}")
            raw["profile"] = PromptProfile(**raw["profile"])
        defaults = cls(data=["x"])
        for name, value in raw.items():  # YAML gives strings for typos such as `batch_size: four`
            want = getattr(defaults, name)
            if isinstance(want, bool) and not isinstance(value, bool):
                raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")
            if isinstance(want, int | float) and not isinstance(want, bool):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
            if name == "data" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"{where}: data must be a list of file paths, got {value!r}")
        config = cls(**raw)
        if config.batch_size < 1 or config.grad_accum < 1 or config.max_length < 64:
            raise ConfigError(f"{where}: batch_size and grad_accum must be ≥ 1 and max_length ≥ 64")
        if config.init_adapter is not None:
            if config.full_finetune:
                raise ConfigError(f"{where}: init_adapter continues a LoRA adapter; it cannot go with full_finetune")
            if not (Path(config.init_adapter) / "adapter_config.json").is_file():
                raise ConfigError(f"{where}: init_adapter {config.init_adapter} holds no adapter_config.json")
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- rendering with the loss mask --------------------------------------------------------------------


def _render(tokenizer, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def encode_dialogue(
    tokenizer, messages: list[ChatMessage], tools: list[dict[str, Any]], brief_tools: bool, max_length: int
) -> dict[str, list[int]]:
    """Token ids and labels: labels are -100 everywhere except the assistant's own text and end marker."""
    rendered = to_template_messages(messages, tools, brief_tools)
    ids: list[int] = []
    labels: list[int] = []
    done = ""

    def add(text: str, learn: bool) -> None:
        piece = tokenizer.encode(text, add_special_tokens=False) if text else []
        ids.extend(piece)
        labels.extend(piece if learn else [IGNORE] * len(piece))

    for i, message in enumerate(rendered):
        upto = _render(tokenizer, rendered[: i + 1])
        if message["role"] == "assistant":
            header = _render(tokenizer, rendered[:i], generation_prompt=True) if i else ""
            if not upto.startswith(header) or not header.startswith(done):
                raise ValueError("the chat template is not append-only; cannot mask the loss by turn")
            add(header[len(done) :], learn=False)
            body = upto[len(header) :]
            answer = body.rstrip("\n")
            add(answer, learn=True)  # the reply or tool call and the end-of-turn marker
            add(body[len(answer) :], learn=False)
        else:
            if not upto.startswith(done):
                raise ValueError("the chat template is not append-only; cannot mask the loss by turn")
            add(upto[len(done) :], learn=False)
        done = upto
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


def build_examples(config: SFTConfig, tokenizer) -> tuple[list[dict[str, list[int]]], dict[str, int]]:
    dialogues: list[Dialogue] = []
    for path in config.data:
        dialogues += load_dialogues(Path(path))
    dialogues = dialogues[config.skip :]
    if config.limit:
        dialogues = dialogues[: config.limit]
    tools = ToolRegistry().schemas() if config.profile.tools_in_prompt else []
    system = render(config.profile.system_prompt, store_name=config.store_name)
    examples, truncated = [], 0
    for d in dialogues:
        messages = [m for m in d.messages if m.role != "system"]
        example = encode_dialogue(
            tokenizer, [ChatMessage("system", system), *messages], tools, config.profile.brief_tools, 10**9
        )
        if len(example["input_ids"]) > config.max_length:
            truncated += 1
            example = {k: v[: config.max_length] for k, v in example.items()}
        if any(label != IGNORE for label in example["labels"]):
            examples.append(example)
    stats = {
        "dialogues": len(dialogues),
        "examples": len(examples),
        "truncated": truncated,
        "tokens": sum(len(e["input_ids"]) for e in examples),
        "trained_tokens": sum(sum(label != IGNORE for label in e["labels"]) for e in examples),
    }
    return examples, stats


# --- training -----------------------------------------------------------------------------------------


class PadCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [self.pad_id] * (width - len(b["input_ids"])) for b in batch]
        labels = [b["labels"] + [IGNORE] * (width - len(b["labels"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def plot_losses(history: list[dict[str, Any]], out: Path) -> Path | None:
    points = [(h["step"], h["loss"]) for h in history if "loss" in h]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (assistant tokens)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


Examples = tuple[list[dict[str, list[int]]], dict[str, int]]  # token rows with loss masks, and their counts


def train(config: SFTConfig, examples: Examples | None = None, about: dict[str, Any] | None = None) -> Path:
    """Train and save the adapter (or full model) under `output_dir/final`; returns that folder.

    `examples`: rows built by another task's builder (the ranker's, `finetune.tallrec`) instead of
    `config.data`'s dialogues; `about` is added to the saved `shopassist.json`."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, set_seed

    from assistant.llm.checkpoints import resolve_checkpoint
    from assistant.llm.transformers_backend import cpu_has_bf16, load_tokenizer, set_threads

    print(yaml.safe_dump({"resolved config": config.to_dict()}, sort_keys=False), file=sys.stderr)
    set_threads(config.threads)
    set_seed(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = resolve_checkpoint(config.model)
    tokenizer = load_tokenizer(checkpoint)
    examples, stats = examples if examples is not None else build_examples(config, tokenizer)
    print(f"data: {json.dumps(stats)}", file=sys.stderr)
    if not examples:
        raise ConfigError("no training examples: the data files hold no assistant turns")

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if config.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    elif not config.full_finetune:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=config.lora_targets,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"trainable parameters: {trainable:,}", file=sys.stderr)

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        warmup_steps=math.ceil(config.warmup_ratio * _total_steps(config, len(examples))),
        lr_scheduler_type="cosine",
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        train_sampling_strategy="group_by_length",  # length bucketing: similar lengths waste less padding
        report_to=[],
        seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=config.bf16 and (torch.cuda.is_available() or cpu_has_bf16()),  # autocast; LoRA weights stay fp32
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_ListDataset(examples),
        data_collator=PadCollator(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
    )
    resume = any((out / "checkpoints").glob("checkpoint-*"))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - started

    final = out / "final"
    trainer.model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    history = trainer.state.log_history
    summary = {
        "base_model": config.model,
        "profile": dataclasses.asdict(config.profile),
        "config": config.to_dict(),
        "data": stats,
        "train_seconds": round(seconds, 1),
        "steps": trainer.state.global_step,
        "train_loss": round(result.training_loss, 4),
        "tokens_per_second": round(stats["tokens"] * max(config.epochs, 0) / seconds, 1)
        if config.max_steps < 0
        else None,
        **(about or {}),
    }
    (final / "shopassist.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "log_history.json").write_text(json.dumps(history, indent=2) + "\n")
    plot_losses(history, out / "loss.png")
    print(json.dumps({k: summary[k] for k in ("steps", "train_loss", "train_seconds")}), file=sys.stderr)
    return final


def _total_steps(config: SFTConfig, n: int) -> int:
    if config.max_steps > 0:
        return config.max_steps
    return math.ceil(n / (config.batch_size * config.grad_accum) * config.epochs)


class _ListDataset:
    """A list as a map-style dataset; `group_by_length` reads the lengths from `input_ids`."""

    def __init__(self, rows: list[dict[str, list[int]]]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.rows[i]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from retrieval.offline import enforce_offline

    enforce_offline()
    parser = argparse.ArgumentParser(prog="python -m finetune.sft", description="LoRA / full SFT of the agent model")
    parser.add_argument("--config", type=Path, required=True, help="YAML config (finetune/configs/)")
    args = parser.parse_args(argv)
    try:
        print(train(SFTConfig.from_yaml(args.config)))
    except ShopassistError as exc:
        print(f"finetune.sft: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
