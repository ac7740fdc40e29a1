"""An Inventory Planner stand-in: its public API v1 (purchase orders and variants) under
/inventory-planner/api/v1, state in memory.

Behaves as the vendor documents it, and as public clients see it where the documents are silent:
`Authorization: <API key>` (no Bearer) and `Account: <account id>` on every request (401 without
either, or with a wrong one); collections answer `{"meta": {name, display_name, total, count,
limit, start}, "<plural>": [...]}` paged by `page` (from 0) and `limit` (1-1000, else 422); single
resources `{"<singular>": {...}}`; errors `{"result": {"status": "error", "message"}}` (404 unknown
id, 422 validation naming the field, 400 unreadable JSON); filters `<field>`, `<field>_eqi`, `_in`,
`_ne`, `_gt`, `_lt`; writes wrapped in `{"purchase-order": {...}}`; a per-account rate limit (off by
default) answered 429 with Retry-After; `last_modified` moves on every change.

Admin endpoints under /inventory-planner/_sandbox/ let tests and the demo set it up (reset, seed-demo,
purchase orders, variants, config) and see what it received (stats, patches). The file-import side
(CSV URLs and the SFTP drop) lives in inventory_planner_feeds.py when it exists:
`POST /_sandbox/import` hands the body to its `import_feeds(app, body)` and keeps the answer in
`self.imported`, shown by `GET /_sandbox/imported`.

Imports nothing from the product.
"""
from __future__ import annotations

