"""Agent benchmark: turn latency, constrained vs free tool calls, decode speed per backend, pass^1 on tasks.

    .venv/bin/python bench/agent_bench.py speed                 # latency, validity, tokens/s (minutes)
    .venv/bin/python bench/agent_bench.py tasks --split dev     # pass^1 on tasks_dev.json (hours on 2 cores)
    .venv/bin/python bench/agent_bench.py tasks --split train100 --limit 20

speed, on bench/agent_prompts.jsonl (20 customer messages written for this benchmark, none from a task):
- a full tool-using turn, as the agent runs it for each message in a fresh conversation: one constrained
  tool call, run through the policy layer on a fresh store, then a streamed reply (max 200 new tokens);
  time to the call, time to the first reply token, and the whole turn. The shared system prompt is
  prefilled once in a warm-up and the search is warmed (as in a running server, where every conversation
  shares them). Greedy replies check tokens guessed from the conversation in batches (`draft_tokens`);
  `one_token_steps` is the same turn one token per step, in the same run, and how many replies came out
  the same (a batch's rounding can turn a near tie).
- the same messages as the shipped agent answers them (`agent_turn_s`): guided steps, legal tools only,
  the reply chosen among grounded options rather than written, so no 200-token stream.
- free decoding of the same first call (no constraint, `<tool_call>` prefilled): how many would not
  parse or would not match the tool's schema. Constrained calls are checked to be 100% valid.
- decode tokens/s of each backend on one prompt, greedy, 128 new tokens, alternating backends, 3 rounds:
  our decoder on the default backend (llama.cpp when installed), on transformers (bf16 and float32), and
  transformers' own `generate`, against llama.cpp's own generation on the same GGUF.
- on llama.cpp, prefill and decode tokens/s for each weight format (Q4_1 as packaged, Q8_0, f16, bf16) over a
  1,000-token prompt; and the peak resident memory of a process serving one call and one reply per backend.

Both use the default model (`--model smollm2` with its shipped adapter, as `shopassist chat`; `--adapter none`
for the base model with its in-context examples).

tasks: `shopassist eval tasks` machinery; results
are appended per task to bench/results/agent_tasks_<split>.jsonl, so an interrupted run resumes.
train100 = the fixed sample of 100 tasks_train.json tasks that training never sees
(`assistant.evaluation.held_out_sample`, random.Random(0)).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from retrieval.offline import enforce_offline

enforce_offline()

from assistant.llm import GenerationSettings, load_chat_model, pick_backend, shipped_adapter  # noqa: E402
from assistant.llm.gguf_files import read_cpu_flags  # noqa: E402
from assistant.llm.llamacpp_backend import LlamaCppChatModel, available  # noqa: E402
from assistant.llm.transformers_backend import TransformersChatModel  # noqa: E402
from assistant.messages import ChatMessage  # noqa: E402
from assistant.runtime import AgentSettings, agent_for_session, prompt_prefix  # noqa: E402
from assistant.store import Store, get_pack  # noqa: E402
from assistant.tools import ToolContext, ToolInputError, ToolRegistry  # noqa: E402

BENCH = Path(__file__).parent
RESULTS = BENCH / "results"
SHARED = Path(os.environ.get("SHOPASSIST_SHARED_DIR", BENCH.parent.parent / "shared")) / "data" / "tau-retail"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_prompts() -> list[str]:
    lines = (BENCH / "agent_prompts.jsonl").read_text().splitlines()
    return [json.loads(line)["message"] for line in lines if line.strip()]


def open_search():
    from assistant.runtime import open_search

    return open_search("tau-retail")


def conversation(message: str, profile=None) -> list[ChatMessage]:
    return [*prompt_prefix("tau-retail", profile), ChatMessage("user", message)]


def tool_turns(model, prompts: list[str], workdir: Path) -> dict:
    """The summary, and `replies`: each reply's text."""
    from assistant.policy import PolicySession

    registry = ToolRegistry()
    schemas = registry.schemas()
    model.generate(
        conversation("hello", model.profile), schemas, tool_choice="none"
    )  # warm-up: prefill the shared prefix
    call_s, first_token_s, turn_s, replies = [], [], [], []
    with Store(workdir / "bench.sqlite3", get_pack("tau-retail")) as store:
        search = open_search()
        search.warm()  # as the server does at start (the first search of a need embeds the product types)
        for message in prompts:
            session = PolicySession(registry, ToolContext(store, search))
            messages = conversation(message, model.profile)
            started = time.perf_counter()
            step = model.generate(messages, schemas, tool_choice="required")
            call_s.append(time.perf_counter() - started)
            registry.get(step.tool_call.name).validate(step.tool_call.arguments)  # constrained: always valid
            observation = session.call(step.tool_call.name, step.tool_call.arguments)
            messages += [step, ChatMessage("tool", observation, name=step.tool_call.name)]
            first: list[float] = []
            reply = model.generate(
                messages,
                schemas,
                tool_choice="none",
                on_text=lambda _t, first=first: first or first.append(time.perf_counter()),
            )
            turn_s.append(time.perf_counter() - started)
            first_token_s.append((first[0] if first else time.perf_counter()) - started)
            replies.append(reply.content)
    summary: dict = {"replies": replies}
    for name, values in (("tool_call_s", call_s), ("first_reply_token_s", first_token_s), ("full_turn_s", turn_s)):
        summary[name] = {"p50": round(statistics.median(values), 3), "p95": round(percentile(values, 0.95), 3)}
    return summary


