"""Reading a Shopify shop's catalogue for the drift checks: stock per variant and location by bulk
operation (a large catalogue is one JSONL file, not thousands of pages), and variants with their
prices (price, compare-at) page by page. Every document is valid on the published Admin schemas
(tests/integrations/connectors/test_shopify_catalogue_read_documents.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterator

from ..base import PermanentError
from . import ShopifyClient
from .bulk import RUN_QUERY, BulkOperation, BulkOperationInProgress, _operation

# The inner query of the bulk operation (sent as the mutation's $query): two connections, nested two
# deep, as Shopify allows. Each InventoryLevel line names its variant in __parentId.
INVENTORY_BULK_QUERY = """
{
  productVariants {
    edges {
      node {
        __typename id sku
        inventoryItem {
          id
          inventoryLevels {
            edges { node { __typename id location { id } quantities(names: ["available"]) { name quantity } } }
          }
        }
      }
    }
  }
}"""

# About 100 × 3 points a page.
VARIANT_PRICES = """
query DriftVariantPrices($after: String) {
  productVariants(first: 100, after: $after) {
    nodes { id sku title price compareAtPrice product { id title } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@dataclass(frozen=True)
class StockLevel:
    sku: str
    variant_id: str
    inventory_item_id: str
    location_id: str  # the Location GID
    available: int


def start_inventory_export(client: ShopifyClient) -> BulkOperation:
    """Start the bulk query of every variant's available quantity at every location."""
    result = client.graphql(RUN_QUERY, {"query": INVENTORY_BULK_QUERY})["bulkOperationRunQuery"] or {}
    errors = result.get("userErrors") or []
    if errors:
        message = "; ".join(e.get("message", "") for e in errors)
        if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
            raise BulkOperationInProgress(f"Shopify: {message}", code="OPERATION_IN_PROGRESS")
        raise PermanentError(f"Shopify refused the bulk query: {message}",
                             code=",".join(str(e.get("code") or "") for e in errors))
    return _operation(result["bulkOperation"])


def _level(sku: str, variant: str, item: str, line: dict) -> StockLevel | None:
    available = next((q.get("quantity") for q in line.get("quantities") or () if q.get("name") == "available"), None)
    location = (line.get("location") or {}).get("id") or ""
    if not sku or not location or available is None:
        return None
    return StockLevel(sku, variant, item, location, int(available))


def stock_from_lines(lines) -> Iterator[StockLevel]:
    """The bulk result's lines as levels: a variant line, then its levels, each naming in __parentId
    its variant (or its inventory item: both are accepted), or nested inline under inventoryItem."""
    owners: dict[str, tuple[str, str, str]] = {}  # variant or inventory item GID -> (sku, variant, item)
    for line in lines:
        kind = line.get("__typename") or ""
        if kind == "ProductVariant" or (not kind and "/ProductVariant/" in str(line.get("id"))):
            item = line.get("inventoryItem") or {}
            owner = (line.get("sku") or "", line["id"], item.get("id") or "")
            owners[line["id"]] = owner
            if owner[2]:
                owners[owner[2]] = owner
            inline = item.get("inventoryLevels") or {}
            for node in [e.get("node") or {} for e in inline.get("edges") or ()] + list(inline.get("nodes") or ()):
                level = _level(*owner, node)
                if level is not None:
                    yield level
            continue
        owner = owners.get(line.get("__parentId"))
        if owner is not None:
            level = _level(*owner, line)
            if level is not None:
                yield level


def available_from_raw_lines(raw_lines) -> dict[tuple[str, str], int]:
    """{(sku, location GID): available} straight from the bulk result's unparsed lines, the first
    level of a SKU at a location kept: the levels stock_from_lines gives, for the inventory drift
    check's 600,000-line files. A line that is neither a variant nor an inventory level is skipped
    before it is parsed, each line is parsed once into plain values (no StockLevel per level), and
    the variant lines keep only (sku) per variant and inventory item. Levels nested inline under a
    variant's inventoryItem are read as stock_from_lines reads them."""
    decode = json.JSONDecoder().decode
    owners: dict[str, str] = {}  # variant or inventory item GID -> sku
    levels: dict[tuple[str, str], int] = {}
    for raw in raw_lines:
        if b"InventoryLevel" not in raw and b"ProductVariant" not in raw:
            continue  # a product, a media, another connection's node: not stock
        line = decode(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        kind = line.get("__typename") or ("ProductVariant" if "/ProductVariant/" in str(line.get("id")) else "")
        if kind == "ProductVariant":
            sku = line.get("sku") or ""
            owners[line["id"]] = sku
            item = line.get("inventoryItem") or {}
            if item.get("id"):
                owners[item["id"]] = sku
            inline = item.get("inventoryLevels")
            if inline:
                for node in [e.get("node") or {} for e in inline.get("edges") or ()] + list(inline.get("nodes") or ()):
                    level = _level(sku, line["id"], item.get("id") or "", node)
                    if level is not None:
                        levels.setdefault((level.sku, level.location_id), level.available)
            continue
        sku = owners.get(line.get("__parentId"))
        if not sku:
            continue
        location = (line.get("location") or {}).get("id")
        if not location:
            continue
        for quantity in line.get("quantities") or ():
            if quantity.get("name") == "available" and quantity.get("quantity") is not None:
                levels.setdefault((sku, location), int(quantity["quantity"]))
                break
    return levels


@dataclass(frozen=True)
class VariantPrice:
    sku: str
    variant_id: str
    title: str
    product_id: str
    product_title: str
    price: Decimal | None
    compare_at_price: Decimal | None


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    if isinstance(value, dict):  # MoneyV2 in some versions
        value = value.get("amount")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def variant_prices(client: ShopifyClient) -> Iterator[VariantPrice]:
    after = None
    while True:
        page = client.graphql(VARIANT_PRICES, {"after": after}).get("productVariants") or {}
        for node in page.get("nodes") or ():
            product = node.get("product") or {}
            yield VariantPrice(node.get("sku") or "", node["id"], node.get("title") or "", product.get("id") or "",
                               product.get("title") or "", _decimal(node.get("price")), _decimal(node.get("compareAtPrice")))
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return
        after = info["endCursor"]


SHOP_CURRENCY = """
query DriftShopCurrency {
  shop { currencyCode }
}"""


def shop_currency(client: ShopifyClient) -> str:
    """The shop's own currency: the one its variant prices are stated in."""
    return str((client.graphql(SHOP_CURRENCY).get("shop") or {}).get("currencyCode") or "").upper()
