"""Shopify Admin API client: GraphQL with cost-based throttling, inventory by compare-and-set or
delta, variant lookups by SKU, and the translation of the REST-format order webhook payload into
our `StorefrontOrder`.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable, Iterator

import requests

from integrations.domain import OrderLine, StorefrontOrder, TaxLine

from .base import NotFound, PermanentError, RateLimited, RetryingClient, TransientError, parse_retry_after

log = logging.getLogger("ledgerline.connectors.shopify")


class ShopifyAuthError(PermanentError):
    """401/403: the access token is wrong, revoked, or lacks a scope."""


class ShopifyGraphQLError(PermanentError):
    """The query was answered with top-level `errors` (syntax, validation, cost too high...)."""

    def __init__(self, message: str, *, errors: list | None = None, **kw):
        super().__init__(message, **kw)
        self.errors = errors or []


class ShopifyThrottled(RateLimited):
    """Still THROTTLED after every retry the client was allowed."""


def _gid(kind: str, value) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


_SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message }
  }
}"""

_ADJUST_QUANTITIES = """
mutation AdjustQuantities($input: InventoryAdjustQuantitiesInput!) {
  inventoryAdjustQuantities(input: $input) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message }
  }
}"""

_VARIANTS = """
query Variants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query) {
    nodes { id sku title product { id title } inventoryItem { id } }
    pageInfo { hasNextPage endCursor }
  }
}"""

_LOCATIONS = """
query Locations($first: Int!, $after: String) {
  locations(first: $first, after: $after) {
    nodes { id name isActive }
    pageInfo { hasNextPage endCursor }
  }
}"""

_ORDERS = """
query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { id legacyResourceId name updatedAt displayFinancialStatus cancelledAt }
    pageInfo { hasNextPage endCursor }
  }
}"""

QUANTITY_NAMES = ("available", "committed", "reserved", "damaged", "quality_control", "safety_stock", "incoming", "on_hand")


