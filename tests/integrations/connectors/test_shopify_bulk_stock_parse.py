"""The inventory drift check's reading of Shopify's bulk stock file: the same levels as
stock_from_lines (levels after their variant, naming it or its inventory item, or inline), lines of
other kinds skipped, the first level of a SKU at a location kept."""
import json

from integrations.connectors.shopify.catalogue_read import available_from_raw_lines, stock_from_lines

VARIANT = "gid://shopify/ProductVariant/{}"
ITEM = "gid://shopify/InventoryItem/{}"
WEB, SHOP = "gid://shopify/Location/1", "gid://shopify/Location/2"


def _level(parent, location, available):
    return {"__typename": "InventoryLevel", "id": f"gid://shopify/InventoryLevel/{parent[-1]}{location[-1]}",
            "location": {"id": location}, "quantities": [{"name": "available", "quantity": available}],
            "__parentId": parent}


LINES = [
    {"__typename": "ProductVariant", "id": VARIANT.format(1), "sku": "TEE-1", "inventoryItem": {"id": ITEM.format(1)}},
    _level(VARIANT.format(1), WEB, 7),
    _level(ITEM.format(1), SHOP, 3),  # named by its inventory item
    _level(VARIANT.format(1), WEB, 99),  # a second level for the same place: the first one counts
    {"__typename": "Product", "id": "gid://shopify/Product/5", "title": "Not stock"},
    {"__typename": "ProductVariant", "id": VARIANT.format(2), "sku": "MUG-1", "inventoryItem": {
        "id": ITEM.format(2), "inventoryLevels": {"edges": [{"node": {
            "location": {"id": WEB}, "quantities": [{"name": "available", "quantity": 12}]}}]}}},
    {"__typename": "ProductVariant", "id": VARIANT.format(3), "sku": "", "inventoryItem": {"id": ITEM.format(3)}},
    _level(VARIANT.format(3), WEB, 5),  # a variant without a SKU: nothing to compare
    _level("gid://shopify/ProductVariant/404", WEB, 1),  # an orphan line
]


def test_the_raw_lines_give_the_levels_stock_from_lines_gives():
    raw = [json.dumps(line).encode() for line in LINES]
    expected = {}
    for level in stock_from_lines(LINES):
        expected.setdefault((level.sku, level.location_id), level.available)
    assert available_from_raw_lines(raw) == expected == {("TEE-1", WEB): 7, ("TEE-1", SHOP): 3, ("MUG-1", WEB): 12}
