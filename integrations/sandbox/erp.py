"""A generic REST ERP stand-in: items, depots, stock, customers and Sales Orders under /erp/api/v1.

Behaves like the ERPs Ledgerline meets in production: Bearer API key, a per-key rate limit answered
with 429 and Retry-After, random record locks (423) on writes, outages (503), strict validation
(422 with one message per field), Sales Orders unique by external reference (409 with the existing
id, cancelled ones included), Idempotency-Key replay, totals booked from the lines (not from what the
client claims) and cancellation refused once dispatched (409 already_dispatched). A posted order
allocates its items' stock in its depot (a cancel gives it back, a dispatch uses it up).

Later capabilities, alike in behaviour: confirmed dispatches listed by `modified_since` (inclusive,
oldest first, ties by id; drafts appear once confirmed, with a new modified time); credit memos,
journals and purchase orders unique by external reference (409 with the existing id) with
Idempotency-Key replay; a memo booked at its own figures and refused (422 over_credit, per line) when
it credits more of an item than was sold; an unbalanced journal refused (422 unbalanced); purchase
orders listed by `modified_since` as receipts change them. Admin endpoints for a sandbox in another
process: /erp/_sandbox/… (dispatch an order in parcels, confirm a draft dispatch, receive a purchase
order).

Confirmed dispatches are also pushed: with a webhook configured (POST /erp/_sandbox/webhooks
{"url", "secret"}), each confirmed dispatch is POSTed to the URL as {"id", "event":
"dispatch.confirmed", "created_at", "data": <the dispatch>} with `X-Erp-Signature: sha256=<hex
HMAC-SHA256 of the body with the secret>` and `X-Erp-Delivery` (the same on a redelivery), after
the booking answers; a failed delivery is retried a few times, and any can be redelivered.

Customers can be matched or created in one call: `POST /customers` with `"match_on":
["external_reference", "email"]` (any of external_reference, email, phone, in the order given) looks
for an existing account by each field in turn and answers 200 with it (plus `"matched_on"`), 409
`multiple_matches` with every candidate when one field matches several accounts, or 201 with the
account it created. Without `match_on` a duplicate external reference is 409 as before.
`POST /sales-orders/batch` {"sales_orders": [...]} books up to 100 sales orders in one request, a
result per document (201 booked, 200 with `"existing": true` when its external reference is already
there, 422 with its errors, 409 `multiple_matches`), so one bad document fails only itself. A
document (single or in a batch) may carry `"customer": {..., "match_on": [...]}` instead of
`customer_id`: a valid order's account is matched or opened as `POST /customers` with match_on would,
the order booked under it, and the answer says how (`"customer": {"id", "matched_on", "created"}`);
an invalid order opens no account, several matching accounts refuse that document alone.
Stock is listed by page or by key (`GET /stock?depot=&after=<item code>`) and exported whole per
depot in one request (`GET /stock/export?depot=`, NDJSON).
`GET /erp/_sandbox/stats` counts the API requests served, by kind (`requests_by_kind`), and the
accounts matched or opened for documents that carried their customer (`customers_with_documents`),
for benchmarks.
"""
from __future__ import annotations

import bisect
import copy
import hashlib
import hmac
import json
import math
import random
import threading
import time
import uuid
from decimal import Decimal, InvalidOperation

import requests

from .currencies import currency_exponent, on_grid
from .erp_books import (
    ACCOUNT_TYPES,
    CUSTOMER,
    GUEST,
    NON_STOCK_DEMO_ITEMS,
    OPEN,
    DispatchRefused,
    OrderBook,
    ReceiptRefused,
    StatusRefused,
    is_iso_date,
    missing_for_account,
    parse_timestamp,
    same_phone,
)
from .erp_items import DemoCatalogue, ItemMasterBook
from .server import DepotStock, FaultInjection, RateLimiter, Request, Response, VendorApp

DEFAULT_PAGE_SIZE = 50
WEBHOOK_RETRY_DELAYS = (0.2, 1.0, 5.0)  # a failed dispatch webhook is sent again after these pauses
MAX_PAGE_SIZE = 200
CUSTOMER_MATCH_FIELDS = ("external_reference", "email", "phone")
CUSTOMER_INDEXED = ("email", "external_reference")  # the fields matched exactly (an e-mail in lower case)
MAX_BATCH = 100  # sales orders per POST /sales-orders/batch
LINE_KINDS = ("item", "shipping", "discount", "duty", "tip", "gift_card", "rounding")

DEMO_ITEMS = {
    "TEE-BLK-S": "T-shirt black S",
    "TEE-BLK-M": "T-shirt black M",
    "TEE-BLK-L": "T-shirt black L",
    "TEE-WHT-M": "T-shirt white M",
    "MUG-001": "Enamel mug",
    "HOODIE-GRY-L": "Hoodie grey L",
    "CUSTOM": "Custom line (no SKU)",
    "SHIPPING": "Shipping charge",
    "DISCOUNT": "Discount",
    "DUTIES": "Duties and import taxes",
    "TIPS": "Tips",
    "GIFT-CARD-LIABILITY": "Gift cards sold (liability)",
    "GOODWILL": "Goodwill credit (refund on no line)",
}
DEMO_DEPOTS = {"MAIN": "Main warehouse", "NORTH": "North depot"}
# The item master's purchasing figures of the demo stock items: cost, lead time (days), supplier.
DEMO_ITEM_SUPPLY = {
    "TEE-BLK-S": ("6.40", 21, "Northern Textiles"),
    "TEE-BLK-M": ("6.40", 21, "Northern Textiles"),
    "TEE-BLK-L": ("6.60", 21, "Northern Textiles"),
    "TEE-WHT-M": ("6.20", 21, "Northern Textiles"),
    "MUG-001": ("3.15", 35, "Stoke Enamelware"),
    "HOODIE-GRY-L": ("14.90", 28, "Northern Textiles"),
}
ITEM_FIGURES = ("unit_cost", "lead_time_days", "supplier", "barcode")
# The item master's selling prices: {currency, amount (decimal string), type ("list" | "compare_at"),
# customer_group?, channel?, min_quantity? (a quantity tier)}, as the demo storefronts sell them.
DEMO_ITEM_PRICES = {
    **{code: [{"currency": "GBP", "amount": "19.99", "type": "list"}, {"currency": "EUR", "amount": "19.99", "type": "list"}]
       for code in ("TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M")},
    "MUG-001": [{"currency": "GBP", "amount": "9.50", "type": "list"}, {"currency": "EUR", "amount": "9.50", "type": "list"}],
    # The EU shop still sells the hoodie at last season's 44.00 EUR: one price drift for e-commerce.
    "HOODIE-GRY-L": [{"currency": "GBP", "amount": "44.00", "type": "list"}, {"currency": "EUR", "amount": "49.99", "type": "list"}],
}


def _error(status: int, error: str, message: str, **extra) -> Response:
    return Response.json({"error": error, "message": message, **extra}, status)


def _is_fraction(value) -> bool:
    try:
        rate = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        return False
    return rate is not None and rate.is_finite() and 0 <= rate <= 1


def _validation(errors: list[dict]) -> Response:
    return Response.json({"error": "validation_failed", "message": "; ".join(e["message"] for e in errors),
                          "errors": errors}, 422)


