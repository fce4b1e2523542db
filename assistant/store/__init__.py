"""The store: shipped store packs and the embedded SQLite database the tools read and write."""

from assistant.store.database import FreshStores, Store
from assistant.store.packs import StorePack, StorePackError, get_pack, list_packs
from assistant.store.state_hash import state_hash

__all__ = ["FreshStores", "Store", "StorePack", "StorePackError", "get_pack", "list_packs", "state_hash"]
