"""The Inventory Planner client: its public API (v1, beta) for purchase orders and variants.

What the vendor documents (help.inventory-planner.com, "Inventory Planner Public APIs", "Stock Orders
API", "Reports API"): base URL https://app.inventory-planner.com/api/v1; two headers on every request,
`Authorization: <API key>` (no "Bearer") and `Account: <account id>`; JSON bodies with
`Content-Type: application/json`; collection resources (`purchase-orders`, `variants`) answer
`{"meta": {...}, "<plural name>": [...]}` and single ones `{"<singular name>": {...}}`, with an optional
`result` document (`{"status": "success" | "error", "message"}`); writes send `{"<singular name>": {...}}`.
Purchase orders carry id, reference, extra_reference, status, vendor, warehouse, currency,
expected_date, received_date, last_modified, type ("po"/empty, "transfer", "assembly") and items;
variants carry id, sku, lead_time, review_period ("days of stock"), replenishment, oos (forecast days
to sell out) and vendors (cost_price…). Line items have a received history (date, value).

Where the stored documentation is silent, this client assumes, and the sandbox behaves alike:
- paging: `page` counted from 0 and `limit` (public clients page that way and read meta.total,
  meta.count, meta.limit, meta.start); no maximum is documented, the sandbox caps at 1000;
- filters: `<field>=value`, `<field>_eqi` (case-insensitive equal), `_in` (comma list), `_gt`, `_lt`,
  `_ne`, as public clients use them (`status_eqi=sent`, `replenishment_gt=0`);
- line item field names: `variant`, `sku`, `title`, `replenishment` (the ordered quantity), `received`
  (received so far), `cost`; updates are a PATCH of the purchase order with `items: [{id, received}]`;
- status spellings vary in public clients ("sent", "CLOSED"); the documented lifecycle is draft →
  open → partially received → closed/complete, or cancelled. We send lowercase: draft, open,
  partial, closed, cancelled, and compare case-insensitively;
- no "recommended" status exists: recommendations are the variants' `replenishment` figures, and a
  purchase order made from Replenishment starts as a draft, so drafts are what ops review;
- the error body (`result.message`) and the status codes (401 for a missing or wrong key or Account,
  404, 422 for validation, 429 with Retry-After) are not documented; no rate limit is published.

It knows nothing of our models: flows get the dataclasses below.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Iterator
from urllib.parse import quote

import requests

from .base import NotFound, PermanentError, RateLimited, RetryingClient, TransientError, parse_retry_after

PAGE_SIZE = 100
DRAFT, OPEN, PARTIAL, CLOSED, CANCELLED = "draft", "open", "partial", "closed", "cancelled"


@dataclass(frozen=True)
class PlannerPurchaseOrderItem:
    id: str
    variant: str
    sku: str
    replenishment: int  # the quantity on order
    received: int = 0
    title: str = ""
    cost: Decimal | None = None  # the vendor's unit cost in the order's currency, as Inventory Planner holds it


@dataclass(frozen=True)
class PlannerPurchaseOrder:
    id: str
    status: str  # lowercase
    vendor: str
    warehouse: str
    items: tuple[PlannerPurchaseOrderItem, ...]
    reference: str = ""
    extra_reference: str = ""
    currency: str = ""
    expected_date: str = ""
    received_date: str = ""
    last_modified: str = ""
    type: str = "po"
    notes: str = ""


@dataclass(frozen=True)
class PlannerVariantVendor:
    vendor: str
    cost_price: Decimal | None = None


@dataclass(frozen=True)
class PlannerVariant:
    id: str
    sku: str
    lead_time: int | None = None  # days
    review_period: int | None = None  # days of stock to cover
    replenishment: int | None = None  # what the planner recommends ordering now
    oos: int | None = None  # forecast days until it sells out
    warehouse: str = ""
    vendors: tuple[PlannerVariantVendor, ...] = ()


@dataclass(frozen=True)
class PlannerPage:
    rows: list
    total: int
    page: int
    limit: int

    @property
    def more(self) -> bool:
        return (self.page + 1) * self.limit < self.total


# --- reading the vendor's answers: a wrong shape is a PermanentError naming the field ------------


def _malformed(where: str, problem: str) -> PermanentError:
    return PermanentError(f"Inventory Planner answered malformed data: {where} {problem}", code="malformed_answer")


def _object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise _malformed(where, f"must be an object, got {type(value).__name__}")
    return value


def _text(data: dict, name: str, where: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _malformed(f"{where}.{name}", "is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise _malformed(f"{where}.{name}", f"must be a string, got {type(value).__name__}")
    return str(value)


def _whole(data: dict, name: str, where: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _malformed(f"{where}.{name}", "is missing")
        return None
    if isinstance(value, bool):
        raise _malformed(f"{where}.{name}", f"must be a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _malformed(f"{where}.{name}", f"must be a number, got {value!r}") from None
    if not number.is_finite() or number != number.to_integral_value():
        raise _malformed(f"{where}.{name}", f"must be a whole number, got {value!r}")
    return int(number)


def _money(data: dict, name: str, where: str) -> Decimal | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _malformed(f"{where}.{name}", f"must be a decimal amount, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _malformed(f"{where}.{name}", f"must be a decimal amount, got {value!r}") from None
    if not amount.is_finite():
        raise _malformed(f"{where}.{name}", f"must be a decimal amount, got {value!r}")
    return amount


def _list(data: dict, name: str, where: str, *, required: bool = False) -> list:
    value = data.get(name)
    if value is None:
        if required:
            raise _malformed(f"{where}.{name}", "is missing")
        return []
    if not isinstance(value, list):
        raise _malformed(f"{where}.{name}", f"must be a list, got {type(value).__name__}")
    return value


def purchase_order_from(data, where: str = "purchase-order") -> PlannerPurchaseOrder:
    data = _object(data, where)
    items = []
    for i, raw in enumerate(_list(data, "items", where)):
        at = f"{where}.items[{i}]"
        item = _object(raw, at)
        items.append(PlannerPurchaseOrderItem(
            id=_text(item, "id", at, required=True), variant=_text(item, "variant", at),
            sku=_text(item, "sku", at, required=True), replenishment=_whole(item, "replenishment", at, required=True),
            received=_whole(item, "received", at) or 0, title=_text(item, "title", at), cost=_money(item, "cost", at)))
    return PlannerPurchaseOrder(
        id=_text(data, "id", where, required=True), status=_text(data, "status", where, required=True).lower(),
        vendor=_text(data, "vendor", where), warehouse=_text(data, "warehouse", where, required=True),
        items=tuple(items), reference=_text(data, "reference", where),
        extra_reference=_text(data, "extra_reference", where), currency=_text(data, "currency", where).upper(),
        expected_date=_text(data, "expected_date", where), received_date=_text(data, "received_date", where),
        last_modified=_text(data, "last_modified", where), type=_text(data, "type", where) or "po",
        notes=_text(data, "notes", where))


def variant_from(data, where: str = "variant") -> PlannerVariant:
    data = _object(data, where)
    vendors = []
    for i, raw in enumerate(_list(data, "vendors", where)):
        at = f"{where}.vendors[{i}]"
        vendor = _object(raw, at)
        # `vendor` is the vendor's id (lower case in public answers), `vendor_name` how people know it.
        vendors.append(PlannerVariantVendor(vendor=_text(vendor, "vendor_name", at) or _text(vendor, "vendor", at),
                                            cost_price=_money(vendor, "cost_price", at)))
    return PlannerVariant(
        id=_text(data, "id", where, required=True), sku=_text(data, "sku", where, required=True),
        lead_time=_whole(data, "lead_time", where), review_period=_whole(data, "review_period", where),
        replenishment=_whole(data, "replenishment", where), oos=_whole(data, "oos", where),
        warehouse=_text(data, "warehouse", where), vendors=tuple(vendors))


def _message(body) -> str:
    if isinstance(body, dict):
        result = body.get("result")
        if isinstance(result, dict) and result.get("message"):
            return str(result["message"])[:500]
        if body.get("message"):
            return str(body["message"])[:500]
    return ""


class InventoryPlannerClient(RetryingClient):
    system = "inventory_planner"  # the outbound-write log names the target by it

    def __init__(self, base_url: str, api_key: str, account_id: str, **retry_kwargs):
        super().__init__(**retry_kwargs)
        if not api_key or not account_id:
            raise ValueError("an Inventory Planner connection needs an API key and an account id")
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self.session.headers.update({"Authorization": api_key, "Account": account_id, "Accept": "application/json"})

    # --- transport ---------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        message = _message(body) or (response.text or "")[:300] or str(response.reason)
        if status == 429:
            raise RateLimited(f"Inventory Planner rate limit: {message}", status=429, body=body,
                              retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(f"Inventory Planner server error {status}: {message}", status=status, body=body)
        if status in (401, 403):
            raise PermanentError(f"Inventory Planner refused the API key or account ({status}): {message}",
                                 status=status, code="auth", body=body)
        if status == 404:
            raise NotFound(f"Inventory Planner: {message}", status=404, code="not_found", body=body)
        if status in (400, 422):
            raise PermanentError(f"Inventory Planner rejected the request: {message}", status=status,
                                 code="validation_failed", body=body)
        raise PermanentError(f"Inventory Planner request failed ({status}): {message}", status=status, body=body)

    def _call(self, method: str, path: str, *, params: dict | None = None, payload: dict | None = None) -> dict:
        kwargs = {}
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v not in (None, "")}
        if payload is not None:
            kwargs["data"] = json.dumps(payload)
            kwargs["headers"] = {"Content-Type": "application/json"}
        response = self.request(method, f"{self.base_url}/{path}", **kwargs)
        try:
            # Decimals, not floats: costs are money.
            body = json.loads(response.text, parse_float=Decimal)
        except ValueError:
            raise PermanentError(f"Inventory Planner answered {method} {path} with something that is not JSON: "
                                 f"{response.text[:120]!r}", code="malformed_answer") from None
        return _object(body, f"the answer to {method} {path}")

    def _page(self, path: str, plural: str, page: int, limit: int, params: dict, read) -> PlannerPage:
        body = self._call("GET", path, params={**params, "page": page, "limit": limit})
        rows = [read(row, f"{plural}[{i}]") for i, row in enumerate(_list(body, plural, "the answer", required=True))]
        meta = _object(body.get("meta", {}), "meta")
        total = _whole(meta, "total", "meta")
        return PlannerPage(rows, total if total is not None else page * limit + len(rows), page, limit)

    def _pages(self, path: str, plural: str, params: dict, read, limit: int) -> Iterator:
        page = 0
        while True:
            result = self._page(path, plural, page, limit, params, read)
            yield from result.rows
            if not result.rows or not result.more:
                return
            page += 1

    # --- purchase orders ---------------------------------------------------------------------

    def purchase_orders_page(self, *, page: int = 0, limit: int = PAGE_SIZE, status: str = "", warehouse: str = "",
                             vendor: str = "", modified_after: str = "") -> PlannerPage:
        params = {"status_eqi": status, "warehouse": warehouse, "vendor_eqi": vendor,
                  "last_modified_gt": modified_after, "type_ne": "transfer"}
        return self._page("purchase-orders", "purchase-orders", page, limit, params, purchase_order_from)

    def list_purchase_orders(self, *, status: str = "", warehouse: str = "", vendor: str = "",
                             modified_after: str = "", limit: int = PAGE_SIZE) -> Iterator[PlannerPurchaseOrder]:
        """Every purchase order matching the filters, page by page (transfers left out)."""
        params = {"status_eqi": status, "warehouse": warehouse, "vendor_eqi": vendor,
                  "last_modified_gt": modified_after, "type_ne": "transfer"}
        for order in self._pages("purchase-orders", "purchase-orders", params, purchase_order_from, limit):
            if order.type != "assembly":
                yield order

    def get_purchase_order(self, purchase_order_id: str) -> PlannerPurchaseOrder:
        body = self._call("GET", f"purchase-orders/{quote(purchase_order_id, safe='')}")
        return purchase_order_from(body.get("purchase-order"), "purchase-order")

    def update_purchase_order(self, purchase_order_id: str, *, status: str = "", extra_reference: str = "",
                              notes: str | None = None, received_date: str = "",
                              received: dict[str, int] | None = None) -> PlannerPurchaseOrder:
        """PATCH the purchase order: its status, our ERP purchase-order number as its extra reference,
        and what was received per line item ({item id: quantity received so far}). Safe to repeat:
        it sets values, it adds nothing."""
        fields: dict = {}
        if status:
            fields["status"] = status
        if extra_reference:
            fields["extra_reference"] = extra_reference
        if notes is not None:
            fields["notes"] = notes
        if received_date:
            fields["received_date"] = received_date
        if received:
            fields["items"] = [{"id": item_id, "received": int(quantity)} for item_id, quantity in received.items()]
        body = self._call("PATCH", f"purchase-orders/{quote(purchase_order_id, safe='')}",
                          payload={"purchase-order": fields})
        return purchase_order_from(body.get("purchase-order"), "purchase-order")

    # --- variants ----------------------------------------------------------------------------

    def list_variants(self, *, skus: list[str] | None = None, warehouse: str = "", replenishment_gt: int | None = None,
                      limit: int = PAGE_SIZE) -> Iterator[PlannerVariant]:
        """Variants with their replenishment figures (lead time, review period, replenishment, oos)."""
        params = {"sku_in": ",".join(skus) if skus else "", "warehouse": warehouse,
                  "replenishment_gt": replenishment_gt}
        yield from self._pages("variants", "variants", params, variant_from, limit)

    def get_variant(self, variant_id: str) -> PlannerVariant:
        body = self._call("GET", f"variants/{quote(variant_id, safe='')}")
        return variant_from(body.get("variant"), "variant")
