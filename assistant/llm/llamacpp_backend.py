"""Optional backend: llama.cpp (`pip install shopassist[llamacpp]`, compiles from source) on a packaged GGUF.

Roughly 5x faster decoding than transformers on CPU. Prompts use the same text format as the other
backends (rendered with the model's own tokenizer and template); a tool call is constrained by
llama.cpp's grammar built from the tool's JSON schema (free maps such as search_products' `options` are
left out: the grammar cannot bound them). It cannot load LoRA adapters saved by peft.
"""

import json
import time
from typing import Any

from assistant.llm.base import GenerationSettings, OnText, PromptProfile, ToolChoice
from assistant.llm.checkpoints import BASE_MODELS, ModelNotFoundError, resolve_checkpoint
from assistant.llm.decoding import TOOL_CLOSE, TOOL_OPEN
from assistant.llm.prompting import to_template_messages
from assistant.llm.transformers_backend import STOP_STRINGS, _call_id, load_tokenizer
from assistant.messages import ChatMessage, ToolCall


class LlamaCppChatModel:
    def __init__(self, model: str = "smollm2", threads: int = 2, settings: GenerationSettings | None = None):
        from llama_cpp import Llama

        if model not in BASE_MODELS:
            raise ModelNotFoundError(
                f"the llama.cpp backend runs the packaged GGUF models only: {', '.join(BASE_MODELS)}"
            )
        self.name = f"{model}-llamacpp"
        self.tokenizer = load_tokenizer(resolve_checkpoint(model))
        self.llm = Llama(model_path=str(BASE_MODELS[model].gguf_path()), n_threads=threads, n_ctx=8192, verbose=False)
        self.settings = settings or GenerationSettings()
        self.profile = PromptProfile.base()
        self._grammars: dict[str, Any] = {}

    def _prompt(self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None) -> str:
        return self.tokenizer.apply_chat_template(
            to_template_messages(messages, tools), tokenize=False, add_generation_prompt=True
        )

    def _grammar(self, tools: list[dict[str, Any]]):
        from llama_cpp import LlamaGrammar

        key = json.dumps([t["function"]["name"] for t in tools])
        if key not in self._grammars:
            calls = [
                {
                    "type": "object",
                    "properties": {
                        "name": {"const": t["function"]["name"]},
                        "arguments": _bounded(t["function"]["parameters"]),
                    },
                    "required": ["name", "arguments"],
                }
                for t in tools
            ]
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps({"oneOf": calls}), verbose=False)
        return self._grammars[key]

    def generate(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: ToolChoice = "auto",
        on_text: OnText | None = None,
    ) -> ChatMessage:
        started = time.perf_counter()
        prompt = self._prompt(messages, tools)
        if tools and tool_choice == "auto":
            # let the model open its answer; if it starts a tool call, write the call under the grammar
            head = self.llm(prompt, max_tokens=3, temperature=0.0)["choices"][0]["text"]
            tool_choice = "required" if TOOL_OPEN.startswith(head.strip()[:3] or "-") else "none"
        if tools and tool_choice == "required":
            out = self.llm(prompt + TOOL_OPEN, max_tokens=400, temperature=0.0, grammar=self._grammar(tools))
            data = json.loads(out["choices"][0]["text"], strict=False)  # llama.cpp's grammar lets raw newlines in
            message = ChatMessage("assistant", tool_call=ToolCall(data["name"], data["arguments"], _call_id()))
        else:
            text = ""
            for chunk in self.llm(
                prompt,
                max_tokens=self.settings.max_new_tokens,
                temperature=self.settings.temperature,
                top_p=self.settings.top_p,
                stop=[*STOP_STRINGS, TOOL_CLOSE],
                stream=True,
            ):
                piece = chunk["choices"][0]["text"]
                text += piece
                if on_text is not None and not text.startswith("<"):
                    on_text(piece)
            message = ChatMessage("assistant", text.strip())
        message.meta["seconds"] = round(time.perf_counter() - started, 4)
        return message


def _bounded(schema: Any) -> Any:
    """The schema with string and list lengths bounded, so a call cannot run past the token budget."""
    if isinstance(schema, list):
        return [_bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "object" and not schema.get("properties") and schema.get("additionalProperties"):
        # llama.cpp's grammar cannot bound the number of entries of a free map; such arguments are left out
        return {"type": "object", "properties": {}, "additionalProperties": False}
    out = {k: _bounded(v) for k, v in schema.items()}
    if out.get("type") == "string" and "enum" not in out:
        out.setdefault("maxLength", 120)
    if out.get("type") == "array":
        out.setdefault("maxItems", 12)
    return out
