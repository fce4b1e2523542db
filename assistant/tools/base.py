"""Declaring tools once: the JSON schema is generated from the function's signature and docstring.

    @tool(writes=True)
    def cancel_pending_order(ctx: ToolContext, order_id: str, reason: Literal["no longer needed", ...]) -> str:
        '''Cancel a pending order. ...

        Args:
            order_id: The order id, such as '#W0000000'. Include the leading '#'.
            reason: Why the customer cancels.
        '''

A parameter without a description under `Args:` fails at import, so schemas never go undocumented.
Calls go through `Tool.invoke`, which validates arguments against the schema and turns every failure
into an observation string starting with "Error: " that the model can act on.
"""

import inspect
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from retrieval.errors import ShopassistError

if typing.TYPE_CHECKING:
    from assistant.store import Store
    from retrieval.search import ProductSearch


class Ranker(typing.Protocol):
    """What `rank_products` needs: `CTRRanker`, `PopularityRanker` or any retailer's own model."""

    method: str

    def rank(self, user_id: str, item_ids: list[str]) -> list[dict[str, Any]]: ...


class ToolDefinitionError(TypeError):
    """A tool is declared wrongly (our bug, raised at import)."""


class ToolInputError(ValueError):
    """The model called a tool with arguments that do not fit its schema."""


class ToolError(ShopassistError):
    """A tool refused the request (order not found, wrong status...); the message is the observation."""


@dataclass
class ToolContext:
    """What tools act on, passed in explicitly (never global): the store, search and ranking backends."""

    store: "Store"
    search: "ProductSearch | None" = None  # opened by the caller; None: search is not available
    ranker: Ranker | None = None  # None: the store's labelled popularity fallback


def _json_type(annotation: Any, where: str) -> dict[str, Any]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _json_type(args[0], where)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _json_type(args[1], where)}
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _json_type(rest[0], where)
    raise ToolDefinitionError(f"{where}: unsupported parameter type {annotation!r}")


def _parse_docstring(fn: Callable) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(fn) or ""
    head, _, args_block = doc.partition("\nArgs:\n")
    descriptions: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        match = re.match(r"^\s{2,4}(\w+):\s*(.*)$", line)
        if match:
            current = match.group(1)
            descriptions[current] = match.group(2).strip()
        elif current and line.strip():
            descriptions[current] += " " + line.strip()
    return " ".join(head.split()), descriptions


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., str] = field(repr=False)
    writes: bool = False  # changes the store: needs an authenticated customer and confirmation
    terminal: bool = False  # ends the conversation (hand-over to a human)

    def schema(self) -> dict[str, Any]:
        """OpenAI function-calling format."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        if not isinstance(arguments, dict):
            raise ToolInputError(f"arguments for {self.name} must be a JSON object")
        props, required = self.parameters["properties"], self.parameters["required"]
        unknown = sorted(set(arguments) - set(props))
        if unknown:
            raise ToolInputError(
                f"{self.name} got unexpected argument(s) {', '.join(unknown)}; it takes: {', '.join(props) or 'none'}"
            )
        missing = [p for p in required if p not in arguments]
        if missing:
            raise ToolInputError(f"{self.name} is missing required argument(s): {', '.join(missing)}")
        for name, value in arguments.items():
            problem = _type_problem(value, props[name])
            if problem:
                raise ToolInputError(f"argument '{name}' of {self.name} {problem}")
        return arguments

    def invoke(self, ctx: ToolContext, arguments: Any) -> str:
        """Run the tool; bad arguments and refusals come back as 'Error: ...' observations."""
        try:
            return self.fn(ctx, **self.validate(arguments))
        except (ToolInputError, ToolError) as exc:
            return f"Error: {exc}"


def _type_problem(value: Any, schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if value is None and kind != "null":
        return None if "default" in schema else "must not be null"
    if kind == "string":
        if not isinstance(value, str):
            return f"must be a string, got {json.dumps(value)[:40]}"
        if "enum" in schema and value not in schema["enum"]:
            return f"must be one of {', '.join(repr(e) for e in schema['enum'])}"
    elif kind == "array":
        if not isinstance(value, list):
            return "must be an array"
        for element in value:
            problem = _type_problem(element, schema["items"])
            if problem:
                return f"elements {problem.replace('must', 'must each')}"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "must be a number"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return "must be true or false"
    elif kind == "object":
        if not isinstance(value, dict):
            return "must be an object"
    return None


def tool(writes: bool = False, terminal: bool = False) -> Callable[[Callable[..., str]], Tool]:
    def declare(fn: Callable[..., str]) -> Tool:
        description, arg_docs = _parse_docstring(fn)
        if not description:
            raise ToolDefinitionError(f"tool {fn.__name__} needs a docstring")
        hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters.values())[1:]  # first parameter: the ToolContext
        properties: dict[str, Any] = {}
        required: list[str] = []
        for p in params:
            if p.name not in arg_docs:
                raise ToolDefinitionError(f"tool {fn.__name__}: parameter '{p.name}' is not described under Args:")
            prop = _json_type(hints[p.name], f"{fn.__name__}.{p.name}")
            prop["description"] = arg_docs[p.name]
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
            else:
                prop["default"] = p.default
            properties[p.name] = prop
        extra = set(arg_docs) - {p.name for p in params}
        if extra:
            raise ToolDefinitionError(f"tool {fn.__name__}: Args: describes unknown parameter(s) {sorted(extra)}")
        parameters = {"type": "object", "properties": properties, "required": required}
        return Tool(fn.__name__, description, parameters, fn, writes, terminal)

    return declare
