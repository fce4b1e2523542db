"""Assembling the running app: shared store, search and model behind one `ConversationHub`, logs and live
conversations on disk."""

from pathlib import Path

from assistant.config import state_dir
from assistant.dialogues import DialogueLog
from assistant.ranking import ranker_for_store
from assistant.runtime import AgentSettings, new_agent
from assistant.tools import ToolContext
from ui.conversation_store import ConversationStore
from ui.conversations import ConversationHub
from ui.logs import InteractionLog


def log_dir() -> Path:
    return state_dir() / "logs"


def make_hub(model, store, search, store_name: str, logs: Path | None = None, settings: AgentSettings | None = None):
    """One hub for the whole server: each conversation gets its own agent and policy session; the live
    conversations saved beside the logs folder are loaded back."""
    logs = Path(logs) if logs is not None else log_dir()
    return ConversationHub(
        model,
        ToolContext(store, search, ranker_for_store(store_name, store)),
        store_name,
        lambda m, ctx, name: new_agent(m, ctx, name, settings),
        DialogueLog(logs / "dialogues.jsonl"),
        InteractionLog(logs / "interactions.jsonl"),
        ConversationStore(logs.parent / "conversations.sqlite3"),
    )