import copy
import importlib
import json
import math
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from .server import RateLimiter, Request, Response, VendorApp

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
STATUSES = ("draft", "open", "sent", "partial", "closed", "cancelled")
DEMO_WAREHOUSES = {"MAIN": "Main warehouse", "NORTH": "North depot"}
# The demo ERP's items: (sku, title, vendor, cost, lead time, review period)
DEMO_VARIANTS = (
    ("TEE-BLK-S", "T-shirt black S", "Acme Textiles", "4.20", 21, 30),
    ("TEE-BLK-M", "T-shirt black M", "Acme Textiles", "4.20", 21, 30),
    ("TEE-BLK-L", "T-shirt black L", "Acme Textiles", "4.35", 21, 30),
    ("TEE-WHT-M", "T-shirt white M", "Acme Textiles", "4.10", 21, 30),
    ("MUG-001", "Enamel mug", "Enamel & Co", "2.75", 14, 45),
    ("HOODIE-GRY-L", "Hoodie grey L", "Northern Knits", "11.60", 35, 60),
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response.json({"result": {"status": "error", "message": message}}, status, headers)


def _matches(row: dict, name: str, values: list[str]) -> bool:
    """One filter parameter against one record: field, field_eqi, field_in, field_ne, field_gt, field_lt."""
    value = values[0]
    for suffix in ("_eqi", "_in", "_ne", "_gt", "_lt", ""):
        if suffix and name.endswith(suffix):
            field = name[: -len(suffix)]
            break
    else:
        field, suffix = name, ""
    have = row.get(field)
    text = "" if have is None else str(have)
    if suffix == "_eqi":
        return text.lower() == value.lower()
    if suffix == "_in":
        return text in value.split(",")
    if suffix == "_ne":
        return text != value
    if suffix in ("_gt", "_lt"):
        try:
            left, right = Decimal(text), Decimal(value)
        except InvalidOperation:
            left, right = text, value  # timestamps compare as ISO strings
        return left > right if suffix == "_gt" else left < right
    return text == value


class InventoryPlannerSandbox(VendorApp):
    prefix = "/inventory-planner"

    def __init__(self, inventory_planner_api_key: str = "sandbox-ip-key", inventory_planner_account: str = "a1000",
                 inventory_planner_rate_limit: float = 0, **_ignored):
        self._defaults = {"api_key": inventory_planner_api_key, "account": inventory_planner_account,
                          "rate_limit": inventory_planner_rate_limit}
        super().__init__()
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.api_key = self._defaults["api_key"]
            self.account = self._defaults["account"]
            self.rate_limiter = RateLimiter(self._defaults["rate_limit"])
            self.purchase_orders: dict[str, dict] = {}
            self.variants: dict[str, dict] = {}
            self.patches: list[dict] = []  # every PATCH body received, with the order's id
            self.imported: list = []  # what the file import (inventory_planner_feeds) returned
            self.requests_count = 0
            self.rate_limited_count = 0
            self.requests_seen = []
            self._next_po = 1
            self._next_item = 1
            self._next_variant = 1
            self.fail_next: list[tuple[int, str]] = []  # (status, body text) answered to the next API calls

    def add_variant(self, sku: str, *, warehouse: str = "MAIN", title: str = "", lead_time: int | None = 14,
                    review_period: int | None = 30, replenishment: int | None = 0, oos: int | None = None,
                    vendor: str = "", cost_price: str | None = None, variant_id: str = "") -> dict:
        with self.lock:
            variant_id = variant_id or f"c{self.account[1:] or '0'}_{self._next_variant}"
            self._next_variant += 1
            variant = {"id": variant_id, "sku": sku, "title": title or sku, "warehouse": warehouse,
                       "lead_time": lead_time, "review_period": review_period, "replenishment": replenishment,
                       "oos": oos, "vendors": ([{"vendor": vendor.lower(), "vendor_name": vendor,
                                                 "cost_price": cost_price}] if vendor else [])}
            self.variants[variant_id] = variant
            return copy.deepcopy(variant)

    def variant_for(self, sku: str, warehouse: str) -> dict | None:
        with self.lock:
            for variant in self.variants.values():
                if variant["sku"] == sku and variant["warehouse"] == warehouse:
                    return variant
            return None

    def add_purchase_order(self, *, vendor: str, warehouse: str, items: list[dict], status: str = "draft",
                           currency: str = "GBP", expected_date: str = "", reference: str = "",
                           po_type: str = "po", notes: str = "") -> dict:
        """items: [{"sku", "replenishment", "cost"?, "variant"?, "title"?}]."""
        with self.lock:
            po_id = f"{self._next_po:024x}"  # Inventory Planner ids look like Mongo object ids
            number = self._next_po
            self._next_po += 1
            lines = []
            for item in items:
                variant = self.variant_for(item["sku"], warehouse)
                lines.append({
                    "id": str(self._next_item), "variant": item.get("variant") or (variant or {}).get("id", ""),
                    "sku": item["sku"], "title": item.get("title") or (variant or {}).get("title", item["sku"]),
                    "replenishment": int(item["replenishment"]), "received": int(item.get("received", 0)),
                    "cost": item.get("cost"), "received_history": []})
                self._next_item += 1
            now = _now()
            order = {"id": po_id, "reference": reference or f"PO-{number:04d}", "extra_reference": "",
                     "status": status, "type": po_type, "source_type": "vendor", "vendor": vendor, "source": vendor,
                     "warehouse": warehouse, "currency": currency, "expected_date": expected_date,
                     "received_date": "", "created_date": now, "last_modified": now, "readonly": False,
                     "notes": notes, "items": lines}
            self.purchase_orders[po_id] = order
            return copy.deepcopy(order)

    def purchase_order(self, po_id: str) -> dict | None:
        with self.lock:
            order = self.purchase_orders.get(po_id)
            return copy.deepcopy(order) if order else None

    def seed_demo(self) -> None:
        """Variants for the demo ERP's items in both warehouses, and a few drafts to review per warehouse."""
        with self.lock:
            figures = {"MAIN": (40, 9, 120), "NORTH": (18, 25, 60)}  # replenishment base, oos base, …
            for n, (sku, title, vendor, cost, lead, review) in enumerate(DEMO_VARIANTS):
                for warehouse, (base, oos, _) in figures.items():
                    self.add_variant(sku, warehouse=warehouse, title=title, lead_time=lead, review_period=review,
                                     replenishment=base + 6 * n, oos=max(0, oos - 4 * n), vendor=vendor,
                                     cost_price=cost)
            costs = {sku: cost for sku, _, _, cost, _, _ in DEMO_VARIANTS}
            self.add_purchase_order(vendor="Acme Textiles", warehouse="MAIN", expected_date="2026-07-01", items=[
                {"sku": "TEE-BLK-S", "replenishment": 40, "cost": costs["TEE-BLK-S"]},
                {"sku": "TEE-BLK-M", "replenishment": 60, "cost": costs["TEE-BLK-M"]},
                {"sku": "TEE-BLK-L", "replenishment": 30, "cost": costs["TEE-BLK-L"]}])
            self.add_purchase_order(vendor="Enamel & Co", warehouse="MAIN", expected_date="2026-06-20", items=[
                {"sku": "MUG-001", "replenishment": 72, "cost": costs["MUG-001"]}])
            self.add_purchase_order(vendor="Acme Textiles", warehouse="NORTH", expected_date="2026-07-05", items=[
                {"sku": "TEE-WHT-M", "replenishment": 24, "cost": costs["TEE-WHT-M"]}])
            self.add_purchase_order(vendor="Northern Knits", warehouse="NORTH", expected_date="2026-07-20", items=[
                {"sku": "HOODIE-GRY-L", "replenishment": 15, "cost": costs["HOODIE-GRY-L"]}])

    # --- routes ------------------------------------------------------------------------------

    def register_routes(self) -> None:
        api = "/api/v1"
        self.route("GET", f"{api}/purchase-orders", self._api(self.list_purchase_orders))
        self.route("POST", f"{api}/purchase-orders", self._api(self.create_purchase_order))
        self.route("GET", f"{api}/purchase-orders/(?P<id>[^/]+)", self._api(self.get_purchase_order))
        self.route("PATCH", f"{api}/purchase-orders/(?P<id>[^/]+)", self._api(self.update_purchase_order))
        self.route("PUT", f"{api}/purchase-orders/(?P<id>[^/]+)", self._api(self.update_purchase_order))
        self.route("GET", f"{api}/variants", self._api(self.list_variants))
        self.route("GET", f"{api}/variants/(?P<id>[^/]+)", self._api(self.get_variant))
        self.route("POST", "/_sandbox/reset", self.admin_reset)
        self.route("POST", "/_sandbox/seed-demo", self.admin_seed_demo)
        self.route("POST", "/_sandbox/config", self.admin_config)
        self.route("POST", "/_sandbox/purchase-orders", self.admin_add_purchase_order)
        self.route("POST", "/_sandbox/variants", self.admin_add_variant)
        self.route("GET", "/_sandbox/stats", self.admin_stats)
        self.route("POST", "/_sandbox/import", self.admin_import)
        self.route("GET", "/_sandbox/imported", self.admin_imported)

    def _api(self, handler):
        """Auth (both headers), then the rate limit, then the handler, as the vendor's gateway would."""

        def guarded(request: Request) -> Response:
            with self.lock:
                self.requests_count += 1
                failure = self.fail_next.pop(0) if self.fail_next else None
            if failure is not None:
                status, text = failure
                return Response(status, text.encode(), {"Content-Type": "application/json"})
            key = request.headers.get("authorization", "")
            account = request.headers.get("account", "")
            if not key or not account:
                missing = "Authorization" if not key else "Account"
                return _error(401, f"Unauthorized: the {missing} header is required")
            if key != self.api_key or account != self.account:
                return _error(401, "Unauthorized: invalid API key or account")
            wait = self.rate_limiter.check(account)
            if wait is not None:
                with self.lock:
                    self.rate_limited_count += 1
                return _error(429, "Too many requests", {"Retry-After": str(max(1, math.ceil(wait)))})
            return handler(request)

        return guarded

    @staticmethod
    def _paging(request: Request) -> tuple[int, int] | Response:
        try:
            page = int(request.arg("page", "0"))
            limit = int(request.arg("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return _error(422, "page and limit must be integers")
        if page < 0 or not 1 <= limit <= MAX_LIMIT:
            return _error(422, f"page must be >= 0 and limit between 1 and {MAX_LIMIT}")
        return page, limit

    def _collection(self, request: Request, rows: list[dict], singular: str, plural: str, display: str) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        page, limit = paging
        for name, values in request.query.items():
            if name in ("page", "limit", "fields"):
                continue
            rows = [row for row in rows if _matches(row, name, values)]
        start = page * limit
        chunk = rows[start:start + limit]
        fields = [f for f in (request.arg("fields") or "").split(",") if f]
        if fields:
            chunk = [{k: v for k, v in row.items() if k in fields or k == "id"} for row in chunk]
        meta = {"name": singular, "display_name": display, "total": len(rows), "count": len(chunk),
                "limit": limit, "start": start}
        return Response.json({"result": {"status": "success"}, "meta": meta, plural: chunk})

    def list_purchase_orders(self, request: Request) -> Response:
        with self.lock:
            rows = [copy.deepcopy(o) for o in sorted(self.purchase_orders.values(), key=lambda o: o["id"])]
        return self._collection(request, rows, "purchase-order", "purchase-orders", "Purchase orders")

    def get_purchase_order(self, request: Request) -> Response:
        order = self.purchase_order(request.params["id"])
        if order is None:
            return _error(404, f"purchase-order {request.params['id']} not found")
        return Response.json({"result": {"status": "success"}, "purchase-order": order})

    def _body(self, request: Request) -> dict | Response:
        try:
            body = json.loads(request.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Request body is not valid JSON")
        if not isinstance(body, dict) or not isinstance(body.get("purchase-order"), dict):
            return _error(422, 'the body must be {"purchase-order": {...}}')
        return body["purchase-order"]

    def create_purchase_order(self, request: Request) -> Response:
        fields = self._body(request)
        if isinstance(fields, Response):
            return fields
        errors = [f"{name} is required" for name in ("vendor", "warehouse") if not isinstance(fields.get(name), str)
                  or not fields[name]]
        items = fields.get("items")
        if not isinstance(items, list) or not items:
            errors.append("items must be a non-empty list")
            items = []
        status = str(fields.get("status") or "draft").lower()
        if status not in STATUSES:
            errors.append(f"status {fields.get('status')!r} is not one of {', '.join(STATUSES)}")
        lines = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append(f"items[{i}] must be an object")
                continue
            quantity = item.get("replenishment")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                errors.append(f"items[{i}].replenishment must be a positive integer")
            sku = item.get("sku") or ""
            if item.get("variant"):
                variant = self.variants.get(str(item["variant"]))
                if variant is None:
                    errors.append(f"items[{i}].variant {item['variant']} not found")
                else:
                    sku = variant["sku"]
            if not sku:
                errors.append(f"items[{i}] needs a variant or a sku")
            lines.append({**item, "sku": sku})
        if errors:
            return _error(422, "; ".join(errors))
        order = self.add_purchase_order(vendor=fields["vendor"], warehouse=fields["warehouse"], items=lines,
                                        status=status, currency=str(fields.get("currency") or "GBP"),
                                        expected_date=str(fields.get("expected_date") or ""),
                                        reference=str(fields.get("reference") or ""), notes=str(fields.get("notes") or ""))
        return Response.json({"result": {"status": "success"}, "purchase-order": order}, 201)

    def update_purchase_order(self, request: Request) -> Response:
        fields = self._body(request)
        if isinstance(fields, Response):
            return fields
        with self.lock:
            order = self.purchase_orders.get(request.params["id"])
            if order is None:
                return _error(404, f"purchase-order {request.params['id']} not found")
            errors = []
            status = fields.get("status")
            if status is not None and (not isinstance(status, str) or status.lower() not in STATUSES):
                errors.append(f"status {status!r} is not one of {', '.join(STATUSES)}")
            for name in ("reference", "extra_reference", "notes", "expected_date", "received_date"):
                if name in fields and not isinstance(fields[name], str):
                    errors.append(f"{name} must be a string")
            by_id = {item["id"]: item for item in order["items"]}
            updates = fields.get("items", [])
            if not isinstance(updates, list):
                errors.append("items must be a list")
                updates = []
            for i, item in enumerate(updates):
                if not isinstance(item, dict) or str(item.get("id")) not in by_id:
                    errors.append(f"items[{i}].id {item.get('id') if isinstance(item, dict) else item!r} is not "
                                  f"an item of this purchase order")
                    continue
                for name in ("received", "replenishment"):
                    if name in item:
                        value = item[name]
                        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                            errors.append(f"items[{i}].{name} must be a whole number >= 0")
            if errors:
                return _error(422, "; ".join(errors))
            if order["readonly"]:
                return _error(422, f"purchase-order {order['id']} is read-only")
            self.patches.append({"id": order["id"], "method": request.method, "body": copy.deepcopy(fields)})
            if status is not None:
                order["status"] = status.lower()
            for name in ("reference", "extra_reference", "notes", "expected_date", "received_date"):
                if name in fields:
                    order[name] = fields[name]
            for item in updates:
                line = by_id[str(item["id"])]
                if "replenishment" in item:
                    line["replenishment"] = item["replenishment"]
                if "received" in item and item["received"] != line["received"]:
                    line["received_history"].append({"date": int(datetime.now(timezone.utc).timestamp()),
                                                     "value": item["received"] - line["received"]})
                    line["received"] = item["received"]
            order["last_modified"] = _now()
            return Response.json({"result": {"status": "success"}, "purchase-order": copy.deepcopy(order)})

    def list_variants(self, request: Request) -> Response:
        with self.lock:
            rows = [copy.deepcopy(v) for v in self.variants.values()]
        return self._collection(request, rows, "variant", "variants", "Variants")

    def get_variant(self, request: Request) -> Response:
        with self.lock:
            variant = self.variants.get(request.params["id"])
            if variant is None:
                return _error(404, f"variant {request.params['id']} not found")
            return Response.json({"result": {"status": "success"}, "variant": copy.deepcopy(variant)})

    # --- admin -------------------------------------------------------------------------------

    def _admin_body(self, request: Request) -> dict | Response:
        try:
            body = request.json() or {}
        except ValueError:
            return _error(400, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object")
        return body

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"reset": True})

    def admin_seed_demo(self, request: Request) -> Response:
        self.seed_demo()
        return Response.json({"variants": len(self.variants), "purchase_orders": len(self.purchase_orders)})

    def admin_config(self, request: Request) -> Response:
        body = self._admin_body(request)
        if isinstance(body, Response):
            return body
        with self.lock:
            if "rate_limit" in body:
                self.rate_limiter = RateLimiter(float(body["rate_limit"]))
            if body.get("api_key"):
                self.api_key = str(body["api_key"])
            if body.get("account"):
                self.account = str(body["account"])
            return Response.json({"rate_limit": self.rate_limiter.limit, "account": self.account})

    def admin_add_purchase_order(self, request: Request) -> Response:
        body = self._admin_body(request)
        if isinstance(body, Response):
            return body
        try:
            order = self.add_purchase_order(
                vendor=body["vendor"], warehouse=body["warehouse"], items=body["items"],
                status=body.get("status", "draft"), currency=body.get("currency", "GBP"),
                expected_date=body.get("expected_date", ""), reference=body.get("reference", ""))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, f"cannot add the purchase order: {exc!r}")
        return Response.json(order, 201)

    def admin_add_variant(self, request: Request) -> Response:
        body = self._admin_body(request)
        if isinstance(body, Response):
            return body
        try:
            return Response.json(self.add_variant(**body), 201)
        except TypeError as exc:
            return _error(400, f"cannot add the variant: {exc}")

    def admin_stats(self, request: Request) -> Response:
        with self.lock:
            return Response.json({"requests": self.requests_count, "rate_limited": self.rate_limited_count,
                                  "purchase_orders": len(self.purchase_orders), "variants": len(self.variants),
                                  "patches": copy.deepcopy(self.patches)})

    def admin_import(self, request: Request) -> Response:
        """Fetch the CSV feeds / read the SFTP drop, the way the vendor does (inventory_planner_feeds)."""
        body = self._admin_body(request)
        if isinstance(body, Response):
            return body
        name = f"{__package__}.inventory_planner_feeds"
        try:
            feeds = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            return _error(501, "file import not available")
        result = feeds.import_feeds(self, body)
        with self.lock:
            self.imported.append(result)
        return Response.json({"imported": result})

    def admin_imported(self, request: Request) -> Response:
        with self.lock:
            return Response.json({"imported": copy.deepcopy(self.imported)})

