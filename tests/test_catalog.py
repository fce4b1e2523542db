import pytest
from conftest import DATA

from retrieval.catalog import CatalogError, option_field, read_catalog_file


def test_tau_catalog_has_one_item_per_variant(tau_items):
    assert len(tau_items) == 591
    assert len({i.item_id for i in tau_items}) == 591
    assert sum(i.available for i in tau_items) == 379
    boots = next(i for i in tau_items if i.title == "Hiking Boots")
    assert boots.category == "Hiking Boots" and set(boots.options) == {"material", "size", "waterproof"}
    assert boots.document().startswith("Hiking Boots. ")


def test_metadata_holds_filterable_fields(tau_items):
    item = next(i for i in tau_items if "screen size" in i.options)
    meta = item.metadata()
    assert meta["item_id"] == item.item_id and meta["product_id"] == item.product_id
    assert isinstance(meta["price"], float) and isinstance(meta["available"], bool)
    assert meta[option_field("screen size")] == item.options["screen size"].lower()
    assert option_field("bagged/bagless") == "opt_bagged_bagless"


def test_jsonl_and_csv_catalogs():
    jsonl = read_catalog_file(DATA / "catalog_small.jsonl")
    assert [i.item_id for i in jsonl] == ["sku-001", "sku-002", "sku-003", "sku-004", "sku-005"]
    assert jsonl[0].product_id == "sku-001" and jsonl[1].product_id == "trail-runner-2"
    assert jsonl[1].available is False and jsonl[2].available is True  # default
    assert jsonl[2].price == 179.0 and jsonl[3].options == {}
    csv = read_catalog_file(DATA / "catalog_small.csv")
    assert [(i.item_id, i.available, i.price) for i in csv] == [
        ("sku-101", True, 19.9),
        ("sku-102", False, 29.0),
        ("sku-103", True, 22.5),
    ]
    assert csv[1].options == {"color": "grey", "size": "14in"}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{broken", "line 2: not valid JSON"),
        ('{"title": "x", "category": "c", "price": 1}', "line 2: missing required field 'id'"),
        ('{"id": "a", "title": "x", "category": "c", "price": "cheap"}', "line 2: 'price' must be a number"),
        ('{"id": "a", "title": "x", "category": "c", "price": -1}', "line 2: 'price' must be a finite number"),
        ('{"id": "a", "title": "x", "category": "c", "price": 1, "available": "maybe"}', "'available' must be"),
        ('{"id": "a", "title": "x", "category": "c", "price": 1, "attributes": [1]}', "'attributes' must map"),
        ('{"id": "ok", "title": "x", "category": "c", "price": 1}', "duplicate item id 'ok'"),
        ("[1, 2]", "line 2: expected a JSON object"),
    ],
)
def test_bad_jsonl_lines_are_reported_with_line_numbers(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "ok", "title": "t", "category": "c", "price": 1}\n' + line + "\n")
    with pytest.raises(CatalogError, match=message):
        read_catalog_file(path)


def test_bad_files(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        read_catalog_file(tmp_path / "missing.jsonl")
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(CatalogError, match=r"\.jsonl or \.csv"):
        read_catalog_file(tmp_path / "c.txt")
    (tmp_path / "c.csv").write_text("id,name\n1,x\n")
    with pytest.raises(CatalogError, match="lacks column"):
        read_catalog_file(tmp_path / "c.csv")
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(CatalogError, match="no items"):
        read_catalog_file(tmp_path / "e.jsonl")
