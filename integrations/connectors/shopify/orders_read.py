"""Reading orders back from Shopify through the GraphQL Admin API (re-sync, import by order number,
backfill) and writing them in the shape of the orders/* webhooks (Shopify's REST-format order JSON),
so a re-read order goes through the same inbox path and the same translation as a webhook.

`order_payload(node)` is the one translation from a GraphQL Order (with its lineItems, shippingLines
and refunds as lists) to that shape; the bulk reader (bulk.py) gives it the same lists rebuilt from
the JSONL's `__parentId` lines. Every document here is a module constant valid on the published
Admin schemas of API_VERSIONS (tests/integrations/connectors/test_shopify_order_documents.py).
"""
from __future__ import annotations

from . import ShopifyClient, gid

_BAG = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
_TAX = f"{{ title rate priceSet {_BAG} }}"

# The order's own fields (no connection: bulk.py nests lineItems and shippingLines as connections).
ORDER_FIELDS = f"""
    id legacyResourceId name email phone createdAt updatedAt processedAt cancelledAt cancelReason
    displayFinancialStatus test taxesIncluded sourceName currencyCode presentmentCurrencyCode
    totalPriceSet {_BAG} currentTotalPriceSet {_BAG} totalTaxSet {_BAG} totalDiscountsSet {_BAG}
    totalTipReceivedSet {_BAG} originalTotalDutiesSet {_BAG} currentTotalDutiesSet {_BAG}
    taxLines {_TAX}
    retailLocation {{ id }}
    customer {{ id firstName lastName defaultEmailAddress {{ emailAddress }} defaultPhoneNumber {{ phoneNumber }}
      defaultAddress {{ countryCodeV2 }} }}
    shippingAddress {{ name phone countryCodeV2 }}
    billingAddress {{ name phone countryCodeV2 }}"""

LINE_ITEM_FIELDS = f"""
    id sku title name quantity currentQuantity isGiftCard requiresShipping
    originalUnitPriceSet {_BAG}
    discountAllocations {{ allocatedAmountSet {_BAG} }}
    taxLines {_TAX}
    duties {{ id harmonizedSystemCode countryCodeOfOrigin price {_BAG} taxLines {_TAX} }}
    variant {{ id }}
    product {{ id }}"""

SHIPPING_LINE_FIELDS = f"""
    id title code
    originalPriceSet {_BAG}
    discountAllocations {{ allocatedAmountSet {_BAG} }}
    taxLines {_TAX}"""

_REFUNDS = f"""
    refunds {{
      id
      refundLineItems(first: 50) {{ nodes {{ quantity lineItem {{ id }} }} }}
      transactions(first: 5) {{ nodes {{ kind status amountSet {_BAG} }} }}
    }}"""

# One whole order (re-sync). Its cost stays under Shopify's 1,000 points a query: 25 lines at a time,
# the rest read page by page (LINE_ITEMS_PAGE).
ORDER_BY_ID = f"""
query OrderForResync($id: ID!) {{
  order(id: $id) {{{ORDER_FIELDS}
    lineItems(first: 25) {{ nodes {{{LINE_ITEM_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }}
    shippingLines(first: 5) {{ nodes {{{SHIPPING_LINE_FIELDS} }} }}{_REFUNDS}
  }}
}}"""

LINE_ITEMS_PAGE = f"""
query OrderLineItems($id: ID!, $after: String) {{
  order(id: $id) {{
    lineItems(first: 25, after: $after) {{ nodes {{{LINE_ITEM_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }}
  }}
}}"""

# Orders by name ("#1001"), for importing an order Ledgerline never saw; then read whole by id.
ORDERS_BY_NAME = """
query OrdersByName($query: String!) {
  orders(first: 5, query: $query) { nodes { id name } }
}"""


def _number(value) -> int | None:
    """The numeric id of a GID (gid://shopify/LineItem/14 -> 14); None for none."""
    if value in (None, ""):
        return None
    text = str(value).split("?", 1)[0].rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None