def agent_turns(model, prompts: list[str], workdir: Path) -> dict:
    """Each message as the shipped agent answers it in a fresh conversation (`shopassist chat`): guided
    steps (legal tools, grounded replies), tools run through the policy layer, search included."""
    from assistant.runtime import new_agent

    workdir.mkdir(parents=True, exist_ok=True)
    with Store(workdir / "agent.sqlite3", get_pack("tau-retail")) as store:
        ctx = ToolContext(store, open_search())
        new_agent(model, ctx, "tau-retail").warm()  # as the server does at start: the shared prefix, the masks,
        ctx.search.warm()  # the embedding model (search and intent reader), index and catalog snapshot
        seconds, calls = [], []
        for message in prompts:
            agent = new_agent(model, ctx, "tau-retail")
            started = time.perf_counter()
            turn = agent.respond(message)
            seconds.append(time.perf_counter() - started)
            calls.append(turn.tool_calls)
    return {
        "p50": round(statistics.median(seconds), 3),
        "p95": round(percentile(seconds, 0.95), 3),
        "tool_calls_mean": round(statistics.mean(calls), 2),
    }


def free_decoding(checkpoint: str, adapter: str | None, prompts: list[str]) -> dict:
    registry = ToolRegistry()
    schemas = registry.schemas()
    settings = GenerationSettings(constrained=False)
    model = load_chat_model(checkpoint, adapter or "none", threads=2, settings=settings)
    unparsable = schema_invalid = 0
    for message in prompts:
        step = model.generate(conversation(message, model.profile), schemas, tool_choice="required")
        if step.tool_call is None:
            unparsable += 1
            continue
        try:
            if step.tool_call.name not in registry:
                raise ToolInputError("unknown tool")
            registry.get(step.tool_call.name).validate(step.tool_call.arguments)
        except ToolInputError:
            schema_invalid += 1
    n = len(prompts)
    return {
        "calls": n,
        "unparsable": unparsable,
        "schema_invalid": schema_invalid,
        "valid": n - unparsable - schema_invalid,
    }


def reference_llama(Llama, path: str):
    """llama.cpp's own `Llama` on `path`; on AMX CPUs without the extra weight buffers, as our backend runs
    (llama-cpp-python 0.3.36 segfaults in its AMX matrix kernel), and `Llama` has no option for them."""
    import llama_cpp.llama_cpp as lib

    from assistant.llm.gguf_files import has_amx

    defaults = lib.llama_model_default_params

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    if has_amx():
        lib.llama_model_default_params = without_extra_buffers
    try:
        return Llama(model_path=path, n_threads=2, n_ctx=2048, verbose=False)
    finally:
        lib.llama_model_default_params = defaults


