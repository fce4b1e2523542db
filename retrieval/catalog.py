"""The product catalog as typed records, read from a store pack or from a retailer's JSONL/CSV file.

Catalog file schema (docs/DATA.md), one item per JSONL line or CSV row:

| field | type | required | notes |
|---|---|---|---|
| id | string | yes | unique item id |
| title | string | yes | product name shown to shoppers |
| description | string | no | free text, searched but not filtered |
| category | string | yes | filterable, matched ignoring case |
| price | number ≥ 0 | yes | |
| available | bool | no (true) | CSV: true/false/yes/no/1/0 |
| attributes | object string → string | no | options such as color or size; CSV: a JSON object |
| product_id | string | no (= id) | groups variants of one product |
"""

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.errors import ShopassistError


class CatalogError(ShopassistError, ValueError):
    """A catalog file or record is malformed; the message names the line and the problem."""


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    product_id: str
    title: str
    category: str
    price: float
    available: bool
    options: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # what the product type is for, in the store's words: searched (so a need such as "a gift for a hiker"
    # reaches hiking boots) but never shown or returned, so tool outputs stay as the store's data has them
    about: str = ""

    def document(self) -> str:
        """The text that is embedded and matched lexically."""
        parts = [self.title]
        if self.category.lower() != self.title.lower():
            parts.append(self.category)
        if self.options:
            parts.append(", ".join(f"{k}: {v}" for k, v in self.options.items()))
        if self.description:
            parts.append(self.description)
        if self.about:
            parts.append(self.about)
        return ". ".join(parts)

    def metadata(self) -> dict[str, Any]:
        """Chroma metadata: the filterable fields (lower-cased where matching ignores case)."""
        meta: dict[str, Any] = {
            "item_id": self.item_id,
            "product_id": self.product_id,
            "name": self.title,
            "category": self.category.lower(),
            "category_label": self.category,
            "price": float(self.price),
            "available": self.available,
            "options_json": json.dumps(self.options),
            "description": self.description,
        }
        if self.about:
            meta["about"] = self.about
        for key, value in self.options.items():
            meta[option_field(key)] = value.lower()
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> "CatalogItem":
        return cls(
            item_id=meta["item_id"],
            product_id=meta["product_id"],
            title=meta["name"],
            category=meta["category_label"],
            price=meta["price"],
            available=meta["available"],
            options=json.loads(meta["options_json"]),
            description=meta.get("description", ""),
            about=meta.get("about", ""),
        )


# "the cheapest backpack you have", "a cheap tent": the lowest-priced of what the query finds, not the five
# nearest in meaning (all variants of a type are about as near, so a shopper asking for the cheapest got
# the cheapest last). Not "cheaper" (a bound under what was shown, set by the caller)
LOW_PRICES_FIRST = re.compile(
    r"\b(?:cheap|cheapest|least expensive|lowest[- ]priced?|inexpensive|affordable)\b", re.IGNORECASE
)


def named_product_type(words: str, names: set[str]) -> str | None:
    """The catalog product type `words` name (plural or singular, any case, punctuation ignored), the
    longest one; None if they name none."""
    text = f" {' '.join(re.findall(r'[a-z0-9-]+', words.lower()))} "
    found = [n for n in names if any(f" {n.lower()}{end} " in text for end in ("", "s", "es"))]
    return max(found, key=len) if found else None


def option_field(key: str) -> str:
    """Metadata field of an option key: `screen size` → `opt_screen_size`."""
    return "opt_" + re.sub(r"\W+", "_", key.strip().lower()).strip("_")


