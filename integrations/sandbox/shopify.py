"""A Shopify stand-in: the GraphQL Admin API subset we call (with its cost-based throttle),
inventory quantities by name per item and location, a checkout simulator, and orders whose
webhooks are signed, retried and redeliverable the way Shopify does it.

Like Shopify it serves the API version in the URL with that version's published schema and rules
(a retired or unknown version is served as the oldest supported one, and every answer says which in
X-Shopify-API-Version), refuses what an access token's scopes do not allow (ACCESS_DENIED), replays a
mutation sent again with the same `@idempotent` key, pages by sort position (a row that moved between
pages comes again, never skipped) and rate-limits its REST endpoints with a leaky bucket (429 with
Retry-After, X-Shopify-Shop-Api-Call-Limit). It imports nothing of the product.

Tests reach the state directly (`sandbox.shopify.level("TEE-BLK-S", 1)`); the demo drives a sandbox
running in another process through the `/shopify/_sandbox/...` admin endpoints.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from graphql import GraphQLError, execute
from graphql.error import GraphQLSyntaxError
from graphql.language import OperationDefinitionNode

from . import shopify_graphql as gql
from .shopify_catalogue import CATALOGUE_SCOPES, CatalogueRoot, ShopifyCatalogue
from .shopify_fulfilment import ShopifyFulfilments
from .shopify_payments import ShopifyPayments
from .currencies import currency_exponent, on_grid
from .server import Request, Response, VendorApp

# Quantity names (https://shopify.dev/docs/apps/build/orders-fulfillment/inventory-management-apps/manage-quantities-states).
ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "quality_control", "safety_stock")
QUANTITY_NAMES = (*ON_HAND_PARTS, "incoming", "on_hand")
SETTABLE_NAMES = ("available", "on_hand")
ADJUSTABLE_NAMES = ("available", "damaged", "incoming", "quality_control", "reserved", "safety_stock")
REASONS = {
    "correction", "cycle_count_available", "damaged", "movement_created", "movement_updated", "movement_received",
    "movement_canceled", "other", "promotion", "quality_control", "received", "reservation_created",
    "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage",
}
MAX_QUANTITIES_PER_CALL = 250  # Shopify's maximum size of an input array
MAX_QUANTITY = 1_000_000_000
# Shopify retries a failed delivery 8 times over 4 hours; the sandbox keeps the count, compresses time.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0)
INVALID_TOKEN_BODY = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
REST_THROTTLED_BODY = {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}
ACCESS_SCOPES_DOC = "https://shopify.dev/api/usage/access-scopes"
# What the demo's app is granted: least privilege for publishing the catalogue (products, prices),
# reading locations and orders and pushing stock. Orders older than 60 days would need read_all_orders.
DEMO_SCOPES = ("read_products", "write_products", "read_locations", "read_inventory", "write_inventory",
               "read_orders", "write_merchant_managed_fulfillment_orders")
# (GraphQL type, field) -> the access scope Shopify requires for it (a write_ scope grants its read_).
FIELD_SCOPES = {
    ("Query", "orders"): "read_orders", ("Query", "order"): "read_orders",
    ("Query", "locations"): "read_locations", ("Query", "location"): "read_locations",
    ("Query", "products"): "read_products", ("Query", "product"): "read_products",
    ("Query", "productVariants"): "read_products", ("Query", "productVariant"): "read_products",
    ("Query", "inventoryItem"): "read_inventory", ("Query", "inventoryLevel"): "read_inventory",
    ("InventoryItem", "inventoryLevels"): "read_inventory", ("InventoryItem", "inventoryLevel"): "read_inventory",
    ("Mutation", "inventorySetQuantities"): "write_inventory",
    ("Mutation", "inventoryAdjustQuantities"): "write_inventory",
    ("Order", "fulfillmentOrders"): "read_merchant_managed_fulfillment_orders",
    ("Mutation", "fulfillmentCreate"): "write_merchant_managed_fulfillment_orders",
}
FIELD_SCOPES.update(CATALOGUE_SCOPES)  # product writes and price lists (shopify_catalogue.py)
ALL_ORDERS_AGE = timedelta(days=60)  # older orders need read_all_orders
# The app (Dev Dashboard) whose installs the sandbox serves: its published demo client credentials.
APP_CLIENT_ID = "sandbox-app-client-id"
APP_CLIENT_SECRET = "sandbox-app-client-secret"
CLIENT_CREDENTIALS_TTL = 86399  # seconds: Shopify's client-credentials tokens last about 24 hours
AUTH_CODE_TTL = 600.0  # an authorization code not exchanged by then is gone
ONLINE_TOKEN_TTL = 86400
CODE_NOT_FOUND = {"error": "invalid_request",
                  "error_description": "The authorization code was not found or was already used"}
INVALID_CLIENT = {"error": "invalid_client",
                  "error_description": "Client authentication failed: the client_id or client_secret is not valid"}
# Webhook topic (enum prefix) -> the scope a subscription to it needs.
TOPIC_SCOPES = {"ORDERS_": "read_orders", "REFUNDS_": "read_orders", "FULFILLMENTS_": "read_fulfillments",
                "PRODUCTS_": "read_products", "INVENTORY_LEVELS_": "read_inventory", "INVENTORY_ITEMS_": "read_inventory"}
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def oauth_hmac(secret: str, params: dict) -> str:
    """The hex HMAC-SHA256 Shopify signs a redirect's query with (every parameter but hmac, sorted)."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def webhook_topic(enum_value: str) -> str:
    """ORDERS_CREATE -> orders/create (the X-Shopify-Topic of its deliveries)."""
    lower = enum_value.lower()
    for resource in ("fulfillment_orders", "fulfillment_events", "fulfillment_holds", "inventory_levels",
                     "inventory_items", "inventory_transfers", "inventory_shipments", "app_subscriptions",
                     "app_purchases_one_time", "customer_payment_methods", "collection_listings",
                     "product_listings", "tax_summaries"):
        if lower.startswith(resource + "_"):
            return f"{resource}/{lower[len(resource) + 1:]}"
    resource, _, event = lower.partition("_")
    return f"{resource}/{event}"


def valid_endpoint(uri) -> bool:
    """An address Shopify delivers to: https (http only to a loopback host, for a local Ledgerline: a
    sandbox leniency), a Pub/Sub topic or an EventBridge ARN."""
    if not isinstance(uri, str) or not uri:
        return False
    if uri.startswith("pubsub://") or uri.startswith("arn:aws:events:"):
        return True
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


def webhook_hmac(secret: str, body: bytes) -> str:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body (the sandbox's own, not the product's)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def granted(scopes) -> frozenset[str]:
    """The scopes a token acts with: a write_ scope also grants the matching read_ scope."""
    scopes = set(scopes)
    return frozenset(scopes | {"read_" + s.removeprefix("write_") for s in scopes if s.startswith("write_")})


def _access_denied(field: str, scope: str) -> GraphQLError:
    required = f"`{scope}` access scope."
    return GraphQLError(f"Access denied for {field} field. Required access: {required}",
                        extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOC,
                                    "requiredAccess": required})


def _check_scopes(next_, root, info, **args):
    """graphql-core middleware: a field the token's scopes do not allow resolves to an ACCESS_DENIED error."""
    scope = FIELD_SCOPES.get((info.parent_type.name, info.field_name))
    if scope is not None and scope not in info.context["scopes"]:
        raise _access_denied(info.field_name, scope)
    return next_(root, info, **args)