def _bag(value) -> dict | None:
    """A GraphQL MoneyBag as the webhooks' `*_set`."""
    if not isinstance(value, dict):
        return None
    out = {}
    for ours, theirs in (("shop_money", "shopMoney"), ("presentment_money", "presentmentMoney")):
        money = value.get(theirs)
        if isinstance(money, dict):
            out[ours] = {"amount": money.get("amount"), "currency_code": money.get("currencyCode")}
    return out


def _shop_amount(value):
    bag = _bag(value) or {}
    return (bag.get("shop_money") or {}).get("amount")


def _taxes(lines) -> list[dict]:
    return [{"title": t.get("title"), "rate": t.get("rate"), "price": _shop_amount(t.get("priceSet")),
             "price_set": _bag(t.get("priceSet"))} for t in lines or () if isinstance(t, dict)]


def _allocations(allocations) -> list[dict]:
    return [{"amount": _shop_amount(a.get("allocatedAmountSet")), "amount_set": _bag(a.get("allocatedAmountSet"))}
            for a in allocations or () if isinstance(a, dict)]


def _address(address) -> dict | None:
    if not isinstance(address, dict):
        return None
    return {"name": address.get("name"), "phone": address.get("phone"), "country_code": address.get("countryCodeV2")}


def _nodes(value) -> list:
    """A connection's nodes (or edges' nodes), or a list as it is."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("nodes"), list):
            return value["nodes"]
        if isinstance(value.get("edges"), list):
            return [edge.get("node") for edge in value["edges"] if isinstance(edge, dict)]
    return []


def line_item_payload(line: dict) -> dict:
    variant, product = line.get("variant") or {}, line.get("product") or {}
    price = line.get("originalUnitPriceSet")
    return {
        "id": _number(line.get("id")), "admin_graphql_api_id": line.get("id"),
        "variant_id": _number(variant.get("id")), "product_id": _number(product.get("id")),
        "sku": line.get("sku"), "title": line.get("title"), "name": line.get("name"),
        "quantity": line.get("quantity"), "current_quantity": line.get("currentQuantity"),
        "price": _shop_amount(price), "price_set": _bag(price),
        "discount_allocations": _allocations(line.get("discountAllocations")),
        "tax_lines": _taxes(line.get("taxLines")),
        "duties": [{"id": str(_number(d.get("id")) or ""), "harmonized_system_code": d.get("harmonizedSystemCode"),
                    "country_code_of_origin": d.get("countryCodeOfOrigin"), "price_set": _bag(d.get("price")),
                    "tax_lines": _taxes(d.get("taxLines"))} for d in line.get("duties") or () if isinstance(d, dict)],
        "gift_card": line.get("isGiftCard"), "requires_shipping": line.get("requiresShipping"),
    }


def shipping_line_payload(line: dict) -> dict:
    price = line.get("originalPriceSet")
    return {"id": _number(line.get("id")), "title": line.get("title"), "code": line.get("code"),
            "price": _shop_amount(price), "price_set": _bag(price),
            "discount_allocations": _allocations(line.get("discountAllocations")),
            "tax_lines": _taxes(line.get("taxLines"))}


def refund_payload(refund: dict) -> dict:
    return {
        "id": _number(refund.get("id")),
        "refund_line_items": [{"line_item_id": _number((item.get("lineItem") or {}).get("id")),
                               "quantity": item.get("quantity")} for item in _nodes(refund.get("refundLineItems"))],
        "transactions": [{"kind": str(t.get("kind") or "").lower(), "status": str(t.get("status") or "").lower(),
                          "amount": _shop_amount(t.get("amountSet")),
                          "currency": ((t.get("amountSet") or {}).get("shopMoney") or {}).get("currencyCode")}
                         for t in _nodes(refund.get("transactions"))],
    }


def order_payload(node: dict, *, line_items=None, shipping_lines=None, refunds=None) -> dict:
    """A GraphQL Order as the orders/* webhooks carry it (the subset the order translation reads).
    Lists not given are read from the node's own lineItems / shippingLines / refunds."""
    customer = node.get("customer")
    tip = node.get("totalTipReceivedSet")
    payload = {
        "id": _number(node.get("legacyResourceId")) or _number(node.get("id")),
        "admin_graphql_api_id": node.get("id"),
        "name": node.get("name"),
        "email": node.get("email"), "contact_email": node.get("email"), "phone": node.get("phone"),
        "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "processed_at": node.get("processedAt"), "cancelled_at": node.get("cancelledAt"),
        "cancel_reason": (node.get("cancelReason") or "").lower() or None,
        "financial_status": (node.get("displayFinancialStatus") or "").lower() or None,
        "test": node.get("test"), "taxes_included": node.get("taxesIncluded"), "source_name": node.get("sourceName"),
        "currency": node.get("currencyCode"), "presentment_currency": node.get("presentmentCurrencyCode"),
        "total_price": _shop_amount(node.get("totalPriceSet")), "total_price_set": _bag(node.get("totalPriceSet")),
        "current_total_price": _shop_amount(node.get("currentTotalPriceSet")),
        "current_total_price_set": _bag(node.get("currentTotalPriceSet")),
        "total_tax": _shop_amount(node.get("totalTaxSet")), "total_tax_set": _bag(node.get("totalTaxSet")),
        "total_discounts": _shop_amount(node.get("totalDiscountsSet")),
        "total_discounts_set": _bag(node.get("totalDiscountsSet")),
        # REST has the tip in shop money only: so does the translation read it.
        "total_tip_received": _shop_amount(tip), "total_tip_received_set": _bag(tip),
        "original_total_duties_set": _bag(node.get("originalTotalDutiesSet")),
        "current_total_duties_set": _bag(node.get("currentTotalDutiesSet")),
        "tax_lines": _taxes(node.get("taxLines")),
        "location_id": _number((node.get("retailLocation") or {}).get("id")),
        "customer": None if not isinstance(customer, dict) else {
            "id": _number(customer.get("id")), "first_name": customer.get("firstName"),
            "last_name": customer.get("lastName"),
            "email": (customer.get("defaultEmailAddress") or {}).get("emailAddress"),
            "phone": (customer.get("defaultPhoneNumber") or {}).get("phoneNumber"),
            "default_address": {"country_code": (customer.get("defaultAddress") or {}).get("countryCodeV2")},
        },
        "shipping_address": _address(node.get("shippingAddress")),
        "billing_address": _address(node.get("billingAddress")),
        "line_items": [line_item_payload(line) for line in (
            line_items if line_items is not None else _nodes(node.get("lineItems")))],
        "shipping_lines": [shipping_line_payload(line) for line in (
            shipping_lines if shipping_lines is not None else _nodes(node.get("shippingLines")))],
        "refunds": [refund_payload(refund) for refund in (
            refunds if refunds is not None else node.get("refunds") or [])],
    }
    return payload


def fetch_order(client: ShopifyClient, order_id) -> dict | None:
    """The order (a numeric id or a GID) in the webhooks' shape, or None when Shopify has no such
    order the token may read (an order older than 60 days without read_all_orders reads as none)."""
    order_gid = gid("Order", order_id)
    node = client.graphql(ORDER_BY_ID, {"id": order_gid}).get("order")
    if not node:
        return None
    page = node["lineItems"]
    lines = list(page.get("nodes") or [])
    while (page.get("pageInfo") or {}).get("hasNextPage"):
        more = client.graphql(LINE_ITEMS_PAGE, {"id": order_gid, "after": page["pageInfo"]["endCursor"]}).get("order")
        if not more:
            break
        page = more["lineItems"]
        lines.extend(page.get("nodes") or [])
    return order_payload(node, line_items=lines)


def find_order_by_name(client: ShopifyClient, name: str) -> dict | None:
    """The order named `name` ("#1001" or "1001"), in the webhooks' shape, or None."""
    wanted = name.strip()
    if not wanted:
        return None
    term = wanted if wanted.startswith("#") else f"#{wanted}"
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    nodes = client.graphql(ORDERS_BY_NAME, {"query": f'name:"{escaped}"'}).get("orders", {}).get("nodes") or []
    exact = [n for n in nodes if str(n.get("name", "")).lstrip("#") == term.lstrip("#")]
    return fetch_order(client, exact[0]["id"]) if exact else None
