"""Shopify Admin API client: GraphQL with cost-based throttling, inventory by compare-and-set or
delta, variant lookups by SKU, and the translation of the REST-format order webhook payload into
our `StorefrontOrder`.

Every GraphQL document it sends is a module-level constant (or built by a `_..._document` function)
and is valid on Shopify's published Admin schemas of `API_VERSIONS` (tests/data/shopify); it also
sends what 2026-04 requires at run time: `@idempotent(key:)` on inventory mutations and an explicit
`changeFromQuantity` on every quantity and change.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Iterable, Iterator, Protocol

import requests

from integrations.domain import OrderLine, StorefrontOrder, TaxLine

from ..base import NotFound, PermanentError, RateLimited, RetryingClient, TransientError, parse_retry_after
from ..catalogue import BULK_PUBLISH, PUBLISH_PRODUCTS

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


class TokenSource(Protocol):
    """Where a client with an expiring token gets the next one (the connection's stored token, renewed
    under a lock so that concurrent workers renew once): renew(stale) -> (token, expires_at epoch)."""

    def renew(self, stale: str) -> tuple[str, float | None]: ...


def gid(kind: str, value) -> str:
    """Shopify's global id for a numeric id ("Location", 1 -> gid://shopify/Location/1); a gid as it is."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


def location_gid(value) -> str:
    return gid("Location", value)


# The stable versions the documents below are valid on (their published schemas are test data): the
# configured one (settings.SHOPIFY["api_version"]) and the one before it. 2026-01 is supported until
# 2027-01 at least, 2026-04 until 2027-04.
API_VERSIONS = ("2026-01", "2026-04")

_SET_QUANTITIES = """
mutation SetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { changes { name delta } }
    userErrors { code field message }
  }
}"""