def decode_speed(model, base: str, adapter: str | None, rounds: int = 3, new_tokens: int = 128) -> dict:
    """Tokens/s of the default model's own decode loop beside the other candidates and llama.cpp's own
    generation on the same GGUF (the reference), alternating, `rounds` rounds, median."""
    import torch

    messages = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Describe a good tent.")]
    ids = model.prompt_ids(messages, None)
    text_prompt = model.tokenizer.decode(ids)
    runners = {}

    def decoder_loop(backend):
        def run() -> int:
            # the backend's own loop (KV cache, greedy), without stopping early
            backend.decoder.reset()
            backend.decoder.start(ids)
            for _ in range(new_tokens):
                backend.decoder.feed([backend.decoder.next_token()])
            return new_tokens

        return run

    on_llamacpp = getattr(model, "backend", "") == "llama.cpp"
    default = f"shopassist decoder on {'llama.cpp' if on_llamacpp else 'transformers'} (the default)"
    runners[default] = decoder_loop(model)
    if available() and not on_llamacpp:  # the default is transformers here (AMX): llama.cpp beside it
        runners["shopassist decoder on llama.cpp"] = decoder_loop(LlamaCppChatModel(base, adapter, threads=2))
    if on_llamacpp and adapter is not None and model.weights != "q8_0, LoRA unmerged":
        runners["shopassist decoder on llama.cpp, q8_0 + LoRA unmerged (the AVX2 default before 2026-12-03)"] = (
            decoder_loop(LlamaCppChatModel(base, adapter, threads=2, weights="q8_0", merge=False))
        )
    if available() and adapter is not None:
        runners["shopassist decoder on llama.cpp, base model without the adapter"] = decoder_loop(
            LlamaCppChatModel(base, None, threads=2)
        )
    bf16 = TransformersChatModel(base, adapter, threads=2, merge_adapter=False)
    dtype = str(bf16.model.dtype).removeprefix("torch.")
    runners[f"transformers, shopassist decoder ({dtype}, LoRA unmerged: the fallback with bf16)"] = decoder_loop(bf16)
    if adapter is not None and dtype == "bfloat16":  # the same LoRA layers through peft's own forward
        from assistant.llm.lora_layers import peft_lora

        peft_own = TransformersChatModel(base, adapter, threads=2, merge_adapter=False)
        peft_lora(peft_own.model)
        runners[f"transformers, shopassist decoder ({dtype}, LoRA unmerged, peft's own forward)"] = decoder_loop(
            peft_own
        )

    def hf_generate() -> int:
        with torch.inference_mode():
            out = bf16.model.generate(
                torch.tensor([ids]), max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )
        return out.shape[1] - len(ids)

    runners[f"transformers generate() ({dtype})"] = hf_generate
    runners["transformers, shopassist decoder (float32, LoRA merged at load: the fallback without bf16)"] = (
        decoder_loop(TransformersChatModel(base, adapter, threads=2, dtype="float32"))
    )
    try:
        from llama_cpp import Llama

        from assistant.llm.checkpoints import BASE_MODELS

        llm = reference_llama(Llama, str(BASE_MODELS[base].gguf_path()))

        def llamacpp() -> int:
            out = llm(text_prompt, max_tokens=new_tokens, temperature=0.0, logit_bias={llm.token_eos(): -100.0})
            return out["usage"]["completion_tokens"]

        runners["llama.cpp (same GGUF)"] = llamacpp
    except ImportError:
        print("llama-cpp-python not installed: no llama.cpp reference", file=sys.stderr)
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            produced = run()
            speeds[name].append(produced / (time.perf_counter() - started))  # includes the prompt prefill
    result = {name: round(statistics.median(v), 1) for name, v in speeds.items()}
    if "llama.cpp (same GGUF)" in result:
        result["default / llama.cpp"] = round(result[default] / result["llama.cpp (same GGUF)"], 2)
    result["prompt_tokens"], result["new_tokens"], result["rounds"] = len(ids), new_tokens, rounds
    return result


PEAK_MEMORY = """
import json, sys
from assistant.llm import load_chat_model
from assistant.messages import ChatMessage
from assistant.tools import ToolRegistry
model = load_chat_model(sys.argv[1], sys.argv[2], threads=2)
messages = [ChatMessage("system", "You help shoppers."), ChatMessage("user", "find me a t-shirt under $60")]
model.generate(messages, ToolRegistry().schemas(), tool_choice="required")
model.generate(messages, tool_choice="none")
# VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's peak
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps(int(hwm.split()[1]) // 1024))
"""


def peak_memory_mb(base: str, adapter: str | None) -> dict:
    """Peak resident memory of a process that loads the model and serves one call and one reply, per backend."""
    import subprocess

    out = {}
    # llama.cpp beside a transformers default (AMX CPUs); where it is the default, "auto" measured it
    other = ["llamacpp"] if available() and pick_backend(base) != "llamacpp" else []
    for backend in ("auto", "transformers", *other):
        env = {**os.environ, "SHOPASSIST_BACKEND": backend}
        run = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, base, str(adapter or "none")],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out["default" if backend == "auto" else backend] = int(run.stdout.strip().splitlines()[-1])
    return out


