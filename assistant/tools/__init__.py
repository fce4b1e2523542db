"""The agent's tools: declared once (assistant/tools/base.py), exposed as JSON schemas and LangChain tools."""

from collections.abc import Iterable
from typing import Any

from assistant.tools.base import Tool, ToolContext, ToolError, ToolInputError
from assistant.tools.retail import RETAIL_TOOLS
from assistant.tools.shopping import rank_products, search_products

ALL_TOOLS: tuple[Tool, ...] = (*RETAIL_TOOLS, search_products, rank_products)


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ALL_TOOLS):
        self.tools = {t.name: t for t in tools}

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def get(self, name: str) -> Tool:
        return self.tools[name]

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self.tools.values()]

    def invoke(self, ctx: ToolContext, name: str, arguments: Any) -> str:
        """The observation for one call; an unknown tool is reported to the model, not raised."""
        if name not in self.tools:
            return f"Error: unknown tool {name!r}; use one of: {', '.join(self.tools)}"
        return self.tools[name].invoke(ctx, arguments)


__all__ = ["ALL_TOOLS", "Tool", "ToolContext", "ToolError", "ToolInputError", "ToolRegistry"]