def items_from_products(products: dict[str, dict[str, Any]], about: dict[str, str] | None = None) -> list[CatalogItem]:
    """Flatten τ-retail style products (each with variants) into one catalog item per variant.

    A product's optional `category` and `description` (imported packs have them) are kept; without a
    category the product name serves, as in tau-retail. `about`: product name → what that type is for
    (a store pack's `descriptions.json`), searched only."""
    about = about or {}
    items = []
    for product_id, product in products.items():
        for item_id, variant in product["variants"].items():
            items.append(
                CatalogItem(
                    item_id=item_id,
                    product_id=product_id,
                    title=product["name"],
                    category=product.get("category", product["name"]),
                    price=float(variant["price"]),
                    available=bool(variant["available"]),
                    options={str(k): str(v) for k, v in variant["options"].items()},
                    description=product.get("description", ""),
                    about=about.get(product["name"], ""),
                )
            )
    return items


_TRUE = {"true", "yes", "1", "y"}
# a field longer than this is a mistake or an attack (it would fill every prompt it is shown in)
MAX_FIELD_CHARS = {"description": 2000, "title": 200, "category": 100, "id": 64, "product_id": 64}
_FALSE = {"false", "no", "0", "n"}


def _parse_record(raw: dict[str, Any], where: str) -> CatalogItem:
    def text(name: str, required: bool) -> str:
        value = raw.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise CatalogError(f"{where}: missing required field '{name}'")
            return ""
        if not isinstance(value, str | int):
            raise CatalogError(f"{where}: field '{name}' must be a string, got {type(value).__name__}")
        value = str(value).strip()
        if len(value) > MAX_FIELD_CHARS.get(name, 200):
            limit = MAX_FIELD_CHARS.get(name, 200)
            raise CatalogError(f"{where}: field '{name}' is {len(value):,} characters long; the limit is {limit:,}")
        return value

    item_id, title, category = text("id", True), text("title", True), text("category", True)
    try:
        price = float(raw.get("price"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CatalogError(f"{where}: 'price' must be a number, got {raw.get('price')!r}") from None
    if not math.isfinite(price) or price < 0:
        raise CatalogError(f"{where}: 'price' must be a finite number ≥ 0, got {price}")

    available = raw.get("available", True)
    if isinstance(available, str):
        if available.strip().lower() not in _TRUE | _FALSE:
            raise CatalogError(f"{where}: 'available' must be true or false, got {available!r}")
        available = available.strip().lower() in _TRUE
    elif not isinstance(available, bool):
        raise CatalogError(f"{where}: 'available' must be true or false, got {available!r}")

    attributes = raw.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except json.JSONDecodeError:
            raise CatalogError(f"{where}: 'attributes' must be a JSON object, got {attributes!r}") from None
    if not isinstance(attributes, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in attributes.values()
    ):
        raise CatalogError(f"{where}: 'attributes' must map names to strings or numbers")

    return CatalogItem(
        item_id=item_id,
        product_id=text("product_id", False) or item_id,
        title=title,
        category=category,
        price=price,
        available=available,
        options={str(k): str(v) for k, v in attributes.items()},
        description=text("description", False),
    )


def read_catalog_file(path: Path) -> list[CatalogItem]:
    """Read a JSONL or CSV catalog, refusing the whole file on the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog file not found: {path}")
    suffix = path.suffix.lower()
    items: list[CatalogItem] = []
    with path.open(encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    raw = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CatalogError(f"{path.name} line {lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(raw, dict):
                    raise CatalogError(f"{path.name} line {lineno}: expected a JSON object")
                items.append(_parse_record(raw, f"{path.name} line {lineno}"))
        elif suffix == ".csv":
            reader = csv.DictReader(fh)
            missing = {"id", "title", "category", "price"} - set(reader.fieldnames or [])
            if missing:
                raise CatalogError(f"{path.name}: CSV header lacks column(s) {', '.join(sorted(missing))}")
            for row in reader:
                items.append(_parse_record(row, f"{path.name} line {reader.line_num}"))
        else:
            raise CatalogError(f"{path.name}: catalog files must end in .jsonl or .csv")
    if not items:
        raise CatalogError(f"{path.name}: no items")
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise CatalogError(f"{path.name}: duplicate item id {item.item_id!r}")
        seen.add(item.item_id)
    return items