_ADJUST_QUANTITIES = """
mutation AdjustQuantities($input: InventoryAdjustQuantitiesInput!, $idempotencyKey: String!) {
  inventoryAdjustQuantities(input: $input) @idempotent(key: $idempotencyKey) {
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


def _levels_document(count: int, per_item: int, names: Iterable[str]) -> str:
    """Inventory levels of `count` items (aliased i0..), `per_item` levels each, the quantities `names`."""
    names_literal = ", ".join(json.dumps(n) for n in names)
    params = ", ".join(f"$id{i}: ID!" for i in range(count))
    parts = "\n".join(
        f"  i{i}: inventoryItem(id: $id{i}) {{ id inventoryLevels(first: {per_item}) {{ nodes {{ location {{ id }} "
        f"quantities(names: [{names_literal}]) {{ name quantity }} }} }} }}"
        for i in range(count))
    return f"query Levels({params}) {{\n{parts}\n}}"


# Idempotency keys are UUIDs derived from (what identifies the change, the mutation, its input): the
# same change sent again (a transport retry, a THROTTLED retry, a re-run given the same key) reuses its
# key and Shopify applies it once; a different batch or input gets another key.
_IDEMPOTENCY_NAMESPACE = uuid.UUID("0b7cfa52-5c1e-4c43-9a43-4c2f6b1e2d10")


def _idempotency_key(basis: str, root: str, mutation_input: dict) -> str:
    content = json.dumps(mutation_input, sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{basis}\n{root}\n{content}"))


class ShopifyClient(RetryingClient):
    MAX_QUANTITIES_PER_CALL = 250  # Shopify's maximum input array size
    SKUS_PER_QUERY = 50  # "sku:A OR sku:B ..." terms in one search query
    ITEMS_PER_LEVEL_QUERY = 10  # aliased inventoryItem lookups per query, keeps the cost well under 1000
    PAGE_SIZE = 100
    MAX_THROTTLE_RETRIES = 10
    MAX_IDEMPOTENCY_WAITS = 5  # IDEMPOTENCY_CONCURRENT_REQUEST: the first request with the key is still running
    served_api_version: str | None = None  # X-Shopify-API-Version of the last answer
    # Publishing the item master (catalogue_write.py).
    capabilities = frozenset({PUBLISH_PRODUCTS, BULK_PUBLISH})

    def __init__(self, shop_url: str, access_token: str, api_version: str = "2026-04", *,
                 token_source: "TokenSource | None" = None, token_expires_at: float | None = None,
                 price_lists: dict | None = None, **retry_kwargs):
        super().__init__(**retry_kwargs)
        # Currency -> the market's PriceList gid (the connection's settings `price_lists`).
        self.price_lists = dict(price_lists or {})
        self.cost_points = 0  # actual cost of every answer (extensions.cost), for benchmarks and run summaries
        self.cost_points_requested = 0
        self.shop_url = shop_url.rstrip("/")
        self.api_version = api_version
        self.session.headers.update({
            "X-Shopify-Access-Token": access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        })
        # An expiring token (client-credentials grant): renewed through token_source shortly before
        # token_expires_at (epoch seconds), and once more after a 401.
        self.token_source = token_source
        self._token = access_token
        self._token_expires_at = token_expires_at
        self._token_lock = threading.Lock()
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
        return cls(config["shop_url"], config["access_token"], config.get("api_version", "2026-04"), **kwargs)

    # --- expiring access tokens --------------------------------------------------------------------

    TOKEN_RENEW_MARGIN = 300.0  # seconds before expiry a token is renewed, so no request leaves with a lapsing one

    def _use_token(self, token: str, expires_at: float | None) -> None:
        self._token, self._token_expires_at = token, expires_at
        self.session.headers["X-Shopify-Access-Token"] = token

    def _renew_token(self, stale: str) -> None:
        with self._token_lock:
            if self._token != stale:
                return  # another thread of this client renewed it meanwhile
            self._use_token(*self.token_source.renew(stale))

    def _token_due(self) -> bool:
        expires = self._token_expires_at
        return not self._token or (expires is not None and time.time() >= expires - self.TOKEN_RENEW_MARGIN)

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        if self.token_source is None:
            return super().request(method, url, **kwargs)
        if self._token_due():
            self._renew_token(self._token)
        sent_with = self._token
        try:
            return super().request(method, url, **kwargs)
        except ShopifyAuthError as exc:
            if exc.status != 401:
                raise
        # 401: the token lapsed or was revoked before its time; one fresh token, one more try.
        log.info("shopify: access token refused (401), renewing it once")
        self._renew_token(sent_with)
        return super().request(method, url, **kwargs)

    @property
    def graphql_url(self) -> str:
        return f"{self.shop_url}/admin/api/{self.api_version}/graphql.json"

    def _note_served_version(self, response: requests.Response) -> None:
        """Shopify serves a retired or unknown version as the oldest supported one and says so in
        X-Shopify-API-Version: the documents were then checked against another schema than served."""
        served = response.headers.get("X-Shopify-API-Version")
        if not served:
            return
        if served != self.api_version and served != self.served_api_version:
            log.warning("shopify: asked for API version %s, Shopify served %s (retired or unknown version; "
                        "set SHOPIFY_API_VERSION to one of %s)", self.api_version, served, ", ".join(API_VERSIONS))
        self.served_api_version = served

    def classify(self, response: requests.Response) -> None:
        self._note_served_version(response)
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
        with self._throttle_lock:
            self.cost_points += int(cost.get("actualQueryCost") or 0)
            self.cost_points_requested += int(cost.get("requestedQueryCost") or 0)
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
                    # The token lacks a scope (extensions.requiredAccess names it): a person must grant it.
                    required = "; ".join(sorted({(e.get("extensions") or {}).get("requiredAccess", "")
                                                 for e in errors} - {""}))
                    raise ShopifyAuthError(f"Shopify GraphQL access denied: {message}"
                                           + (f" (required: {required})" if required else ""),
                                           status=200, code="ACCESS_DENIED", body=body)
                raise ShopifyGraphQLError(f"Shopify GraphQL error: {message}", status=200,
                                          code=",".join(sorted(c for c in codes if c)), errors=errors, body=body)
            return body.get("data") or {}
        raise AssertionError("unreachable")  # pragma: no cover

    def _paginate(self, query: str, root: str, variables: dict | None = None, *, page_size: int | None = None) -> Iterator[dict]:
        """Every node once. Shopify's cursors are positions in the sort, so a row that changed between
        two pages (an order updated while sorted by UPDATED_AT) comes again on a later page: skipped."""
        after = None
        seen: set[str] = set()
        while True:
            data = self.graphql(query, {**(variables or {}), "first": page_size or self.PAGE_SIZE, "after": after})
            page = data[root]
            for node in page["nodes"]:
                node_id = node.get("id")
                if node_id is not None:
                    if node_id in seen:
                        continue
                    seen.add(node_id)
                yield node
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
        items = [gid("InventoryItem", i) for i in dict.fromkeys(inventory_item_ids)]
        locations = {gid("Location", loc) for loc in location_ids} if location_ids is not None else None
        levels: dict[tuple[str, str], dict[str, int]] = {}
        # Ask for as many levels per item as the shop has locations: the query costs what it asks for.
        per_item = min(250, max(1, self._location_count()))
        for start in range(0, len(items), self.ITEMS_PER_LEVEL_QUERY):
            batch = items[start:start + self.ITEMS_PER_LEVEL_QUERY]
            data = self.graphql(_levels_document(len(batch), per_item, names),
                                {f"id{i}": item for i, item in enumerate(batch)})
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

    def _mutate(self, mutation: str, root: str, mutation_input: dict, basis: str) -> dict:
        """One inventory mutation with its idempotency key (the same for every resend of this input)."""
        variables = {"input": mutation_input, "idempotencyKey": _idempotency_key(basis, root, mutation_input)}
        for attempt in range(1, self.MAX_IDEMPOTENCY_WAITS + 2):
            result = self.graphql(mutation, variables)[root] or {}
            codes = {e.get("code") for e in result.get("userErrors") or []}
            if "IDEMPOTENCY_CONCURRENT_REQUEST" not in codes:
                return result
            if attempt > self.MAX_IDEMPOTENCY_WAITS:
                raise TransientError(f"Shopify: {root} with this idempotency key is still in progress",
                                     status=200, code="IDEMPOTENCY_CONCURRENT_REQUEST")
            self._wait(self.backoff(attempt), "IDEMPOTENCY_CONCURRENT_REQUEST")
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_batched(self, mutation: str, root: str, list_name: str, changes: list[dict], build_input, to_entry,
                     retry_without_rejected: bool, idempotency_key: str | None) -> list[dict]:
        basis = idempotency_key or str(uuid.uuid4())
        errors: list[dict] = []
        for start in range(0, len(changes), self.MAX_QUANTITIES_PER_CALL):
            batch = changes[start:start + self.MAX_QUANTITIES_PER_CALL]
            result = self._mutate(mutation, root, build_input([to_entry(c) for c in batch]), basis)
            batch_errors = self._errors_for(result, batch, list_name)
            if batch_errors and retry_without_rejected:
                # Shopify rejects the whole call when one entry is wrong; send the others again once
                # (another input, so another idempotency key).
                rejected = {id(e["change"]) for e in batch_errors if e["change"] is not None}
                rest = [c for c in batch if id(c) not in rejected]
                if rest and len(rest) < len(batch) and all(e["change"] is not None for e in batch_errors):
                    retry = self._mutate(mutation, root, build_input([to_entry(c) for c in rest]), basis)
                    batch_errors += self._errors_for(retry, rest, list_name)
            errors.extend(batch_errors)
        return errors

    def set_available_quantities(self, changes: list[dict], reason: str = "correction",
                                 reference: str = "ledgerline://stock-sync", *, name: str = "available",
                                 retry_without_rejected: bool = True, idempotency_key: str | None = None) -> list[dict]:
        """Compare-and-set: each change is {"inventory_item_id", "location_id", "quantity", "change_from"}
        (change_from None skips the check). Returns user errors, each with the change it is about;
        a CHANGE_FROM_QUANTITY_STALE entry was not applied and must be re-read before trying again.

        idempotency_key: what makes this call one logical change (e.g. the run and round that computed
        it). Each batch's `@idempotent` key is derived from it and the batch's input, so the same call
        repeated with the same key (a re-run after a crash) is applied once. Default: a new one per call;
        resends inside the call (timeouts, THROTTLED) reuse theirs either way."""

        def entry(change: dict) -> dict:
            if "change_from" not in change:
                raise ValueError("each change needs 'change_from' (the quantity read before, or None to skip the check)")
            return {"inventoryItemId": gid("InventoryItem", change["inventory_item_id"]),
                    "locationId": gid("Location", change["location_id"]),
                    "quantity": int(change["quantity"]), "changeFromQuantity": change["change_from"]}

        def build(entries):
            return {"name": name, "reason": reason, "referenceDocumentUri": reference, "quantities": entries}

        return self._run_batched(_SET_QUANTITIES, "inventorySetQuantities", "quantities", list(changes), build, entry,
                                 retry_without_rejected, idempotency_key)

    def adjust_available_quantities(self, changes: list[dict], reason: str = "correction",
                                    reference: str = "ledgerline://stock-sync", *,
                                    retry_without_rejected: bool = True, idempotency_key: str | None = None) -> list[dict]:
        """Relative change: each is {"inventory_item_id", "location_id", "delta"} and optionally
        "change_from" (the quantity expected before; absent: sent as null, no check, so a reservation
        made by a checkout meanwhile is kept). Returns user errors as set_available_quantities does;
        idempotency_key as there."""

        def entry(change: dict) -> dict:
            # 2026-04 refuses a change without changeFromQuantity; null is the explicit "no check".
            return {"inventoryItemId": gid("InventoryItem", change["inventory_item_id"]),
                    "locationId": gid("Location", change["location_id"]), "delta": int(change["delta"]),
                    "changeFromQuantity": change.get("change_from")}

        def build(entries):
            return {"name": "available", "reason": reason, "referenceDocumentUri": reference, "changes": entries}

        changes = [c for c in changes if int(c["delta"]) != 0]
        return self._run_batched(_ADJUST_QUANTITIES, "inventoryAdjustQuantities", "changes", changes, build, entry,
                                 retry_without_rejected, idempotency_key)

    # --- publishing the item master (catalogue_write.py) -------------------------------------------

    def publish_products(self, products):
        from .catalogue_write import publish_products

        return publish_products(self, products)

    def set_variant_prices(self, sku, prices):
        from .catalogue_write import set_variant_prices

        return set_variant_prices(self, sku, prices)

    def bulk_publish_start(self, products):
        from .catalogue_write import bulk_publish_start

        return bulk_publish_start(self, products)

    def bulk_publish_status(self, handle):
        from .catalogue_write import bulk_publish_status

        return bulk_publish_status(self, handle)

    def bulk_publish_results(self, handle, products=None):
        from .catalogue_write import bulk_publish_results

        return bulk_publish_results(self, handle, products)

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
    def order_from_payload(cls, payload: dict, *, currency_basis: str = "shop") -> StorefrontOrder:
        """Translate Shopify's REST-format order JSON (what the orders/* webhooks carry) into the SALE
        it records, in Shopify's own figures: nothing is recomputed from rates.

        - Money: every amount from `*_set.shop_money` (currency = `currency`), or with
          currency_basis="presentment" from `*_set.presentment_money` (currency = `presentment_currency`).
          The plain fields (`price`, `total_price`...) are shop money, so they stand in for a missing
          money bag only when that is the currency asked for. `presentment_currency` and
          `presentment_total` are filled either way, for reference.
        - total = `total_price_set`: the sale before refunds (it equals `current_total_price` until
          something is refunded). A refund travels separately, so an order first seen
          partially_refunded or refunded still gives the quantities sold.
        - Quantity of a line = `current_quantity` + the quantity refunded for that line in
          `refunds[].refund_line_items`, when `current_quantity` is present; else `quantity`.
          `current_quantity` also drops units an order edit removed, which are no refund: they stay
          out, and a line left at 0 is dropped with its duties (total_price_set excludes it too).
        - kind: "gift_card" for a gift card sold (`gift_card: true`); "custom" for a line with no
          variant, no product and no SKU; otherwise "item" (a variant with an empty SKU is an item
          with sku "" and its product and variant ids, never a custom line).
        - charges: each line's `duties[]` as a duty charge (the duty's own amount and tax lines); only
          when no line carries duties, one charge for `original_total_duties_set` (else
          `current_total_duties_set`). A tip is a charge of kind "tip": Shopify's tip line item
          (a line with no product, variant or SKU named "Tip", or else the one such line without
          shipping that amounts to `total_tip_received`) is moved there; without one,
          `total_tip_received` > 0 becomes a charge "Tip" (shop money only: on the presentment basis in
          another currency that is a ValueError, not a guess). Never both.
        - discounts: each line's and shipping line's `discount_allocations`; order_discount is
          `total_discounts` minus what was allocated, floored at 0.
        - tax: each line, shipping line and duty keeps its own tax lines (several per line, rate
          exact). tax_summary = the order-level `tax_lines` (Shopify's total per title and rate;
          None when the payload has no such key), total_tax = `total_tax_set`. When no line carries
          tax lines but the order-level ones carry tax (some apps and imports), the lines stay
          untaxed and extra["order_level_tax_only"] is True: the builder then adds tax_summary as
          tax lines of its own.

        Raises ValueError naming the bad field (a path like `line_items[2].quantity`) for any
        malformed or mistyped value; ids, however long, come through as exact strings.
        """
        if currency_basis not in ("shop", "presentment"):
            raise ValueError(f"currency_basis {currency_basis!r} is not 'shop' or 'presentment'")
        if not isinstance(payload, dict):
            raise ValueError("order payload must be a JSON object")
        order_id = cls._id(payload.get("id"), "order.id", required=True)
        shop_currency = cls._currency(payload, "currency", required=True)
        presentment_currency = cls._currency(payload, "presentment_currency") or shop_currency
        if currency_basis == "shop":
            basis, currency = _Basis("shop_money", plain_ok=True), shop_currency
        else:
            basis = _Basis("presentment_money", plain_ok=presentment_currency == shop_currency)
            currency = presentment_currency
        raw_lines = payload.get("line_items")
        if not isinstance(raw_lines, list):
            raise ValueError("order.line_items is missing or not a list")

        refunded = cls._refunded_quantities(payload)
        kept: list[tuple[OrderLine, dict, str]] = []
        line_duties = False
        for i, raw in enumerate(raw_lines):
            where = f"line_items[{i}]"
            line = cls._order_line(raw, where, basis, refunded)
            duties = cls._list(raw.get("duties"), f"{where}.duties")
            line_duties = line_duties or bool(duties)
            if line.quantity > 0:
                kept.append((line, raw, where))

        tip_lines = cls._tip_lines(payload, kept)
        lines = tuple(line for line, _, _ in kept if line.line_id not in tip_lines)
        tips = [replace(line, kind="tip") for line, _, _ in kept if line.line_id in tip_lines]
        duties = [duty for line, raw, where in kept for duty in cls._duty_charges(raw, where, basis)]
        if not line_duties:
            duties.extend(cls._order_duty_charges(payload, basis))
        if not tips:
            tips.extend(cls._tip_charge(payload, basis))
        charges = (*duties, *tips)

        shipping = tuple(cls._shipping_line(line, f"shipping_lines[{i}]", basis)
                         for i, line in enumerate(cls._list(payload.get("shipping_lines"), "order.shipping_lines")))

        allocated = sum((line.discount for line in (*lines, *shipping, *charges)), Decimal(0))
        total_discounts = cls._money(payload, "total_discounts", "order", basis, default=Decimal(0))
        order_discount = max(total_discounts - allocated, Decimal(0))

        tax_summary = None
        if payload.get("tax_lines") is not None:
            tax_summary = cls._tax_lines(payload, "order", basis)
        total_tax = cls._money(payload, "total_tax", "order", basis, default=None)
        order_level_tax_only = bool(tax_summary) and any(t.amount for t in tax_summary) and not any(
            line.tax_lines for line in (*lines, *shipping, *charges))

        customer = cls._object(payload.get("customer"), "order.customer")
        shipping_address = cls._object(payload.get("shipping_address"), "order.shipping_address")
        billing_address = cls._object(payload.get("billing_address"), "order.billing_address")
        default_address = cls._object(customer.get("default_address"), "order.customer.default_address")
        country = (cls._text(shipping_address.get("country_code"), "order.shipping_address.country_code")
                   or cls._text(billing_address.get("country_code"), "order.billing_address.country_code")
                   or cls._text(default_address.get("country_code"), "order.customer.default_address.country_code"))
        name = " ".join(p for p in (cls._text(customer.get("first_name"), "order.customer.first_name"),
                                    cls._text(customer.get("last_name"), "order.customer.last_name")) if p) or (
            cls._text(shipping_address.get("name"), "order.shipping_address.name")
            or cls._text(billing_address.get("name"), "order.billing_address.name"))
        email = (cls._text(payload.get("email"), "order.email") or cls._text(customer.get("email"), "order.customer.email")
                 or cls._text(payload.get("contact_email"), "order.contact_email"))
        phone = (cls._text(customer.get("phone"), "order.customer.phone") or cls._text(payload.get("phone"), "order.phone")
                 or cls._text(shipping_address.get("phone"), "order.shipping_address.phone")
                 or cls._text(billing_address.get("phone"), "order.billing_address.phone"))
        location = cls._id(payload.get("location_id"), "order.location_id")
        total = cls._money(payload, "total_price", "order", basis, default=None)
        presentment_total = cls._money(payload, "total_price", "order",
                                       _Basis("presentment_money", plain_ok=presentment_currency == shop_currency),
                                       default=None, strict=False)
        taxes_included = cls._flag(payload, "taxes_included")

        return StorefrontOrder(
            storefront_order_id=order_id,
            order_number=(cls._text(payload.get("name"), "order.name")
                          or cls._id(payload.get("order_number"), "order.order_number") or order_id),
            currency=currency,
            payment_state=cls._text(payload.get("financial_status"), "order.financial_status"),
            updated_at=cls._time(payload, "updated_at"),
            created_at=cls._time(payload, "created_at"),
            customer_email=email,
            customer_name=name,
            customer_storefront_id=cls._id(customer.get("id"), "order.customer.id"),
            country=country.upper(),
            lines=lines,
            shipping=shipping,
            order_discount=order_discount,
            total=total,
            location=gid("Location", location) if location else "",
            cancelled=bool(cls._text(payload.get("cancelled_at"), "order.cancelled_at")),
            charges=charges,
            taxes_included=taxes_included,
            tax_summary=tax_summary,
            total_tax=total_tax,
            is_test=cls._flag(payload, "test"),
            customer_phone=phone,
            presentment_currency=presentment_currency,
            presentment_total=presentment_total,
            extra={
                "admin_graphql_api_id": cls._text(payload.get("admin_graphql_api_id"), "order.admin_graphql_api_id"),
                "order_number": payload.get("order_number"),
                "taxes_included": taxes_included,
                "total_tax": str(total_tax if total_tax is not None else Decimal(0)),
                "presentment_currency": presentment_currency,
                "shop_currency": shop_currency,
                "currency_basis": currency_basis,
                "current_total_price": str(cls._money(payload, "current_total_price", "order", basis, default="",
                                                      strict=False)),
                "order_level_tax_only": order_level_tax_only,
                "total_refunded": cls._total_refunded(payload, currency),
                "source_name": cls._text(payload.get("source_name"), "order.source_name"),
                "cancel_reason": cls._text(payload.get("cancel_reason"), "order.cancel_reason"),
            },
        )

    # Field readers: each raises ValueError naming the field path for a missing or mistyped value.

    @staticmethod
    def _object(value, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{where} is not an object")
        return value

    @staticmethod
    def _list(value, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"{where} is not a list")
        return value

    @staticmethod
    def _text(value, where: str) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{where} {value!r} is not a string")

    @staticmethod
    def _id(value, where: str, *, required: bool = False) -> str:
        """An id as an exact string (JSON integers beyond 2^53 included; a float id lost its digits)."""
        if value is None or value == "":
            if required:
                raise ValueError(f"{where} is missing")
            return ""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53:
            return str(int(value))
        raise ValueError(f"{where} {value!r} is not an exact id")

    @staticmethod
    def _flag(payload: dict, key: str) -> bool:
        value = payload.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ValueError(f"order.{key} {value!r} is not true or false")
        return value

    @classmethod
    def _currency(cls, payload: dict, key: str, *, required: bool = False) -> str:
        code = cls._text(payload.get(key), f"order.{key}").upper()
        if not code:
            if required:
                raise ValueError(f"order.{key} is missing")
            return ""
        if len(code) != 3 or not code.isalpha() or not code.isascii():
            raise ValueError(f"order.{key} {payload.get(key)!r} is not a currency code")
        return code

    @staticmethod
    def _quantity(value, where: str) -> int:
        if value is None:
            raise ValueError(f"{where} is missing")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where} {value!r} is not a whole number")
        return value

    @staticmethod
    def _decimal(value, where: str) -> Decimal:
        if value is None:
            raise ValueError(f"{where} is missing")
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise ValueError(f"{where} {value!r} is not a decimal amount")
        try:
            # JSON numbers arrive as float; str() keeps the digits that were written, not binary noise.
            amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError):
            raise ValueError(f"{where} {value!r} is not a decimal amount") from None
        # "1e400" is a finite Decimal but no amount of money (nor is a 40-digit fraction).
        if not amount.is_finite() or (amount and not -20 <= amount.adjusted() < 18) or amount.as_tuple().exponent < -20:
            raise ValueError(f"{where} {value!r} is not a decimal amount")
        return amount

    @classmethod
    def _money(cls, obj: dict, key: str, where: str, basis: "_Basis", *, default=..., strict: bool = True):
        """`<key>_set.<shop|presentment>_money.amount`; the plain `<key>` (shop money) stands in only when
        basis.plain_ok. Absent both ways: `default` if given. strict=False: unreadable -> default."""
        try:
            money_set = obj.get(f"{key}_set")
            if money_set is not None:
                bag = cls._object(cls._object(money_set, f"{where}.{key}_set").get(basis.bag),
                                  f"{where}.{key}_set.{basis.bag}")
                if bag:
                    return cls._decimal(bag.get("amount"), f"{where}.{key}_set.{basis.bag}.amount")
            plain = obj.get(key)
            if not basis.plain_ok and (money_set is not None or plain is not None):
                raise ValueError(f"{where}.{key}_set.{basis.bag} is missing")
            if plain is None and default is not ...:
                return default
            return cls._decimal(plain, f"{where}.{key}")
        except ValueError:
            if strict or default is ...:
                raise
            return default

    @classmethod
    def _tax_lines(cls, obj: dict, where: str, basis: "_Basis") -> tuple[TaxLine, ...]:
        taxes = []
        for i, tax in enumerate(cls._list(obj.get("tax_lines"), f"{where}.tax_lines")):
            at = f"{where}.tax_lines[{i}]"
            if not isinstance(tax, dict):
                raise ValueError(f"{at} is not an object")
            taxes.append(TaxLine(rate=cls._decimal(tax.get("rate"), f"{at}.rate"),
                                 amount=cls._money(tax, "price", at, basis),
                                 title=cls._text(tax.get("title"), f"{at}.title")))
        return tuple(taxes)

    @classmethod
    def _discount(cls, obj: dict, where: str, basis: "_Basis") -> Decimal:
        total = Decimal(0)
        for i, allocation in enumerate(cls._list(obj.get("discount_allocations"), f"{where}.discount_allocations")):
            at = f"{where}.discount_allocations[{i}]"
            if not isinstance(allocation, dict):
                raise ValueError(f"{at} is not an object")
            total += cls._money(allocation, "amount", at, basis)
        return total

    @classmethod
    def _refunded_quantities(cls, payload: dict) -> dict[str, int]:
        """line item id -> units refunded over all of the order's refunds."""
        refunded: dict[str, int] = {}
        for i, refund in enumerate(cls._list(payload.get("refunds"), "order.refunds")):
            refund = cls._object(refund, f"order.refunds[{i}]")
            for j, item in enumerate(cls._list(refund.get("refund_line_items"), f"order.refunds[{i}].refund_line_items")):
                at = f"order.refunds[{i}].refund_line_items[{j}]"
                if not isinstance(item, dict):
                    raise ValueError(f"{at} is not an object")
                line_id = cls._id(item.get("line_item_id"), f"{at}.line_item_id") or cls._id(
                    cls._object(item.get("line_item"), f"{at}.line_item").get("id"), f"{at}.line_item.id", required=True)
                refunded[line_id] = refunded.get(line_id, 0) + cls._quantity(item.get("quantity"), f"{at}.quantity")
        return refunded

    @classmethod
    def _total_refunded(cls, payload: dict, currency: str) -> str:
        """Money refunded so far (successful refund transactions), for people to read; "" when none
        or when a refund was paid in another currency than the order is read in."""
        total = None
        for i, refund in enumerate(cls._list(payload.get("refunds"), "order.refunds")):
            refund = cls._object(refund, f"order.refunds[{i}]")
            for j, transaction in enumerate(cls._list(refund.get("transactions"), f"order.refunds[{i}].transactions")):
                at = f"order.refunds[{i}].transactions[{j}]"
                transaction = cls._object(transaction, at)
                if (cls._text(transaction.get("kind"), f"{at}.kind"), cls._text(transaction.get("status"), f"{at}.status")) \
                        != ("refund", "success"):
                    continue
                if cls._text(transaction.get("currency"), f"{at}.currency").upper() not in ("", currency):
                    return ""
                total = (total or Decimal(0)) + cls._decimal(transaction.get("amount"), f"{at}.amount")
        return "" if total is None else str(total)

    @classmethod
    def _order_line(cls, line, where: str, basis: "_Basis", refunded: dict[str, int]) -> OrderLine:
        if not isinstance(line, dict):
            raise ValueError(f"{where} is not an object")
        ordered = cls._quantity(line.get("quantity"), f"{where}.quantity")
        line_id = cls._id(line.get("id"), f"{where}.id")
        if line.get("current_quantity") is not None:
            # Units still on the order plus the units refunded: the quantity SOLD (edits stay out).
            quantity = cls._quantity(line["current_quantity"], f"{where}.current_quantity") + refunded.get(line_id, 0)
        else:
            quantity = ordered
        sku = cls._text(line.get("sku"), f"{where}.sku")
        product_id = cls._id(line.get("product_id"), f"{where}.product_id")
        variant_id = cls._id(line.get("variant_id"), f"{where}.variant_id")
        gift_card = line.get("gift_card")
        if gift_card is not None and not isinstance(gift_card, bool):
            raise ValueError(f"{where}.gift_card {gift_card!r} is not true or false")
        if gift_card:
            kind = "gift_card"
        elif not (sku or product_id or variant_id):
            kind = "custom"
        else:
            kind = "item"
        return OrderLine(
            sku=sku,
            name=cls._text(line.get("name"), f"{where}.name") or cls._text(line.get("title"), f"{where}.title"),
            quantity=quantity,
            unit_price=cls._money(line, "price", where, basis),
            discount=cls._discount(line, where, basis),
            tax_lines=cls._tax_lines(line, where, basis),
            line_id=line_id,
            kind=kind,
            product_id=product_id,
            variant_id=variant_id,
        )

    @classmethod
    def _tip_lines(cls, payload: dict, kept: list[tuple[OrderLine, dict, str]]) -> set[str]:
        """Ids of the line items that are Shopify's tip (only when the order received a tip)."""
        tip = cls._money(payload, "total_tip_received", "order", _SHOP, default=Decimal(0))
        if tip <= 0:
            return set()
        custom = [(line, raw, where) for line, raw, where in kept if line.kind == "custom" and line.line_id]
        named = {line.line_id for line, _, _ in custom if line.name.casefold() in ("tip", "tips")}
        if named:
            return named
        unshipped = [line for line, raw, where in custom
                     if raw.get("requires_shipping") is False
                     and cls._money(raw, "price", where, _SHOP) * line.quantity - cls._discount(raw, where, _SHOP) == tip]
        return {unshipped[0].line_id} if len(unshipped) == 1 else set()

    @classmethod
    def _tip_charge(cls, payload: dict, basis: "_Basis") -> list[OrderLine]:
        # total_tip_received is shop money only (no money bag in REST): no tip is no tip in any currency.
        if cls._money(payload, "total_tip_received", "order", _SHOP, default=Decimal(0)) <= 0:
            return []
        tip = cls._money(payload, "total_tip_received", "order", basis)
        return [OrderLine(sku="", name="Tip", quantity=1, unit_price=tip, kind="tip")]

    @classmethod
    def _duty_charges(cls, line: dict, where: str, basis: "_Basis") -> list[OrderLine]:
        charges = []
        for i, duty in enumerate(cls._list(line.get("duties"), f"{where}.duties")):
            at = f"{where}.duties[{i}]"
            if not isinstance(duty, dict):
                raise ValueError(f"{at} is not an object")
            hs = cls._text(duty.get("harmonized_system_code"), f"{at}.harmonized_system_code")
            origin = cls._text(duty.get("country_code_of_origin"), f"{at}.country_code_of_origin")
            about = ", ".join(p for p in (f"HS {hs}" if hs else "", f"origin {origin}" if origin else "") if p)
            charges.append(OrderLine(
                sku="", name=f"Duties ({about})" if about else "Duties", quantity=1,
                unit_price=cls._duty_amount(duty, at, basis), tax_lines=cls._tax_lines(duty, at, basis),
                line_id=cls._id(duty.get("id"), f"{at}.id"), kind="duty",
            ))
        return charges

    @classmethod
    def _duty_amount(cls, duty: dict, where: str, basis: "_Basis") -> Decimal:
        # Webhooks carry `price_set`; Shopify's REST reference shows the money bags on the duty itself.
        if duty.get("price_set") is not None or duty.get("price") is not None:
            return cls._money(duty, "price", where, basis)
        for bag in (basis.bag, "shop_money") if basis.plain_ok else (basis.bag,):
            if duty.get(bag) is not None:
                return cls._decimal(cls._object(duty[bag], f"{where}.{bag}").get("amount"), f"{where}.{bag}.amount")
        raise ValueError(f"{where}.price_set is missing")

    @classmethod
    def _order_duty_charges(cls, payload: dict, basis: "_Basis") -> list[OrderLine]:
        """Duties stated for the order only (no line carries them): one charge, the sale's duties."""
        for key in ("original_total_duties", "current_total_duties"):
            amount = cls._money(payload, key, "order", basis, default=None)
            if amount is not None:
                return [OrderLine(sku="", name="Duties", quantity=1, unit_price=amount, kind="duty")] if amount else []
        return []

    @classmethod
    def _shipping_line(cls, line, where: str, basis: "_Basis") -> OrderLine:
        if not isinstance(line, dict):
            raise ValueError(f"{where} is not an object")
        return OrderLine(
            sku="",
            name=cls._text(line.get("title"), f"{where}.title") or cls._text(line.get("code"), f"{where}.code") or "Shipping",
            quantity=1,
            unit_price=cls._money(line, "price", where, basis),
            discount=cls._discount(line, where, basis),
            tax_lines=cls._tax_lines(line, where, basis),
            line_id=cls._id(line.get("id"), f"{where}.id"),
            kind="shipping",
        )

    @staticmethod
    def _time(payload: dict, key: str) -> datetime | None:
        value = payload.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ValueError(f"order.{key} {value!r} is not an ISO 8601 timestamp")
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"order.{key} {value!r} is not an ISO 8601 timestamp") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"order.{key} {value!r} has no time zone")
        return moment


@dataclass(frozen=True)
class _Basis:
    """Which of Shopify's money bags an order is read in."""

    bag: str  # "shop_money" or "presentment_money"
    plain_ok: bool  # the plain fields (shop money) may stand in for a missing bag


_SHOP = _Basis("shop_money", plain_ok=True)
