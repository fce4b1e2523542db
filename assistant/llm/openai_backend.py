"""Any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, TGI, ...) via `SHOPASSIST_LLM_URL`.

The path for deployments that outgrow one machine: a bigger model served elsewhere. The server does
the tool-call formatting; what comes back is checked here, and a call that does not parse is returned
as `meta["valid_json"] = False` so the agent can tell the model (the policy layer validates arguments).
"""

import json
import time
from typing import Any

import httpx

from assistant.llm.base import GenerationSettings, ModelError, OnText, PromptProfile, ToolChoice
from assistant.llm.prompting import bounded_observation, defuse
from assistant.messages import ChatMessage, ToolCall


def to_openai_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    last_call_id = "call_0"
    for m in messages:
        if m.role == "assistant" and m.tool_call is not None:
            last_call_id = m.tool_call.id
            call = {"name": m.tool_call.name, "arguments": json.dumps(m.tool_call.arguments)}
            out.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": last_call_id, "type": "function", "function": call}],
                }
            )
        elif m.role == "tool":  # bounded like every backend's, markers defused: the server's template writes turns
            content = defuse(bounded_observation(m.content))
            out.append({"role": "tool", "tool_call_id": last_call_id, "content": content})
        else:
            out.append({"role": m.role, "content": defuse(m.content)})
    return out


class OpenAIChatModel:
    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        timeout: float = 60.0,
        settings: GenerationSettings | None = None,
    ):
        self.name = f"{model}@{base_url}"
        self.model = model
        self.settings = settings or GenerationSettings()
        self.profile = PromptProfile.base()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def generate(
        self,
        messages: list[ChatMessage],
        tools: list[dict[str, Any]] | None = None,
        *,
        tool_choice: ToolChoice = "auto",
        on_text: OnText | None = None,
    ) -> ChatMessage:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "max_tokens": self.settings.max_new_tokens,
            "temperature": self.settings.temperature,
            "top_p": self.settings.top_p,
        }
        if tools:
            body["tools"], body["tool_choice"] = tools, tool_choice
        started = time.perf_counter()
        if on_text is not None:
            body["stream"] = True
            message = self._stream(body, on_text)
        else:
            data = self._post(body)
            try:
                message = self._message(data["choices"][0]["message"])
            except (KeyError, IndexError, TypeError):
                raise ModelError(f"the model endpoint returned an unexpected response: {str(data)[:200]}") from None
        message.meta["seconds"] = round(time.perf_counter() - started, 4)
        return message

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self.client.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ModelError(f"cannot reach the model endpoint {self.client.base_url}: {exc}") from None
        if response.status_code != 200:
            raise ModelError(f"the model endpoint answered HTTP {response.status_code}: {response.text[:200]}")
        return response.json()

    @staticmethod
    def _message(data: dict[str, Any]) -> ChatMessage:
        calls = data.get("tool_calls") or []
        if not calls:
            return ChatMessage("assistant", data.get("content") or "")
        fn = calls[0].get("function", {})
        try:
            arguments = json.loads(fn.get("arguments") or "{}")
            valid = isinstance(arguments, dict) and isinstance(fn.get("name"), str)
        except json.JSONDecodeError:
            valid = False
        if not valid:
            return ChatMessage("assistant", str(fn)[:500], meta={"valid_json": False})
        return ChatMessage("assistant", tool_call=ToolCall(fn["name"], arguments, calls[0].get("id") or "call_0"))

    def _stream(self, body: dict[str, Any], on_text: OnText) -> ChatMessage:
        text, name, arguments, call_id = "", None, "", None
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(f"the model endpoint answered HTTP {response.status_code}: {response.text[:200]}")
                for line in response.iter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    delta = json.loads(line[5:])["choices"][0].get("delta", {})
                    if delta.get("content"):
                        text += delta["content"]
                        on_text(delta["content"])
                    for call in delta.get("tool_calls") or []:
                        fn = call.get("function", {})
                        name = name or fn.get("name")
                        call_id = call_id or call.get("id")
                        arguments += fn.get("arguments") or ""
        except httpx.HTTPError as exc:
            raise ModelError(f"cannot reach the model endpoint {self.client.base_url}: {exc}") from None
        if name is None:
            return ChatMessage("assistant", text)
        return self._message({"tool_calls": [{"id": call_id, "function": {"name": name, "arguments": arguments}}]})
