"""Store packs: a retailer's data as shipped files — catalog, customers, orders and policy text.

A pack is a folder holding `products.json`, `users.json` and `orders.json` in the document shapes of
docs/tau-retail-spec.md §1, plus an optional `policy.md`. Packs live in `data/stores/<name>/`; any other
folder with the same files works too (`StorePack.from_dir`).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import STORES_DIR, imported_packs_dir
from retrieval.errors import ShopassistError

if TYPE_CHECKING:
    from retrieval.catalog import CatalogItem

DOCUMENTS = ("products", "users", "orders")


class StorePackError(ShopassistError, ValueError):
    """A pack is missing or malformed; the message says which file and what is wrong."""


@dataclass(frozen=True)
class StorePack:
    name: str
    root: Path

    @classmethod
    def from_dir(cls, root: Path, name: str | None = None) -> "StorePack":
        root = Path(root)
        missing = [f"{doc}.json" for doc in DOCUMENTS if not (root / f"{doc}.json").is_file()]
        if missing:
            raise StorePackError(f"store pack {root} lacks {', '.join(missing)}")
        return cls(name=name or root.name, root=root)

    @property
    def policy_path(self) -> Path | None:
        path = self.root / "policy.md"
        return path if path.is_file() else None

    def type_descriptions(self) -> dict[str, str]:
        """Product name → what that type is for (optional `descriptions.json`; searched, never shown)."""
        path = self.root / "descriptions.json"
        if not path.is_file():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise StorePackError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise StorePackError(f"{path}: expected a JSON object of product name → description text")
        return value

    def catalog_items(self) -> list["CatalogItem"]:
        """The pack's catalog as search items, one per variant, with the type descriptions."""
        from retrieval.catalog import items_from_products

        return items_from_products(self.read_documents()["products"], self.type_descriptions())

    def read_documents(self) -> dict[str, dict[str, Any]]:
        """The three documents, in file order, with JSON ints and floats kept apart."""
        docs = {}
        for doc in DOCUMENTS:
            path = self.root / f"{doc}.json"
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise StorePackError(f"{path}: not valid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise StorePackError(f"{path}: expected a JSON object keyed by id, got {type(value).__name__}")
            docs[doc] = value
        _check_references(docs)
        return docs


def _check_references(docs: dict[str, dict[str, Any]]) -> None:
    for order_id, order in docs["orders"].items():
        if order.get("user_id") not in docs["users"]:
            raise StorePackError(f"orders.json: order {order_id} names unknown user {order.get('user_id')!r}")
    for product_id, product in docs["products"].items():
        if not isinstance(product.get("variants"), dict) or "name" not in product:
            raise StorePackError(f"products.json: product {product_id} needs 'name' and 'variants'")


def list_packs() -> list[str]:
    """Shipped packs (`data/stores/`) and imported ones (`<state dir>/packs/`)."""
    roots = [STORES_DIR, imported_packs_dir()]
    return sorted({p.name for r in roots if r.is_dir() for p in r.iterdir() if (p / "products.json").is_file()})


def get_pack(name: str) -> StorePack:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name or "") or ".." in name:
        raise StorePackError(f"a store is named by a plain name such as tau-retail, not a path: {name!r}")
    for base in (STORES_DIR, imported_packs_dir()):
        root = base / name
        if root.is_dir():
            return StorePack.from_dir(root, name)
    if name == "complete-journey":
        raise StorePackError(
            "store 'complete-journey' is not imported yet: run `shopassist store import complete-journey`"
        )
    raise StorePackError(f"unknown store {name!r}; stores here: {', '.join(list_packs())}")