class ShopifyClient(RetryingClient):
    MAX_QUANTITIES_PER_CALL = 250  # Shopify's maximum input array size
    SKUS_PER_QUERY = 50  # "sku:A OR sku:B ..." terms in one search query
    ITEMS_PER_LEVEL_QUERY = 10  # aliased inventoryItem lookups per query, keeps the cost well under 1000
    PAGE_SIZE = 100
    MAX_THROTTLE_RETRIES = 10

    def __init__(self, shop_url: str, access_token: str, api_version: str = "2025-10", **retry_kwargs):
        super().__init__(**retry_kwargs)
        self.shop_url = shop_url.rstrip("/")
        self.api_version = api_version
        self.session.headers.update({
            "X-Shopify-Access-Token": access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        })
        self._throttle_lock = threading.Lock()
        self.throttle_status: dict | None = None  # the last extensions.cost.throttleStatus seen
        self._throttle_seen_at = 0.0
        self._query_costs: dict[str, int] = {}  # requestedQueryCost last seen per query text
        self.throttle_waits: list[float] = []  # every wait taken because of the bucket (for benchmarks)
        self._locations_seen: int | None = None

    @classmethod
    def from_settings(cls, **overrides) -> "ShopifyClient":
        from django.conf import settings

        config = settings.SHOPIFY
        kwargs = {key: config[key] for key in ("timeout", "max_attempts", "backoff_base", "backoff_max") if key in config}
        kwargs.update(overrides)
        return cls(config["shop_url"], config["access_token"], config.get("api_version", "2025-10"), **kwargs)

    @property
    def graphql_url(self) -> str:
        return f"{self.shop_url}/admin/api/{self.api_version}/graphql.json"

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            raise ShopifyAuthError(f"Shopify refused the access token ({status}): {response.text[:200]}", status=status)
        if status == 429:
            raise RateLimited("Shopify rate limited the request", status=429,
                              retry_after=parse_retry_after(response.headers.get("Retry-After"), default=2.0))
        if status >= 500:
            raise TransientError(f"Shopify server error {status}", status=status)
        if status == 404:
            raise NotFound(f"Shopify: not found ({response.request.url if response.request else ''})", status=404)
        if status >= 400:
            raise PermanentError(f"Shopify request failed {status}: {response.text[:300]}", status=status)

    # --- GraphQL with the cost-based throttle -------------------------------------------------------

    def _estimated_available(self) -> float | None:
        status = self.throttle_status
        if not status:
            return None
        elapsed = time.monotonic() - self._throttle_seen_at
        return min(float(status["maximumAvailable"]),
                   float(status["currentlyAvailable"]) + elapsed * float(status["restoreRate"]))

    def _wait(self, seconds: float, why: str) -> None:
        seconds = max(seconds, 0.0)
        if seconds <= 0:
            return
        self.throttle_waits.append(seconds)
        self.stats.bump("rate_limited")
        log.info("shopify: waiting %.2fs (%s)", seconds, why)
        self.sleep(seconds)

    def _wait_for_budget(self, query: str, expected_cost: int | None) -> None:
        """Do not send a query the bucket cannot pay for: wait until it has refilled enough."""
        expected = expected_cost or self._query_costs.get(query)
        with self._throttle_lock:
            available = self._estimated_available()
            status = self.throttle_status
        if expected is None or available is None or expected <= available:
            return
        self._wait((expected - available) / float(status["restoreRate"]), f"bucket {available:.0f} < cost {expected}")

    def _remember_cost(self, query: str, body: dict) -> dict | None:
        cost = (body.get("extensions") or {}).get("cost") or {}
        if cost.get("requestedQueryCost") is not None:
            self._query_costs[query] = int(cost["requestedQueryCost"])
        if cost.get("throttleStatus"):
            with self._throttle_lock:
                self.throttle_status = cost["throttleStatus"]
                self._throttle_seen_at = time.monotonic()
        return cost

    def graphql(self, query: str, variables: dict | None = None, *, expected_cost: int | None = None) -> dict:
        """Run one query; return its `data`. Waits out THROTTLED answers using the bucket status, and
        before sending when the last status shows the bucket cannot pay the query's expected cost
        (`expected_cost`, else the requestedQueryCost Shopify reported for the same query text)."""
        for attempt in range(1, self.MAX_THROTTLE_RETRIES + 2):
            self._wait_for_budget(query, expected_cost)
            response = self.request("POST", self.graphql_url, json={"query": query, "variables": variables or {}})
            try:
                body = response.json()
            except ValueError as exc:
                raise TransientError(f"Shopify answered with non-JSON: {response.text[:200]}", status=response.status_code) from exc
            cost = self._remember_cost(query, body)
            errors = body.get("errors") or []
            if isinstance(errors, str):  # REST-style {"errors": "..."}
                errors = [{"message": errors}]
            codes = {((e.get("extensions") or {}).get("code") or "") for e in errors}
            if "THROTTLED" in codes:
                status = cost.get("throttleStatus") or {}
                requested = float(cost.get("requestedQueryCost") or 1)
                restore = float(status.get("restoreRate") or 50)
                available = float(status.get("currentlyAvailable") or 0)
                if attempt > self.MAX_THROTTLE_RETRIES:
                    raise ShopifyThrottled("Shopify kept throttling the query", status=200, code="THROTTLED",
                                           retry_after=(requested - available) / restore, body=body)
                self._wait(max((requested - available) / restore, 0.05), "THROTTLED")
                continue
            if errors:
                message = "; ".join(e.get("message", "") for e in errors)
                if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"}:
                    raise TransientError(f"Shopify GraphQL error: {message}", status=200, code=next(iter(codes)), body=body)
                if codes & {"ACCESS_DENIED"}:
                    raise ShopifyAuthError(f"Shopify GraphQL access denied: {message}", status=200, code="ACCESS_DENIED")
                raise ShopifyGraphQLError(f"Shopify GraphQL error: {message}", status=200,
                                          code=",".join(sorted(c for c in codes if c)), errors=errors, body=body)
            return body.get("data") or {}
        raise AssertionError("unreachable")  # pragma: no cover

    def _paginate(self, query: str, root: str, variables: dict | None = None, *, page_size: int | None = None) -> Iterator[dict]:
        after = None
        while True:
            data = self.graphql(query, {**(variables or {}), "first": page_size or self.PAGE_SIZE, "after": after})
            page = data[root]
            yield from page["nodes"]
            if not page["pageInfo"]["hasNextPage"]:
                return
            after = page["pageInfo"]["endCursor"]

    # --- catalogue and locations ---------------------------------------------------------------------

    @staticmethod
    def _variant_row(node: dict) -> dict:
        return {
            "sku": node.get("sku") or "",
            "variant_id": node["id"],
            "inventory_item_id": node["inventoryItem"]["id"],
            "product_id": node["product"]["id"],
            "product_title": node["product"]["title"],
            "variant_title": node.get("title") or "",
        }

    def find_variants_by_sku(self, skus: Iterable[str]) -> dict[str, dict]:
        """sku -> {variant_id, inventory_item_id, product_id, ...}; SKUs Shopify does not have are absent.
        Shopify's search matches loosely, so only exact SKU matches are kept (the first if duplicated)."""
        wanted = sorted({s for s in skus if s})
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), self.SKUS_PER_QUERY):
            batch = wanted[start:start + self.SKUS_PER_QUERY]
            search = " OR ".join('sku:"{}"'.format(s.replace('"', '\\"')) for s in batch)
            for node in self._paginate(_VARIANTS, "productVariants", {"query": search}, page_size=len(batch)):
                row = self._variant_row(node)
                if row["sku"] in batch:
                    found.setdefault(row["sku"], row)
        return found

    def list_variants(self) -> Iterator[dict]:
        """Every variant: sku, variant_id, product_id, product_title, inventory_item_id (for the mapping panel)."""
        for node in self._paginate(_VARIANTS, "productVariants"):
            yield self._variant_row(node)

    def list_locations(self) -> list[dict]:
        locations = [{"id": n["id"], "name": n["name"], "is_active": n["isActive"]}
                     for n in self._paginate(_LOCATIONS, "locations")]
        self._locations_seen = len(locations)
        return locations

    def _location_count(self) -> int:
        if self._locations_seen is None:
            self.list_locations()
        return self._locations_seen or 1

    # --- inventory -----------------------------------------------------------------------------------

    def inventory_levels(self, inventory_item_ids: Iterable[str], location_ids: Iterable[str] | None = None,
                         *, names: tuple[str, ...] = QUANTITY_NAMES) -> dict[tuple[str, str], dict[str, int]]:
        """{(inventory_item_id, location_id): {quantity name: quantity}} for items stocked there."""
        items = [_gid("InventoryItem", i) for i in dict.fromkeys(inventory_item_ids)]
        locations = {_gid("Location", loc) for loc in location_ids} if location_ids is not None else None
        levels: dict[tuple[str, str], dict[str, int]] = {}
        names_literal = ", ".join(f'"{n}"' for n in names)
        # Ask for as many levels per item as the shop has locations: the query costs what it asks for.
        per_item = min(250, max(1, self._location_count()))
        for start in range(0, len(items), self.ITEMS_PER_LEVEL_QUERY):
            batch = items[start:start + self.ITEMS_PER_LEVEL_QUERY]
            params = ", ".join(f"$id{i}: ID!" for i in range(len(batch)))
            parts = "\n".join(
                f"  i{i}: inventoryItem(id: $id{i}) {{ id inventoryLevels(first: {per_item}) {{ nodes {{ location {{ id }} "
                f"quantities(names: [{names_literal}]) {{ name quantity }} }} }} }}"
                for i in range(len(batch)))
            data = self.graphql(f"query Levels({params}) {{\n{parts}\n}}", {f"id{i}": item for i, item in enumerate(batch)})
            for i, item in enumerate(batch):
                node = data.get(f"i{i}")
                if node is None:
                    continue  # unknown inventory item: absent from the answer, the caller sees it missing
                for level in node["inventoryLevels"]["nodes"]:
                    location = level["location"]["id"]
                    if locations is None or location in locations:
                        levels[(item, location)] = {q["name"]: q["quantity"] for q in level["quantities"]}
        return levels

    @staticmethod
    def _errors_for(result: dict, batch: list[dict], list_name: str) -> list[dict]:
        """User errors with the change each one is about (from the index in its `field` path)."""
        errors = []
        for error in result.get("userErrors") or []:
            field = error.get("field") or []
            index = int(field[2]) if len(field) > 2 and field[1] == list_name and str(field[2]).isdigit() else None
            change = batch[index] if index is not None and index < len(batch) else None
            errors.append({
                "code": error.get("code") or "", "message": error.get("message", ""), "field": field,
                "inventory_item_id": change["inventory_item_id"] if change else "",
                "location_id": change["location_id"] if change else "",
                "change": change,
            })
        return errors

    def _run_batched(self, mutation: str, root: str, list_name: str, changes: list[dict], build_input, to_entry,
                     retry_without_rejected: bool) -> list[dict]:
        errors: list[dict] = []
        for start in range(0, len(changes), self.MAX_QUANTITIES_PER_CALL):
            batch = changes[start:start + self.MAX_QUANTITIES_PER_CALL]
            result = self.graphql(mutation, {"input": build_input([to_entry(c) for c in batch])})[root]
            batch_errors = self._errors_for(result, batch, list_name)
            if batch_errors and retry_without_rejected:
                # Shopify rejects the whole call when one entry is wrong; send the others again once.
                rejected = {id(e["change"]) for e in batch_errors if e["change"] is not None}
                rest = [c for c in batch if id(c) not in rejected]
                if rest and len(rest) < len(batch) and all(e["change"] is not None for e in batch_errors):
                    retry = self.graphql(mutation, {"input": build_input([to_entry(c) for c in rest])})[root]
                    batch_errors += self._errors_for(retry, rest, list_name)
            errors.extend(batch_errors)
        return errors

    def set_available_quantities(self, changes: list[dict], reason: str = "correction",
                                 reference: str = "ledgerline://stock-sync", *, name: str = "available",
                                 retry_without_rejected: bool = True) -> list[dict]:
        """Compare-and-set: each change is {"inventory_item_id", "location_id", "quantity", "change_from"}
        (change_from None skips the check). Returns user errors, each with the change it is about;
        a CHANGE_FROM_QUANTITY_STALE entry was not applied and must be re-read before trying again."""

        def entry(change: dict) -> dict:
            if "change_from" not in change:
                raise ValueError("each change needs 'change_from' (the quantity read before, or None to skip the check)")
            return {"inventoryItemId": _gid("InventoryItem", change["inventory_item_id"]),
                    "locationId": _gid("Location", change["location_id"]),
                    "quantity": int(change["quantity"]), "changeFromQuantity": change["change_from"]}

        def build(entries):
            return {"name": name, "reason": reason, "referenceDocumentUri": reference, "quantities": entries}

        return self._run_batched(_SET_QUANTITIES, "inventorySetQuantities", "quantities", list(changes), build, entry,
                                 retry_without_rejected)

    def adjust_available_quantities(self, changes: list[dict], reason: str = "correction",
                                    reference: str = "ledgerline://stock-sync", *,
                                    retry_without_rejected: bool = True) -> list[dict]:
        """Relative change: each is {"inventory_item_id", "location_id", "delta"}; a reservation made
        by a checkout meanwhile is kept. Returns user errors as set_available_quantities does."""

        def entry(change: dict) -> dict:
            return {"inventoryItemId": _gid("InventoryItem", change["inventory_item_id"]),
                    "locationId": _gid("Location", change["location_id"]), "delta": int(change["delta"])}

        def build(entries):
            return {"name": "available", "reason": reason, "referenceDocumentUri": reference, "changes": entries}

        changes = [c for c in changes if int(c["delta"]) != 0]
        return self._run_batched(_ADJUST_QUANTITIES, "inventoryAdjustQuantities", "changes", changes, build, entry,
                                 retry_without_rejected)

    # --- orders --------------------------------------------------------------------------------------

    def orders_updated_since(self, since: datetime | None = None) -> Iterator[dict]:
        """Orders changed since a moment (the poll that backs up webhooks), oldest change first."""
        query = f"updated_at:>'{since.isoformat()}'" if since else None
        for node in self._paginate(_ORDERS, "orders", {"query": query}):
            yield {"id": node["legacyResourceId"], "gid": node["id"], "name": node["name"],
                   "updated_at": node["updatedAt"], "financial_status": (node["displayFinancialStatus"] or "").lower(),
                   "cancelled_at": node["cancelledAt"]}

    def get_order_payload(self, order_id) -> dict:
        """The REST-format order JSON (the same shape the order webhooks carry)."""
        number = str(order_id).rsplit("/", 1)[-1]
        response = self.request("GET", f"{self.shop_url}/admin/api/{self.api_version}/orders/{number}.json")
        return response.json()["order"]

    # --- the order webhook payload -> our StorefrontOrder --------------------------------------------

    @classmethod
    def order_from_payload(cls, payload: dict) -> StorefrontOrder:
        """Translate Shopify's REST-format order JSON. Raises ValueError naming the bad field."""
        if not isinstance(payload, dict):
            raise ValueError("order payload must be a JSON object")
        for key in ("id", "currency"):
            if payload.get(key) in (None, ""):
                raise ValueError(f"order.{key} is missing")
        currency = str(payload["currency"]).upper()
        if not isinstance(payload.get("line_items"), list):
            raise ValueError("order.line_items is missing or not a list")

        lines = tuple(cls._order_line(line, f"line_items[{i}]") for i, line in enumerate(payload["line_items"]))
        shipping_payload = payload.get("shipping_lines") or []
        if not isinstance(shipping_payload, list):
            raise ValueError("order.shipping_lines is not a list")
        shipping = tuple(cls._shipping_line(line, f"shipping_lines[{i}]") for i, line in enumerate(shipping_payload))

        allocated = sum((line.discount for line in (*lines, *shipping)), Decimal(0))
        total_discounts = cls._amount(payload, "total_discounts", "order", default=Decimal(0))
        order_discount = max(total_discounts - allocated, Decimal(0))

        customer = payload.get("customer") or {}
        shipping_address = payload.get("shipping_address") or {}
        billing_address = payload.get("billing_address") or {}
        default_address = customer.get("default_address") or {}
        country = (shipping_address.get("country_code") or billing_address.get("country_code")
                   or default_address.get("country_code") or "")
        name = " ".join(p for p in (customer.get("first_name"), customer.get("last_name")) if p) or (
            shipping_address.get("name") or billing_address.get("name") or "")
        total = cls._amount(payload, "total_price", "order", default=None)
        location = payload.get("location_id")

        return StorefrontOrder(
            storefront_order_id=str(payload["id"]),
            order_number=str(payload.get("name") or payload.get("order_number") or payload["id"]),
            currency=currency,
            payment_state=str(payload.get("financial_status") or ""),
            updated_at=cls._time(payload, "updated_at"),
            created_at=cls._time(payload, "created_at"),
            customer_email=str(payload.get("email") or customer.get("email") or payload.get("contact_email") or ""),
            customer_name=name,
            customer_storefront_id=str(customer.get("id") or ""),
            country=str(country).upper(),
            lines=lines,
            shipping=shipping,
            order_discount=order_discount,
            total=total,
            location=_gid("Location", location) if location not in (None, "") else "",
            cancelled=bool(payload.get("cancelled_at")),
            extra={
                "admin_graphql_api_id": payload.get("admin_graphql_api_id", ""),
                "order_number": payload.get("order_number"),
                "taxes_included": bool(payload.get("taxes_included", False)),
                "total_tax": str(cls._amount(payload, "total_tax", "order", default=Decimal(0))),
                "presentment_currency": payload.get("presentment_currency") or currency,
                "source_name": payload.get("source_name") or "",
                "cancel_reason": payload.get("cancel_reason") or "",
            },
        )

    @staticmethod
    def _decimal(value, where: str) -> Decimal:
        if isinstance(value, bool) or value is None:
            raise ValueError(f"{where} is missing")
        try:
            # JSON numbers arrive as float; str() keeps the digits that were written, not binary noise.
            amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"{where} {value!r} is not a decimal amount") from None
        if not amount.is_finite():
            raise ValueError(f"{where} {value!r} is not a decimal amount")
        return amount

    @classmethod
    def _amount(cls, obj: dict, key: str, where: str, *, default=...):
        """Shop-currency amount: `<key>_set.shop_money.amount` when present, else `<key>`."""
        money_set = obj.get(f"{key}_set")
        if isinstance(money_set, dict) and isinstance(money_set.get("shop_money"), dict) \
                and money_set["shop_money"].get("amount") is not None:
            return cls._decimal(money_set["shop_money"]["amount"], f"{where}.{key}_set.shop_money.amount")
        if obj.get(key) is None and default is not ...:
            return default
        return cls._decimal(obj.get(key), f"{where}.{key}")

    @classmethod
    def _tax_lines(cls, obj: dict, where: str) -> tuple[TaxLine, ...]:
        raw = obj.get("tax_lines") or []
        if not isinstance(raw, list):
            raise ValueError(f"{where}.tax_lines is not a list")
        return tuple(
            TaxLine(rate=cls._decimal(tax.get("rate"), f"{where}.tax_lines[{i}].rate"),
                    amount=cls._amount(tax, "price", f"{where}.tax_lines[{i}]"),
                    title=str(tax.get("title") or ""))
            for i, tax in enumerate(raw))

    @classmethod
    def _discount(cls, obj: dict, where: str) -> Decimal:
        raw = obj.get("discount_allocations") or []
        if not isinstance(raw, list):
            raise ValueError(f"{where}.discount_allocations is not a list")
        return sum((cls._amount(a, "amount", f"{where}.discount_allocations[{i}]") for i, a in enumerate(raw)), Decimal(0))

    @classmethod
    def _order_line(cls, line, where: str) -> OrderLine:
        if not isinstance(line, dict):
            raise ValueError(f"{where} is not an object")
        quantity = line.get("quantity")
        if quantity is None:
            raise ValueError(f"{where}.quantity is missing")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"{where}.quantity {quantity!r} is not a whole number")
        sku = str(line.get("sku") or "").strip()
        is_custom = not sku and not line.get("variant_id")
        return OrderLine(
            sku=sku,
            name=str(line.get("name") or line.get("title") or ""),
            quantity=quantity,
            unit_price=cls._amount(line, "price", where),
            discount=cls._discount(line, where),
            tax_lines=cls._tax_lines(line, where),
            line_id=str(line.get("id") or ""),
            kind="custom" if is_custom else "item",
            product_id=str(line.get("product_id") or ""),
        )

    @classmethod
    def _shipping_line(cls, line, where: str) -> OrderLine:
        if not isinstance(line, dict):
            raise ValueError(f"{where} is not an object")
        return OrderLine(
            sku="",
            name=str(line.get("title") or line.get("code") or "Shipping"),
            quantity=1,
            unit_price=cls._amount(line, "price", where),
            discount=cls._discount(line, where),
            tax_lines=cls._tax_lines(line, where),
            line_id=str(line.get("id") or ""),
            kind="shipping",
        )

    @staticmethod
    def _time(payload: dict, key: str) -> datetime | None:
        value = payload.get(key)
        if not value:
            return None
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"order.{key} {value!r} is not an ISO 8601 timestamp") from None

