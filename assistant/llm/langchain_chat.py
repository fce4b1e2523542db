"""Any shopassist backend as a LangChain chat model whose `bind_tools` works.

The stock `ChatHuggingFace` accepts `bind_tools` but neither shows the tools to a local model nor parses
its calls. Here bound tools go to the backend as JSON schemas and come back as `AIMessage.tool_calls`
(schema-constrained on the local backends), so `langchain.agents.create_agent` runs a full tool loop.
"""

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from assistant.messages import ChatMessage, ToolCall


def from_langchain(messages: Sequence[BaseMessage]) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            out.append(ChatMessage("system", str(m.content)))
        elif isinstance(m, HumanMessage):
            out.append(ChatMessage("user", str(m.content)))
        elif isinstance(m, AIMessage) and m.tool_calls:
            call = m.tool_calls[0]  # one call per step, as everywhere in shopassist
            out.append(
                ChatMessage("assistant", tool_call=ToolCall(call["name"], call["args"], call.get("id") or "call_0"))
            )
        elif isinstance(m, AIMessage):
            out.append(ChatMessage("assistant", str(m.content)))
        elif isinstance(m, ToolMessage):
            out.append(ChatMessage("tool", str(m.content), name=m.name))
        else:
            raise ValueError(f"unsupported message type {type(m).__name__}")
    return out


class ShopassistChatModel(BaseChatModel):
    """`ShopassistChatModel(backend=load_chat_model())`; then `.bind_tools(tools)` as with any chat model."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backend: Any

    @property
    def _llm_type(self) -> str:
        return "shopassist"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any):
        schemas = [convert_to_openai_tool(t) for t in tools]
        if tool_choice not in (None, "auto", "required", "none", "any"):
            schemas = [s for s in schemas if s["function"]["name"] == tool_choice]  # a named tool: force it
            tool_choice = "required"
        return self.bind(tools=schemas, tool_choice="required" if tool_choice == "any" else tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        on_text = (lambda text: run_manager.on_llm_new_token(text)) if run_manager else None
        reply = self.backend.generate(
            from_langchain(messages), tools, tool_choice=tool_choice or "auto", on_text=on_text
        )
        if reply.tool_call is not None:
            call = reply.tool_call
            message = AIMessage(
                content="",
                tool_calls=[{"name": call.name, "args": call.arguments, "id": call.id, "type": "tool_call"}],
                response_metadata=dict(reply.meta),
            )
        else:
            message = AIMessage(content=reply.content, response_metadata=dict(reply.meta))
        return ChatResult(generations=[ChatGeneration(message=message)])
