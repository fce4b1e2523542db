"""The same tools as LangChain tools, so any LangChain agent can use them.

Pass `PolicySession.call` to keep the store policy enforced (the usual case), or a plain registry call
for trusted back-office use.
"""

from collections.abc import Callable
from typing import Any

from assistant.tools import ToolRegistry

Call = Callable[[str, dict[str, Any]], str]


def langchain_tools(call: Call, registry: ToolRegistry | None = None) -> list:
    """One `StructuredTool` per declared tool, with the generated JSON schema as its args schema."""
    from langchain_core.tools import StructuredTool

    registry = registry or ToolRegistry()

    def make(name: str) -> Callable[..., str]:
        def run(**kwargs: Any) -> str:
            return call(name, kwargs)

        return run

    return [
        StructuredTool.from_function(
            func=make(tool.name), name=tool.name, description=tool.description, args_schema=tool.parameters
        )
        for tool in registry.tools.values()
    ]