def _paging(request: Request):
    """(page, page_size) of a list request, or the 422 the ERP answers for bad ones."""
    try:
        page = int(request.arg("page", "1"))
        size = int(request.arg("page_size", str(DEFAULT_PAGE_SIZE)))
    except ValueError:
        return _validation([{"field": "page", "message": "page and page_size must be integers"}])
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return _validation([{"field": "page_size",
                             "message": f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}"}])
    return page, size


class ErpSandbox(DemoCatalogue, ItemMasterBook, OrderBook, DepotStock, FaultInjection, VendorApp):
    prefix = "/erp"

    def __init__(
        self,
        erp_rate_limit: float = 50,
        erp_lock_probability: float = 0.0,
        erp_latency: float = 0.0,
        erp_api_key: str = "sandbox-erp-key",
        **_ignored,
    ):
        self.api_key = erp_api_key
        self._defaults = {"rate_limit": erp_rate_limit, "lock_probability": erp_lock_probability,
                          "latency": erp_latency}
        self.random = random.Random()
        super().__init__()
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty catalogue, no orders or customers, and the configuration the sandbox started with."""
        with self.lock:
            self.items: dict[str, dict] = {}
            self._reset_item_master()
            self.depots: dict[str, dict] = {}
            self.stock: dict[tuple[str, str], dict] = {}
            self._customers: dict[str, dict] = {}
            # The accounts by (field, value) for the fields matched exactly (accounts are never edited).
            self._customers_by: dict[tuple[str, str], list[str]] = {}
            self._orders: dict[str, dict] = {}
            self._orders_by_reference: dict[str, str] = {}
            self._idempotent: dict[str, tuple[str, str]] = {}  # key -> (body fingerprint, order id)
            # (route, key) -> (body fingerprint, document id), for credit memos, journals, purchase orders
            self._idempotent_documents: dict[tuple[str, str], tuple[str, str]] = {}
            self._next_customer = 1
            self._next_order = 1
            self._reset_books()
            self.rate_limiter = RateLimiter(self._defaults["rate_limit"])
            self.lock_probability = self._defaults["lock_probability"]
            self.latency = self._defaults["latency"]
            self.outage = False
            self.rate_limited_count = 0
            self.locked_count = 0
            self.requests_count = 0
            self.requests_by_kind: dict[str, int] = {}
            # Accounts matched or opened for documents that carried their customer, by outcome.
            self.customers_with_documents = {"opened": 0, "matched": 0}
            self.requests_seen = []
            self._webhook_generation = getattr(self, "_webhook_generation", 0) + 1
            self.webhook_url = ""
            self.webhook_secret = ""
            self.webhook_mode = "async"  # async (a thread per delivery) | sync (before the call returns) | none
            self.webhook_retry_delays = WEBHOOK_RETRY_DELAYS
            self._webhook_outbox: list[dict] = []
            self.webhook_deliveries: list[dict] = []  # every dispatch webhook sent: id, dispatch, body, headers, attempts

    def seed_demo(self) -> None:
        """The demo catalogue: depots MAIN and NORTH, the demo items and some stock in both."""
        with self.lock:
            for code, name in DEMO_DEPOTS.items():
                self.add_depot(code, name)
            for code, description in DEMO_ITEMS.items():
                cost, lead_time, supplier = DEMO_ITEM_SUPPLY.get(code, (None, None, None))
                self.add_item(code, description, unit_cost=cost, lead_time_days=lead_time, supplier=supplier,
                              prices=DEMO_ITEM_PRICES.get(code))
            for n, code in enumerate(c for c in DEMO_ITEMS if c not in NON_STOCK_DEMO_ITEMS):
                self.set_stock(code, "MAIN", on_hand=40 + 10 * n, allocated=n, reserved=1, in_transit=5)
                self.set_stock(code, "NORTH", on_hand=12 + n, allocated=0, reserved=0, damaged=n % 2)
            self._enrich_demo_items(NON_STOCK_DEMO_ITEMS)

    def add_item(self, code: str, description: str = "", active: bool = True, tax_code: str = "",
                 prices: list[dict] | None = None, **figures) -> dict:
        """figures: the item master's unit_cost (a decimal string), lead_time_days, supplier, barcode;
        prices: its selling prices (see DEMO_ITEM_PRICES)."""
        with self.lock:
            item = {"code": code, "description": description or code, "active": bool(active)}
            if tax_code:
                item["tax_code"] = tax_code
            if prices:
                item["prices"] = [dict(p) for p in prices]
            item.update({k: v for k, v in figures.items() if k in ITEM_FIGURES and v not in (None, "")})
            self.items[code] = self._touch_item(item, self.items.get(code))
            return dict(item)

    def customers_add(self, *, email: str = "", name: str = "", external_reference: str = "", country: str = "",
                      phone: str = "", account_type: str = CUSTOMER) -> dict:
        """A customer created in the ERP by someone else (no uniqueness check on e-mail, like the real ones)."""
        with self.lock:
            customer = {"id": f"C-{self._next_customer:06d}", "email": email, "name": name or email or phone,
                        "external_reference": external_reference, "country": country, "phone": phone,
                        "account_type": account_type}
            self._next_customer += 1
            self._customers[customer["id"]] = customer
            for key in zip(CUSTOMER_INDEXED, (email.strip().lower(), external_reference)):
                if key[1]:
                    self._customers_by.setdefault(key, []).append(customer["id"])
            return dict(customer)

    add_customer = customers_add

    @property
    def customers(self) -> list[dict]:
        with self.lock:
            return [dict(c) for c in self._customers.values()]

    @property
    def sales_orders(self) -> list[dict]:
        """Every Sales Order, oldest first, as the API would return it."""
        with self.lock:
            return [copy.deepcopy(o) for o in self._orders.values()]

    def sales_order(self, order_id: str) -> dict | None:
        with self.lock:
            order = self._orders.get(order_id)
            return copy.deepcopy(order) if order else None

    # --- routes ------------------------------------------------------------------------------

    def register_routes(self) -> None:
        api = "/api/v1"
        self.route("GET", f"{api}/items", self._api(self.list_items))
        self.route("GET", f"{api}/items/(?P<code>[^/]+)", self._api(self.get_item))
        self.route("GET", f"{api}/depots", self._api(self.list_depots))
        self.route("GET", f"{api}/stock", self._api(self.list_stock))
        self.route("GET", f"{api}/stock/export", self._api(self.export_stock))
        self.route("GET", f"{api}/customers", self._api(self.list_customers))
        self.route("POST", f"{api}/customers", self._api(self.create_customer, write=True))
        self.route("GET", f"{api}/customers/(?P<id>[^/]+)", self._api(self.get_customer))
        self.route("GET", f"{api}/sales-orders", self._api(self.list_sales_orders))
        self.route("POST", f"{api}/sales-orders", self._api(self.create_sales_order, write=True))
        self.route("POST", f"{api}/sales-orders/batch", self._api(self.create_sales_orders_batch, write=True))
        self.route("GET", f"{api}/sales-orders/(?P<id>[^/]+)", self._api(self.get_sales_order))
        self.route("POST", f"{api}/sales-orders/(?P<id>[^/]+)/cancel", self._api(self.cancel_sales_order, write=True))
        self.route("GET", f"{api}/dispatches", self._api(self.list_dispatches))
        self.route("GET", f"{api}/credit-memos", self._api(self.list_credit_memos))
        self.route("POST", f"{api}/credit-memos", self._api(self.create_credit_memo, write=True))
        self.route("GET", f"{api}/credit-memos/(?P<id>[^/]+)", self._api(self.get_credit_memo))
        self.route("GET", f"{api}/journals", self._api(self.list_journals))
        self.route("POST", f"{api}/journals", self._api(self.create_journal, write=True))
        self.route("GET", f"{api}/journals/(?P<id>[^/]+)", self._api(self.get_journal))
        self.route("GET", f"{api}/purchase-orders", self._api(self.list_purchase_orders))
        self.route("POST", f"{api}/purchase-orders", self._api(self.create_purchase_order, write=True))
        self.route("GET", f"{api}/purchase-orders/(?P<id>[^/]+)", self._api(self.get_purchase_order))
        self.route("POST", "/_sandbox/reset", self.admin_reset)
        self.route("POST", "/_sandbox/seed-demo", self.admin_seed_demo)
        self.route("GET", "/_sandbox/stats", self.admin_stats)
        self.route("GET", "/_sandbox/references", self.admin_references)
        self.route("POST", "/_sandbox/config", self.admin_config)
        self.route("POST", "/_sandbox/items", self.admin_add_item)
        self.route("POST", "/_sandbox/items/(?P<code>[^/]+)", self.admin_change_item)
        self.route("POST", "/_sandbox/seed-catalogue", self.admin_seed_catalogue)
        self.route("POST", "/_sandbox/depots", self.admin_add_depot)
        self.route("POST", "/_sandbox/stock", self.admin_set_stock)
        self.route("POST", "/_sandbox/sales-orders/(?P<id>[^/]+)/dispatch", self.admin_dispatch_order)
        self.route("POST", "/_sandbox/dispatches/(?P<id>[^/]+)/confirm", self.admin_confirm_dispatch)
        self.route("POST", "/_sandbox/purchase-orders/(?P<id>[^/]+)/receive", self.admin_receive_purchase_order)
        self.route("POST", "/_sandbox/credit-memos/(?P<id>[^/]+)/inspect", self.admin_inspect_return)
        self.route("POST", "/_sandbox/webhooks", self.admin_webhooks)
        self.route("POST", "/_sandbox/webhooks/(?P<id>[^/]+)/redeliver", self.admin_redeliver_webhook)

    def _api(self, handler, *, write: bool = False):
        """Latency, outage, auth, rate limit and record locks, in the order a real gateway applies them."""

        def guarded(request: Request) -> Response:
            with self.lock:
                self.requests_count += 1
                latency, outage = self.latency, self.outage
            if latency:
                time.sleep(latency)  # outside the lock, so concurrent callers overlap
            if outage:
                return _error(503, "service_unavailable", "The ERP is down for maintenance")
            header = request.headers.get("authorization", "")
            if not header.lower().startswith("bearer ") or header[7:].strip() != self.api_key:
                return Response.json({"error": "unauthorized", "message": "Missing or invalid API key"}, 401,
                                     {"WWW-Authenticate": 'Bearer realm="erp"'})
            wait = self.rate_limiter.check(self.api_key)
            if wait is not None:
                with self.lock:
                    self.rate_limited_count += 1
                return Response.json({"error": "rate_limited", "message": "Too many requests"}, 429,
                                     {"Retry-After": str(max(1, math.ceil(wait)))})
            kind = self._request_kind(handler, request)  # counted once served (not 429, 401 or 503)
            with self.lock:
                self.requests_by_kind[kind] = self.requests_by_kind.get(kind, 0) + 1
            if write and self.lock_probability and self.random.random() < self.lock_probability:
                with self.lock:
                    self.locked_count += 1
                return _error(423, "record_locked", "Record is locked by another user")
            return handler(request)

        return guarded

    @staticmethod
    def _request_kind(handler, request: Request) -> str:
        """What a benchmark calls this request: create, existence_check, customer_search, …"""
        name = getattr(handler, "__name__", "other")
        if name == "create_customer":
            return "customer_match_or_create" if b'"match_on"' in (request.body or b"") else "customer_create"
        if name == "list_sales_orders":
            return "existence_check" if request.arg("external_reference") is not None else "list_sales_orders"
        return {"create_sales_order": "create", "create_sales_orders_batch": "batch", "list_customers": "customer_search",
                "get_item": "item_check", "list_depots": "depots", "export_stock": "stock_export"}.get(name, name)

    @staticmethod
    def _page(request: Request, rows: list) -> Response:
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        page, size = paging
        start = (page - 1) * size
        chunk = rows[start:start + size]
        more = start + size < len(rows)
        return Response.json({"data": chunk, "page": page, "page_size": size, "total": len(rows),
                              "next_page": page + 1 if more else None})

    def list_items(self, request: Request) -> Response:
        if request.arg("updated_since") is not None or request.arg("limit") is not None:
            return self.list_item_changes(request)
        with self.lock:
            rows = [dict(i) for i in sorted(self.items.values(), key=lambda i: i["code"])]
        return self._page(request, rows)

    def list_item_changes(self, request: Request) -> Response:
        """The item master's change feed: `GET /items?updated_since=<cursor>&limit=<n>` (an empty
        cursor starts from the beginning), ordered by (updated_at, id), answered as {"data": [...],
        "next_cursor", "has_more"}."""
        try:
            limit = int(request.arg("limit", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return _validation([{"field": "limit", "message": "limit must be an integer"}])
        if not 1 <= limit <= MAX_PAGE_SIZE:
            return _validation([{"field": "limit", "message": f"limit must be between 1 and {MAX_PAGE_SIZE}"}])
        try:
            rows, cursor, more = self.items_changed_since(request.arg("updated_since") or "", limit)
        except ValueError as bad:
            return _validation([{"field": "updated_since", "message": str(bad)}])
        return Response.json({"data": rows, "next_cursor": cursor, "has_more": more})

    def get_item(self, request: Request) -> Response:
        with self.lock:
            item = self.items.get(request.params["code"])
            if item is None:
                return _error(404, "not_found", f"Item {request.params['code']} does not exist")
            return Response.json(dict(item))

    def list_depots(self, request: Request) -> Response:
        with self.lock:
            return Response.json({"data": [dict(d) for d in self.depots.values()]})

    def _stock_keys(self, depot: str | None) -> list[tuple[str, str]]:
        """The stock keys of a depot (or all), sorted by item code then depot, sorted once and kept
        until a row is added (rows are never removed but by a reset), so a page costs its own rows
        and not a sort of the whole depot. Call under the lock."""
        stamp = (id(self.stock), len(self.stock))
        if getattr(self, "_stock_order_stamp", None) != stamp:
            self._stock_order = {}
            self._stock_order_stamp = stamp
        keys = self._stock_order.get(depot or "")
        if keys is None:
            keys = sorted(k for k in self.stock if not depot or k[1] == depot)
            self._stock_order[depot or ""] = keys
        return keys

    def list_stock(self, request: Request) -> Response:
        """`GET /stock?depot=&item_code=&page=&page_size=` as every list; `after=<item code>` pages by
        key instead (the rows after that item); `next_after` names a page's last item while more follow."""
        depot = request.arg("depot")
        item_code = request.arg("item_code")
        after = request.arg("after")
        paging = _paging(request)
        if isinstance(paging, Response):
            return paging
        page, size = paging
        with self.lock:
            if depot and depot not in self.depots:
                return _validation([{"field": "depot", "message": f"Depot {depot} does not exist"}])
            if item_code:
                keys = sorted(k for k in ((item_code, depot),) if k in self.stock) if depot else \
                    [k for k in self._stock_keys(None) if k[0] == item_code]
            else:
                keys = self._stock_keys(depot)
            start = bisect.bisect_right(keys, (after, "\uffff")) if after is not None else (page - 1) * size
            rows = [copy.deepcopy(self.stock[k]) for k in keys[start:start + size]]
            more = start + size < len(keys)
        body = {"data": rows, "page_size": size, "total": len(keys),
                "next_after": rows[-1]["item_code"] if more and rows else None}
        if after is None:
            body.update(page=page, next_page=page + 1 if more else None)
        return Response.json(body)

    def export_stock(self, request: Request) -> Response:
        """`GET /stock/export?depot=X`: every stock row of the depot (of every depot without one) in
        one answer, NDJSON (a row a line, as GET /stock lists them, by item code), the way ERPs offer
        a stock export for a warehouse system or a nightly feed. One request of the rate limit."""
        depot = request.arg("depot")
        with self.lock:
            if depot and depot not in self.depots:
                return _validation([{"field": "depot", "message": f"Depot {depot} does not exist"}])
            dumps = json.JSONEncoder(separators=(",", ":")).encode
            body = "".join([dumps(self.stock[k]) + "\n" for k in self._stock_keys(depot)]).encode()
        return Response(200, body, {"Content-Type": "application/x-ndjson"})

    def list_customers(self, request: Request) -> Response:
        email = (request.arg("email") or "").strip().lower()
        reference = request.arg("external_reference") or ""
        phone = request.arg("phone") or ""
        with self.lock:
            rows = [dict(c) for c in self._customers_among(("email", email), ("external_reference", reference))
                    if (not email or c["email"].strip().lower() == email)
                    and (not reference or c["external_reference"] == reference)
                    and (not phone or same_phone(phone, c["phone"]))]
        return Response.json({"data": rows})

    def get_customer(self, request: Request) -> Response:
        with self.lock:
            customer = self._customers.get(request.params["id"])
            if customer is None:
                return _error(404, "not_found", f"Customer {request.params['id']} does not exist")
            return Response.json(dict(customer))

    def create_customer(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "Request body must be a JSON object")
        errors = self._customer_errors(body)
        if errors:
            return _validation(errors)
        with self.lock:
            status, answer, field = self._customer_match_or_create(body, body.get("match_on"))
        if status == 409:
            if field:
                return _error(409, "multiple_matches", f"{len(answer)} customers match {field} "
                                                       f"{self._customer_wanted(body, field)}",
                              candidates=answer, matched_on=field)
            return _error(409, "duplicate_external_reference",
                          f"Customer with external reference {body.get('external_reference')} already exists",
                          existing_id=answer)
        if status == 200:
            return Response.json({**answer, "matched_on": field}, 200,
                                 {"Location": f"/erp/api/v1/customers/{answer['id']}"})
        return Response.json(answer, 201, {"Location": f"/erp/api/v1/customers/{answer['id']}"})

    @staticmethod
    def _customer_errors(body: dict, where: str = "") -> list[dict]:
        """Field errors for a customer to open (or match): types, the account type, what it needs."""
        errors = []
        for field in ("name", "email", "phone", "external_reference", "country"):
            if body.get(field) is not None and not isinstance(body[field], str):
                errors.append({"field": f"{where}{field}", "message": f"{where}{field} must be a string"})
        account_type = body.get("account_type") or CUSTOMER
        if account_type not in ACCOUNT_TYPES:
            errors.append({"field": f"{where}account_type",
                           "message": f"account_type must be one of {', '.join(ACCOUNT_TYPES)}"})
        if errors:
            return errors
        name, email, phone = ((body.get(f) or "").strip() for f in ("name", "email", "phone"))
        for missing in missing_for_account(name=name, email=email, phone=phone, guest=account_type == GUEST):
            if missing == "name":
                errors.append({"field": f"{where}name", "message": "name is required"})
            else:
                errors.append({"field": f"{where}email", "message": "email or phone is required (a guest "
                                                                    "account, account_type guest, needs neither)"})
        match_on = body.get("match_on")
        if match_on is not None and (not isinstance(match_on, list) or not match_on
                                     or any(f not in CUSTOMER_MATCH_FIELDS for f in match_on)):
            errors.append({"field": f"{where}match_on",
                           "message": f"match_on must be a non-empty list of {', '.join(CUSTOMER_MATCH_FIELDS)}"})
        return errors

    @staticmethod
    def _customer_wanted(body: dict, field: str) -> str:
        if field == "external_reference":
            return str(body.get("external_reference") or "")
        return (body.get(field) or "").strip()

    def _customer_match_or_create(self, body: dict, match_on) -> tuple[int, object, str]:
        """Under the lock, for a valid body: (200, the account, field) matched by the first field of
        match_on that finds one; (409, candidates, field) when that field finds several; (409,
        existing id, "") for a duplicate external reference; else (201, the new account, "")."""
        reference = str(body.get("external_reference") or "")
        for field in match_on or ():
            wanted = self._customer_wanted(body, field)
            if not wanted:
                continue
            among = self._customers_among((field, wanted.lower() if field == "email" else wanted))
            found = [dict(c) for c in among if self._customer_matches(c, field, wanted)]
            if len(found) > 1:
                return 409, found, field
            if found:
                return 200, found[0], field
        existing = self._customers_among(("external_reference", reference)) if reference else []
        if existing:
            return 409, existing[0]["id"], ""
        name, email, phone = ((body.get(f) or "").strip() for f in ("name", "email", "phone"))
        customer = self.customers_add(email=email, name=name, external_reference=reference,
                                      country=str(body.get("country") or ""), phone=phone,
                                      account_type=body.get("account_type") or CUSTOMER)
        return 201, customer, ""

    def _customers_among(self, *keys: tuple[str, str]):
        """Under the lock: the accounts that may match every given (field, value), from the index of the
        first indexed field given a value; every account when none is (the caller still checks each: a
        phone is compared by its digits, so it has no index)."""
        for key in keys:
            if key[1] and key[0] in CUSTOMER_INDEXED:
                return [self._customers[i] for i in self._customers_by.get(key, ()) if i in self._customers]
        return self._customers.values()

    @staticmethod
    def _customer_matches(customer: dict, field: str, wanted: str) -> bool:
        if field == "email":
            return customer["email"].strip().lower() == wanted.lower()
        if field == "phone":
            return same_phone(wanted, customer["phone"])
        return customer["external_reference"] == wanted

    def list_sales_orders(self, request: Request) -> Response:
        reference = request.arg("external_reference")
        with self.lock:
            if reference is not None:
                order_id = self._orders_by_reference.get(reference)
                rows = [copy.deepcopy(self._orders[order_id])] if order_id else []
            else:
                rows = [copy.deepcopy(o) for o in self._orders.values()]
        return self._page(request, rows) if reference is None else Response.json({"data": rows})

    def get_sales_order(self, request: Request) -> Response:
        order = self.sales_order(request.params["id"])
        if order is None:
            return _error(404, "not_found", f"Sales order {request.params['id']} does not exist")
        return Response.json(order)

    def _amount(self, value, field: str, exponent: int, currency: str, errors: list) -> Decimal | None:
        if not isinstance(value, str):
            errors.append({"field": field, "message": f"{field} must be a decimal string, got {value!r}"})
            return None
        try:
            amount = Decimal(value)
        except InvalidOperation:
            errors.append({"field": field, "message": f"{field} {value!r} is not a decimal number"})
            return None
        if not amount.is_finite():
            errors.append({"field": field, "message": f"{field} {value!r} is not a decimal number"})
            return None
        if -amount.as_tuple().exponent > exponent:
            errors.append({"field": field, "message": f"{field} {value} has more than {exponent} decimals "
                                                      f"allowed for {currency}"})
            return None
        return amount

    def _validate_order(self, body: dict, *, customer_known: bool = False) -> list[dict]:
        """Field errors for a Sales Order draft; empty when it can be booked. Call under the lock."""
        errors: list[dict] = []
        for field in ("external_reference", "customer_id", "currency", "depot", "total"):
            if not isinstance(body.get(field), str) or not body[field].strip():
                errors.append({"field": field, "message": f"{field} is required"})
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            errors.append({"field": "lines", "message": "at least one line is required"})
        if errors:
            return errors
        currency = body["currency"]
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            return [{"field": "currency", "message": f"Currency {currency} is not an ISO 4217 code"}]
        if not customer_known and body["customer_id"] not in self._customers:
            errors.append({"field": "customer_id", "message": f"Customer {body['customer_id']} does not exist"})
        if body["depot"] not in self.depots:
            errors.append({"field": "depot", "message": f"Depot {body['depot']} does not exist"})
        return errors + self._validate_lines_and_totals(body, selling=True)

    def _validate_lines_and_totals(self, body: dict, *, selling: bool) -> list[dict]:
        """Field errors for the lines and figures of an order (selling) or a credit memo: items, kinds,
        quantities, amounts on the currency's grid, and totals that add up. Call under the lock."""
        errors: list[dict] = []
        currency = body["currency"]
        exponent = currency_exponent(currency)
        lines = body["lines"]
        total = self._amount(body["total"], "total", exponent, currency, errors)
        line_sum = tax_sum = Decimal(0)
        sum_ok = tax_ok = True
        for i, line in enumerate(lines):
            where = f"lines[{i}]"
            if not isinstance(line, dict):
                errors.append({"field": where, "message": f"{where} must be an object"})
                sum_ok = False
                continue
            code = line.get("item_code")
            if not isinstance(code, str) or not code:
                errors.append({"field": f"{where}.item_code", "message": f"{where}.item_code is required"})
            elif code not in self.items:
                errors.append({"field": f"{where}.item_code", "message": f"Item {code} does not exist"})
            elif selling and not self.items[code]["active"]:  # what was sold may be credited after it is blocked
                errors.append({"field": f"{where}.item_code", "message": f"Item {code} is blocked for sales"})
            kind = line.get("kind", "item")
            if kind not in LINE_KINDS:
                errors.append({"field": f"{where}.kind", "message": f"{where}.kind must be one of {', '.join(LINE_KINDS)}"})
            quantity = line.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                errors.append({"field": f"{where}.quantity", "message": f"{where}.quantity must be a positive integer"})
            if not isinstance(line.get("line_reference", ""), str):
                errors.append({"field": f"{where}.line_reference", "message": f"{where}.line_reference must be a string"})
            self._amount(line.get("unit_price"), f"{where}.unit_price", exponent, currency, errors)
            rate = line.get("tax_rate")
            if rate not in (None, "") and not _is_fraction(rate):
                errors.append({"field": f"{where}.tax_rate",
                               "message": f"{where}.tax_rate {rate!r} must be a decimal fraction between 0 and 1 "
                                          "(0.2 for 20 %)"})
            tax = self._amount(line.get("tax_amount", "0"), f"{where}.tax_amount", exponent, currency, errors)
            if tax is None:
                tax_ok = False
            else:
                tax_sum += tax
            line_total = self._amount(line.get("line_total"), f"{where}.line_total", exponent, currency, errors)
            if line_total is None:
                sum_ok = False
            else:
                line_sum += line_total
        if total is not None and sum_ok and line_sum != total:
            errors.append({"field": "total", "message": f"total {body['total']} does not equal the sum of the "
                                                         f"line totals {line_sum}"})
        # Older clients send neither figure: then there is nothing more to check.
        tax_total = gross_total = None
        if body.get("tax_total") is not None:
            tax_total = self._amount(body["tax_total"], "tax_total", exponent, currency, errors)
        if body.get("gross_total") is not None:
            gross_total = self._amount(body["gross_total"], "gross_total", exponent, currency, errors)
        if tax_total is not None and tax_ok and tax_total != tax_sum:
            errors.append({"field": "tax_total", "message": f"tax_total {body['tax_total']} does not equal the sum "
                                                             f"of the line tax amounts {tax_sum}"})
        if gross_total is not None and total is not None and tax_ok:
            inclusive = bool(body.get("prices_include_tax", False))
            expected = total if inclusive else total + tax_sum
            if gross_total != expected:
                how = "the total (prices include tax)" if inclusive else "total + tax_total"
                errors.append({"field": "gross_total", "message": f"gross_total {body['gross_total']} does not "
                                                                   f"equal {how} {expected}"})
        return errors

    def create_sales_order(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "Request body must be a JSON object")
        key = request.headers.get("idempotency-key", "")
        fingerprint = hashlib.sha256(request.body).hexdigest()
        with self.lock:
            # The same key with the same body is a client retry: answer as the first call did, with the
            # order as it is now (it may have been cancelled or dispatched since).
            if key and key in self._idempotent and self._idempotent[key][0] == fingerprint:
                order_id = self._idempotent[key][1]
                return Response.json(copy.deepcopy(self._orders[order_id]), 201, {
                    "Location": f"/erp/api/v1/sales-orders/{order_id}", "Idempotent-Replayed": "true"})
            status, answer, customer = self._book_order(body)
            if status == 422:
                return _validation(answer)
            if status == 409 and customer:
                return _error(409, "multiple_matches", f"{len(answer)} customers match "
                                                       f"{customer['multiple_matches']}",
                              candidates=answer, matched_on=customer["multiple_matches"])
            if status == 409:
                return _error(409, "duplicate_external_reference",
                              f"Sales order with external reference {body['external_reference']} already exists "
                              f"as {answer}", existing_id=answer)
            if key:
                self._idempotent[key] = (fingerprint, answer["id"])
            return Response.json({**copy.deepcopy(answer), **({"customer": customer} if customer else {})}, 201,
                                 {"Location": f"/erp/api/v1/sales-orders/{answer['id']}"})

    def _book_order(self, body: dict):
        """Under the lock: (409, existing id, None) for a known external reference, (422, errors, None)
        for an invalid document, else (201, the booked order, customer). A document may carry its
        customer ("customer": {..., "match_on": [...]}) instead of customer_id: once the rest of it is
        valid, the account is matched or opened as POST /customers with match_on would, and the order
        booked under it; customer is then {"id", "matched_on", "created"} (else None). Several accounts
        for one field: (409, candidates, {"multiple_matches": field}), nothing booked or opened."""
        reference = body.get("external_reference")
        if isinstance(reference, str) and reference in self._orders_by_reference:
            return 409, self._orders_by_reference[reference], None
        inline = body.get("customer")
        if inline is None:
            errors = self._validate_order(body)
            if errors:
                return 422, errors, None
            return 201, self._book_valid_order(body), None
        if not isinstance(inline, dict):
            return 422, [{"field": "customer", "message": "customer must be a JSON object"}], None
        errors = []
        if body.get("customer_id"):
            errors.append({"field": "customer_id", "message": "give customer_id or customer, not both"})
        if not inline.get("match_on"):
            errors.append({"field": "customer.match_on",
                           "message": "a customer sent with its order needs match_on (matched, else opened)"})
        errors += self._customer_errors(inline, "customer.")
        errors += self._validate_order({**body, "customer_id": "(sent with the order)"}, customer_known=True)
        if errors:
            return 422, errors, None
        status, answer, field = self._customer_match_or_create(inline, inline["match_on"])
        if status == 409 and field:
            return 409, answer, {"multiple_matches": field}
        if status == 409:  # its external reference is taken, but not matched on: that account
            answer, field = dict(self._customers[answer]), "external_reference"
        customer = {"id": answer["id"], "matched_on": field or None, "created": status == 201}
        self.customers_with_documents["opened" if status == 201 else "matched"] += 1
        return 201, self._book_valid_order({**body, "customer_id": answer["id"]}), customer

    def _book_valid_order(self, body: dict) -> dict:
        reference = body.get("external_reference")
        order_id = f"SO-{self._next_order:06d}"
        self._next_order += 1
        inclusive = bool(body.get("prices_include_tax", False))
        figures = self.booked_figures((Decimal(line["line_total"]) for line in body["lines"]),
                                      (Decimal(line.get("tax_amount", "0")) for line in body["lines"]),
                                      prices_include_tax=inclusive, currency=body["currency"])
        order = {
            "id": order_id,
            "external_reference": reference,
            "customer_id": body["customer_id"],
            "currency": body["currency"],
            "depot": body["depot"],
            "order_date": str(body.get("order_date") or time.strftime("%Y-%m-%d")),
            "customer_reference": str(body.get("customer_reference") or ""),
            **figures,
            "prices_include_tax": inclusive,
            "status": self.STATUS_WORDS[OPEN],
            "lines": [
                {"line_number": n + 1, "item_code": line["item_code"],
                 "description": str(line.get("description") or self.items[line["item_code"]]["description"]),
                 "quantity": line["quantity"], "unit_price": line["unit_price"], "line_total": line["line_total"],
                 "tax_code": str(line.get("tax_code") or ""), "tax_amount": line.get("tax_amount", "0"),
                 "tax_rate": str(line.get("tax_rate") or ""), "kind": line.get("kind", "item"),
                 "line_reference": line.get("line_reference") or ""}
                for n, line in enumerate(body["lines"])
            ],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.post_order(order)
        self._orders_by_reference[reference] = order["id"]
        return order

    def create_sales_orders_batch(self, request: Request) -> Response:
        """Up to MAX_BATCH sales orders in one request, each booked (or refused) on its own: a result
        per document, in order, with its own status (201 booked, 200 already there under its
        external reference, 422 refused with its errors). One bad document never fails the others."""
        try:
            body = request.json()
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        documents = body.get("sales_orders") if isinstance(body, dict) else None
        if not isinstance(documents, list) or not documents:
            return _validation([{"field": "sales_orders", "message": "sales_orders must be a non-empty list"}])
        if len(documents) > MAX_BATCH:
            return _validation([{"field": "sales_orders",
                                 "message": f"at most {MAX_BATCH} sales orders per batch ({len(documents)} sent)"}])
        results = []
        with self.lock:
            for index, document in enumerate(documents):
                reference = document.get("external_reference") if isinstance(document, dict) else None
                if not isinstance(document, dict):
                    results.append({"index": index, "status": 422, "external_reference": None, "errors": [
                        {"field": "sales_orders", "message": "each sales order must be a JSON object"}]})
                    continue
                status, answer, customer = self._book_order(document)
                if status == 409 and customer:
                    field = customer["multiple_matches"]
                    results.append({"index": index, "status": 409, "external_reference": reference,
                                    "error": "multiple_matches", "matched_on": field, "candidates": answer,
                                    "message": f"{len(answer)} customers match {field}"})
                elif status == 409:
                    results.append({"index": index, "status": 200, "external_reference": reference,
                                    "existing": True, "sales_order": copy.deepcopy(self._orders[answer])})
                elif status == 422:
                    results.append({"index": index, "status": 422, "external_reference": reference,
                                    "error": "validation_failed", "errors": answer})
                else:
                    results.append({"index": index, "status": 201, "external_reference": reference,
                                    "existing": False, "sales_order": copy.deepcopy(answer),
                                    **({"customer": customer} if customer else {})})
        return Response.json({"results": results}, 200)

    def cancel_sales_order(self, request: Request) -> Response:
        """Cancel an open order; a cancelled one is answered as it is, a dispatched one is refused."""
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "Request body must be a JSON object")
        if not isinstance(body.get("reason", ""), str):
            return _validation([{"field": "reason", "message": "reason must be a string"}])
        order_id = request.params["id"]
        try:
            order = self.cancel_order(order_id, reason=body.get("reason", ""))
        except KeyError:
            return _error(404, "not_found", f"Sales order {order_id} does not exist")
        except StatusRefused as refused:
            return _error(409, "already_dispatched", f"Sales order {order_id} is {refused.current} and can no "
                                                     "longer be cancelled", order_status=refused.current)
        return Response.json(order)

    # --- dispatches, credit memos, journals, purchase orders ----------------------------------

    @staticmethod
    def _json_object(request: Request) -> tuple[dict | None, Response | None]:
        try:
            body = request.json()
        except ValueError:
            return None, _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return None, _error(400, "invalid_json", "Request body must be a JSON object")
        return body, None

    @staticmethod
    def _modified_since(request: Request):
        """(since or None, None), or (None, a 422) when modified_since is not an ISO date-time."""
        text = request.arg("modified_since")
        if not text:
            return None, None
        try:
            return parse_timestamp(text), None
        except ValueError:
            return None, _validation([{"field": "modified_since",
                                       "message": f"modified_since {text!r} is not an ISO 8601 date-time"}])

    def _replayed(self, route: str, request: Request, documents: dict) -> Response | None:
        """The same Idempotency-Key with the same body is a client retry: answer as the first call did,
        with the document as it is now. Call under the lock."""
        key = request.headers.get("idempotency-key", "")
        seen = self._idempotent_documents.get((route, key)) if key else None
        if seen and seen[0] == hashlib.sha256(request.body).hexdigest():
            return Response.json(copy.deepcopy(documents[seen[1]]), 201, {
                "Location": f"/erp/api/v1/{route}/{seen[1]}", "Idempotent-Replayed": "true"})
        return None

    def _created(self, route: str, request: Request, document: dict) -> Response:
        key = request.headers.get("idempotency-key", "")
        if key:
            self._idempotent_documents[(route, key)] = (hashlib.sha256(request.body).hexdigest(), document["id"])
        return Response.json(document, 201, {"Location": f"/erp/api/v1/{route}/{document['id']}"})

    @staticmethod
    def _required(body: dict, fields) -> list[dict]:
        return [{"field": f, "message": f"{f} is required"} for f in fields
                if not isinstance(body.get(f), str) or not body[f].strip()]

    @staticmethod
    def _currency_errors(currency: str) -> list[dict]:
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            return [{"field": "currency", "message": f"Currency {currency} is not an ISO 4217 code"}]
        return []

    def _by_reference_or_page(self, request: Request, documents: dict, by_reference: dict, rows) -> Response:
        reference = request.arg("external_reference")
        if reference is not None:
            with self.lock:
                found = by_reference.get(reference)
                return Response.json({"data": [copy.deepcopy(documents[found])] if found else []})
        return self._page(request, rows)

    def list_dispatches(self, request: Request) -> Response:
        """Confirmed dispatches modified at or after modified_since (inclusive), oldest first, ties by id."""
        since, problem = self._modified_since(request)
        if problem:
            return problem
        rows = self.confirmed_dispatches_since(since)
        order_id = request.arg("sales_order_id")
        return self._page(request, [r for r in rows if not order_id or r["sales_order_id"] == order_id])

    def list_credit_memos(self, request: Request) -> Response:
        order_id = request.arg("sales_order_id")
        return self._by_reference_or_page(request, self._credit_memos, self._credit_memos_by_reference,
                                          [m for m in self.credit_memos
                                           if not order_id or m["sales_order_id"] == order_id])

    def _document(self, store: dict, label: str, document_id: str) -> Response:
        """One credit memo, journal or purchase order by id, or the ERP's 404."""
        with self.lock:
            document = store.get(document_id)
            if document is None:
                return _error(404, "not_found", f"{label} {document_id} does not exist")
            return Response.json(copy.deepcopy(document))

    @staticmethod
    def _duplicate_reference(by_reference: dict, body: dict, label: str) -> Response | None:
        """The 409 a second document with a known external reference gets, naming the existing one."""
        reference = body.get("external_reference")
        if isinstance(reference, str) and reference in by_reference:
            existing = by_reference[reference]
            return _error(409, "duplicate_external_reference",
                          f"{label} with external reference {reference} already exists as {existing}",
                          existing_id=existing)
        return None

    def get_credit_memo(self, request: Request) -> Response:
        return self._document(self._credit_memos, "Credit memo", request.params["id"])

    def create_credit_memo(self, request: Request) -> Response:
        """A credit memo against a sales order, booked at the ERP's own figures from its lines."""
        body, problem = self._json_object(request)
        if problem:
            return problem
        with self.lock:
            replay = self._replayed("credit-memos", request, self._credit_memos)
            if replay:
                return replay
            reference = body.get("external_reference")
            duplicate = self._duplicate_reference(self._credit_memos_by_reference, body, "Credit memo")
            if duplicate:
                return duplicate
            errors = self._required(body, ("external_reference", "sales_order_id", "customer_id", "currency", "total"))
            if not isinstance(body.get("lines"), list) or not body["lines"]:
                errors.append({"field": "lines", "message": "at least one line is required"})
            for field in ("reason",):
                if not isinstance(body.get(field, ""), str):
                    errors.append({"field": field, "message": f"{field} must be a string"})
            for field in ("restock", "prices_include_tax"):
                if not isinstance(body.get(field, False), bool):
                    errors.append({"field": field, "message": f"{field} must be true or false"})
            if errors:
                return _validation(errors)
            errors = self._currency_errors(body["currency"])
            if errors:
                return _validation(errors)
            order = self._orders.get(body["sales_order_id"])
            if order is None:
                return _validation([{"field": "sales_order_id",
                                     "message": f"Sales order {body['sales_order_id']} does not exist"}])
            if body["customer_id"] != order["customer_id"]:
                errors.append({"field": "customer_id", "message": f"Customer {body['customer_id']} is not the customer "
                                                                  f"of sales order {order['id']}"})
            if body["currency"] != order["currency"]:
                errors.append({"field": "currency", "message": f"currency {body['currency']} is not the sales order's "
                                                               f"{order['currency']}"})
            errors += self._validate_lines_and_totals(body, selling=False)
            if errors:
                return _validation(errors)
            over = self.over_credits(order, body["lines"])
            if over:
                return Response.json({"error": "over_credit", "message": "; ".join(m for _, m in over),
                                      "errors": [{"field": f"lines[{i}].quantity", "message": m} for i, m in over]},
                                     422)
            inclusive = bool(body.get("prices_include_tax", False))
            figures = self.booked_figures((Decimal(line["line_total"]) for line in body["lines"]),
                                          (Decimal(line.get("tax_amount", "0")) for line in body["lines"]),
                                          prices_include_tax=inclusive, currency=body["currency"])
            memo = self.book_credit_memo(order, {
                "external_reference": reference, "customer_id": body["customer_id"], "currency": body["currency"],
                **figures, "prices_include_tax": inclusive, "reason": body.get("reason", ""),
                "restock": bool(body.get("restock", False)),
                "lines": [{"line_number": n + 1, "item_code": line["item_code"],
                           "description": str(line.get("description") or self.items[line["item_code"]]["description"]),
                           "quantity": line["quantity"], "unit_price": line["unit_price"],
                           "line_total": line["line_total"], "tax_code": str(line.get("tax_code") or ""),
                           "tax_amount": line.get("tax_amount", "0"), "tax_rate": str(line.get("tax_rate") or ""),
                           "kind": line.get("kind", "item")}
                          for n, line in enumerate(body["lines"])],
            })
            return self._created("credit-memos", request, memo)

    def list_journals(self, request: Request) -> Response:
        return self._by_reference_or_page(request, self._journals, self._journals_by_reference, self.journals)

    def get_journal(self, request: Request) -> Response:
        return self._document(self._journals, "Journal", request.params["id"])

    def create_journal(self, request: Request) -> Response:
        """A journal: every line a debit or a credit on an account, on the currency's grid; refused whole
        (422 unbalanced) when the debits do not equal the credits."""
        body, problem = self._json_object(request)
        if problem:
            return problem
        with self.lock:
            replay = self._replayed("journals", request, self._journals)
            if replay:
                return replay
            reference = body.get("external_reference")
            duplicate = self._duplicate_reference(self._journals_by_reference, body, "Journal")
            if duplicate:
                return duplicate
            errors = self._required(body, ("external_reference", "date", "currency"))
            lines = body.get("lines")
            if not isinstance(lines, list) or not lines:
                errors.append({"field": "lines", "message": "at least one line is required"})
            if not isinstance(body.get("description", ""), str):
                errors.append({"field": "description", "message": "description must be a string"})
            if errors:
                return _validation(errors)
            errors = self._currency_errors(body["currency"])
            if not is_iso_date(body["date"]):
                errors.append({"field": "date", "message": f"date {body['date']!r} is not an ISO date (YYYY-MM-DD)"})
            if errors:
                return _validation(errors)
            currency = body["currency"]
            exponent = currency_exponent(currency)
            debits = credits = Decimal(0)
            stored_lines = []
            for i, line in enumerate(lines):
                where = f"lines[{i}]"
                if not isinstance(line, dict):
                    errors.append({"field": where, "message": f"{where} must be an object"})
                    continue
                if not isinstance(line.get("account"), str) or not line["account"].strip():
                    errors.append({"field": f"{where}.account", "message": f"{where}.account is required"})
                for field in ("description", "reference"):
                    if not isinstance(line.get(field, ""), str):
                        errors.append({"field": f"{where}.{field}", "message": f"{where}.{field} must be a string"})
                debit = self._amount(line.get("debit", "0"), f"{where}.debit", exponent, currency, errors)
                credit = self._amount(line.get("credit", "0"), f"{where}.credit", exponent, currency, errors)
                if debit is None or credit is None:
                    continue
                if debit < 0 or credit < 0:
                    errors.append({"field": where, "message": f"{where}: debit and credit must not be negative"})
                elif bool(debit) == bool(credit):
                    errors.append({"field": where, "message": f"{where} needs a debit or a credit, not both or neither"})
                debits += debit
                credits += credit
                stored_lines.append({"line_number": i + 1, "account": line.get("account"),
                                     "debit": str(on_grid(debit, currency)), "credit": str(on_grid(credit, currency)),
                                     "description": line.get("description", ""), "reference": line.get("reference", "")})
            if errors:
                return _validation(errors)
            if debits != credits:
                message = (f"Journal {reference} is unbalanced: debits {on_grid(debits, currency)} do not equal "
                           f"credits {on_grid(credits, currency)}")
                return Response.json({"error": "unbalanced", "message": message,
                                      "errors": [{"field": "lines", "message": message}],
                                      "debit_total": str(on_grid(debits, currency)),
                                      "credit_total": str(on_grid(credits, currency))}, 422)
            journal = self.book_journal({
                "external_reference": reference, "date": body["date"], "currency": currency,
                "description": body.get("description", ""), "lines": stored_lines,
                "debit_total": str(on_grid(debits, currency)), "credit_total": str(on_grid(credits, currency)),
            })
            return self._created("journals", request, journal)

    def list_purchase_orders(self, request: Request) -> Response:
        """By external_reference, or created/changed at or after modified_since, oldest first, ties by id."""
        since, problem = self._modified_since(request)
        if problem:
            return problem
        return self._by_reference_or_page(request, self._purchase_orders, self._purchase_orders_by_reference,
                                          self.purchase_orders_since(since))

    def get_purchase_order(self, request: Request) -> Response:
        return self._document(self._purchase_orders, "Purchase order", request.params["id"])

    def create_purchase_order(self, request: Request) -> Response:
        body, problem = self._json_object(request)
        if problem:
            return problem
        with self.lock:
            replay = self._replayed("purchase-orders", request, self._purchase_orders)
            if replay:
                return replay
            reference = body.get("external_reference")
            duplicate = self._duplicate_reference(self._purchase_orders_by_reference, body, "Purchase order")
            if duplicate:
                return duplicate
            errors = self._required(body, ("external_reference", "supplier", "depot", "currency"))
            lines = body.get("lines")
            if not isinstance(lines, list) or not lines:
                errors.append({"field": "lines", "message": "at least one line is required"})
            if not isinstance(body.get("note", ""), str):
                errors.append({"field": "note", "message": "note must be a string"})
            if errors:
                return _validation(errors)
            currency = body["currency"]
            errors = self._currency_errors(currency)
            if errors:
                return _validation(errors)
            if body["depot"] not in self.depots:
                errors.append({"field": "depot", "message": f"Depot {body['depot']} does not exist"})
            expected = body.get("expected_date") or ""
            if expected and not is_iso_date(expected):
                errors.append({"field": "expected_date",
                               "message": f"expected_date {expected!r} is not an ISO date (YYYY-MM-DD)"})
            exponent = currency_exponent(currency)
            total = Decimal(0)
            stored_lines = []
            for i, line in enumerate(lines):
                where = f"lines[{i}]"
                if not isinstance(line, dict):
                    errors.append({"field": where, "message": f"{where} must be an object"})
                    continue
                code = line.get("item_code")
                if not isinstance(code, str) or not code:
                    errors.append({"field": f"{where}.item_code", "message": f"{where}.item_code is required"})
                elif code not in self.items:
                    errors.append({"field": f"{where}.item_code", "message": f"Item {code} does not exist"})
                quantity = line.get("quantity")
                if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                    errors.append({"field": f"{where}.quantity", "message": f"{where}.quantity must be a positive integer"})
                    quantity = 0
                cost = self._amount(line.get("unit_cost") or "0", f"{where}.unit_cost", exponent, currency, errors)
                if cost is not None and cost < 0:
                    errors.append({"field": f"{where}.unit_cost", "message": f"{where}.unit_cost must not be negative"})
                cost = cost if cost is not None else Decimal(0)
                total += cost * quantity
                stored_lines.append({"item_code": code, "quantity": quantity, "unit_cost": str(on_grid(cost, currency))})
            if errors:
                return _validation(errors)
            purchase_order = self.book_purchase_order({
                "external_reference": reference, "supplier": body["supplier"], "depot": body["depot"],
                "currency": currency, "expected_date": expected, "note": body.get("note", ""),
                "total": str(on_grid(total, currency)), "lines": stored_lines,
            })
            return self._created("purchase-orders", request, purchase_order)

    # --- the dispatch webhook ----------------------------------------------------------------

    def configure_webhook(self, *, url: str | None = None, secret: str | None = None, mode: str | None = None,
                          retry_delays=None) -> dict:
        with self.lock:
            if url is not None:
                self.webhook_url = url
            if secret is not None:
                self.webhook_secret = secret
            if mode is not None:
                if mode not in ("sync", "async", "none"):
                    raise ValueError("mode must be sync, async or none")
                self.webhook_mode = mode
            if retry_delays is not None:
                self.webhook_retry_delays = tuple(float(d) for d in retry_delays)
            return {"url": self.webhook_url, "mode": self.webhook_mode, "secret_set": bool(self.webhook_secret)}

    def _apply_dispatch(self, order: dict, dispatch: dict) -> None:
        super()._apply_dispatch(order, dispatch)
        if self.webhook_url or self.webhook_mode == "none":
            self._webhook_outbox.append(self._webhook_delivery(dispatch))

    def _webhook_delivery(self, dispatch: dict) -> dict:
        body = json.dumps({"id": str(uuid.uuid4()), "event": "dispatch.confirmed", "created_at": self.now(),
                           "data": {k: v for k, v in dispatch.items() if k != "created_at"}},
                          separators=(",", ":")).encode()
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        delivery = {"id": str(uuid.uuid4()), "dispatch_id": dispatch["id"], "body": body, "target": self.webhook_url,
                    "headers": {"Content-Type": "application/json", "User-Agent": "ERP-Sandbox-Webhooks",
                                "X-Erp-Event": "dispatch.confirmed", "X-Erp-Signature": f"sha256={signature}"},
                    "attempts": [], "delivered": False}
        delivery["headers"]["X-Erp-Delivery"] = delivery["id"]
        self.webhook_deliveries.append(delivery)
        return delivery

    def _flush_webhooks(self) -> None:
        """Send what the last booking confirmed, once its answer is ready (never under the lock)."""
        with self.lock:
            outbox, self._webhook_outbox = self._webhook_outbox, []
            mode, generation = self.webhook_mode, self._webhook_generation
        for delivery in outbox:
            if mode == "sync":
                self._send_webhook(delivery, generation)
            elif mode == "async":
                threading.Thread(target=self._send_webhook, args=(delivery, generation), daemon=True,
                                 name=f"erp-webhook-{delivery['dispatch_id']}").start()

    def _attempt_webhook(self, delivery: dict) -> int | None:
        status, error = None, ""
        try:
            status = requests.post(delivery["target"], data=delivery["body"], headers=delivery["headers"],
                                   timeout=5).status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            delivery["attempts"].append({"status": status, "error": error, "at": self.now()})
            delivery["delivered"] = delivery["delivered"] or (status is not None and 200 <= status < 300)
        return status

    def _send_webhook(self, delivery: dict, generation: int) -> None:
        if not delivery["target"]:
            return
        if self._attempt_webhook(delivery) is not None and delivery["delivered"]:
            return
        for pause in self.webhook_retry_delays:
            time.sleep(pause)
            if generation != self._webhook_generation:
                return  # the sandbox was reset meanwhile
            self._attempt_webhook(delivery)
            if delivery["delivered"]:
                return

    def redeliver_webhook(self, delivery_id: str) -> int | None:
        """Send a dispatch webhook again, as it was (same body, signature and X-Erp-Delivery)."""
        with self.lock:
            delivery = next(d for d in self.webhook_deliveries if d["id"] == delivery_id)
            if not delivery["target"]:
                delivery["target"] = self.webhook_url
        return self._attempt_webhook(delivery)

    def dispatch_order(self, order_id: str, **kwargs) -> dict:
        try:
            return super().dispatch_order(order_id, **kwargs)
        finally:
            self._flush_webhooks()

    def confirm_dispatch(self, dispatch_id: str) -> dict:
        try:
            return super().confirm_dispatch(dispatch_id)
        finally:
            self._flush_webhooks()

    def admin_webhooks(self, request: Request) -> Response:
        """{"url", "secret", "mode"?, "retry_delays"?}: where confirmed dispatches are pushed."""
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict) or set(body) - {"url", "secret", "mode", "retry_delays"}:
            return _error(400, "invalid_config", "send {url, secret, mode?, retry_delays?}")
        try:
            return Response.json(self.configure_webhook(**body))
        except (TypeError, ValueError) as exc:
            return _error(400, "invalid_config", str(exc))

    def admin_redeliver_webhook(self, request: Request) -> Response:
        try:
            status = self.redeliver_webhook(request.params["id"])
        except StopIteration:
            return _error(404, "not_found", f"Webhook delivery {request.params['id']} does not exist")
        return Response.json({"status": status})

    # --- admin endpoints (a sandbox in another process) --------------------------------------

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"ok": True})

    def admin_seed_demo(self, request: Request) -> Response:
        self.seed_demo()
        with self.lock:
            return Response.json({"items": sorted(self.items), "depots": sorted(self.depots)})

    def admin_stats(self, request: Request) -> Response:
        with self.lock:
            return Response.json({
                "orders": len(self._orders),
                "customers": len(self._customers),
                "dispatches": len(self._dispatches),
                "credit_memos": len(self._credit_memos),
                "journals": len(self._journals),
                "purchase_orders": len(self._purchase_orders),
                "items": len(self.items),
                "depots": len(self.depots),
                "rate_limited": self.rate_limited_count,
                "record_locks": self.locked_count,
                "requests": self.requests_count,
                "requests_by_kind": dict(self.requests_by_kind),
                "customers_with_documents": dict(self.customers_with_documents),
                "config": self._config(),
            })

    def admin_references(self, request: Request) -> Response:
        """The external reference of every sales order, in creation order (benchmarks count them),
        with the gross total the ERP booked for each (benchmarks compare it with the storefront's)."""
        with self.lock:
            orders = list(self._orders.values())
            return Response.json({"references": [o["external_reference"] for o in orders],
                                  "gross_totals": {o["external_reference"]: o.get("gross_total", "") for o in orders}})

    def admin_config(self, request: Request) -> Response:
        body = request.json() or {}
        allowed = {"rate_limit", "lock_probability", "latency", "outage", "gross_skew"}
        unknown = set(body) - allowed
        if unknown:
            return _error(400, "invalid_config", f"unknown settings {sorted(unknown)}; allowed: {sorted(allowed)}")
        try:
            return Response.json(self.configure(**body))
        except ValueError as exc:
            return _error(400, "invalid_config", str(exc))

    def admin_dispatch_order(self, request: Request) -> Response:
        """The warehouse ships the order: {} for everything still open, {"partly": true} for one unit,
        {"lines": [{"item_code" | "line_number", "quantity"}], "carrier", "tracking_number",
        "tracking_url"} for one parcel, {"parcels": [{lines, carrier, …}, …]} for several, and
        "draft": true to book them unconfirmed. Answers the order with "dispatches": those booked."""
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "Request body must be a JSON object")
        try:
            return Response.json(self.dispatch_order(
                request.params["id"], partly=bool(body.get("partly")), lines=body.get("lines"),
                parcels=body.get("parcels"), carrier=str(body.get("carrier") or ""),
                tracking_number=str(body.get("tracking_number") or ""),
                tracking_url=str(body.get("tracking_url") or ""), draft=bool(body.get("draft"))))
        except KeyError:
            return _error(404, "not_found", f"Sales order {request.params['id']} does not exist")
        except StatusRefused as refused:
            return _error(409, "invalid_status", str(refused))
        except DispatchRefused as refused:
            return _validation([{"field": "lines", "message": str(refused)}])

    def admin_confirm_dispatch(self, request: Request) -> Response:
        try:
            return Response.json(self.confirm_dispatch(request.params["id"]))
        except KeyError:
            return _error(404, "not_found", f"Dispatch {request.params['id']} does not exist")
        except StatusRefused as refused:
            return _error(409, "invalid_status", str(refused))

    def admin_receive_purchase_order(self, request: Request) -> Response:
        """Goods arrive: {} for everything outstanding, {"lines": [{"item_code" | "line_number", "quantity"}]}
        for part of it."""
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "Request body must be a JSON object")
        try:
            return Response.json(self.receive_purchase_order(request.params["id"], body.get("lines")))
        except KeyError:
            return _error(404, "not_found", f"Purchase order {request.params['id']} does not exist")
        except ReceiptRefused as refused:
            return _validation([{"field": "lines", "message": str(refused)}])

    def admin_inspect_return(self, request: Request) -> Response:
        """The warehouse inspects what a restocking credit memo took back: {"result": "passed" | "failed",
        "lines"?: [{"item_code", "quantity"}]} (all that awaits inspection when no lines are given)."""
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict) or body.get("result") not in ("passed", "failed"):
            return _error(400, "invalid_inspection", 'result must be "passed" or "failed"')
        try:
            return Response.json(self.inspect_return(request.params["id"], passed=body["result"] == "passed",
                                                     lines=body.get("lines")))
        except KeyError:
            return _error(404, "not_found", f"Credit memo {request.params['id']} does not exist")
        except ValueError as refused:
            return _validation([{"field": "lines", "message": str(refused)}])

    def admin_add_item(self, request: Request) -> Response:
        body = request.json() or {}
        if not body.get("code"):
            return _error(400, "invalid_item", "code is required")
        return Response.json(self.add_item(body["code"], body.get("description", ""), body.get("active", True),
                                           body.get("tax_code", ""), **{k: body.get(k) for k in ITEM_FIGURES}), 201)

    def admin_change_item(self, request: Request) -> Response:
        """Change an item of the item master as someone in the ERP would: any of its fields, prices
        (the whole price list), "status": "retired", or "new_code" to rename it (same id)."""
        try:
            return Response.json(self.item_master_change(request.params["code"], **(request.json() or {})))
        except KeyError:
            return _error(404, "not_found", f"Item {request.params['code']} does not exist")
        except (TypeError, ValueError) as bad:
            return _validation([{"field": "item", "message": str(bad)}])

    def admin_seed_catalogue(self, request: Request) -> Response:
        self.seed_catalogue()
        with self.lock:
            return Response.json({"items": sorted(self.items)})

    def admin_add_depot(self, request: Request) -> Response:
        body = request.json() or {}
        if not body.get("code"):
            return _error(400, "invalid_depot", "code is required")
        return Response.json(self.add_depot(body["code"], body.get("name", "")), 201)

    def admin_set_stock(self, request: Request) -> Response:
        body = dict(request.json() or {})
        try:
            states = body.pop("states", {}) or {}
            return Response.json(self.set_stock(body.pop("item_code"), body.pop("depot"), **body, **states))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, "invalid_stock", f"cannot set stock: {exc}")
