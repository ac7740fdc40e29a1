"""Shopify bulk operations for reading many orders at once (backfill): `bulkOperationRunQuery` starts
one, `bulkOperation(id:)` is polled until it is COMPLETED, and its `url` is a JSONL file in which
every object of a nested connection is a line of its own naming its parent in `__parentId`.

Shopify runs one bulk query per app and shop at a time (a second is refused with the userError code
OPERATION_IN_PROGRESS), keeps the results for seven days, and allows up to five connections nested
two levels deep; a connection inside a list field (an order's refunds' refundLineItems) is refused, so
the bulk query reads each order's refunds by id only and the reader re-reads an order that has some
(orders_read.fetch_order). Documents are module constants valid on the published schemas of
API_VERSIONS, the inner query included (tests/integrations/connectors/test_shopify_order_documents.py).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import requests

from ..base import PermanentError, TransientError
from . import ShopifyClient
from .orders_read import LINE_ITEM_FIELDS, ORDER_FIELDS, SHIPPING_LINE_FIELDS, order_payload

RUN_QUERY = """
mutation BackfillOrdersBulkQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}"""

# currentBulkOperation is deprecated from 2026-04: the operation is polled by its id.
POLL = """
query BackfillBulkOperation($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount url partialDataUrl }
}"""

# The inner query the bulk operation runs: `{search}` is filled in with an orders search such as
# updated_at:>='2026-01-01T00:00:00Z'. Connections have no `first` in a bulk query.
ORDERS_BULK_QUERY = f"""
{{
  orders(query: "{{search}}", sortKey: UPDATED_AT) {{
    edges {{
      node {{
        __typename{ORDER_FIELDS}
        refunds {{ id }}
        lineItems {{ edges {{ node {{ __typename{LINE_ITEM_FIELDS} }} }} }}
        shippingLines {{ edges {{ node {{ __typename{SHIPPING_LINE_FIELDS} }} }} }}
      }}
    }}
  }}
}}"""

FINISHED = {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


class BulkOperationInProgress(TransientError):
    """Another bulk query of this app is running on the shop: try again once it has finished."""

    def __init__(self, message: str, *, retry_after: float = 30, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str
    url: str | None = None
    error_code: str | None = None
    object_count: int = 0


def orders_search(since: datetime) -> str:
    return f"updated_at:>='{since.isoformat()}'"


def orders_bulk_query(since: datetime) -> str:
    return ORDERS_BULK_QUERY.replace("{search}", orders_search(since).replace('"', '\\"'))


def _operation(node: dict) -> BulkOperation:
    return BulkOperation(id=node["id"], status=node.get("status") or "", url=node.get("url"),
                         error_code=node.get("errorCode"), object_count=int(node.get("objectCount") or 0))


def start_orders_export(client: ShopifyClient, since: datetime) -> BulkOperation:
    """Start a bulk query of every order updated since `since`."""
    result = client.graphql(RUN_QUERY, {"query": orders_bulk_query(since)})["bulkOperationRunQuery"] or {}
    errors = result.get("userErrors") or []
    if errors:
        message = "; ".join(e.get("message", "") for e in errors)
        if any(e.get("code") == "OPERATION_IN_PROGRESS" for e in errors):
            raise BulkOperationInProgress(f"Shopify: {message}", code="OPERATION_IN_PROGRESS", retry_after=30)
        raise PermanentError(f"Shopify refused the bulk query: {message}",
                             code=",".join(str(e.get("code") or "") for e in errors))
    return _operation(result["bulkOperation"])


def poll(client: ShopifyClient, operation_id: str) -> BulkOperation:
    node = client.graphql(POLL, {"id": operation_id}).get("bulkOperation")
    if node is None:
        raise PermanentError(f"Shopify has no bulk operation {operation_id}")
    return _operation(node)


def wait_until_finished(client: ShopifyClient, operation_id: str, *, interval: float = 2.0,
                        timeout: float = 3600.0, sleep=time.sleep, heartbeat=None) -> BulkOperation:
    """Poll until the operation is COMPLETED (or failed); `heartbeat()` is called after each poll."""
    deadline = time.monotonic() + timeout
    while True:
        operation = poll(client, operation_id)
        if heartbeat is not None:
            heartbeat(operation)
        if operation.status in FINISHED:
            if operation.status != "COMPLETED":
                raise PermanentError(f"Shopify's bulk operation {operation_id} ended {operation.status}"
                                     + (f" ({operation.error_code})" if operation.error_code else ""))
            return operation
        if time.monotonic() >= deadline:
            raise TransientError(f"Shopify's bulk operation {operation_id} is still {operation.status}")
        sleep(interval)


def download_raw_lines(url: str | None, *, timeout: float = 60.0) -> Iterator[bytes]:
    """The JSONL result's lines as bytes, unparsed, read in 64 KiB chunks (requests' default of 512
    bytes costs seconds on a file of hundreds of megabytes), so a reader can skip lines it does not
    need before parsing. The URL is a signed storage link: it is fetched without the shop's access
    token (which must never go to another host). No url: the query found nothing."""
    if not url:
        return
    try:
        response = requests.get(url, timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise TransientError(f"downloading Shopify's bulk result failed: {exc}") from exc
    if response.status_code >= 500:
        raise TransientError(f"downloading Shopify's bulk result failed: {response.status_code}")
    if response.status_code >= 400:
        raise PermanentError(f"Shopify's bulk result could not be downloaded ({response.status_code}; it "
                             f"expires after seven days)", status=response.status_code)
    with response:
        try:
            for raw in response.iter_lines(chunk_size=1 << 16):
                if raw.strip():
                    yield raw
        except requests.RequestException as exc:
            raise TransientError(f"downloading Shopify's bulk result broke off: {exc}") from exc


def download_lines(url: str | None, *, timeout: float = 60.0) -> Iterator[dict]:
    """The JSONL result, one object a line (see download_raw_lines)."""
    for raw in download_raw_lines(url, timeout=timeout):
        yield json.loads(raw)


@dataclass
class BulkOrder:
    """One order of a bulk result, rebuilt from its lines: `payload` is in the webhooks' shape;
    `needs_reread` when the bulk result cannot say all of it (it has refunds)."""

    id: str  # the order's GID
    updated_at: str
    payload: dict
    needs_reread: bool


def orders_from_lines(lines) -> Iterator[BulkOrder]:
    """Group the JSONL lines (an order, then its children, each child naming it in `__parentId`) into
    orders, in the order of the file. Shopify writes a parent before its children."""
    current: dict | None = None
    children: dict[str, list] = {"LineItem": [], "ShippingLine": []}

    def finish() -> BulkOrder:
        payload = order_payload(current, line_items=children["LineItem"], shipping_lines=children["ShippingLine"],
                                refunds=[])
        return BulkOrder(id=current["id"], updated_at=current.get("updatedAt") or "", payload=payload,
                         needs_reread=bool(current.get("refunds")))

    for line in lines:
        parent = line.get("__parentId")
        # __typename is asked for; the GID's type (gid://shopify/LineItem/1) says the same.
        kind = line.get("__typename") or (str(line.get("id", "")).split("/") + ["", "", "", ""])[3]
        if parent is None:
            if current is not None:
                yield finish()
            current = line
            children = {"LineItem": [], "ShippingLine": []}
            continue
        if current is None or parent != current["id"]:
            raise PermanentError(f"Shopify's bulk result has a line for {parent} outside its order")
        if kind in children:
            children[kind].append(line)
    if current is not None:
        yield finish()