def llamacpp_weights(base: str, adapter: str | None, prompt_tokens: int = 1000, new_tokens: int = 64) -> dict:
    """Prefill and decode tokens/s of the llama.cpp backend (with the adapter) per weight format, the
    choice `assistant.llm.gguf_files.weight_format` makes from the CPU, the adapter unmerged, and f16 with
    the adapter merged (`merges_adapter`); one warm-up, then 2 rounds, median."""
    out = {}
    rows = [(fmt, fmt, False) for fmt in ("q4_1", "q8_0", "f16", "bf16")]
    if adapter is not None:
        rows.append(("f16, LoRA merged", "f16", True))
    for row, fmt, merge in rows:
        model = LlamaCppChatModel(base, adapter, threads=2, weights=fmt, merge=merge)
        words = model.tokenizer.encode("A tent, a stove and a lamp for the hills. " * 200, add_special_tokens=False)
        prompt = words[:prompt_tokens]
        prefill, decode = [], []
        for _ in range(3):
            model.decoder.reset()
            started = time.perf_counter()
            model.decoder.start(prompt)
            prefill.append(len(prompt) / (time.perf_counter() - started))
            started = time.perf_counter()
            for _ in range(new_tokens):
                model.decoder.feed([model.decoder.next_token()])
            decode.append(new_tokens / (time.perf_counter() - started))
        out[row] = {
            f"prefill_{prompt_tokens}_tokens_per_s": round(statistics.median(prefill[1:])),
            f"decode_after_{prompt_tokens}_tokens_per_s": round(statistics.median(decode[1:]), 1),
        }
        del model
    return out


def batch_steps(model, prompt_tokens: int = 800, sizes: tuple[int, ...] = (1, 2, 4, 8, 16)) -> dict:
    """Milliseconds of one step feeding n tokens with every row's logits after a `prompt_tokens` prompt, as
    a guessed draft is checked (`feed_rows`), on the default backend; 7 tries each, median. A guess of n - 1
    tokens pays only where enough of it is kept to beat n - 1 single steps."""
    words = model.tokenizer.encode("A tent, a stove and a lamp for the hills. " * 200, add_special_tokens=False)
    prompt = words[:prompt_tokens]
    decoder = model.decoder
    decoder.reset()
    decoder.start(prompt)
    logits = decoder.logits
    out = {}
    for n in sizes:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            decoder.feed_rows(words[prompt_tokens : prompt_tokens + n])
            times.append(time.perf_counter() - started)
            decoder.rewind(n, logits)
        out[str(n)] = round(1000 * statistics.median(times), 1)
    decoder.reset()
    return out


