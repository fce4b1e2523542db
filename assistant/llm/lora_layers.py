"""peft's unmerged LoRA layers, computed without peft's per-call bookkeeping.

On CPU, a decode step is small enough that peft's Python around each of the 210 LoRA projections (module
calls for the base layer, dropout and both factors, adapter loops, dtype checks) is a large part of
the adapter's cost: the shipped adapter decoded 12.0 tokens/s through peft's forward and 13.3 with the
same arithmetic done directly (bf16, 2 cores, Intel Xeon with AMX; `bench/agent_bench.py speed`, one
run, docs/BENCHMARKS.md). Merging would remove the cost but changes decisions in bf16
(`transformers_backend`), so the same operations run in the same order and dtypes as
`peft.tuners.lora.layer.Linear.forward`: the logits are bit for bit peft's (tests/test_llm.py).
"""

import torch
import torch.nn.functional as F


def lean_lora(network: torch.nn.Module) -> int:
    """Replace the forward of each plain, unmerged, single-adapter LoRA linear layer in `network` with the
    direct computation; layers peft computes otherwise (DoRA and other variants, merged, several adapters,
    biased factors) keep peft's. Training mode falls back to peft's forward (dropout). Returns how many."""
    from peft.tuners.lora.layer import Linear

    replaced = 0
    for layer in network.modules():
        if not isinstance(layer, Linear) or layer.merged or layer.disable_adapters:
            continue
        if list(layer.active_adapters) != ["default"] or layer.lora_variant or "default" not in layer.lora_A:
            continue
        if layer.lora_B["default"].bias is not None or not isinstance(layer.base_layer, torch.nn.Linear):
            continue
        layer.forward = _direct(layer)
        replaced += 1
    return replaced


def peft_lora(network: torch.nn.Module) -> int:
    """Undo `lean_lora`: every layer it replaced runs peft's own forward again (benches and tests compare
    the two). Returns how many."""
    replaced = [layer for layer in network.modules() if "forward" in vars(layer)]
    for layer in replaced:
        del layer.forward  # the instance attribute `lean_lora` set; the class's forward shows through
    return len(replaced)


def _direct(layer):
    peft_forward = layer.forward
    base, a, b = layer.base_layer, layer.lora_A["default"], layer.lora_B["default"]
    scaling = layer.scaling["default"]

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if layer.training or args or kwargs:
            return peft_forward(x, *args, **kwargs)
        result = F.linear(x, base.weight, base.bias)
        dtype = result.dtype
        result = result + F.linear(F.linear(x.to(a.weight.dtype), a.weight), b.weight) * scaling
        return result.to(dtype)

    return forward