def gid(kind: str, number) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value) -> int | None:
    """`gid://shopify/Location/1`, `"1"` or `1` -> 1; anything else -> None."""
    text = str(value).split("?", 1)[0].rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_time(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Webhook:
    """One webhook as Shopify keeps it: the original body and headers, resent unchanged on retry."""

    id: str
    topic: str
    body: bytes
    headers: dict
    target: str
    attempts: int = 0
    last_status: int | None = None
    delivered: bool = False
    retrying: bool = False

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class Bucket:
    """Shopify's leaky bucket of query-cost points."""

    size: float
    restore_rate: float
    available: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def refill(self) -> None:
        now = time.monotonic()
        self.available = min(self.size, self.available + (now - self.at) * self.restore_rate)
        self.at = now

    def status(self) -> dict:
        return {
            "maximumAvailable": float(self.size),
            "currentlyAvailable": int(self.available),
            "restoreRate": float(self.restore_rate),
        }


class ShopifySandbox(ShopifyCatalogue, ShopifyFulfilments, ShopifyPayments, VendorApp):
    prefix = "/shopify"
    mount = "/shopify"  # where the sandbox server serves this shop (bulk result URLs point there)
    shop_name = "Ledgerline Demo Store"
    shop_domain = "ledgerline-demo.myshopify.com"
    currency = "GBP"

    def __init__(
        self,
        shopify_access_token: str = "shpat_sandbox_token",
        shopify_webhook_secret: str = "sandbox-shopify-webhook-secret",
        shopify_webhook_target: str = "",
        shopify_restore_rate: float = 100,
        shopify_bucket_size: float = 1000,
        shopify_api_version: str = "2026-04",
        shopify_api_versions=tuple(gql.API_VERSIONS),
        shopify_access_scopes=DEMO_SCOPES,
        shopify_rest_bucket_size: float = 40,
        shopify_rest_leak_rate: float = 2,
        shopify_webhook_retry_delays=DEFAULT_RETRY_DELAYS,
        shopify_app_client_id: str = APP_CLIENT_ID,
        shopify_app_client_secret: str = APP_CLIENT_SECRET,
        shopify_app_scopes=DEMO_SCOPES,
        **_ignored,
    ):
        unknown = set(shopify_api_versions) - set(gql.API_VERSIONS)
        if unknown:
            raise ValueError(f"no published schema for API versions {sorted(unknown)}; known: {sorted(gql.API_VERSIONS)}")
        self.access_token = shopify_access_token
        self.webhook_secret = shopify_webhook_secret
        self.app_client_id = shopify_app_client_id
        self.app_client_secret = shopify_app_client_secret
        self.api_versions = tuple(sorted(shopify_api_versions))
        # Webhooks are sent in the version the app subscribed with (served as Shopify would serve it).
        self.api_version = gql.served_version(shopify_api_version, self.api_versions)
        self._defaults = {
            "webhook_target": shopify_webhook_target,
            "restore_rate": float(shopify_restore_rate),
            "bucket_size": float(shopify_bucket_size),
            "retry_delays": tuple(shopify_webhook_retry_delays),
            "access_scopes": tuple(shopify_access_scopes),
            "rest_bucket_size": float(shopify_rest_bucket_size),
            "rest_leak_rate": float(shopify_rest_leak_rate),
            "app_scopes": tuple(shopify_app_scopes),
        }
        super().__init__()
        self.reset()

    def serving(self) -> None:
        # Shopify's published schemas take seconds to build: start on the one webhooks use, newest first.
        gql.warm_up([self.api_version, *(v for v in reversed(self.api_versions) if v != self.api_version)])

    # --- state ----------------------------------------------------------------------------------

    def reset(self, *, seed: bool = True) -> None:
        """Empty the shop (stopping pending webhook retries), restore the configuration, seed the demo."""
        with self.lock:
            self._generation = getattr(self, "_generation", 0) + 1
            self.webhook_target = self._defaults["webhook_target"]
            self.retry_delays = self._defaults["retry_delays"]
            self.delivery_mode = "sync"  # sync | async | none
            self.webhook_timeout = 5.0  # Shopify waits 5 seconds for an answer
            self.bucket = Bucket(self._defaults["bucket_size"], self._defaults["restore_rate"])
            self.bucket.available = self.bucket.size
            # access token -> its scopes; REST leaky bucket per token (each request is one marble).
            self.tokens: dict[str, frozenset[str]] = {self.access_token: frozenset(self._defaults["access_scopes"])}
            # The app's installation: the scopes its version asks for (client-credentials tokens get
            # these), authorization codes handed out, its tokens (some expiring) and subscriptions.
            self.app_scopes = frozenset(self._defaults["app_scopes"])
            self.client_credentials_ttl = CLIENT_CREDENTIALS_TTL
            self.client_credentials_allowed = True  # the app belongs to the shop's organisation
            self.auth_codes: dict[str, dict] = {}
            self.app_tokens: set[str] = set()
            self.offline_token: str | None = None
            self.token_expiry: dict[str, float] = {}  # token -> epoch seconds
            self.token_requests: list[dict] = []  # every POST /admin/oauth/access_token: grant, outcome
            self.subscriptions: dict[int, dict] = {}
            # Bulk query operations: number -> {status, query, lines, polls, ...}; one runs at a time.
            self.bulk_operations: dict[int, dict] = {}
            self.bulk_polls_to_complete = 2  # polls of bulkOperation(id:) before it is COMPLETED
            self.rest_bucket_size = self._defaults["rest_bucket_size"]
            self.rest_leak_rate = self._defaults["rest_leak_rate"]
            self.rest_buckets: dict[str, Bucket] = {}
            self.rest_requests = 0
            self.rest_throttled = 0
            # (mutation, idempotency key) -> (the input it was sent with, the answer given)
            self.idempotency: dict[tuple[str, str], tuple[str, dict]] = {}
            self.idempotent_replays = 0
            self._reset_fulfilments()
            self._reset_payments()
            self.versions_served: dict[str, int] = {}
            self.locations: dict[int, dict] = {}
            self.products: dict[int, dict] = {}
            self.variants: dict[int, dict] = {}
            self.inventory_items: dict[int, dict] = {}
            self.levels: dict[tuple[int, int], dict[str, int]] = {}
            self.orders: dict[int, dict] = {}
            self.webhooks: dict[str, Webhook] = {}
            self.deliveries: list[dict] = []
            self.adjustments: list[dict] = []
            self.mutation_calls: dict[str, int] = {}
            self.graphql_requests = 0
            self.throttled = 0
            self._ids = {
                "Location": itertools.count(1),
                "Product": itertools.count(7_001_000_001),
                "ProductVariant": itertools.count(41_001_000_001),
                "InventoryItem": itertools.count(43_001_000_001),
                "Order": itertools.count(5_801_000_001),
                "LineItem": itertools.count(14_001_000_001),
                "ShippingLine": itertools.count(4_901_000_001),
                "Duty": itertools.count(2_301_000_001),
                "Customer": itertools.count(7_301_000_001),
                "InventoryAdjustmentGroup": itertools.count(1),
                "WebhookSubscription": itertools.count(1_101_000_001),
                "BulkOperation": itertools.count(4_001_000_001),
                "Refund": itertools.count(9_201_000_001),
            }
            self._order_numbers = itertools.count(1001)
            self._reset_catalogue()
            self._last_updated: datetime | None = None
            if seed:
                self.seed_demo()

    def configure(self, **options) -> None:
        """Change the throttle or webhook settings at run time (tests, the demo's config endpoint)."""
        with self.lock:
            if "webhook_target" in options:
                self.webhook_target = options["webhook_target"] or ""
            if "retry_delays" in options:
                self.retry_delays = tuple(float(d) for d in options["retry_delays"])
            if "delivery_mode" in options:
                if options["delivery_mode"] not in ("sync", "async", "none"):
                    raise ValueError("delivery_mode must be sync, async or none")
                self.delivery_mode = options["delivery_mode"]
            if "restore_rate" in options:
                self.bucket.refill()
                self.bucket.restore_rate = float(options["restore_rate"])
            if "bucket_size" in options:
                self.bucket.refill()
                self.bucket.size = float(options["bucket_size"])
                self.bucket.available = min(self.bucket.available, self.bucket.size)
            if options.get("refill_bucket"):
                self.bucket.available = self.bucket.size
            if "client_credentials_ttl" in options:
                self.client_credentials_ttl = float(options["client_credentials_ttl"])
            if "client_credentials_allowed" in options:
                self.client_credentials_allowed = bool(options["client_credentials_allowed"])
            if "app_scopes" in options:
                self.app_scopes = frozenset(options["app_scopes"])
            self.configure_catalogue(options)
            if "bulk_polls_to_complete" in options:
                self.bulk_polls_to_complete = int(options["bulk_polls_to_complete"])
            if "rest_bucket_size" in options or "rest_leak_rate" in options:
                self.rest_bucket_size = float(options.get("rest_bucket_size", self.rest_bucket_size))
                self.rest_leak_rate = float(options.get("rest_leak_rate", self.rest_leak_rate))
                self.rest_buckets = {}

    def add_access_token(self, scopes, token: str | None = None) -> str:
        """A token of another app installation with exactly these scopes (least-privilege tests)."""
        token = token or f"shpat_{uuid.uuid4().hex}"
        with self.lock:
            self.tokens[token] = frozenset(scopes)
        return token

    def _next_id(self, kind: str) -> int:
        return next(self._ids[kind])

    def add_location(self, name: str, *, stock_existing_items: bool = True) -> str:
        with self.lock:
            number = self._next_id("Location")
            self.locations[number] = {"number": number, "name": name, "is_active": True}
            if stock_existing_items:
                for item in self.inventory_items:
                    self.levels.setdefault((item, number), self._empty_level())
            return gid("Location", number)

    @staticmethod
    def _empty_level() -> dict[str, int]:
        return {name: 0 for name in (*ON_HAND_PARTS, "incoming")}

    def add_product(self, title: str, variants: list[dict], *, stock: dict | None = None) -> str:
        """A product with variants ({"sku", "price", "title"?, "compare_at_price"?}); each gets an inventory item stocked
        at every location. `stock` maps sku -> {location (gid or number): available}."""
        with self.lock:
            product = self._next_id("Product")
            self.products[product] = {"number": product, "title": title, "variants": []}
            for spec in variants:
                variant = self._next_id("ProductVariant")
                item = self._next_id("InventoryItem")
                self.variants[variant] = {
                    "number": variant,
                    "sku": spec.get("sku") or "",
                    "title": spec.get("title") or spec.get("sku") or "Default Title",
                    "price": str(on_grid(Decimal(str(spec.get("price", "0"))), self.currency)),
                    "compare_at_price": (str(on_grid(Decimal(str(spec["compare_at_price"])), self.currency))
                                         if spec.get("compare_at_price") is not None else None),
                    "product": product,
                    "inventory_item": item,
                }
                self.inventory_items[item] = {"number": item, "variant": variant, "tracked": True}
                self.products[product]["variants"].append(variant)
                for location in self.locations:
                    self.levels[(item, location)] = self._empty_level()
            for sku, per_location in (stock or {}).items():
                for location, quantity in per_location.items():
                    self.set_level(sku, location, available=quantity)
            return gid("Product", product)

    def seed_demo(self) -> None:
        """Two locations and products whose SKUs match the ERP demo items. Safe to call twice."""
        with self.lock:
            if any(loc["name"] == "Main warehouse" for loc in self.locations.values()):
                return
            self.add_location("Main warehouse")
            self.add_location("Northern store")
            self.add_product(
                "Classic tee",
                [
                    {"sku": "TEE-BLK-S", "title": "Black / S", "price": "19.99"},
                    {"sku": "TEE-BLK-M", "title": "Black / M", "price": "19.99"},
                    {"sku": "TEE-BLK-L", "title": "Black / L", "price": "19.99"},
                    {"sku": "TEE-WHT-M", "title": "White / M", "price": "19.99"},
                ],
                stock={
                    "TEE-BLK-S": {1: 40, 2: 8},
                    "TEE-BLK-M": {1: 55, 2: 12},
                    "TEE-BLK-L": {1: 30, 2: 6},
                    "TEE-WHT-M": {1: 25, 2: 4},
                },
            )
            self.add_product("Enamel mug", [{"sku": "MUG-001", "price": "9.50"}], stock={"MUG-001": {1: 120, 2: 20}})
            self.add_product(
                "Hoodie", [{"sku": "HOODIE-GRY-L", "title": "Grey / L", "price": "44.00"}],
                stock={"HOODIE-GRY-L": {1: 15, 2: 3}},
            )

    # --- inventory helpers (tests and the checkout simulator) ---------------------------------

    def variant_by_sku(self, sku: str) -> dict | None:
        return next((v for v in self.variants.values() if v["sku"] == sku), None)

    def _item_number(self, sku_or_item) -> int:
        number = gid_number(sku_or_item) if str(sku_or_item).startswith("gid://") or str(sku_or_item).isdigit() else None
        if number in self.inventory_items:
            return number
        variant = self.variant_by_sku(str(sku_or_item))
        if variant is None:
            raise KeyError(f"no inventory item or SKU {sku_or_item!r} in the sandbox shop")
        return variant["inventory_item"]

    def _location_number(self, location) -> int:
        number = gid_number(location)
        if number in self.locations:
            return number
        found = next((n for n, loc in self.locations.items() if loc["name"] == location), None)
        if found is None:
            raise KeyError(f"no location {location!r} in the sandbox shop")
        return found

    def inventory_item_id(self, sku: str) -> str:
        return gid("InventoryItem", self._item_number(sku))

    def level(self, sku_or_item, location) -> dict[str, int]:
        """All quantities of one item at one location, on_hand included."""
        with self.lock:
            quantities = dict(self.levels[(self._item_number(sku_or_item), self._location_number(location))])
        quantities["on_hand"] = sum(quantities[name] for name in ON_HAND_PARTS)
        return quantities

    def set_level(self, sku_or_item, location, **quantities: int) -> None:
        with self.lock:
            key = (self._item_number(sku_or_item), self._location_number(location))
            level = self.levels.setdefault(key, self._empty_level())
            for name, value in quantities.items():
                if name not in level:
                    raise ValueError(f"{name!r} is not a settable quantity name")
                level[name] = int(value)

    def _move(self, sku_or_item, location, quantity: int, source: str, target: str) -> dict[str, int]:
        with self.lock:
            key = (self._item_number(sku_or_item), self._location_number(location))
            level = self.levels[key]
            if level[source] < quantity:
                raise ValueError(f"only {level[source]} {source} for {sku_or_item} at {location}; cannot move {quantity}")
            level[source] -= quantity
            level[target] += quantity
        return self.level(sku_or_item, location)

    def reserve(self, sku_or_inventory_item_id, location_id, qty: int) -> dict[str, int]:
        """A checkout in progress holds stock: available -> reserved."""
        return self._move(sku_or_inventory_item_id, location_id, qty, "available", "reserved")

    def release(self, sku_or_inventory_item_id, location_id, qty: int) -> dict[str, int]:
        """An abandoned checkout gives it back: reserved -> available."""
        return self._move(sku_or_inventory_item_id, location_id, qty, "reserved", "available")

    def sell(self, sku_or_inventory_item_id, location_id, qty: int) -> dict[str, int]:
        """An order placed: available -> committed."""
        return self._move(sku_or_inventory_item_id, location_id, qty, "available", "committed")

    # --- routes ------------------------------------------------------------------------------------

    def register_routes(self) -> None:
        api = r"/admin/api/(?P<version>[0-9]{4}-[0-9]{2}|unstable)"
        self.route("POST", api + r"/graphql\.json", self.handle_graphql)
        self.route("GET", api + r"/orders/(?P<order_id>\d+)\.json", self.handle_rest_order)
        self.route("GET", api + r"/orders\.json", self.handle_rest_orders)
        self.route("GET", r"/admin/oauth/access_scopes\.json", self.handle_access_scopes)
        self.route("GET", r"/_bulk/(?P<number>\d+)\.jsonl", self.handle_bulk_result)
        self.route("GET", r"/admin/oauth/authorize", self.handle_authorize)
        self.route("POST", r"/admin/oauth/access_token", self.handle_access_token)
        self.route("POST", r"/_sandbox/app/uninstall", self.admin_uninstall)
        self.route("POST", r"/_sandbox/access-tokens/expire", self.admin_expire_tokens)
        self.route("POST", r"/_sandbox/reset", self.admin_reset)
        self.route("POST", r"/_sandbox/seed-demo", self.admin_seed)
        self.route("POST", r"/_sandbox/config", self.admin_config)
        self.route("POST", r"/_sandbox/access-tokens", self.admin_access_token)
        self.route("POST", r"/_sandbox/orders", self.admin_create_order)
        self.route("POST", r"/_sandbox/orders/(?P<order_id>\d+)/paid", self.admin_mark_paid)
        self.route("POST", r"/_sandbox/orders/(?P<order_id>\d+)/cancel", self.admin_cancel)
        self.route("POST", r"/_sandbox/webhooks/(?P<webhook_id>[^/]+)/redeliver", self.admin_redeliver)
        self.route("POST", r"/_sandbox/inventory/(?P<action>reserve|release|sell)", self.admin_inventory_move)
        self.route("GET", r"/_sandbox/inventory", self.admin_inventory)
        self.route("GET", r"/_sandbox/stats", self.admin_stats)
        self.register_payment_routes()
        self.register_catalogue_routes()

    def _scopes(self, request: Request) -> frozenset[str] | None:
        """The scopes of the request's access token; None when the token is missing or unknown."""
        supplied = request.headers.get("x-shopify-access-token", "")
        if not supplied:
            return None
        with self.lock:
            tokens = list(self.tokens.items())
            expiry = dict(self.token_expiry)
        for token, scopes in tokens:
            if hmac.compare_digest(supplied, token):
                if token in expiry and time.time() >= expiry[token]:
                    return None  # expired: Shopify answers it like an unknown token
                return granted(scopes)
        return None

    def _version(self, request: Request) -> str:
        version = gql.served_version(request.params["version"], self.api_versions)
        with self.lock:
            self.versions_served[version] = self.versions_served.get(version, 0) + 1
        return version

    # --- GraphQL -------------------------------------------------------------------------------------

    def handle_graphql(self, request: Request) -> Response:
        version = self._version(request)
        served = {"X-Shopify-API-Version": version}
        scopes = self._scopes(request)
        if scopes is None:
            return Response.json(INVALID_TOKEN_BODY, 401, served)
        try:
            if request.headers.get("content-type", "").startswith("application/graphql"):
                body = {"query": request.body.decode()}
            else:
                body = request.json() or {}
        except (ValueError, UnicodeDecodeError):
            return Response.json({"errors": [{"message": "Invalid JSON in request body"}]}, 400, served)
        query = body.get("query") or ""
        variables = body.get("variables") or {}
        operation_name = body.get("operationName")
        try:
            document = gql.parse_document(query)
        except GraphQLSyntaxError as exc:
            return Response.json({"errors": [exc.formatted]}, headers=served)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)
                      and (not operation_name or (d.name and d.name.value == operation_name))]
        if not operations:
            message = f'Unknown operation named "{operation_name}".' if operation_name else "Must provide an operation."
            return Response.json({"errors": [{"message": message}]}, headers=served)
        # Shopify's answer to a document or variables its published schema of this version refuses.
        problems = gql.published_problems(version, query, operations[0] if len(operations) == 1 else None, variables)
        if problems:
            return Response.json({"errors": problems}, headers=served)
        unimplemented = gql.implemented_problems(query)
        if unimplemented:
            return Response.json({"errors": [{
                "message": f"The Shopify sandbox does not implement this (valid on {version}): {p['message']}",
                "extensions": {"code": "SANDBOX_NOT_IMPLEMENTED"}} for p in unimplemented]}, headers=served)
        requested = gql.requested_cost(document, operation_name, variables)
        with self.lock:
            self.graphql_requests += 1
            self.bucket.refill()
            if requested > self.bucket.size:
                return Response.json({
                    "errors": [{
                        "message": f"Query cost is {requested}, which exceeds the single query max cost limit ({int(self.bucket.size)}).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": int(self.bucket.size)},
                    }],
                    "extensions": {"cost": self._cost(requested, None)},
                }, headers=served)
            if requested > self.bucket.available:
                self.throttled += 1
                return Response.json({
                    "errors": [{
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
                    }],
                    "extensions": {"cost": self._cost(requested, None)},
                }, headers=served)
            self.bucket.available -= requested
            result = execute(
                gql.SCHEMA, document, root_value=_Root(self),
                context_value={"sandbox": self, "scopes": scopes, "version": version,
                               "rules": gql.API_VERSIONS[version],
                               "token": request.headers.get("x-shopify-access-token", ""),
                               "host": request.headers.get("host", "")},
                variable_values=variables, operation_name=operation_name, middleware=[_check_scopes],
            )
            operation = operations[0]
            is_mutation = operation.operation.value == "mutation"
            actual = min(requested, gql.actual_cost(result.data, is_mutation, len(operation.selection_set.selections)))
            self.bucket.available = min(self.bucket.size, self.bucket.available + requested - actual)
            self.points_spent += actual
            answer: dict = {"data": result.data}
            if result.errors:
                answer["errors"] = [error.formatted for error in result.errors]
            answer["extensions"] = {"cost": self._cost(requested, actual)}
        return Response.json(answer, headers=served)

    def _cost(self, requested: int, actual: int | None) -> dict:
        return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}

    # GraphQL nodes: plain dicts, nested objects as callables (graphql-core calls them with info, **args).

    def _location_node(self, number: int) -> dict:
        location = self.locations[number]
        return {
            "id": gid("Location", number), "legacyResourceId": str(number),
            "name": location["name"], "isActive": location["is_active"],
        }

    def _product_node(self, number: int) -> dict:
        product = self.products[number]
        return {
            "id": gid("Product", number), "legacyResourceId": str(number), "title": product["title"],
            "status": "ACTIVE",
            "variants": lambda info, first=None, after=None: gql.connection(
                sorted(product["variants"]), first=first, after=after, key=lambda v: v, node=self._variant_node),
            **self._catalogue_product_fields(product),
        }

    def _variant_node(self, number: int) -> dict:
        variant = self.variants[number]
        return {
            "id": gid("ProductVariant", number), "legacyResourceId": str(number), "sku": variant["sku"],
            "title": variant["title"], "price": variant["price"], "compareAtPrice": variant.get("compare_at_price"),
            "product": lambda info: self._product_node(variant["product"]),
            "inventoryItem": lambda info: self._item_node(variant["inventory_item"]),
            **self._catalogue_variant_fields(variant),
        }

    def _item_node(self, number: int) -> dict:
        item = self.inventory_items[number]

        def levels(info, first=None, after=None):
            keys = sorted(loc for (it, loc) in self.levels if it == number)
            return gql.connection(keys, first=first, after=after, key=lambda loc: loc,
                                  node=lambda loc: self._level_node(number, loc))

        def one_level(info, locationId):
            location = gid_number(locationId)
            return self._level_node(number, location) if (number, location) in self.levels else None

        return {
            "id": gid("InventoryItem", number), "legacyResourceId": str(number),
            "sku": self.variants[item["variant"]]["sku"], "tracked": item["tracked"],
            "variant": lambda info: self._variant_node(item["variant"]),
            "inventoryLevels": levels, "inventoryLevel": one_level,
        }

    def _level_node(self, item: int, location: int) -> dict:
        def quantities(info, names):
            unknown = [n for n in names if n not in QUANTITY_NAMES]
            if unknown:
                raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}. Valid names are {', '.join(QUANTITY_NAMES)}.")
            current = self.level(item, location)
            return [{"id": f"{gid('InventoryQuantity', item)}?location_id={location}&name={n}", "name": n,
                     "quantity": current[n], "updatedAt": None} for n in names]

        return {
            "id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
            "location": lambda info: self._location_node(location),
            "item": lambda info: self._item_node(item),
            "updatedAt": None,
            "quantities": quantities,
        }

    def _order_node(self, order: dict) -> dict:
        """The stored (REST-format) order as GraphQL's Order: camelCase, MoneyBags, GIDs, enums."""
        currency = order["currency"]

        def money(amount):
            return {"shopMoney": {"amount": amount, "currencyCode": currency},
                    "presentmentMoney": {"amount": amount, "currencyCode": currency}}

        def bag(money_set, plain=None):
            if isinstance(money_set, dict):
                return {"shopMoney": {"amount": money_set["shop_money"]["amount"],
                                      "currencyCode": money_set["shop_money"]["currency_code"]},
                        "presentmentMoney": {"amount": money_set["presentment_money"]["amount"],
                                             "currencyCode": money_set["presentment_money"]["currency_code"]}}
            return money(plain) if plain is not None else None

        def taxes(lines):
            return [{"title": t["title"], "rate": t.get("rate"), "priceSet": bag(t.get("price_set"), t.get("price"))}
                    for t in lines or ()]

        def allocations(lines):
            return [{"allocatedAmountSet": bag(a.get("amount_set"), a.get("amount"))} for a in lines or ()]

        def address(value):
            return None if not value else {"name": value.get("name"), "phone": value.get("phone"),
                                           "countryCodeV2": value.get("country_code")}

        def line_node(li):
            return {
                "id": gid("LineItem", li["id"]), "sku": li["sku"], "title": li["title"],
                "name": li.get("name") or li["title"], "quantity": li["quantity"],
                "currentQuantity": li.get("current_quantity", li["quantity"]),
                "isGiftCard": bool(li.get("gift_card")), "requiresShipping": bool(li.get("requires_shipping", True)),
                "variant": (lambda info: self._variant_node(li["variant_id"])) if li["variant_id"] in self.variants else None,
                "product": (lambda info: self._product_node(li["product_id"])) if li.get("product_id") in self.products else None,
                "originalUnitPriceSet": bag(li.get("price_set"), li["price"]),
                "discountAllocations": allocations(li.get("discount_allocations")),
                "taxLines": taxes(li.get("tax_lines")),
                "duties": [{"id": gid("Duty", d["id"]), "harmonizedSystemCode": d.get("harmonized_system_code"),
                            "countryCodeOfOrigin": d.get("country_code_of_origin"),
                            "price": bag(d.get("price_set")), "taxLines": taxes(d.get("tax_lines"))}
                           for d in li.get("duties") or ()],
            }

        def line_items(info, first=None, after=None):
            return gql.connection(sorted(order["line_items"], key=lambda li: li["id"]), first=first, after=after,
                                  key=lambda li: li["id"], node=line_node)

        def shipping_lines(info, first=None, after=None):
            return gql.connection(sorted(order.get("shipping_lines") or [], key=lambda sl: sl["id"]), first=first,
                                  after=after, key=lambda sl: sl["id"], node=lambda sl: {
                "id": gid("ShippingLine", sl["id"]), "title": sl["title"], "code": sl.get("code"),
                "originalPriceSet": bag(sl.get("price_set"), sl["price"]),
                "discountAllocations": allocations(sl.get("discount_allocations")), "taxLines": taxes(sl.get("tax_lines")),
            })

        lines_by_id = {li["id"]: li for li in order["line_items"]}

        def refund_node(refund):
            items = [{"quantity": item["quantity"], "lineItem": line_node(lines_by_id[item["line_item_id"]])}
                     for item in refund.get("refund_line_items") or () if item.get("line_item_id") in lines_by_id]
            transactions = [{"kind": str(t.get("kind", "refund")).upper(), "status": str(t.get("status", "success")).upper(),
                             "amountSet": money(t.get("amount"))} for t in refund.get("transactions") or ()]
            return {"id": gid("Refund", refund.get("id", 0)),
                    "refundLineItems": lambda info, first=None, after=None: gql.connection(
                        items, first=first, after=after, key=lambda i: items.index(i), node=lambda i: i),
                    "transactions": lambda info, first=None, after=None: gql.connection(
                        transactions, first=first, after=after, key=lambda t: transactions.index(t), node=lambda t: t)}

        customer = order.get("customer")
        location = order.get("location_id")
        return {
            "id": order["admin_graphql_api_id"], "legacyResourceId": str(order["id"]), "name": order["name"],
            "email": order["email"] or None, "phone": order.get("phone"), "createdAt": order["created_at"],
            "updatedAt": order["updated_at"], "processedAt": order["processed_at"], "cancelledAt": order["cancelled_at"],
            "cancelReason": (order.get("cancel_reason") or "").upper() or None,
            "displayFinancialStatus": (order["financial_status"] or "pending").upper(),
            "test": bool(order.get("test")), "taxesIncluded": bool(order.get("taxes_included")),
            "sourceName": order.get("source_name"), "currencyCode": currency,
            "presentmentCurrencyCode": order.get("presentment_currency") or currency,
            "totalPriceSet": bag(order.get("total_price_set"), order["total_price"]),
            "currentTotalPriceSet": bag(order.get("current_total_price_set"), order["current_total_price"]),
            "totalTaxSet": bag(order.get("total_tax_set"), order.get("total_tax")),
            "totalDiscountsSet": bag(order.get("total_discounts_set"), order.get("total_discounts")),
            "totalTipReceivedSet": money(order.get("total_tip_received") or "0.00"),
            "originalTotalDutiesSet": bag(order.get("original_total_duties_set")),
            "currentTotalDutiesSet": bag(order.get("current_total_duties_set")),
            "taxLines": taxes(order.get("tax_lines")),
            "retailLocation": (lambda info: self._location_node(location)) if location in self.locations else None,
            "customer": None if not customer else {
                "id": gid("Customer", customer["id"]), "firstName": customer.get("first_name"),
                "lastName": customer.get("last_name"),
                "defaultEmailAddress": {"emailAddress": customer["email"]} if customer.get("email") else None,
                "defaultPhoneNumber": {"phoneNumber": customer["phone"]} if customer.get("phone") else None,
                "defaultAddress": address(customer.get("default_address")),
            },
            "shippingAddress": address(order.get("shipping_address")),
            "billingAddress": address(order.get("billing_address")),
            "lineItems": line_items, "shippingLines": shipping_lines,
            "refunds": lambda info, first=None: [refund_node(r) for r in (order.get("refunds") or [])][:first],
            **self._fulfilment_order_fields(order),
        }

    def _orders_matching(self, query: str | None) -> list[dict]:
        groups = gql.search_terms(query)
        if not groups:
            return list(self.orders.values())

        def term_matches(order, term) -> bool:
            name, op, value = term
            if name in ("updated_at", "created_at", "processed_at"):
                wanted = _parse_time(value)
                return wanted is not None and gql.compare(_parse_time(order[name]), op, wanted)
            if name == "financial_status":
                return (order["financial_status"] or "") == value.lower()
            if name == "name":
                return order["name"].lstrip("#") == value.lstrip("#")
            if name == "id":
                return gql.compare(order["id"], op, int(value)) if value.isdigit() else False
            if name == "status":
                return value == "any" or (value == "cancelled") == bool(order["cancelled_at"])
            if name == "email":
                return (order["email"] or "").lower() == value.lower()
            return False

        return [o for o in self.orders.values() if any(all(term_matches(o, t) for t in group) for group in groups)]

    def _variants_matching(self, query: str | None) -> list[int]:
        groups = gql.search_terms(query)
        numbers = sorted(self.variants)
        if not groups:
            return numbers

        def term_matches(variant, term) -> bool:
            name, _op, value = term
            if name == "sku":
                return variant["sku"] == value
            if name == "product_id":
                return str(variant["product"]) == str(gid_number(value))
            if name == "title":
                return value.lower() in variant["title"].lower()
            return False

        return [n for n in numbers if any(all(term_matches(self.variants[n], t) for t in group) for group in groups)]

    # --- mutations ---------------------------------------------------------------------------------

    def _count_call(self, name: str) -> None:
        self.mutation_calls[name] = self.mutation_calls.get(name, 0) + 1

    def _check_target(self, errors: list, path: list[str], item_id, location_id) -> tuple[int, int] | None:
        item, location = gid_number(item_id), gid_number(location_id)
        if item not in self.inventory_items:
            errors.append(_user_error("INVALID_INVENTORY_ITEM", [*path, "inventoryItemId"],
                                      "The specified inventory item could not be found."))
            return None
        if location not in self.locations:
            errors.append(_user_error("INVALID_LOCATION", [*path, "locationId"], "The specified location could not be found."))
            return None
        if (item, location) not in self.levels:
            errors.append(_user_error("ITEM_NOT_STOCKED_AT_LOCATION", [*path, "locationId"],
                                      "The specified inventory item is not stocked at the location."))
            return None
        return item, location

    def _check_common(self, data: dict, list_name: str, allowed_names, errors: list, name_code: str) -> None:
        if data["name"] not in allowed_names:
            errors.append(_user_error(name_code, ["input", "name"],
                                      f"The quantity name must be one of: {', '.join(allowed_names)}."))
        if data["reason"] not in REASONS:
            errors.append(_user_error("INVALID_REASON", ["input", "reason"], "The specified reason is invalid."))
        reference = data.get("referenceDocumentUri")
        if reference is not None and "://" not in reference and not reference.startswith("gid:"):
            errors.append(_user_error("INVALID_REFERENCE_DOCUMENT", ["input", "referenceDocumentUri"],
                                      "The specified reference document is invalid."))
        if len(data[list_name]) > MAX_QUANTITIES_PER_CALL:
            errors.append(_user_error(None, ["input", list_name],
                                      f"The input array size of {len(data[list_name])} is greater than the maximum "
                                      f"allowed of {MAX_QUANTITIES_PER_CALL}."))

    def _adjustment_group(self, data: dict, changes: list[dict]) -> dict:
        number = self._next_id("InventoryAdjustmentGroup")
        record = {
            "id": gid("InventoryAdjustmentGroup", number), "createdAt": _iso(_now()), "reason": data["reason"],
            "referenceDocumentUri": data.get("referenceDocumentUri"), "changes": changes,
        }
        self.adjustments.append(record)

        def change_nodes(info, inventoryItemIds=None, locationIds=None, quantityNames=None):
            return [{
                "name": c["name"], "delta": c["delta"], "quantityAfterChange": c["quantityAfterChange"],
                "ledgerDocumentUri": c.get("ledgerDocumentUri"),
                "item": lambda info, c=c: self._item_node(c["item"]),
                "location": lambda info, c=c: self._location_node(c["location"]),
            } for c in changes
                if (not inventoryItemIds or gid("InventoryItem", c["item"]) in inventoryItemIds)
                and (not locationIds or gid("Location", c["location"]) in locationIds)
                and (not quantityNames or c["name"] in quantityNames)]

        return {**record, "changes": change_nodes}

    def inventory_set_quantities(self, data: dict, rules: gql.VersionRules | None = None) -> dict:
        """Absolute set with compare-and-swap: all or nothing, like Shopify. Each quantity names its
        `changeFromQuantity` (null skips the check): the published schemas of the versions served no
        longer offer compareQuantity / ignoreCompareQuantity."""
        self._count_call("inventorySetQuantities")
        errors: list[dict] = []
        self._check_common(data, "quantities", SETTABLE_NAMES, errors, "INVALID_NAME")
        seen: set = set()
        planned = []
        for index, entry in enumerate(data["quantities"][:MAX_QUANTITIES_PER_CALL]):
            path = ["input", "quantities", str(index)]
            target = self._check_target(errors, path, entry["inventoryItemId"], entry["locationId"])
            if target is None:
                continue
            if target in seen:
                errors.append(_user_error("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", path,
                                          "The combination of inventoryItemId and locationId must be unique."))
                continue
            seen.add(target)
            if entry["quantity"] < 0:
                errors.append(_user_error("INVALID_QUANTITY_NEGATIVE", [*path, "quantity"], "The quantity can't be negative."))
                continue
            if entry["quantity"] > MAX_QUANTITY:
                errors.append(_user_error("INVALID_QUANTITY_TOO_HIGH", [*path, "quantity"],
                                          "The total quantity can't be higher than 1,000,000,000."))
                continue
            current = self.level(*target).get(data["name"], 0)
            if "changeFromQuantity" not in entry:
                errors.append(_user_error("COMPARE_QUANTITY_REQUIRED", [*path, "changeFromQuantity"],
                                          "changeFromQuantity must be given for each quantity (null to skip the check)."))
                continue
            if entry["changeFromQuantity"] is not None and entry["changeFromQuantity"] != current:
                errors.append(_user_error("CHANGE_FROM_QUANTITY_STALE", [*path, "changeFromQuantity"],
                                          "The changeFromQuantity argument no longer matches the persisted quantity."))
                continue
            planned.append((target, entry["quantity"] - current))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for (item, location), delta in planned:
            self.levels[(item, location)]["available"] += delta
            after = self.level(item, location)
            for name in ("available", "on_hand"):
                changes.append({"name": name, "delta": delta, "quantityAfterChange": after[name],
                                "item": item, "location": location})
        return {"inventoryAdjustmentGroup": self._adjustment_group(data, changes), "userErrors": []}

    def inventory_adjust_quantities(self, data: dict, rules: gql.VersionRules | None = None) -> dict:
        """Relative change by delta: whatever checkouts reserved in the meantime stays reserved. From
        2026-04 each change must name its `changeFromQuantity` (null skips the check)."""
        self._count_call("inventoryAdjustQuantities")
        errors: list[dict] = []
        self._check_common(data, "changes", ADJUSTABLE_NAMES, errors, "INVALID_QUANTITY_NAME")
        planned = []
        for index, entry in enumerate(data["changes"][:MAX_QUANTITIES_PER_CALL]):
            path = ["input", "changes", str(index)]
            ledger = entry.get("ledgerDocumentUri")
            if data["name"] == "available" and ledger:
                errors.append(_user_error("INVALID_AVAILABLE_DOCUMENT", [*path, "ledgerDocumentUri"],
                                          "A ledger document URI is not allowed when adjusting available."))
                continue
            if data["name"] != "available" and not ledger:
                errors.append(_user_error("INVALID_QUANTITY_DOCUMENT", [*path, "ledgerDocumentUri"],
                                          "A ledger document URI is required except when adjusting available."))
                continue
            if rules is not None and rules.adjust_change_from_required and "changeFromQuantity" not in entry:
                errors.append(_user_error(None, [*path, "changeFromQuantity"],
                                          "changeFromQuantity must be given for each change (null to skip the check)."))
                continue
            target = self._check_target(errors, path, entry["inventoryItemId"], entry["locationId"])
            if target is None:
                continue
            if entry.get("changeFromQuantity") is not None:
                if entry["changeFromQuantity"] != self.level(*target).get(data["name"], 0):
                    errors.append(_user_error("CHANGE_FROM_QUANTITY_STALE", [*path, "changeFromQuantity"],
                                              "The changeFromQuantity argument no longer matches the persisted quantity."))
                    continue
            planned.append((target, entry["delta"], ledger))
        if errors:
            return {"inventoryAdjustmentGroup": None, "userErrors": errors}
        changes = []
        for (item, location), delta, ledger in planned:
            self.levels[(item, location)][data["name"]] += delta
            after = self.level(item, location)
            changes.append({"name": data["name"], "delta": delta, "quantityAfterChange": after[data["name"]],
                            "ledgerDocumentUri": ledger, "item": item, "location": location})
            if data["name"] != "incoming":
                changes.append({"name": "on_hand", "delta": delta, "quantityAfterChange": after["on_hand"],
                                "item": item, "location": location})
        return {"inventoryAdjustmentGroup": self._adjustment_group(data, changes), "userErrors": []}

    # --- orders ------------------------------------------------------------------------------------

    def _money(self, amount: Decimal, currency: str) -> str:
        return str(on_grid(amount, currency))

    def _money_set(self, amount: str, currency: str) -> dict:
        return {"shop_money": {"amount": amount, "currency_code": currency},
                "presentment_money": {"amount": amount, "currency_code": currency}}

    def _tax(self, net: Decimal, rate: Decimal, currency: str, included: bool) -> Decimal:
        raw = net * rate / (1 + rate) if included else net * rate
        return raw.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=ROUND_HALF_EVEN)

    def _stamp(self) -> datetime:
        """updated_at that always moves forward, even within one second."""
        moment = _now()
        if self._last_updated and moment <= self._last_updated:
            moment = self._last_updated + timedelta(seconds=1)
        self._last_updated = moment
        return moment

    def create_order(self, *, deliver: str | None = None, **fields) -> dict:
        """Place an order the way a checkout would, emit orders/create (and orders/paid when created
        paid), and return the REST-format payload the webhooks carry.

        fields: line_items=[{"sku", "quantity", "price"?, "title"?, "tax_rate"?, "discount"?,
        "duty"?: {"amount", "hs_code"?, "origin"?}}], shipping_lines=[{"title", "price", "tax_rate"?,
        "discount"?}] (default one standard line), tip (an amount: Shopify's tip line item), email,
        customer={...}, shipping_address={...}, financial_status ("pending"), currency, tax_rate (0.2),
        taxes_included (False), location_id, discount_code; anything else is copied onto the payload
        as given. The totals are Shopify's: lines - discounts + shipping + tax (unless included)
        + duties + tip, with every total also as a `*_set` money bag.
        """
        with self.lock:
            # A line may name the location it ships from ("location_id"): its own fulfillment order.
            specs = fields.get("line_items") or []
            line_locations = {i: self._location_number(spec["location_id"]) for i, spec in enumerate(specs)
                              if isinstance(spec, dict) and spec.get("location_id") is not None}
            order = self._build_order(fields)
            self.orders[order["id"]] = order
            self._open_fulfillment_orders(order, {order["line_items"][i]["id"]: loc for i, loc in line_locations.items()})
            payload = copy.deepcopy(order)
        if payload["financial_status"] == "paid":
            self.payments_on_paid(payload["id"])
        self._emit("orders/create", payload, deliver)
        if payload["financial_status"] == "paid":
            self._emit("orders/paid", payload, deliver)
        return payload

    def _build_order(self, fields: dict) -> dict:
        fields = dict(fields)
        currency = fields.pop("currency", self.currency)
        included = bool(fields.pop("taxes_included", False))
        default_rate = Decimal(str(fields.pop("tax_rate", "0.2")))
        tip = Decimal(str(fields.pop("tip", "0")))
        location = fields.pop("location_id", None)
        location = self._location_number(location) if location is not None else min(self.locations, default=None)
        discount_code = fields.pop("discount_code", "")
        number = self._next_id("Order")
        order_number = next(self._order_numbers)
        created = self._stamp()
        customer_fields = fields.pop("customer", None) or {}
        # email="" is a guest checkout without an e-mail (e.g. a POS or phone order): no customer.
        guest = fields.get("email", None) == "" and not customer_fields
        email = fields.pop("email", None) or customer_fields.get("email") or (
            "" if guest else f"buyer{order_number}@example.com")
        first_name = customer_fields.get("first_name", "Sam")
        last_name = customer_fields.get("last_name", f"Buyer {order_number}")
        address = {
            "first_name": first_name, "last_name": last_name, "name": f"{first_name} {last_name}",
            "address1": "1 High Street", "address2": None, "city": "Leeds", "zip": "LS1 1AA", "province": None,
            "province_code": None, "country": "United Kingdom", "country_code": "GB", "phone": None, "company": None,
            **(fields.pop("shipping_address", None) or {}),
        }
        customer_number = customer_fields.get("id") or self._next_id("Customer")
        customer = {
            "id": customer_number, "admin_graphql_api_id": gid("Customer", customer_number), "email": email,
            "first_name": first_name, "last_name": last_name, "phone": None, "state": "enabled",
            "currency": currency, "created_at": _iso(created), "updated_at": _iso(created),
            "default_address": {**address, "default": True},
        }
        tax_totals: dict[tuple[str, Decimal], Decimal] = {}
        allocations_total = Decimal(0)

        def tax_lines(net: Decimal, rate: Decimal) -> list[dict]:
            if not rate:
                return []
            amount = self._tax(net, rate, currency, included)
            title = "VAT" if currency == "GBP" else "Tax"
            tax_totals[(title, rate)] = tax_totals.get((title, rate), Decimal(0)) + amount
            price = self._money(amount, currency)
            return [{"title": title, "rate": float(rate), "price": price, "price_set": self._money_set(price, currency),
                     "channel_liable": False}]

        def allocations(discount: Decimal) -> list[dict]:
            nonlocal allocations_total
            if not discount:
                return []
            allocations_total += discount
            amount = self._money(discount, currency)
            return [{"amount": amount, "amount_set": self._money_set(amount, currency), "discount_application_index": 0}]

        line_items = []
        subtotal = duties_total = Decimal(0)

        def duties(spec: dict | None) -> list[dict]:
            nonlocal duties_total
            if not spec:
                return []
            amount = Decimal(str(spec["amount"]))
            duties_total += amount
            number = self._next_id("Duty")
            price = self._money(amount, currency)
            return [{"id": str(number), "harmonized_system_code": spec.get("hs_code"),
                     "country_code_of_origin": spec.get("origin"), "price_set": self._money_set(price, currency),
                     "tax_lines": [], "admin_graphql_api_id": gid("Duty", number)}]

        for index, spec in enumerate(fields.pop("line_items", None) or []):
            spec = dict(spec)
            sku = spec.get("sku") or None
            variant = self.variant_by_sku(sku) if sku else None
            price = Decimal(str(spec.get("price", variant["price"] if variant else "0")))
            quantity = int(spec.get("quantity", 1))
            discount = Decimal(str(spec.get("discount", "0")))
            rate = Decimal(str(spec.get("tax_rate", default_rate)))
            gross = price * quantity
            subtotal += gross
            line_id = self._next_id("LineItem")
            product = self.products[variant["product"]] if variant else None
            title = spec.get("title") or (product["title"] if product else f"Custom item {index + 1}")
            price_text = self._money(price, currency)
            line_items.append({
                "id": line_id, "admin_graphql_api_id": gid("LineItem", line_id),
                "variant_id": variant["number"] if variant else None,
                "product_id": variant["product"] if variant else None,
                "sku": sku, "title": title,
                "variant_title": variant["title"] if variant else None,
                "name": f"{title} - {variant['title']}" if variant else title,
                "vendor": "Ledgerline Demo" if variant else None,
                "quantity": quantity, "current_quantity": quantity, "fulfillable_quantity": quantity,
                "price": price_text, "price_set": self._money_set(price_text, currency),
                "total_discount": "0.00", "total_discount_set": self._money_set(self._money(Decimal(0), currency), currency),
                "discount_allocations": allocations(discount),
                "tax_lines": tax_lines(gross - discount, rate),
                "duties": duties(spec.get("duty")),
                "taxable": bool(rate), "requires_shipping": True, "gift_card": False, "grams": 200,
                "fulfillment_service": "manual", "fulfillment_status": None, "product_exists": bool(variant),
                "properties": [],
            })
            if variant and location is not None and (variant["inventory_item"], location) in self.levels:
                self.levels[(variant["inventory_item"], location)]["available"] -= quantity
                self.levels[(variant["inventory_item"], location)]["committed"] += quantity

        if tip:
            # Shopify records a tip as a line item of its own: no product, not shipped, not taxed, and
            # outside the subtotal; total_tip_received repeats its amount.
            line_id = self._next_id("LineItem")
            price_text = self._money(tip, currency)
            line_items.append({
                "id": line_id, "admin_graphql_api_id": gid("LineItem", line_id), "variant_id": None,
                "product_id": None, "sku": None, "title": "Tip", "variant_title": None, "name": "Tip",
                "vendor": None, "quantity": 1, "current_quantity": 1, "fulfillable_quantity": 0,
                "price": price_text, "price_set": self._money_set(price_text, currency),
                "total_discount": self._money(Decimal(0), currency),
                "total_discount_set": self._money_set(self._money(Decimal(0), currency), currency),
                "discount_allocations": [], "tax_lines": [], "duties": [], "taxable": False,
                "requires_shipping": False, "gift_card": False, "grams": 0, "fulfillment_service": "manual",
                "fulfillment_status": None, "product_exists": False, "properties": [],
            })

        shipping_specs = fields.pop("shipping_lines", None)
        if shipping_specs is None:
            shipping_specs = [{"title": "Standard shipping", "price": "4.95", "code": "STANDARD"}]
        shipping_lines = []
        shipping_total = Decimal(0)
        for spec in shipping_specs:
            price = Decimal(str(spec.get("price", "0")))
            discount = Decimal(str(spec.get("discount", "0")))
            rate = Decimal(str(spec.get("tax_rate", default_rate)))
            shipping_total += price
            line_id = self._next_id("ShippingLine")
            price_text = self._money(price, currency)
            discounted = self._money(price - discount, currency)
            shipping_lines.append({
                "id": line_id, "title": spec.get("title", "Shipping"), "code": spec.get("code", "SHIPPING"),
                "source": "shopify", "price": price_text, "price_set": self._money_set(price_text, currency),
                "discounted_price": discounted, "discounted_price_set": self._money_set(discounted, currency),
                "discount_allocations": allocations(discount), "tax_lines": tax_lines(price - discount, rate),
                "carrier_identifier": None, "phone": None,
            })

        total_tax = sum(tax_totals.values(), Decimal(0))
        discounts = allocations_total
        subtotal_after = subtotal - sum(
            (Decimal(a["amount"]) for li in line_items for a in li["discount_allocations"]), Decimal(0))
        total = subtotal - discounts + shipping_total + (Decimal(0) if included else total_tax) + duties_total + tip
        text = lambda amount: self._money(amount, currency)  # noqa: E731
        money = lambda amount: self._money_set(text(amount), currency)  # noqa: E731
        order = {
            "id": number,
            "admin_graphql_api_id": gid("Order", number),
            "name": f"#{order_number}",
            "order_number": order_number,
            "number": order_number - 1000,
            "token": uuid.uuid4().hex,
            "email": email,
            "contact_email": email,
            "financial_status": fields.pop("financial_status", "pending"),
            "fulfillment_status": None,
            "confirmed": True,
            "test": False,
            "currency": currency,
            "presentment_currency": currency,
            "taxes_included": included,
            "total_line_items_price": text(subtotal),
            "subtotal_price": text(subtotal_after),
            "total_discounts": text(discounts),
            "total_tax": text(total_tax),
            "total_price": text(total),
            "current_subtotal_price": text(subtotal_after),
            "current_total_discounts": text(discounts),
            "current_total_tax": text(total_tax),
            "current_total_price": text(total),
            "total_tip_received": text(tip),
            "total_line_items_price_set": money(subtotal),
            "subtotal_price_set": money(subtotal_after),
            "total_price_set": money(total),
            "total_tax_set": money(total_tax),
            "total_discounts_set": money(discounts),
            "total_shipping_price_set": money(shipping_total),
            "current_subtotal_price_set": money(subtotal_after),
            "current_total_discounts_set": money(discounts),
            "current_total_tax_set": money(total_tax),
            "current_total_price_set": money(total),
            "original_total_duties_set": money(duties_total) if duties_total else None,
            "current_total_duties_set": money(duties_total) if duties_total else None,
            "phone": None,
            "created_at": _iso(created),
            "updated_at": _iso(created),
            "processed_at": _iso(created),
            "cancelled_at": None,
            "cancel_reason": None,
            "closed_at": None,
            "source_name": "web",
            "tags": "",
            "note": None,
            "location_id": location,
            "customer": None if guest else customer,
            "billing_address": dict(address),
            "shipping_address": address,
            "line_items": line_items,
            "shipping_lines": shipping_lines,
            "tax_lines": [
                {"title": title, "rate": float(rate), "price": text(amount),
                 "price_set": self._money_set(text(amount), currency), "channel_liable": False}
                for (title, rate), amount in tax_totals.items()
            ],
            "discount_applications": [{
                "type": "discount_code", "value": text(discounts), "value_type": "fixed_amount",
                "allocation_method": "across", "target_selection": "entitled", "target_type": "line_item",
                "code": discount_code or "SANDBOX",
            }] if discounts else [],
            "discount_codes": [{"code": discount_code or "SANDBOX", "amount": text(discounts), "type": "fixed_amount"}]
            if discounts else [],
            "refunds": [],
            "fulfillments": [],
        }
        order.update(fields)  # anything else given is copied as is (note, tags, a deliberate bad value...)
        return order

    def _order(self, order_id) -> dict:
        number = gid_number(order_id)
        if number not in self.orders:
            raise KeyError(f"no order {order_id!r} in the sandbox shop")
        return self.orders[number]

    def mark_paid(self, order_id, *, deliver: str | None = None) -> dict:
        """Payment captured: financial_status paid, orders/paid then orders/updated."""
        with self.lock:
            order = self._order(order_id)
            order["financial_status"] = "paid"
            order["updated_at"] = _iso(self._stamp())
            payload = copy.deepcopy(order)
        self.payments_on_paid(payload["id"])
        self._emit("orders/paid", payload, deliver)
        self._emit("orders/updated", payload, deliver)
        return payload

    def update_order(self, order_id, *, deliver: str | None = None, **changes) -> dict:
        with self.lock:
            order = self._order(order_id)
            order.update(changes)
            order["updated_at"] = _iso(self._stamp())
            payload = copy.deepcopy(order)
        self._emit("orders/updated", payload, deliver)
        return payload

    def refund_order(self, order_id, *, lines: list[tuple[int, int]] = (), restock_type: str = "no_restock",
                     shipping: str | None = None, note: str = "", deliver: str | None = None) -> dict:
        """Refund part of an order as a merchant does in the admin: `lines` are (line index, quantity)
        refunded at what the customer paid for them (discount and tax shares pro rata), `shipping`
        refunds that much of the first shipping line. Records the refund on the order, moves its
        financial status, and emits refunds/create then orders/updated. Returns the refund."""
        with self.lock:
            order = self._order(order_id)
            currency = order["currency"]
            exponent = Decimal(1).scaleb(-currency_exponent(currency))
            money = lambda amount: self._money_set(self._money(amount, currency), currency)  # noqa: E731
            refund_id = self._next_id("Refund")
            included = bool(order.get("taxes_included"))
            total, refund_lines = Decimal(0), []
            for n, (index, quantity) in enumerate(lines):
                item = order["line_items"][index]
                share = Decimal(quantity) / Decimal(item["quantity"])
                discount = sum((Decimal(d["amount"]) for d in item.get("discount_allocations") or ()), Decimal(0))
                subtotal = ((Decimal(item["price"]) * item["quantity"] - discount) * share).quantize(exponent, ROUND_HALF_EVEN)
                tax = (sum((Decimal(t["price"]) for t in item.get("tax_lines") or ()), Decimal(0)) * share).quantize(
                    exponent, ROUND_HALF_EVEN)
                total += subtotal + (Decimal(0) if included else tax)
                refund_lines.append({
                    "id": refund_id * 10 + n, "line_item_id": item["id"], "quantity": quantity,
                    "location_id": order.get("location_id"), "restock_type": restock_type,
                    "subtotal": float(subtotal), "total_tax": float(tax),  # Shopify's REST floats; the *_set bags are exact
                    "subtotal_set": money(subtotal), "total_tax_set": money(tax), "line_item": copy.deepcopy(item),
                })
            shipping_lines = []
            if shipping is not None and order.get("shipping_lines"):
                ship = order["shipping_lines"][0]
                amount = Decimal(shipping)
                total += amount
                shipping_lines.append({"id": refund_id * 10 + 8, "shipping_line_id": ship["id"], "shipping_line": ship,
                                       "subtotal_amount_set": money(amount), "tax_amount_set": money(Decimal(0))})
            moment = _iso(self._stamp())
            refund = {
                "id": refund_id, "admin_graphql_api_id": gid("Refund", refund_id), "order_id": order["id"],
                "created_at": moment, "processed_at": moment, "note": note, "user_id": None,
                "restock": restock_type == "return", "refund_line_items": refund_lines,
                "refund_shipping_lines": shipping_lines, "order_adjustments": [], "duties": [],
                "transactions": [{
                    "id": refund_id * 10 + 9, "order_id": order["id"], "kind": "refund", "gateway": "shopify_payments",
                    "status": "success", "amount": self._money(total, currency), "currency": currency,
                    "created_at": moment, "processed_at": moment, "test": False,
                }],
            }
            order.setdefault("refunds", []).append(refund)
            refunded = sum((Decimal(t["amount"]) for r in order["refunds"] for t in r["transactions"]), Decimal(0))
            order["financial_status"] = "refunded" if refunded >= Decimal(order["total_price"]) else "partially_refunded"
            order["updated_at"] = moment
            refund_payload, order_payload = copy.deepcopy(refund), copy.deepcopy(order)
        self._emit("refunds/create", refund_payload, deliver)
        self._emit("orders/updated", order_payload, deliver)
        return refund_payload

    def cancel_order(self, order_id, *, reason: str = "customer", deliver: str | None = None) -> dict:
        """Cancelled: committed stock goes back to available, orders/cancelled then orders/updated."""
        with self.lock:
            order = self._order(order_id)
            moment = self._stamp()
            order.update(cancelled_at=_iso(moment), cancel_reason=reason, updated_at=_iso(moment))
            for line in order["line_items"]:
                variant = self.variants.get(line["variant_id"])
                key = (variant["inventory_item"], order["location_id"]) if variant else None
                if key in self.levels:
                    self.levels[key]["committed"] -= line["quantity"]
                    self.levels[key]["available"] += line["quantity"]
            payload = copy.deepcopy(order)
        self._emit("orders/cancelled", payload, deliver)
        self._emit("orders/updated", payload, deliver)
        return payload

    # --- webhooks ----------------------------------------------------------------------------------

    def send_webhook(self, topic: str, payload: dict, *, deliver: str | None = "sync", target: str | None = None) -> int | None:
        """Sign and send one webhook; returns the HTTP status of the first attempt (None: no answer).
        A failed delivery is retried in the background with the same body and webhook id."""
        hook = self._record(topic, payload, target)
        return self._deliver(hook, deliver)

    def _emit(self, topic: str, payload: dict, deliver: str | None, subscriptions: list[dict] | None = None) -> Webhook:
        """To the configured webhook target (an app made in the shop's admin, signed with its webhook
        secret) and to every subscription of the app for this topic (signed with the app's client
        secret, in the subscription's API version), each a delivery of its own."""
        hook = self._record(topic, payload, None)
        self._deliver(hook, deliver)
        if subscriptions is None:
            with self.lock:
                subscriptions = [dict(s) for s in self.subscriptions.values()]
        for subscription in subscriptions:
            if webhook_topic(subscription["topic"]) == topic and subscription["uri"].startswith(("http://", "https://")):
                self._deliver(self._record(topic, payload, subscription["uri"], secret=self.app_client_secret,
                                           api_version=subscription["api_version"]), deliver)
        return hook

    def _record(self, topic: str, payload: dict, target: str | None, *, secret: str | None = None,
                api_version: str | None = None) -> Webhook:
        body = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": webhook_hmac(secret or self.webhook_secret, body),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": api_version or self.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
        if "id" in payload:
            headers["X-Shopify-Order-Id"] = str(payload["id"])
        # Like Shopify, a retry goes to the address configured when the webhook was triggered.
        hook = Webhook(webhook_id, topic, body, headers, target if target is not None else self.webhook_target)
        with self.lock:
            self.webhooks[webhook_id] = hook
        return hook

    @staticmethod
    def _ok(status: int | None) -> bool:
        return status is not None and 200 <= status < 300

    def _attempt(self, hook: Webhook) -> int | None:
        with self.lock:
            hook.attempts += 1
            attempt = hook.attempts
        started = time.perf_counter()
        status, error = None, ""
        try:
            answer = requests.post(hook.target, data=hook.body, headers=hook.headers, timeout=self.webhook_timeout)
            status = answer.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            hook.last_status = status
            hook.delivered = hook.delivered or self._ok(status)
            self.deliveries.append({
                "webhook_id": hook.id, "topic": hook.topic, "status": status, "attempt": attempt, "error": error,
                "target": hook.target, "at": _iso(datetime.now(timezone.utc)),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            })
        return status

    def _deliver(self, hook: Webhook, deliver: str | None) -> int | None:
        mode = deliver or self.delivery_mode
        if mode == "none" or not hook.target:
            return None
        generation = self._generation
        if mode == "async":
            threading.Thread(target=self._deliver_with_retries, args=(hook, generation), daemon=True).start()
            return None
        status = self._attempt(hook)
        if not self._ok(status):
            self._start_retries(hook, generation)
        return status

    def _deliver_with_retries(self, hook: Webhook, generation: int) -> None:
        if not self._ok(self._attempt(hook)):
            self._retry_loop(hook, generation)

    def _start_retries(self, hook: Webhook, generation: int) -> None:
        threading.Thread(target=self._retry_loop, args=(hook, generation), daemon=True, name=f"webhook-retry-{hook.id}").start()

    def _retry_loop(self, hook: Webhook, generation: int) -> None:
        hook.retrying = True
        try:
            for delay in self.retry_delays:
                time.sleep(delay)
                if self._generation != generation or hook.delivered:
                    return
                if self._ok(self._attempt(hook)):
                    return
        finally:
            hook.retrying = False

    def redeliver(self, webhook_id: str) -> int | None:
        """Send one webhook again now, unchanged (same body, same X-Shopify-Webhook-Id)."""
        hook = self.webhooks.get(webhook_id)
        if hook is None:
            raise KeyError(f"no webhook {webhook_id!r}")
        if not hook.target:
            return None
        return self._attempt(hook)

    # --- REST (legacy) order reads -------------------------------------------------------------------

    def _rest_gate(self, request: Request, scope: str | None) -> tuple[Response | None, dict]:
        """Auth, Shopify's REST leaky bucket (per access token: `rest_bucket_size` requests, leaking
        `rest_leak_rate` a second; full -> 429 with Retry-After) and the scope; (refusal or None, headers)."""
        headers = {"X-Shopify-API-Version": self._version(request)} if "version" in request.params else {}
        scopes = self._scopes(request)
        if scopes is None:
            return Response.json(INVALID_TOKEN_BODY, 401, headers), headers
        token = request.headers["x-shopify-access-token"]
        with self.lock:
            self.rest_requests += 1
            bucket = self.rest_buckets.get(token)
            if bucket is None:
                bucket = self.rest_buckets[token] = Bucket(self.rest_bucket_size, self.rest_leak_rate,
                                                           available=self.rest_bucket_size)
            bucket.refill()
            if bucket.available < 1:
                self.rest_throttled += 1
                wait = (1 - bucket.available) / bucket.restore_rate
                headers.update({"X-Shopify-Shop-Api-Call-Limit": f"{int(bucket.size)}/{int(bucket.size)}",
                                "Retry-After": f"{math.ceil(wait * 10) / 10:.1f}"})
                return Response.json(REST_THROTTLED_BODY, 429, headers), headers
            bucket.available -= 1
            used = math.ceil(bucket.size - bucket.available - 1e-9)
            headers["X-Shopify-Shop-Api-Call-Limit"] = f"{used}/{int(bucket.size)}"
        if scope is not None and scope not in scopes:
            return Response.json({"errors": f"[API] This action requires merchant approval for {scope} scope."},
                                 403, headers), headers
        return None, headers

    def handle_rest_order(self, request: Request) -> Response:
        refused, headers = self._rest_gate(request, "read_orders")
        if refused:
            return refused
        scopes = self._scopes(request)
        with self.lock:
            order = self.orders.get(int(request.params["order_id"]))
            if order is None or not self._order_visible(order, scopes):
                return Response.json({"errors": "Not Found"}, 404, headers)
            return Response.json({"order": copy.deepcopy(order)}, headers=headers)

    def handle_rest_orders(self, request: Request) -> Response:
        refused, headers = self._rest_gate(request, "read_orders")
        if refused:
            return refused
        scopes = self._scopes(request)
        since = _parse_time(request.arg("updated_at_min"))
        limit = min(int(request.arg("limit", "50")), 250)
        since_id = int(request.arg("since_id", "0"))
        with self.lock:
            orders = [copy.deepcopy(o) for o in sorted(self.orders.values(), key=lambda o: o["id"])
                      if o["id"] > since_id and (since is None or _parse_time(o["updated_at"]) >= since)
                      and self._order_visible(o, scopes)]
        return Response.json({"orders": orders[:limit]}, headers=headers)

    def handle_access_scopes(self, request: Request) -> Response:
        """GET /admin/oauth/access_scopes.json: what the token was granted (unversioned, like Shopify's)."""
        refused, headers = self._rest_gate(request, None)
        if refused:
            return refused
        supplied = request.headers["x-shopify-access-token"]
        with self.lock:
            scopes = next(v for k, v in self.tokens.items() if hmac.compare_digest(k, supplied))
        return Response.json({"access_scopes": [{"handle": h} for h in sorted(scopes)]}, headers=headers)

    # --- OAuth: the app's install (authorization-code grant) and the client-credentials grant --------

    @property
    def shop_handle(self) -> str:
        return self.shop_domain.split(".", 1)[0]

    def handle_authorize(self, request: Request) -> Response:
        """GET /admin/oauth/authorize: the merchant approves at once (a sandbox has no one to ask) and is
        sent back to redirect_uri with code, hmac, host, shop, state and timestamp, as Shopify does."""
        client_id = request.arg("client_id", "")
        redirect_uri = request.arg("redirect_uri", "") or ""
        if not hmac.compare_digest(client_id, self.app_client_id):
            return _html(400, "Oauth error invalid_request: The client_id parameter is missing or invalid")
        target = urlsplit(redirect_uri)
        if target.scheme not in ("http", "https") or not target.netloc:
            return _html(400, "Oauth error invalid_request: The redirect_uri is missing or not an absolute URL")
        scopes = [s.strip() for s in (request.arg("scope", "") or "").split(",") if s.strip()]
        online = "per-user" in request.query.get("grant_options[]", [])
        code = uuid.uuid4().hex
        with self.lock:
            self.auth_codes[code] = {"scopes": frozenset(scopes), "online": online, "created": time.time(),
                                     "used": False}
        params = {"code": code, "host": base64.urlsafe_b64encode(
            f"admin.shopify.com/store/{self.shop_handle}".encode()).decode().rstrip("="),
                  "shop": self.shop_domain, "state": request.arg("state", "") or "",
                  "timestamp": str(int(time.time()))}
        params["hmac"] = oauth_hmac(self.app_client_secret, params)
        separator = "&" if target.query else "?"
        location = f"{redirect_uri}{separator}{urlencode(params)}"
        body = f'<!doctype html><title>Redirecting</title><a href="{location}">Continue to the app</a>'
        return Response(302, body.encode(), {"Location": location, "Content-Type": "text/html; charset=utf-8"})

    def _token_form(self, request: Request) -> dict:
        form = {k: v[0] for k, v in request.query.items() if v}
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            body = request.json() or {}
            if isinstance(body, dict):
                form.update({k: str(v) for k, v in body.items()})
        elif request.body:
            form.update(dict(parse_qsl(request.body.decode("utf-8", "replace"))))
        return form

    def _issue(self, scopes, *, ttl: float | None, token: str | None = None) -> str:
        token = token or f"shpat_{uuid.uuid4().hex}"
        self.tokens[token] = frozenset(scopes)
        self.app_tokens.add(token)
        if ttl is not None:
            self.token_expiry[token] = time.time() + ttl
        else:
            self.token_expiry.pop(token, None)
        return token

    def handle_access_token(self, request: Request) -> Response:
        """POST /admin/oauth/access_token: an authorization code (single use) or, with
        grant_type=client_credentials, the app's own credentials for an expiring token."""
        try:
            form = self._token_form(request)
        except (ValueError, UnicodeDecodeError):
            return Response.json({"error": "invalid_request", "error_description": "The body is not valid"}, 400)
        grant = form.get("grant_type") or "authorization_code"
        with self.lock:
            record = {"grant": grant, "at": time.time()}
            self.token_requests.append(record)
            if not (hmac.compare_digest(form.get("client_id", ""), self.app_client_id)
                    and hmac.compare_digest(form.get("client_secret", ""), self.app_client_secret)):
                record["outcome"] = "invalid_client"
                return Response.json(INVALID_CLIENT, 401)
            if grant == "client_credentials":
                if not self.client_credentials_allowed:
                    record["outcome"] = "unauthorized_client"
                    return Response.json({"error": "unauthorized_client", "error_description":
                                          "The client credentials grant is only available to apps of the "
                                          "store's own organization"}, 400)
                ttl = self.client_credentials_ttl
                token = self._issue(self.app_scopes, ttl=ttl)
                record["outcome"] = "issued"
                return Response.json({"access_token": token, "scope": ",".join(sorted(self.app_scopes)),
                                      "expires_in": int(ttl)})
            if grant != "authorization_code":
                record["outcome"] = "unsupported_grant_type"
                return Response.json({"error": "unsupported_grant_type",
                                      "error_description": f"grant_type {grant!r} is not supported"}, 400)
            code = self.auth_codes.get(form.get("code", ""))
            if code is None or code["used"] or time.time() - code["created"] > AUTH_CODE_TTL:
                record["outcome"] = "invalid_request"
                return Response.json(CODE_NOT_FOUND, 400)
            code["used"] = True
            record["outcome"] = "issued"
            scopes = code["scopes"]
            if code["online"]:
                token = self._issue(scopes, ttl=ONLINE_TOKEN_TTL)
                return Response.json({
                    "access_token": token, "scope": ",".join(sorted(scopes)), "expires_in": ONLINE_TOKEN_TTL,
                    "associated_user_scope": ",".join(sorted(scopes)),
                    "associated_user": {"id": 902541635, "first_name": "Sandbox", "last_name": "Admin",
                                        "email": "admin@example.com", "account_owner": True, "locale": "en",
                                        "collaborator": False, "email_verified": True}})
            # Authorizing again with offline access gives the same token (with the scopes now asked for).
            self.offline_token = self._issue(scopes, ttl=None, token=self.offline_token)
            return Response.json({"access_token": self.offline_token, "scope": ",".join(sorted(scopes))})

    def uninstall_app(self, *, deliver: str | None = None) -> None:
        """The merchant removes the app: its tokens stop working, app/uninstalled goes to its
        subscription for it, then its subscriptions are gone."""
        with self.lock:
            for token in self.app_tokens:
                self.tokens.pop(token, None)
                self.token_expiry.pop(token, None)
            self.app_tokens = set()
            self.offline_token = None
            subscriptions = [dict(s) for s in self.subscriptions.values()]
            self.subscriptions = {}
        payload = {"id": 1, "name": self.shop_name, "domain": self.shop_domain, "myshopify_domain": self.shop_domain,
                   "currency": self.currency}
        self._emit("app/uninstalled", payload, deliver, subscriptions=subscriptions)

    def expire_tokens(self) -> int:
        """Every expiring token of the app lapses now (tests: no waiting a day)."""
        with self.lock:
            now = time.time()
            for token in self.token_expiry:
                self.token_expiry[token] = now
            return len(self.token_expiry)

    def admin_uninstall(self, request: Request) -> Response:
        self.uninstall_app()
        return Response.json({"status": "uninstalled"})

    def admin_expire_tokens(self, request: Request) -> Response:
        return Response.json({"expired": self.expire_tokens()})

    # --- webhook subscriptions (GraphQL) -----------------------------------------------------------

    def _subscription_node(self, subscription: dict) -> dict:
        return {
            "id": gid("WebhookSubscription", subscription["number"]), "legacyResourceId": str(subscription["number"]),
            "topic": subscription["topic"], "uri": subscription["uri"], "callbackUrl": subscription["uri"],
            "format": subscription["format"], "createdAt": subscription["created_at"],
            "updatedAt": subscription["updated_at"], "filter": subscription.get("filter"),
            "includeFields": list(subscription.get("include_fields") or []), "name": subscription.get("name"),
            "apiVersion": {"handle": subscription["api_version"], "displayName": subscription["api_version"],
                           "supported": subscription["api_version"] in self.api_versions},
        }

    def _subscription_problems(self, topic: str, data: dict, scopes, *, ignore: int | None = None) -> list[dict]:
        errors = []
        uri = data.get("uri")
        if not valid_endpoint(uri):
            errors.append(_user_error(None, ["webhookSubscription", "uri"], "Address is invalid"))
        elif any(s["topic"] == topic and s["uri"] == uri and s["number"] != ignore for s in self.subscriptions.values()):
            errors.append(_user_error(None, ["webhookSubscription", "uri"], "Address for this topic has already been taken"))
        for prefix, scope in TOPIC_SCOPES.items():
            if topic.startswith(prefix) and scope not in scopes:
                errors.append(_user_error(None, ["topic"], f"You do not have the `{scope}` access scope needed to "
                                                           f"subscribe to {webhook_topic(topic)}"))
        return errors

    def webhook_subscription_create(self, info, topic: str, data: dict) -> dict:
        self._count_call("webhookSubscriptionCreate")
        errors = self._subscription_problems(topic, data, info.context["scopes"])
        if errors:
            return {"webhookSubscription": None, "userErrors": errors}
        number = self._next_id("WebhookSubscription")
        moment = _iso(_now())
        self.subscriptions[number] = {
            "number": number, "topic": topic, "uri": data["uri"], "format": data.get("format") or "JSON",
            "filter": data.get("filter"), "include_fields": data.get("includeFields") or [], "name": data.get("name"),
            "api_version": info.context["version"], "created_at": moment, "updated_at": moment}
        return {"webhookSubscription": self._subscription_node(self.subscriptions[number]), "userErrors": []}

    def webhook_subscription_update(self, info, subscription_id: str, data: dict) -> dict:
        self._count_call("webhookSubscriptionUpdate")
        subscription = self.subscriptions.get(gid_number(subscription_id))
        if subscription is None:
            return {"webhookSubscription": None,
                    "userErrors": [_user_error(None, ["id"], "Webhook subscription does not exist")]}
        merged = {"uri": data.get("uri", subscription["uri"])}
        errors = self._subscription_problems(subscription["topic"], merged, info.context["scopes"],
                                             ignore=subscription["number"])
        if errors:
            return {"webhookSubscription": None, "userErrors": errors}
        subscription.update(uri=merged["uri"], updated_at=_iso(_now()))
        if data.get("format"):
            subscription["format"] = data["format"]
        for key, field_ in (("filter", "filter"), ("includeFields", "include_fields"), ("name", "name")):
            if key in data:
                subscription[field_] = data[key]
        return {"webhookSubscription": self._subscription_node(subscription), "userErrors": []}

    def webhook_subscription_delete(self, info, subscription_id: str) -> dict:
        self._count_call("webhookSubscriptionDelete")
        number = gid_number(subscription_id)
        if self.subscriptions.pop(number, None) is None:
            return {"deletedWebhookSubscriptionId": None,
                    "userErrors": [_user_error(None, ["id"], "Webhook subscription does not exist")]}
        return {"deletedWebhookSubscriptionId": gid("WebhookSubscription", number), "userErrors": []}

    # --- bulk query operations ----------------------------------------------------------------------

    BULK_MAX_CONNECTIONS = 5
    BULK_MAX_DEPTH = 2

    def _bulk_problems(self, query: str, version: str) -> list[str]:
        """Why Shopify would refuse this bulk query: invalid on the version's published schema, not
        implemented here, no connection, more than five, nested deeper than two, or a connection
        inside a list field."""
        problems = [p["message"] for p in gql.published_problems(version, query, None, {})]
        if problems:
            return problems
        problems = [f"The Shopify sandbox does not implement this: {p['message']}" for p in gql.implemented_problems(query)]
        if problems:
            return problems
        from graphql import get_named_type, is_list_type, is_non_null_type
        from graphql.language import FieldNode as _Field

        counted = {"connections": 0}

        def walk(selection_set, parent, in_list: bool, depth: int):
            for selection in selection_set.selections if selection_set else ():
                if not isinstance(selection, _Field) or selection.name.value.startswith("__"):
                    continue
                field = parent.fields[selection.name.value]
                kind = field.type.of_type if is_non_null_type(field.type) else field.type
                named = get_named_type(field.type)
                connection = named.name.endswith("Connection")
                if connection:
                    counted["connections"] += 1
                    if in_list:
                        problems.append("Queries that contain a connection field within a list field are not "
                                        "currently supported.")
                    if depth + 1 > self.BULK_MAX_DEPTH:
                        problems.append(f"Bulk queries cannot contain connections with a nesting depth greater "
                                        f"than {self.BULK_MAX_DEPTH}.")
                # A connection's own edges / nodes lists are the connection, not a list field.
                transparent = parent.name.endswith(("Connection", "Edge"))
                if hasattr(named, "fields"):
                    walk(selection.selection_set, named,
                         in_list or (is_list_type(kind) and not connection and not transparent),
                         depth + int(connection))

        document = gql.parse_document(query)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        walk(operation.selection_set, gql.SCHEMA.query_type, False, 0)
        if not counted["connections"]:
            problems.append("Bulk queries must contain at least one connection.")
        if counted["connections"] > self.BULK_MAX_CONNECTIONS:
            problems.append(f"Bulk queries cannot contain more than {self.BULK_MAX_CONNECTIONS} connections.")
        return problems

    def bulk_run_query(self, info, query: str) -> dict:
        running = [op for op in self.bulk_operations.values() if op["status"] in ("CREATED", "RUNNING")
                   and op["token"] == info.context["token"]]
        if running:
            return {"bulkOperation": None, "userErrors": [_user_error(
                "OPERATION_IN_PROGRESS", None, f"A bulk query operation for this app and shop is already in "
                f"progress: {gid('BulkOperation', running[0]['number'])}.")]}
        problems = self._bulk_problems(query, info.context["version"])
        if problems:
            return {"bulkOperation": None, "userErrors": [_user_error("INVALID", ["query"], f"Invalid bulk query: {p}")
                                                          for p in problems]}
        number = self._next_id("BulkOperation")
        op = self.bulk_operations[number] = {
            "number": number, "status": "CREATED", "query": query, "created": _iso(_now()), "completed": None,
            "polls": 0, "lines": None, "body": None, "built": threading.Event(), "token": info.context["token"],
            "context": dict(info.context),
        }
        # Shopify runs the query on its side while the app goes on: the file is built once, in a
        # thread, and the operation stays RUNNING until it is written (a poll never waits for it).
        threading.Thread(target=self._bulk_build, args=(op,), name=f"bulk-{number}", daemon=True).start()
        return {"bulkOperation": self._bulk_node(op), "userErrors": []}

    def _bulk_build(self, op: dict) -> None:
        """The operation's JSONL, built once. Not under the shop's lock (a large catalogue takes
        minutes and every request would wait): the catalogue is read as it stands, read again from
        the start if a write changed its size meanwhile."""
        for attempt in range(3):
            try:
                lines = self._bulk_lines(op)
                break
            except RuntimeError:  # a dict changed size during iteration: a write landed meanwhile
                if attempt == 2:
                    op["error"], lines = "INTERNAL_SERVER_ERROR", []
        op["body"] = self._bulk_body(lines)
        op["lines"] = lines
        op["built"].set()

    def _bulk_lines(self, op: dict) -> list[dict]:
        """Run the query as the app (its scopes), then flatten it the way Shopify writes JSONL: each
        node of a connection is a line; a nested connection's nodes follow their parent with __parentId."""
        reset = gql.BULK.set(True)
        try:
            result = execute(gql.SCHEMA, gql.parse_document(op["query"]), root_value=_Root(self),
                             context_value=op["context"], middleware=[_check_scopes])
        finally:
            gql.BULK.reset(reset)
        if result.errors:
            op["error"] = "ACCESS_DENIED" if any("access" in str(e).lower() for e in result.errors) else \
                "INTERNAL_SERVER_ERROR"
            return []
        lines: list[dict] = []

        def nodes_of(value) -> list | None:
            if isinstance(value, dict) and ("edges" in value or "nodes" in value):
                return [e["node"] for e in value.get("edges") or []] + list(value.get("nodes") or [])
            return None

        def emit(node: dict, parent: str | None) -> None:
            own, children = {}, []
            for key, value in node.items():
                nested = nodes_of(value)
                if nested is None:
                    own[key] = value
                else:
                    children.extend(nested)
            if parent is not None:
                own["__parentId"] = parent
            lines.append(own)
            for child in children:
                emit(child, node.get("id"))

        for value in (result.data or {}).values():
            for node in nodes_of(value) or []:
                emit(node, None)
        return lines

    def _bulk_node(self, op: dict) -> dict:
        done = op["status"] == "COMPLETED"
        lines = (op["lines"] or []) if done else []
        host = op["context"].get("host") or "127.0.0.1"
        return {
            "id": gid("BulkOperation", op["number"]), "status": op["status"], "type": "QUERY",
            "errorCode": op.get("error"), "createdAt": op["created"], "completedAt": op["completed"],
            "objectCount": str(len(lines)), "rootObjectCount": str(sum(1 for l in lines if "__parentId" not in l)),
            "fileSize": str(len(op["body"])) if done and lines else None,
            # Shopify's url is a signed storage link (no token); null when the query found nothing.
            "url": f"http://{host}{self.mount}/_bulk/{op['number']}.jsonl" if done and lines else None,
            "partialDataUrl": None, "query": op["query"],
        }

    @staticmethod
    def _bulk_body(lines: list[dict]) -> bytes:
        return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)

    def bulk_operation(self, info, operation_id: str) -> dict | None:
        """Each poll moves the operation on: CREATED, RUNNING, then, its file written by the build
        thread, COMPLETED (a large catalogue stays RUNNING over many polls, as on Shopify)."""
        if gid_number(operation_id) in self.bulk_mutations:
            return self.bulk_mutation_operation(info, gid_number(operation_id))
        op = self.bulk_operations.get(gid_number(operation_id))
        if op is None or op["token"] != info.context["token"]:
            return None
        op["polls"] += 1
        if op["status"] == "CREATED":
            op["status"] = "RUNNING"
        if op["status"] == "RUNNING" and op["polls"] >= self.bulk_polls_to_complete and op["built"].is_set():
            op["status"] = "FAILED" if op.get("error") else "COMPLETED"
            op["completed"] = _iso(_now())
        return self._bulk_node(op)

    def handle_bulk_result(self, request: Request) -> Response:
        """The JSONL file behind a completed operation's url (no access token, like a signed link)."""
        with self.lock:
            op = self.bulk_operations.get(int(request.params["number"]))
            if op is None or op["status"] != "COMPLETED":
                return Response(404, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>",
                                {"Content-Type": "application/xml"})
            body = op["body"] or b""
        return Response(200, body, {"Content-Type": "application/jsonl"})

    def _order_visible(self, order: dict, scopes) -> bool:
        """Without read_all_orders an app sees the last 60 days of orders only."""
        if "read_all_orders" in scopes:
            return True
        created = _parse_time(order.get("created_at"))
        return created is None or created >= datetime.now(timezone.utc) - ALL_ORDERS_AGE

    # --- admin endpoints (the demo drives a sandbox in another process) ------------------------

    def admin_reset(self, request: Request) -> Response:
        body = request.json() or {}
        self.reset(seed=bool(body.get("seed", True)))
        return Response.json({"status": "reset"})

    def admin_seed(self, request: Request) -> Response:
        self.seed_demo()
        return Response.json({"status": "seeded", "locations": len(self.locations), "variants": len(self.variants)})

    def admin_config(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            self.configure(**body)
        except (TypeError, ValueError) as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json(self.stats())

    def admin_access_token(self, request: Request) -> Response:
        body = request.json() or {}
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
            return Response.json({"error": "scopes must be a list of access scope handles"}, 400)
        token = self.add_access_token(scopes, body.get("token") or None)
        return Response.json({"access_token": token, "scopes": sorted(scopes)}, 201)

    def _webhooks_since(self, count: int) -> list[dict]:
        hooks = list(self.webhooks.values())[count:]
        return [{"id": h.id, "topic": h.topic, "status": h.last_status, "attempts": h.attempts} for h in hooks]

    def admin_create_order(self, request: Request) -> Response:
        fields = request.json() or {}
        paid = bool(fields.pop("paid", False))
        deliver = fields.pop("deliver", None)
        before = len(self.webhooks)
        try:
            payload = self.create_order(deliver=deliver, **fields)
            if paid:
                payload = self.mark_paid(payload["id"], deliver=deliver)
        except (KeyError, ValueError, ArithmeticError) as exc:
            return Response.json({"error": f"cannot create order: {exc}"}, 400)
        return Response.json({"order": payload, "webhooks": self._webhooks_since(before)}, 201)

    def admin_mark_paid(self, request: Request) -> Response:
        before = len(self.webhooks)
        try:
            payload = self.mark_paid(request.params["order_id"], deliver=(request.json() or {}).get("deliver"))
        except KeyError as exc:
            return Response.json({"error": str(exc)}, 404)
        return Response.json({"order": payload, "webhooks": self._webhooks_since(before)})

    def admin_cancel(self, request: Request) -> Response:
        before = len(self.webhooks)
        try:
            payload = self.cancel_order(request.params["order_id"], reason=(request.json() or {}).get("reason", "customer"))
        except KeyError as exc:
            return Response.json({"error": str(exc)}, 404)
        return Response.json({"order": payload, "webhooks": self._webhooks_since(before)})

    def admin_redeliver(self, request: Request) -> Response:
        try:
            status = self.redeliver(request.params["webhook_id"])
        except KeyError as exc:
            return Response.json({"error": str(exc)}, 404)
        return Response.json({"webhook_id": request.params["webhook_id"], "status": status})

    def admin_inventory_move(self, request: Request) -> Response:
        body = request.json() or {}
        action = getattr(self, request.params["action"])
        try:
            level = action(body["sku"], body.get("location_id", 1), int(body.get("quantity", 1)))
        except (KeyError, ValueError) as exc:
            return Response.json({"error": str(exc)}, 400)
        return Response.json({"sku": body["sku"], "level": level})

    def admin_inventory(self, request: Request) -> Response:
        with self.lock:
            rows = [{
                "sku": self.variants[self.inventory_items[item]["variant"]]["sku"],
                "inventory_item_id": gid("InventoryItem", item), "location_id": gid("Location", location),
                "location": self.locations[location]["name"], **self.level(item, location),
            } for (item, location) in sorted(self.levels)]
        return Response.json({"levels": rows})

    def stats(self) -> dict:
        with self.lock:
            self.bucket.refill()
            ok = sum(1 for d in self.deliveries if self._ok(d["status"]))
            return {
                "orders": len(self.orders), "webhooks": len(self.webhooks),
                "deliveries": len(self.deliveries), "deliveries_ok": ok, "deliveries_failed": len(self.deliveries) - ok,
                "webhooks_undelivered": sum(1 for h in self.webhooks.values() if h.target and not h.delivered),
                "graphql_requests": self.graphql_requests, "throttled": self.throttled,
                "mutation_calls": dict(self.mutation_calls), "throttle_status": self.bucket.status(),
                "webhook_target": self.webhook_target, "retry_delays": list(self.retry_delays),
                "delivery_mode": self.delivery_mode, "api_versions": list(self.api_versions),
                "versions_served": dict(self.versions_served), "idempotent_replays": self.idempotent_replays,
                "fulfillments": len(self.fulfillments), "notifications": len(self.notifications),
                "rest_requests": self.rest_requests, "rest_throttled": self.rest_throttled,
                **self.catalogue_stats(),
            }

    def admin_stats(self, request: Request) -> Response:
        return Response.json(self.stats())


def _user_error(code: str | None, path: list[str], message: str) -> dict:
    return {"code": code, "field": path, "message": message}


def _html(status: int, text: str) -> Response:
    return Response(status, f"<!doctype html><title>Shopify</title><p>{text}</p>".encode(),
                    {"Content-Type": "text/html; charset=utf-8"})


class _Root(CatalogueRoot):
    """The GraphQL root value: each Query/Mutation field is a method (called with info and args)."""

    def __init__(self, sandbox: ShopifySandbox):
        self.sb = sandbox

    def shop(self, info):
        sb = self.sb
        return {"id": "gid://shopify/Shop/1", "name": sb.shop_name, "currencyCode": sb.currency,
                "myshopifyDomain": sb.shop_domain}

    def orders(self, info, first=None, after=None, last=None, before=None, query=None, sortKey=None, reverse=False):
        sort = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "PROCESSED_AT": "processed_at",
                "ORDER_NUMBER": "order_number", "TOTAL_PRICE": "total_price"}.get(sortKey or "ID")

        def value(order):  # JSON-friendly, so a cursor can carry it
            if not sort:
                return None
            return float(Decimal(order[sort])) if sort == "total_price" else order[sort]

        scopes = info.context["scopes"]
        orders = [o for o in self.sb._orders_matching(query) if self.sb._order_visible(o, scopes)]
        orders.sort(key=lambda o: (value(o), o["id"]) if sort else (o["id"],), reverse=bool(reverse))
        return gql.connection(orders, first=first, after=after, last=last, before=before, reverse=bool(reverse),
                              key=lambda o: o["id"], value=value if sort else None, node=self.sb._order_node)

    def order(self, info, id):
        order = self.sb.orders.get(gid_number(id))
        return self.sb._order_node(order) if order and self.sb._order_visible(order, info.context["scopes"]) else None

    def locations(self, info, first=None, after=None, includeInactive=False):
        numbers = [n for n in sorted(self.sb.locations) if includeInactive or self.sb.locations[n]["is_active"]]
        return gql.connection(numbers, first=first, after=after, key=lambda n: n, node=self.sb._location_node)

    def location(self, info, id=None):
        number = gid_number(id) if id else min(self.sb.locations, default=None)
        return self.sb._location_node(number) if number in self.sb.locations else None

    def products(self, info, first=None, after=None, query=None):
        return gql.connection(sorted(self.sb.products), first=first, after=after, key=lambda n: n,
                              node=self.sb._product_node)

    def product(self, info, id):
        number = gid_number(id)
        return self.sb._product_node(number) if number in self.sb.products else None

    def productVariants(self, info, first=None, after=None, query=None):  # noqa: N802 - the API's name
        return gql.connection(self.sb._variants_matching(query), first=first, after=after, key=lambda n: n,
                              node=self.sb._variant_node)

    def productVariant(self, info, id):  # noqa: N802
        number = gid_number(id)
        return self.sb._variant_node(number) if number in self.sb.variants else None

    def inventoryItem(self, info, id):  # noqa: N802
        number = gid_number(id)
        return self.sb._item_node(number) if number in self.sb.inventory_items else None

    def inventoryLevel(self, info, id):  # noqa: N802
        location = gid_number(id)
        item = gid_number(id.split("inventory_item_id=", 1)[-1]) if "inventory_item_id=" in id else None
        return self.sb._level_node(item, location) if (item, location) in self.sb.levels else None

    def _idempotent(self, info, name: str, data: dict, run, *, payload: str = "inventoryAdjustmentGroup"):
        """Shopify's `@idempotent(key: ...)`: the same key with the same input answers what the first
        request got, without applying it again; with another input it is a user error. Required from
        2026-04 (a request without it is refused at run time), optional on 2026-01."""
        rules = info.context["rules"]
        variables = getattr(info.variable_values, "coerced", info.variable_values)  # graphql-core 3.3 / 3.2
        key = gql.idempotency_key(info.field_nodes[0], variables)
        if key is None:
            if rules.idempotency_required and name in gql.IDEMPOTENT_MUTATIONS:
                raise GraphQLError(f"The @idempotent directive is required for {name} on API version "
                                   f"{info.context['version']}: pass @idempotent(key: ...) with a unique key.")
            return run(data, rules)
        if not key.strip():
            raise GraphQLError("The idempotency key cannot be an empty string or whitespace only.")
        fingerprint = json.dumps(data, sort_keys=True, default=str)
        seen = self.sb.idempotency.get((name, key))
        if seen is not None:
            if seen[0] != fingerprint:
                return {payload: None, "userErrors": [_user_error(
                    "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", None,
                    "The same idempotency key cannot be used with different operation parameters.")]}
            self.sb.idempotent_replays += 1
            return seen[1]
        answer = run(data, rules)
        self.sb.idempotency[(name, key)] = (fingerprint, answer)
        return answer

    def currentAppInstallation(self, info):  # noqa: N802
        """The installation of the app the token belongs to; its scopes as granted (not expanded)."""
        token = info.context.get("token", "")
        scopes = sorted(self.sb.tokens.get(token, ()))
        return {"id": "gid://shopify/AppInstallation/1",
                "accessScopes": [{"handle": s, "description": s.replace("_", " ")} for s in scopes]}

    def webhookSubscriptions(self, info, first=None, after=None, last=None, before=None, topics=None,  # noqa: N802
                             format=None, uri=None, query=None, reverse=False, sortKey=None):
        rows = [s for s in self.sb.subscriptions.values()
                if (not topics or s["topic"] in topics) and (format is None or s["format"] == format)
                and (uri is None or s["uri"] == uri)]
        rows.sort(key=lambda s: s["number"], reverse=bool(reverse))
        return gql.connection(rows, first=first, after=after, last=last, before=before, reverse=bool(reverse),
                              key=lambda s: s["number"], node=self.sb._subscription_node)

    def webhookSubscription(self, info, id):  # noqa: N802
        subscription = self.sb.subscriptions.get(gid_number(id))
        return self.sb._subscription_node(subscription) if subscription else None

    def webhookSubscriptionCreate(self, info, topic, webhookSubscription):  # noqa: N802
        return self.sb.webhook_subscription_create(info, topic, webhookSubscription)

    def webhookSubscriptionUpdate(self, info, id, webhookSubscription):  # noqa: N802
        return self.sb.webhook_subscription_update(info, id, webhookSubscription)

    def webhookSubscriptionDelete(self, info, id):  # noqa: N802
        return self.sb.webhook_subscription_delete(info, id)

    def bulkOperationRunQuery(self, info, query, groupObjects=False):  # noqa: N802
        return self.sb.bulk_run_query(info, query)

    def bulkOperation(self, info, id):  # noqa: N802
        return self.sb.bulk_operation(info, id)

    def inventorySetQuantities(self, info, input):  # noqa: N802
        return self._idempotent(info, "inventorySetQuantities", input, self.sb.inventory_set_quantities)

    def inventoryAdjustQuantities(self, info, input):  # noqa: N802
        return self._idempotent(info, "inventoryAdjustQuantities", input, self.sb.inventory_adjust_quantities)

    def shopifyPaymentsAccount(self, info):  # noqa: N802
        return self.sb.shopify_payments_account(info)

    def fulfillmentCreate(self, info, fulfillment, message=None):  # noqa: N802
        # @idempotent is honoured when sent (a resend is answered as the first, nothing fulfilled twice).
        return self._idempotent(info, "fulfillmentCreate", fulfillment, self.sb.fulfillment_create, payload="fulfillment")


class ShopifyEuSandbox(ShopifySandbox):
    """A second shop (EUR, its own token, webhook secret and domain), so two shops run side by side
    the way a retailer's UK and EU stores do. Options: shopify_eu_access_token, shopify_eu_webhook_secret,
    shopify_eu_webhook_target."""

    shop_name = "Ledgerline EU Store"
    mount = "/shopify-eu"
    shop_domain = "ledgerline-eu.myshopify.com"
    currency = "EUR"

    def __init__(self, shopify_eu_access_token: str = "shpat_sandbox_eu_token",
                 shopify_eu_webhook_secret: str = "sandbox-shopify-eu-webhook-secret",
                 shopify_eu_webhook_target: str = "", **options):
        options = {k: v for k, v in options.items()
                   if not k.startswith(("shopify_access_token", "shopify_webhook_secret", "shopify_webhook_target"))}
        super().__init__(shopify_access_token=shopify_eu_access_token,
                         shopify_webhook_secret=shopify_eu_webhook_secret,
                         shopify_webhook_target=shopify_eu_webhook_target, **options)
