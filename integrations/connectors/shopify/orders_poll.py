"""The reconciliation poll of a Shopify shop: which orders changed since a moment, read by updated-at
(`orders(query: "updated_at:>=…", sortKey: UPDATED_AT)`), a light page of 100 at a time. Shopify does
not guarantee webhook delivery, so the drift check compares this list with what Ledgerline holds and
reads in full (orders_read.fetch_order) only the orders it is missing or holds at an older version."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

from . import ShopifyClient

# Cost: 100 nodes of scalar fields, about 100 points a page, well under the 1,000 a query may ask for.
ORDERS_UPDATED_SINCE = """
query OrdersUpdatedSince($query: String!, $after: String) {
  orders(first: 100, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { id legacyResourceId name updatedAt createdAt displayFinancialStatus cancelledAt test }
    pageInfo { hasNextPage endCursor }
  }
}"""


def updated_since_query(since: datetime) -> str:
    """Shopify's search syntax for orders updated at or after `since` (as bulk.py's backfill search: the
    GraphQL orders connection returns every status, cancelled and closed included, unless filtered)."""
    stamp = since.astimezone(timezone.utc).isoformat(timespec="seconds")
    return f"updated_at:>='{stamp}'"


def orders_updated_since(client: ShopifyClient, since: datetime) -> Iterator[list[dict]]:
    """Pages of {id (numeric, as text), gid, name, updated_at, created_at, financial_status, cancelled, test},
    oldest update first."""
    after = None
    query = updated_since_query(since)
    while True:
        page = client.graphql(ORDERS_UPDATED_SINCE, {"query": query, "after": after}).get("orders") or {}
        nodes = page.get("nodes") or []
        if nodes:
            yield [{
                "id": str(node.get("legacyResourceId") or str(node.get("id", "")).rsplit("/", 1)[-1]),
                "gid": node.get("id"), "name": node.get("name") or "",
                "updated_at": node.get("updatedAt"), "created_at": node.get("createdAt"),
                "financial_status": (node.get("displayFinancialStatus") or "").lower(),
                "cancelled": bool(node.get("cancelledAt")), "test": bool(node.get("test")),
            } for node in nodes]
        info = page.get("pageInfo") or {}
        if not info.get("hasNextPage") or not info.get("endCursor"):
            return
        after = info["endCursor"]