def run_speed(args: argparse.Namespace) -> dict:
    prompts = load_prompts()
    model = load_chat_model(args.model, args.adapter or "none", threads=2)
    if args.decode_only:
        return {
            "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads 2",
            "model": model.name,
            "decode_tokens_per_s": decode_speed(model, args.model, args.adapter),
        }
    with tempfile.TemporaryDirectory() as tmp:
        turns = tool_turns(model, prompts, Path(tmp))
        if getattr(model, "settings", GenerationSettings()).draft_tokens:  # one token a step, same run
            drafting, model.settings = model.settings, replace(model.settings, draft_tokens=0)
            model.decoder.reset()
            (Path(tmp) / "steps").mkdir()
            plain = tool_turns(model, prompts, Path(tmp) / "steps")
            model.settings = drafting
            model.decoder.reset()
            same = sum(a == b for a, b in zip(turns["replies"], plain["replies"], strict=True))
            turns["one_token_steps"] = {**{k: v for k, v in plain.items() if k != "replies"}, "same_replies": same}
        del turns["replies"]
        turns["agent_turn_s"] = agent_turns(model, prompts, Path(tmp))
        if args.adapter and getattr(model, "weights", "") not in ("", "q8_0, LoRA unmerged"):  # before, same run
            before = LlamaCppChatModel(args.model, args.adapter, threads=2, weights="q8_0", merge=False)
            turns["agent_turn_s_q8_0_unmerged"] = agent_turns(before, prompts, Path(tmp) / "before")
            del before
        if args.adapter and getattr(model, "weights", "").startswith("f16") and "avx512_bf16" in read_cpu_flags():
            # bf16 with the adapter unmerged: the default with native bf16 until 2026-12-07, same run
            before = LlamaCppChatModel(args.model, args.adapter, threads=2, weights="bf16", merge=False)
            (Path(tmp) / "bf16").mkdir()
            turns["bf16_unmerged"] = tool_turns(before, prompts, Path(tmp) / "bf16")
            del turns["bf16_unmerged"]["replies"]
            turns["bf16_unmerged"]["agent_turn_s"] = agent_turns(before, prompts, Path(tmp) / "bf16")
            del before
        if available() and getattr(model, "backend", "") != "llama.cpp":  # the other local backend, same run
            other = LlamaCppChatModel(args.model, args.adapter, threads=2)
            turns["agent_turn_s_llamacpp"] = agent_turns(other, prompts, Path(tmp) / "llamacpp")
            del other
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads 2",
        "model": model.name,
        "prompts": len(prompts),
        "tool_turn": turns,
        "free_decoding": free_decoding(args.model, args.adapter, prompts),
        "decode_tokens_per_s": decode_speed(model, args.model, args.adapter),
        "batch_step_ms_after_800_tokens": batch_steps(model),
        "backend": getattr(model, "backend", "transformers"),
        "weights": getattr(model, "weights", str(getattr(getattr(model, "model", None), "dtype", ""))),
    }
    if available():
        result["llamacpp_weights"] = llamacpp_weights(args.model, args.adapter)
    del model  # the memory figure runs in its own processes, one model at a time
    result["peak_memory_mb"] = peak_memory_mb(args.model, args.adapter)
    return result


def run_tasks(args: argparse.Namespace) -> dict:
    from assistant.evaluation import Evaluator, held_out_sample, load_tasks, summarize

    if args.split == "dev":
        tasks = load_tasks(SHARED / "tasks_dev.json")
        indices = list(range(len(tasks)))
    else:
        tasks = load_tasks(SHARED / "tasks_train.json")
        indices = held_out_sample(len(tasks))
    indices = indices[: args.limit or None]
    model = load_chat_model(args.model, args.adapter or "none", threads=args.threads)
    search = open_search()

    def make_agent(session, task, store):
        session.ctx.search = search
        settings = AgentSettings(max_steps=args.max_steps, guided=not args.unguided)
        return agent_for_session(model, session, "tau-retail", settings)

    out = RESULTS / f"agent_tasks_{args.split}{args.tag}.jsonl"
    with tempfile.TemporaryDirectory() as work:
        evaluator = Evaluator(get_pack("tau-retail"), Path(work), make_agent, max_turns=args.max_turns)
        results = evaluator.run(tasks, indices, trials=1, out=out)
    summary = summarize(results, 1)
    summary.update(
        split=args.split,
        model=model.name,
        backend=getattr(model, "backend", "transformers"),
        guided=not args.unguided,
        max_turns=args.max_turns,
        max_steps=args.max_steps,
        threads=args.threads,
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "tasks"])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument(
        "--adapter", help="LoRA adapter folder; default: the shipped one for the model (models/agent-<model>); 'none'"
    )
    parser.add_argument("--threads", type=int, default=2, help="tasks: torch threads for the model")
    parser.add_argument("--tag", default="", help="suffix for the result files, e.g. -sft")
    parser.add_argument("--split", choices=["dev", "train100"], default="dev")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--max-turns", type=int, default=10)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--unguided", action="store_true", help="tasks: the model's free choices (no guidance)")
    parser.add_argument("--decode-only", action="store_true", help="speed: only the decode tokens/s table")
    args = parser.parse_args()
    # resolved here so every part of a run measures the same model (the shipped adapter, as `shopassist chat`)
    args.adapter = args.adapter or shipped_adapter(args.model)
    if str(args.adapter).lower() == "none":
        args.adapter = None
    RESULTS.mkdir(exist_ok=True)
    result = run_speed(args) if args.what == "speed" else run_tasks(args)
    tag = args.tag + ("-decode" if args.what == "speed" and args.decode_only else "")
    name = f"agent_speed{tag}.json" if args.what == "speed" else f"agent_tasks_{args.split}{args.tag}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
