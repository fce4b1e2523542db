"""How a conversation becomes model text: the tool list in the system prompt, tool calls and results as turns.

This is the contract between the backends and the fine-tuning data (finetune/ writes the same text):
an assistant tool call is `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, a tool result is a
turn with role `tool`. SmolLM2's own template is plain ChatML, which takes any role; gemma-3-270m (base)
ships no template, so it gets the Gemma turn format below.
"""

import json
import re
from typing import Any

from assistant.llm.decoding import TOOL_CLOSE, TOOL_OPEN
from assistant.messages import ChatMessage

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>"
    "{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MAX_OBSERVATION_CHARS = 2000  # long tool results (a product with 40 variants) are cut to keep prompts short
# Control strings of the chat formats we serve (ChatML, Gemma, Llama 3). Typed by a shopper or found in a
# catalog description they would otherwise be read by the tokenizer as real turn boundaries.
TURN_MARKERS = ("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>")
_PIPE_MARKER = re.compile(r"<(?=\|)")  # <|im_start|>, <|im_end|>, <|endoftext|>, <|eot_id|>, ...
_JOINER = "\u2060"  # word joiner: invisible, and no tokenizer has a special token containing it


def defuse(text: str, markers: tuple[str, ...] = ()) -> str:
    """`text` with every turn marker broken by an invisible joiner, so it is read as text, never as a
    special token. `markers`: the tokenizer's own special tokens, beyond the known formats."""
    if "<" not in text:
        return text
    text = _PIPE_MARKER.sub("<" + _JOINER, text)
    for marker in (*TURN_MARKERS, *markers):
        if len(marker) > 1 and marker in text:
            text = text.replace(marker, marker[0] + _JOINER + marker[1:])
    return text


_TYPE_NAMES = {"string": "str", "number": "number", "integer": "int", "boolean": "bool", "object": "object"}


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    return _TYPE_NAMES.get(schema.get("type", ""), "any")


def describe_tools(tools: list[dict[str, Any]], brief: bool = False) -> str:
    """One compact line per tool: `name(arg: type, optional?: type): description` (no description if brief)."""
    lines = []
    for tool in tools:
        fn = tool["function"]
        params = fn["parameters"].get("properties", {})
        required = set(fn["parameters"].get("required", []))
        args = ", ".join(f"{k}{'' if k in required else '?'}: {_type_name(v)}" for k, v in params.items())
        lines.append(f"- {fn['name']}({args})" + ("" if brief else f": {fn['description']}"))
    return "\n".join(lines)


def tools_section(tools: list[dict[str, Any]], brief: bool = False) -> str:
    return (
        "\n\nTools. To use one, answer with only a tool call, such as\n"
        f'{TOOL_OPEN}{{"name": "search_products", "arguments": {{"query": "running shoes"}}}}{TOOL_CLOSE}\n'
        "and wait for its result. Otherwise answer the customer in plain words.\n" + describe_tools(tools, brief)
    )


def render_tool_call(name: str, arguments: dict[str, Any]) -> str:
    return f"{TOOL_OPEN}{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}{TOOL_CLOSE}"


def bounded_observation(content: str) -> str:
    content = compact_json(content)
    return content[:MAX_OBSERVATION_CHARS] + " ...(cut)" if len(content) > MAX_OBSERVATION_CHARS else content


def to_template_messages(
    messages: list[ChatMessage],
    tools: list[dict[str, Any]] | None,
    brief_tools: bool = False,
    markers: tuple[str, ...] = (),
) -> list[dict[str, str]]:
    """Role/content dicts for a chat template; the tool list is appended to the system message. Every
    content has its turn markers defused (`defuse`): only the template writes turns."""
    out: list[dict[str, str]] = []
    for message in messages:
        content = message.content
        if message.role == "assistant" and message.tool_call is not None:
            content = render_tool_call(message.tool_call.name, message.tool_call.arguments)
        elif message.role == "tool":
            content = bounded_observation(content)
        out.append({"role": message.role, "content": defuse(content, markers)})
    if tools:
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + tools_section(tools, brief_tools)}
        else:
            out.insert(0, {"role": "system", "content": tools_section(tools, brief_tools).lstrip()})
    return out


def compact_json(text: str) -> str:
    """A JSON tool result without the spaces after separators (about 15% fewer tokens); other text as is."""
    if text[:1] not in "{[":
        return text
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except json.JSONDecodeError:
        return text


def parse_tool_call(text: str) -> tuple[str, dict[str, Any]] | None:
    """Parse unconstrained output (remote endpoints, or measuring how often free decoding fails)."""
    body = text.strip()
    if body.startswith(TOOL_OPEN):
        body = body[len(TOOL_OPEN) :]
    body = body.split(TOOL_CLOSE, 1)[0].strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    return (data["name"], arguments) if isinstance(arguments, dict) else None
