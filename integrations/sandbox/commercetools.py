"""A commercetools stand-in: OAuth client credentials with scopes, Orders, Customers, Channels and Inventory,
and Products with their staged and current data and embedded prices (ct_products.py).

Served at /commercetools: the HTTP API at /commercetools/{projectKey}/…, the token endpoint at
/commercetools/auth/oauth/token, admin endpoints for a sandbox in another process at
/commercetools/_sandbox/…. Shapes follow the documented HTTP API (PagedQueryResponse, typed Money,
ErrorResponse on every route, AuthErrorResponse for auth, ConcurrentModification errors); `where`
takes a real subset of the Query Predicate language. API clients hold scopes and a token only
reaches the routes its scopes allow (403 insufficient_scope), as the reference's `securedBy` says.
Inventory keeps reservations like the real platform: availableQuantity = quantityOnStock − reserved.
"""
from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Iterable
from urllib.parse import parse_qs, unquote

from .ct_predicates import PredicateError, parse_predicates, sort_resources
from .ct_products import ProductWrites
from .ct_subscription import SubscriptionDeliveries
from .currencies import currency_exponent
from .server import RateLimiter, Request, Response, VendorApp

MAX_LIMIT = 500
MAX_OFFSET = 10000
DEFAULT_LIMIT = 20

# Which scopes reach a route (any one of them), per resource and method: the `securedBy` of the HTTP
# API reference (api-specs/api/resources/*.raml). manage_X also grants view_X; manage_project grants all.
ROUTE_SCOPES = {
    ("orders", "GET"): ("view_orders",),
    ("orders", "POST"): ("manage_orders",),
    ("customers", "GET"): ("view_customers",),
    ("customers", "POST"): ("manage_customers",),
    ("channels", "GET"): ("view_channels", "view_products"),
    ("channels", "POST"): ("manage_channels", "manage_products"),
    ("inventory", "GET"): ("view_products",),
    ("inventory", "POST"): ("manage_products",),
    ("product-projections", "GET"): ("view_products", "view_published_products"),
    ("products", "GET"): ("view_products",),
    ("products", "POST"): ("manage_products",),
    ("payments", "GET"): ("view_payments",),
}

# Scope names the auth service knows for client credentials (the reference's oauth2 security scheme).
SCOPE_NAMES = frozenset({
    "manage_project", "manage_project_settings", "view_project_settings", "view_audit_log", "view_messages",
    "manage_subscriptions", "manage_extensions", "introspect_oauth_tokens", "create_anonymous_token",
    "view_published_products", "manage_my_orders", "manage_my_profile", "manage_my_payments",
    "manage_my_shopping_lists", "manage_my_business_units", "manage_my_quotes", "manage_my_quote_requests",
    "manage_locked_carts",
    *(f"{verb}_{noun}" for verb in ("view", "manage") for noun in (
        "api_clients", "approval_flows", "approval_rules", "associate_roles", "attribute_groups",
        "business_units", "cart_discounts", "categories", "channels", "customer_groups", "customers",
        "discount_codes", "key_value_documents", "order_edits", "orders", "payment_methods", "payments",
        "product_discounts", "product_selections", "product_types", "products", "quote_requests", "quotes",
        "recurrence_policies", "recurring_orders", "shipping_methods", "shopping_lists", "staged_quotes",
        "standalone_prices", "states", "stores", "tax_categories", "types", "zones")),
})
_SCOPE = re.compile(r"^(?P<name>[a-z_]+):(?P<project>[A-Za-z0-9_-]+)(?::[A-Za-z0-9_-]+)?$")

# `{resource}/key={key}` and `orders/order-number={orderNumber}`: the field each lookup reads. Orders
# have no key= route in the HTTP API (the emulator routes one; a real request treats it as an id).
LOOKUPS = {
    "orders": ("order-number", "orderNumber"),
    "customers": ("key", "key"),
    "channels": ("key", "key"),
    "inventory": ("key", "key"),
    "product-projections": ("key", "key"),
    "payments": ("key", "key"),
}
PAYMENT_STATES = ("BalanceDue", "Failed", "Pending", "CreditOwed", "Paid")
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
SHIPMENT_STATES = ("Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder", "Canceled")
DELIVERY_ACTIONS = ("addDelivery", "addParcelToDelivery", "setDeliveryItems", "changeShipmentState")
_RESOURCE_KEY = re.compile(r"^[A-Za-z0-9_-]{2,256}$")  # a Delivery's or Parcel's key


def _error(status: int, code: str, message: str, **extra) -> Response:
    """An ErrorResponse: statusCode, message (the first error's) and errors [{code, message, …}]."""
    body = {"statusCode": status, "message": message, "errors": [{"code": code, "message": message, **extra}]}
    return Response.json(body, status)


def _auth_error(status: int, error: str, description: str, headers: dict | None = None) -> Response:
    """An AuthErrorResponse: the ErrorResponse fields plus OAuth 2.0's `error` and `error_description`."""
    body = {"statusCode": status, "message": description, "errors": [{"code": error, "message": description}],
            "error": error, "error_description": description}
    return Response.json(body, status, headers)


class InvalidJson(ValueError):
    """The request body is not JSON, or not the JSON the endpoint expects (400 InvalidJsonInput)."""


def _invalid_json(detail: str) -> Response:
    return _error(400, "InvalidJsonInput", "Request body does not contain valid JSON.", detailedErrorMessage=detail)


def _json_object(request: Request, *, allow_empty: bool = False) -> dict:
    """The body as a JSON object, or InvalidJson saying why not."""
    if not request.body.strip():
        if allow_empty:
            return {}
        raise InvalidJson("The request body is empty.")
    try:
        body = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidJson(f"Malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidJson(f"Expected a JSON object, found {type(body).__name__}.")
    return body


def _field(body: dict, name: str, kind: type, *, required: bool = True, default=None):
    """One field of a draft, of the JSON type the endpoint expects (bool is not a number here)."""
    if name not in body or body[name] is None:
        if required:
            raise InvalidJson(f"Missing required value: {name}.")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidJson(f"{name}: expected {kind.__name__}, found {type(value).__name__}.")
    return value


def _grants(held: str, wanted: str) -> bool:
    """Does a scope the client (or token) holds cover `wanted`? Exact, manage_X:P for view_X:P, or
    manage_project:P for anything in P."""
    if held == wanted:
        return True
    held_name, _, held_target = held.partition(":")
    wanted_name, _, wanted_target = wanted.partition(":")
    if held_name == "manage_project":
        return wanted_target == held_target or wanted_target.startswith(held_target + ":")
    return (held_target == wanted_target and wanted_name.startswith("view_")
            and held_name == "manage_" + wanted_name[len("view_"):])


def _format_percent(rate: Decimal) -> str:
    """A tax rate as people write it: 0.1 -> "10", 0.075 -> "7.5" (the sandbox's own copy)."""
    return format((Decimal(rate) * 100).normalize(), "f")


def _iso(moment: datetime) -> str:
    """commercetools timestamps: UTC, milliseconds, `Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def money(amount, currency: str, *, high_precision: bool = False, fraction_digits: int | None = None) -> dict:
    """Typed Money for an amount in major units: centPrecision, or highPrecision with preciseAmount."""
    amount = Decimal(str(amount))
    exponent = currency_exponent(currency)
    cents = int(amount.scaleb(exponent).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if not high_precision:
        return {"type": "centPrecision", "currencyCode": currency, "centAmount": cents, "fractionDigits": exponent}
    digits = fraction_digits if fraction_digits is not None else exponent + 2
    precise = amount.scaleb(digits)
    if precise != precise.to_integral_value():
        raise ValueError(f"{amount} does not fit {digits} fraction digits")
    return {
        "type": "highPrecision",
        "currencyCode": currency,
        "centAmount": cents,
        "preciseAmount": int(precise),
        "fractionDigits": digits,
    }


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=ROUND_HALF_EVEN)


class CommercetoolsSandbox(ProductWrites, SubscriptionDeliveries, VendorApp):
    prefix = "/commercetools"
    token_ttl = 172800  # seconds, as the real auth service grants for client credentials

    def __init__(
        self,
        ct_project_key: str = "ledgerline-demo",
        ct_client_id: str = "sandbox-client",
        ct_client_secret: str = "sandbox-secret",
        ct_rate_limit: float = 0,
        ct_client_scopes: str = "",
        **_ignored,
    ):
        self.project_key = ct_project_key
        self.client_id = ct_client_id
        self.client_secret = ct_client_secret
        # The demo client holds the whole project, as a Merchant Center "Admin client" does; tests
        # add least-privilege clients with add_api_client().
        self.client_scopes = ct_client_scopes.split() or [f"manage_project:{ct_project_key}"]
        self.rate_limit = ct_rate_limit
        super().__init__()
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
            self.token_scopes: dict[str, frozenset[str]] = {}  # access token -> the scopes it was granted
            # API clients: client_id -> (secret, scopes it holds); reset keeps only the demo client.
            self.api_clients: dict[str, tuple[str, frozenset[str]]] = {
                self.client_id: (self.client_secret, frozenset(self.client_scopes))}
            self.tokens_issued = 0
            self.orders: dict[str, dict] = {}
            self.payments: dict[str, dict] = {}  # Payments, with their Charge and Refund transactions
            self.customers: dict[str, dict] = {}
            self.channels: dict[str, dict] = {}
            self.inventory: dict[str, dict] = {}
            self.products: dict[str, dict] = {}  # published ProductProjections by id
            self.reserved: dict[str, int] = {}  # inventory entry id -> quantity held by open checkouts
            self.messages: list[dict] = []  # Subscription deliveries that would have been sent
            self.subscription_reset()  # how they are delivered (ct_subscription)
            self.order_sequence = 0
            self.limiter = RateLimiter(self.rate_limit)
            self.requests_seen = []
            self.queries_seen: list[tuple[str, dict[str, list[str]]]] = []  # (path, query) of each API call
            self._last_moment = datetime.now(timezone.utc) - timedelta(days=1)
            self.product_writes_reset()  # Products with masterData, their types, tax categories, groups (ct_products)

    def now(self) -> str:
        """A fresh timestamp, strictly later than any the sandbox handed out before."""
        with self.lock:
            moment = datetime.now(timezone.utc)
            moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
            if moment <= self._last_moment:
                moment = self._last_moment + timedelta(milliseconds=1)
            self._last_moment = moment
            return _iso(moment)

    def expire_tokens(self) -> None:
        """Test helper: every token handed out so far is now expired."""
        with self.lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def add_api_client(self, client_id: str, client_secret: str, scopes: Iterable[str]) -> dict:
        """An API Client holding `scopes` (e.g. ["view_orders:ledgerline-demo"]), as created in the
        Merchant Center; its tokens reach only the routes those scopes allow."""
        scopes = frozenset(scopes)
        bad = sorted(s for s in scopes if not (m := _SCOPE.match(s)) or m["name"] not in SCOPE_NAMES)
        if bad:
            raise ValueError(f"unknown scopes {bad}")
        with self.lock:
            self.api_clients[client_id] = (client_secret, scopes)
        return {"id": client_id, "scope": " ".join(sorted(scopes))}

    def seed_demo(self) -> None:
        """Two supply channels and the catalogue (SKUs as the ERP demo items); orders and customers are
        created by the scenario that needs them."""
        for key, name in (("main-warehouse", "Main warehouse"), ("north-store", "North store")):
            if not self.channel_by_key(key):
                self.create_channel(key=key, name=name)
        if not self.products:
            self.add_product("Classic tee", ["TEE-BLK-S", "TEE-BLK-M", "TEE-BLK-L", "TEE-WHT-M"], key="classic-tee")
            self.add_product("Enamel mug", ["MUG-001"], key="enamel-mug")
            self.add_product("Hoodie", ["HOODIE-GRY-L"], key="hoodie")
            # Embedded prices, one per currency the project sells in (what the demo's price list says).
            demo_prices = {"MUG-001": "9.50", "HOODIE-GRY-L": "44.00"}
            with self.lock:
                for product in self.products.values():
                    for variant in [product["masterVariant"], *product["variants"]]:
                        amount = demo_prices.get(variant["sku"], "19.99")
                        eur = "49.99" if variant["sku"] == "HOODIE-GRY-L" else amount
                        variant["prices"] = [{"id": str(uuid.uuid4()), "value": money(amount, "GBP")},
                                             {"id": str(uuid.uuid4()), "value": money(eur, "EUR")}]

    # --- in-process helpers for tests and the demo -------------------------------------------

    def create_channel(self, *, key: str, name: str = "", roles=("InventorySupply",)) -> dict:
        with self.lock:
            moment = self.now()
            channel = {
                "id": str(uuid.uuid4()),
                "version": 1,
                "key": key,
                "roles": list(roles),
                "name": {"en": name or key},
                "createdAt": moment,
                "lastModifiedAt": moment,
            }
            self.channels[channel["id"]] = channel
            return copy.deepcopy(channel)

    def channel_by_key(self, key: str) -> dict | None:
        with self.lock:
            return next((c for c in self.channels.values() if c["key"] == key), None)

    def add_product(self, name: str, skus: list[str], *, key: str | None = None) -> dict:
        """A published product whose master variant has the first SKU and variants 2.. the others,
        as the ProductProjection the API serves (`staged=false`)."""
        with self.lock:
            moment = self.now()
            variants = [{"id": n, "sku": sku, "key": sku.lower(), "prices": [], "images": [], "attributes": [],
                         "assets": []} for n, sku in enumerate(skus, start=1)]
            product = {
                "id": str(uuid.uuid4()), "version": 1, "key": key or name.lower().replace(" ", "-"),
                "productType": {"typeId": "product-type", "id": "sandbox-product-type"},
                "name": {"en": name}, "slug": {"en": (key or name).lower().replace(" ", "-")},
                "categories": [], "masterVariant": variants[0], "variants": variants[1:],
                "searchKeywords": {}, "hasStagedChanges": False, "published": True,
                "createdAt": moment, "lastModifiedAt": moment,
            }
            self.products[product["id"]] = product
            self.adopt_product(product["id"])  # and the Product behind it (ct_products)
            return copy.deepcopy(product)

    def create_customer(self, *, email: str, first_name: str = "", last_name: str = "", **extra) -> dict:
        with self.lock:
            if any(c["lowercaseEmail"] == email.lower() for c in self.customers.values()):
                raise ValueError(f"customer {email} exists")
            moment = self.now()
            customer = {
                "id": str(uuid.uuid4()),
                "version": 1,
                "email": email,
                "lowercaseEmail": email.lower(),
                "firstName": first_name,
                "lastName": last_name,
                "addresses": [],
                "isEmailVerified": False,
                "authenticationMode": "Password",
                "createdAt": moment,
                "lastModifiedAt": moment,
                **extra,
            }
            self.customers[customer["id"]] = customer
            return copy.deepcopy(customer)

    def create_inventory_entry(self, *, sku: str, channel_key: str | None = None, quantity_on_stock: int = 0,
                               channel_id: str | None = None, key: str | None = None) -> dict:
        with self.lock:
            if channel_key:
                channel = self.channel_by_key(channel_key)
                if not channel:
                    raise ValueError(f"unknown channel {channel_key}")
                channel_id = channel["id"]
            moment = self.now()
            entry = {
                "id": str(uuid.uuid4()),
                "version": 1,
                "sku": sku,
                "quantityOnStock": quantity_on_stock,
                "availableQuantity": quantity_on_stock,
                "createdAt": moment,
                "lastModifiedAt": moment,
            }
            if key:
                entry["key"] = key
            if channel_id:
                entry["supplyChannel"] = {"typeId": "channel", "id": channel_id}
            self.inventory[entry["id"]] = entry
            self.reserved[entry["id"]] = 0
            return copy.deepcopy(entry)

    def inventory_entry(self, sku: str, channel_key: str) -> dict:
        channel = self.channel_by_key(channel_key)
        with self.lock:
            for entry in self.inventory.values():
                if entry["sku"] == sku and entry.get("supplyChannel", {}).get("id") == (channel or {}).get("id"):
                    return entry
        raise KeyError(f"no inventory entry for {sku} at {channel_key}")

    def reserve(self, sku: str, channel_key: str, qty: int) -> dict:
        """The checkout simulator: an order placed with ReserveOnOrder holds `qty` units."""
        with self.lock:
            entry = self.inventory_entry(sku, channel_key)
            self.reserved[entry["id"]] += qty
            self._touch_inventory(entry)
            return copy.deepcopy(entry)

    def _touch_inventory(self, entry: dict) -> None:
        entry["availableQuantity"] = entry["quantityOnStock"] - self.reserved.get(entry["id"], 0)
        entry["version"] += 1
        entry["lastModifiedAt"] = self.now()

    def create_order(self, **fields) -> dict:
        """Build a realistic Order. Fields (all optional):

        order_number, customer_email, customer_id, currency ("EUR"), country ("DE"), payment_state,
        order_state ("Open"), id, created_at, last_modified_at (to force equal timestamps),
        high_precision (False), fraction_digits (for high precision, default currency digits + 2),
        line_items: [{sku, name, quantity, price ("12.34", major units), tax_rate (0.19),
                      discounted_price (unit price after a discount), channel (supply channel key)}],
        custom_line_items: [{name, quantity, price, slug, tax_rate}],
        shipping: {name, price, tax_rate, discounted_price}.
        """
        with self.lock:
            order = self._build_order(fields)
            self.orders[order["id"]] = order
            self._message(order, "OrderCreated", order=copy.deepcopy(order))
            return copy.deepcopy(order)

    def import_order(self, *, stated_gross: str, **fields) -> dict:
        """An order brought in through Order Import (POST /orders/import), which computes no
        totals: its lines as create_order builds them, its taxedPrice.totalGross as the importing
        system stated it (which need not add up)."""
        with self.lock:
            order = self._build_order(fields)
            gross = order["taxedPrice"]["totalGross"]
            gross["centAmount"] = int(Decimal(stated_gross).scaleb(gross["fractionDigits"]))
            order["origin"] = "Merchant"
            self.orders[order["id"]] = order
            self._message(order, "OrderImported", order=copy.deepcopy(order))
            return copy.deepcopy(order)

    def set_payment_state(self, order_id: str, payment_state: str) -> dict:
        with self.lock:
            order = self.orders[order_id]
            old = order.get("paymentState")
            order["paymentState"] = payment_state
            self._bump(order)
            self._message(order, "OrderPaymentStateChanged", paymentState=payment_state, oldPaymentState=old)
            return copy.deepcopy(order)

    # --- payments and returns (what the refunds flow reads) ----------------------------------

    def add_payment(self, order_id: str, *, amount: dict | None = None) -> dict:
        """A Payment of the order's total (one Charge transaction, Success), named in its paymentInfo."""
        with self.lock:
            order = self.orders[order_id]
            amount = copy.deepcopy(amount or order["totalPrice"])
            now = self.now()
            payment = {"id": str(uuid.uuid4()), "version": 1, "createdAt": now, "lastModifiedAt": now,
                       "amountPlanned": copy.deepcopy(amount), "interfaceId": f"psp-{order['orderNumber']}",
                       "paymentMethodInfo": {"paymentInterface": "sandbox-psp", "method": "card"},
                       "paymentStatus": {}, "interfaceInteractions": [], "lastMessageSequenceNumber": 0,
                       "transactions": [{"id": str(uuid.uuid4()), "timestamp": now, "type": "Charge",
                                         "amount": amount, "state": "Success"}]}
            self.payments[payment["id"]] = payment
            order.setdefault("paymentInfo", {"payments": []})["payments"].append({"typeId": "payment", "id": payment["id"]})
            self._bump(order)
            return copy.deepcopy(payment)

    def refund_payment(self, payment_id: str, amount: str, *, state: str = "Success") -> dict:
        """The PSP gives money back: a Refund transaction (addTransaction; message PaymentTransactionAdded)."""
        with self.lock:
            payment = self.payments[payment_id]
            currency = payment["amountPlanned"]["currencyCode"]
            transaction = {"id": str(uuid.uuid4()), "timestamp": self.now(), "type": "Refund",
                           "amount": money(amount, currency), "interactionId": f"re_{uuid.uuid4().hex[:12]}",
                           "state": state}
            payment["transactions"].append(transaction)
            self._bump(payment)
            self._payment_message(payment, "PaymentTransactionAdded", transaction=copy.deepcopy(transaction))
            return copy.deepcopy(transaction)

    def change_transaction_state(self, payment_id: str, transaction_id: str, state: str) -> dict:
        """changeTransactionState (message PaymentTransactionStateChanged)."""
        with self.lock:
            payment = self.payments[payment_id]
            transaction = next(t for t in payment["transactions"] if t["id"] == transaction_id)
            transaction["state"] = state
            self._bump(payment)
            self._payment_message(payment, "PaymentTransactionStateChanged", transactionId=transaction_id, state=state)
            return copy.deepcopy(transaction)

    def add_return_info(self, order_id: str, items: list[dict], *, tracking_id: str = "") -> dict:
        """addReturnInfo: items [{"sku" or "line_item_id", "quantity", "shipment_state" (Returned)}];
        message ReturnInfoAdded."""
        with self.lock:
            order = self.orders[order_id]
            now = self.now()
            returned = []
            for spec in items:
                line = next(l for l in order["lineItems"]
                            if l["id"] == spec.get("line_item_id") or l["variant"].get("sku") == spec.get("sku"))
                returned.append({"type": "LineItemReturnItem", "id": str(uuid.uuid4()), "quantity": spec["quantity"],
                                 "lineItemId": line["id"], "shipmentState": spec.get("shipment_state", "Returned"),
                                 "paymentState": spec.get("payment_state", "Initial"), "createdAt": now,
                                 "lastModifiedAt": now})
            info = {"items": returned, "returnTrackingId": tracking_id or f"RT-{order['orderNumber']}",
                    "returnDate": now}
            order.setdefault("returnInfo", []).append(info)
            self._bump(order)
            self._message(order, "ReturnInfoAdded", returnInfo=copy.deepcopy(info))
            return copy.deepcopy(info)

    def _payment_message(self, payment: dict, message_type: str, **payload) -> None:
        payment["lastMessageSequenceNumber"] = payment.get("lastMessageSequenceNumber", 0) + 1
        self.messages.append({
            "notificationType": "Message", "projectKey": self.project_key, "id": str(uuid.uuid4()), "version": 1,
            "sequenceNumber": payment["lastMessageSequenceNumber"],
            "resource": {"typeId": "payment", "id": payment["id"]}, "resourceVersion": payment["version"],
            "type": message_type, "createdAt": payment["lastModifiedAt"], "lastModifiedAt": payment["lastModifiedAt"],
            **payload,
        })

    def _bump(self, resource: dict) -> None:
        resource["version"] += 1
        resource["lastModifiedAt"] = self.now()

    def _message(self, resource: dict, message_type: str, **payload) -> None:
        order = resource
        order["lastMessageSequenceNumber"] = order.get("lastMessageSequenceNumber", 0) + 1
        moment = order["lastModifiedAt"]
        self.messages.append({
            "notificationType": "Message",
            "projectKey": self.project_key,
            "id": str(uuid.uuid4()),
            "version": 1,
            "sequenceNumber": order["lastMessageSequenceNumber"],
            "resource": {"typeId": "order", "id": order["id"]},
            "resourceUserProvidedIdentifiers": {"orderNumber": order["orderNumber"]},
            "resourceVersion": order["version"],
            "type": message_type,
            "createdAt": moment,
            "lastModifiedAt": moment,
            **payload,
        })

    def _build_order(self, f: dict) -> dict:
        currency = f.get("currency", "EUR")
        high = bool(f.get("high_precision", False))
        digits = f.get("fraction_digits")
        country = f.get("country", "DE")

        def price(amount):
            return money(amount, currency, high_precision=high, fraction_digits=digits)

        def cent(amount):
            return money(_round(Decimal(str(amount)), currency), currency)

        portions: dict[tuple[str, Decimal], Decimal] = {}

        def taxed(net: Decimal, rate) -> tuple[dict | None, dict | None]:
            if rate is None:
                return None, None
            rate = Decimal(str(rate))
            name = f"Standard {country} {_format_percent(rate)}%" if rate else f"Zero {country}"
            tax = _round(net * rate, currency)
            portions[(name, rate)] = portions.get((name, rate), Decimal(0)) + tax
            tax_rate = {"id": f"rate-{country}-{rate}", "name": name, "amount": float(rate), "includedInPrice": False,
                        "country": country, "subRates": []}
            # A TaxedItemPrice, as the platform states it for every taxed line (taxPortions included).
            return tax_rate, {"totalNet": cent(net), "totalGross": cent(net + tax), "totalTax": cent(tax),
                              "taxPortions": [{"name": name, "rate": float(rate), "amount": cent(tax)}]}

        def discounts(unit: Decimal, discounted, quantity: int) -> tuple[list, Decimal]:
            if discounted is None:
                return [], unit
            discounted = Decimal(str(discounted))
            return [{
                "quantity": quantity,
                "discountedPrice": {
                    "value": price(discounted),
                    "includedDiscounts": [{
                        "discount": {"typeId": "cart-discount", "id": "sandbox-discount"},
                        "discountedAmount": price(unit - discounted),
                    }],
                },
            }], discounted

        total_net = Decimal(0)
        line_items = []
        for spec in f.get("line_items") or [{"sku": "TEE-RED-M", "name": "Red tee M", "quantity": 1, "price": "25.00"}]:
            unit = Decimal(str(spec.get("price", "10.00")))
            quantity = int(spec.get("quantity", 1))
            dppq, effective = discounts(unit, spec.get("discounted_price"), quantity)
            net = _round(effective * quantity, currency)
            total_net += net
            tax_rate, taxed_price = taxed(net, spec.get("tax_rate", "0.19"))
            line = {
                "id": str(uuid.uuid4()),
                "productId": str(uuid.uuid5(uuid.NAMESPACE_URL, "product:" + spec["sku"])),
                "name": {"en": spec.get("name", spec["sku"])},
                "productType": {"typeId": "product-type", "id": "sandbox-product-type"},
                "variant": {"id": 1, "sku": spec["sku"], "prices": [], "attributes": []},
                "price": {"id": str(uuid.uuid4()), "value": price(unit)},
                "quantity": quantity,
                "discountedPricePerQuantity": dppq,
                "totalPrice": cent(net),
                "state": [{"quantity": quantity, "state": {"typeId": "state", "id": "sandbox-initial"}}],
                "priceMode": "Platform",
                "lineItemMode": "Standard",
                "taxedPricePortions": [],
            }
            if tax_rate:
                line["taxRate"], line["taxedPrice"] = tax_rate, taxed_price
            if spec.get("channel"):
                channel = self.channel_by_key(spec["channel"])
                if not channel:
                    raise ValueError(f"unknown supply channel {spec['channel']}")
                line["supplyChannel"] = {"typeId": "channel", "id": channel["id"]}
            line_items.append(line)

        custom_line_items = []
        for spec in f.get("custom_line_items") or []:
            unit = Decimal(str(spec.get("price", "0")))
            quantity = int(spec.get("quantity", 1))
            net = _round(unit * quantity, currency)
            total_net += net
            tax_rate, taxed_price = taxed(net, spec.get("tax_rate", "0.19"))
            item = {
                "id": str(uuid.uuid4()),
                "name": {"en": spec.get("name", "Custom item")},
                "money": price(unit),
                "slug": spec.get("slug", re.sub(r"[^a-z0-9]+", "-", spec.get("name", "custom").lower())),
                "quantity": quantity,
                "totalPrice": cent(net),
                "discountedPricePerQuantity": [],
                "state": [],
                "priceMode": "Standard",
            }
            if tax_rate:
                item["taxRate"], item["taxedPrice"] = tax_rate, taxed_price
            custom_line_items.append(item)

        shipping_info = shipping_taxed = None
        if f.get("shipping"):
            spec = f["shipping"]
            ship_price = Decimal(str(spec.get("price", "4.95")))
            ship_price = _round(ship_price, currency)  # ShippingInfo.price is cent precision
            effective = Decimal(str(spec["discounted_price"])) if spec.get("discounted_price") is not None else ship_price
            effective = _round(effective, currency)
            total_net += effective
            tax_rate, taxed_price = taxed(effective, spec.get("tax_rate", "0.19"))
            shipping_info = {
                "shippingMethodName": spec.get("name", "Standard"),
                "price": cent(ship_price),
                "shippingRate": {"price": cent(ship_price), "tiers": []},
                "shippingMethod": {"typeId": "shipping-method", "id": "sandbox-standard"},
                "shippingMethodState": "MatchesCart",
                "deliveries": [],
            }
            if spec.get("discounted_price") is not None:
                shipping_info["discountedPrice"] = {
                    "value": cent(effective),
                    "includedDiscounts": [{"discount": {"typeId": "cart-discount", "id": "sandbox-shipping-discount"},
                                           "discountedAmount": cent(ship_price - effective)}],
                }
            if tax_rate:
                shipping_info["taxRate"], shipping_info["taxedPrice"] = tax_rate, taxed_price
            shipping_taxed = taxed_price

        total_tax = sum(portions.values(), Decimal(0))
        self.order_sequence += 1
        moment = self.now()
        order_id = f.get("id") or str(uuid.uuid4())
        address = {"firstName": f.get("first_name", "Ada"), "lastName": f.get("last_name", "Buyer"),
                   "streetName": "Hauptstrasse", "streetNumber": "1", "postalCode": "10115", "city": "Berlin",
                   "country": country}
        order = {
            "id": order_id,
            "version": 1,
            "orderNumber": f.get("order_number") or f"CT-{10000 + self.order_sequence}",
            "customerEmail": f.get("customer_email", "buyer@example.com"),
            "createdAt": f.get("created_at") or moment,
            "lastModifiedAt": f.get("last_modified_at") or moment,
            "lineItems": line_items,
            "customLineItems": custom_line_items,
            "totalPrice": cent(total_net),
            "taxedPrice": {
                "totalNet": cent(total_net),
                "totalGross": cent(total_net + total_tax),
                "totalTax": cent(total_tax),
                "taxPortions": [{"name": name, "rate": float(rate), "amount": cent(amount)}
                                for (name, rate), amount in portions.items()],
            },
            "shippingAddress": address,
            "billingAddress": dict(address),
            "orderState": f.get("order_state", "Open"),
            "taxMode": "Platform",
            "priceRoundingMode": "HalfEven",
            "taxRoundingMode": "HalfEven",
            "taxCalculationMode": "LineItemLevel",
            "inventoryMode": "None",
            "shippingMode": "Single",
            "shipping": [],
            "origin": "Customer",
            "syncInfo": [],
            "refusedGifts": [],
            "itemShippingAddresses": [],
            "lastMessageSequenceNumber": 0,
        }
        if f.get("customer_id"):
            order["customerId"] = f["customer_id"]
        if f.get("payment_state"):
            order["paymentState"] = f["payment_state"]
        if shipping_info:
            order["shippingInfo"] = shipping_info
        if shipping_taxed:
            order["taxedShippingPrice"] = copy.deepcopy(shipping_taxed)
        return order

    def dispatch(self, request: Request) -> Response:
        """Route like the real API: path parameters URL-decoded, and every error an ErrorResponse
        (unknown route 404 ResourceNotFound, wrong method 405, malformed body 400 InvalidJsonInput)."""
        with self.lock:
            self.requests_seen.append((request.method, request.path))
            self.queries_seen.append((request.path, request.query))
        allowed: list[str] = []
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                if method not in allowed:
                    allowed.append(method)
                continue
            request.params = {name: unquote(value) for name, value in match.groupdict().items() if value is not None}
            try:
                return handler(request)
            except InvalidJson as exc:
                return _invalid_json(str(exc))
            except Exception as exc:  # a sandbox bug: answered as the platform answers its own (code General)
                return _error(500, "General", f"Sandbox error: {exc!r}")
        if allowed:
            response = _error(405, "MethodNotAllowed",
                              f"The method {request.method} is not allowed for {request.path}; allowed: "
                              f"{', '.join(allowed)}.")
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return _error(404, "ResourceNotFound", f"The Resource at {request.path} was not found.")

    # --- routes ------------------------------------------------------------------------------

    def register_routes(self) -> None:
        self.route("POST", "/auth/oauth/token", self.token)
        self.route("POST", "/_sandbox/reset", self.admin_reset)
        self.route("POST", "/_sandbox/seed-demo", self.admin_seed_demo)
        self.route("POST", "/_sandbox/api-clients", self.admin_api_client)
        self.route("POST", "/_sandbox/orders", self.admin_create_order)
        self.route("POST", "/_sandbox/orders/(?P<id>[^/]+)/payment-state", self.admin_payment_state)
        # Payments queried by interfaceId / transactions' interactionId (what a PSP's settlement report names).
        self.route("GET", r"/(?P<project>[^/_][^/]*)/payments", self._api(self.query, "payments"))
        self.route("GET", "/_sandbox/stats", self.admin_stats)
        self.route("GET", r"/(?P<project>[^/_][^/]*)/payments/(?P<id>[^/]+)", self._api(self.get, "payments"))
        self.register_subscription_routes()
        self.register_product_routes()  # products, and product-projections?staged=true (ct_products)
        project = r"/(?P<project>[^/_][^/]*)"
        for resource in ("product-projections", "orders", "customers", "channels", "inventory"):
            base = f"{project}/{resource}"
            methods = ("GET",) if resource == "product-projections" else ("GET", "POST")
            self.route("GET", base, self._api(self.query, resource))
            if "POST" in methods:
                self.route("POST", base, self._api(self.create, resource))
            # The lookup routes go first: `key=…` would otherwise be read as an id.
            prefix, field = LOOKUPS[resource]
            for method in methods:
                handler = self.get if method == "GET" else self.update
                self.route(method, f"{base}/{prefix}=(?P<lookup>[^/]+)", self._api(handler, resource, field))
            for method in methods:
                handler = self.get if method == "GET" else self.update
                self.route(method, f"{base}/(?P<id>[^/]+)", self._api(handler, resource))

    def _api(self, handler, resource: str, by: str | None = None):
        """Guard one API route: a live Bearer token (401), a scope that reaches it (403), the project (404),
        the rate limit (429); then `handler(request, resource, by)`."""

        def guarded(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            with self.lock:
                expiry = self.tokens.get(token)
                granted = self.token_scopes.get(token, frozenset())
            if not token:
                return self._unauthorized("Authorization header missing or not a Bearer token.")
            if expiry is None or expiry < time.time():
                return self._unauthorized("The access token provided is invalid or expired.")
            project = request.params.get("project", "")
            needed = [f"{name}:{project}" for name in ROUTE_SCOPES[(resource, request.method)]]
            if not any(_grants(held, wanted) for held in granted for wanted in needed):
                return _auth_error(403, "insufficient_scope",
                                   f"Insufficient scope. One of the following scopes is missing: {', '.join(needed)}")
            if project != self.project_key:
                return _error(404, "ResourceNotFound", f"The project '{project}' was not found.")
            wait = self.limiter.check(token)
            if wait is not None:
                response = _error(429, "TooManyRequests", "Too many requests.")
                response.headers["Retry-After"] = str(max(1, round(wait)))
                return response
            return handler(request, resource, by) if by else handler(request, resource)

        return guarded

    @staticmethod
    def _unauthorized(message: str) -> Response:
        return _auth_error(401, "invalid_token", message, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def token(self, request: Request) -> Response:
        """Client credentials: HTTP Basic client_id:client_secret, grant_type and scope as form fields (or
        query parameters). The scope asked for must be held by the client; none asked means all it holds."""
        header = request.headers.get("authorization", "")
        client_id = client_secret = ""
        if header.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except ValueError:
                pass
        with self.lock:
            secret, held = self.api_clients.get(client_id, (None, frozenset()))
        if secret is None or not secrets.compare_digest(secret.encode(), client_secret.encode()):
            return _auth_error(401, "invalid_client",
                               "Please provide valid client credentials using HTTP Basic Authentication.",
                               {"WWW-Authenticate": 'Basic realm="commercetools"'})
        form = {k: v[0] for k, v in request.query.items()}
        form.update({k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()})
        if form.get("grant_type") != "client_credentials":
            return _auth_error(400, "unsupported_grant_type",
                               f"Unsupported grant type '{form.get('grant_type', '')}'; use client_credentials.")
        wanted = form.get("scope", "").split() or sorted(held)
        refused = [scope for scope in wanted
                   if not (m := _SCOPE.match(scope)) or m["name"] not in SCOPE_NAMES
                   or not any(_grants(h, scope) for h in held)]
        if refused:
            return _auth_error(400, "invalid_scope",
                               f"The client '{client_id}' does not hold the requested scopes: {' '.join(refused)}")
        access_token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access_token] = time.time() + self.token_ttl
            self.token_scopes[access_token] = frozenset(wanted)
            self.tokens_issued += 1
        return Response.json({"access_token": access_token, "token_type": "Bearer", "expires_in": self.token_ttl,
                              "scope": " ".join(wanted)})

    def _store(self, resource: str) -> dict[str, dict]:
        return {"orders": self.orders, "customers": self.customers, "channels": self.channels,
                "inventory": self.inventory, "product-projections": self.products,
                "payments": self.payments}[resource]

    def _expand(self, resource: dict, paths: list[str]) -> dict:
        """Reference Expansion for `lineItems[*].supplyChannel`-style paths onto channels and customers."""
        if not paths:
            return resource
        resource = copy.deepcopy(resource)
        stores = {"channel": self.channels, "customer": self.customers, "order": self.orders,
                  **self.product_ref_stores()}

        def walk(node, parts):
            if not parts or node is None:
                return
            part, rest = parts[0], parts[1:]
            many = part.endswith("[*]")
            name = part[:-3] if many else part
            child = node.get(name) if isinstance(node, dict) else None
            for item in (child or []) if many else [child]:
                if not isinstance(item, dict):
                    continue
                if rest:
                    walk(item, rest)
                elif "typeId" in item and item.get("id") in stores.get(item["typeId"], {}):
                    item["obj"] = copy.deepcopy(stores[item["typeId"]][item["id"]])

        for path in paths:
            walk(resource, path.split("."))
        return resource

    def query(self, request: Request, resource: str) -> Response:
        try:
            limit = int(request.arg("limit", str(DEFAULT_LIMIT)))
            offset = int(request.arg("offset", "0"))
        except ValueError:
            return _error(400, "InvalidInput", "limit and offset must be integers.")
        if not 0 <= limit <= MAX_LIMIT:
            return _error(400, "InvalidInput", f"limit: the value must be between 0 and {MAX_LIMIT}.")
        if not 0 <= offset <= MAX_OFFSET:
            return _error(400, "InvalidInput", f"offset: the value must be between 0 and {MAX_OFFSET}.")
        with_total = request.arg("withTotal", "true").lower() != "false"
        try:
            with self.lock:
                items = list(self._store(resource).values())
                wheres = request.query.get("where", [])
                if wheres:
                    predicate = parse_predicates(wheres)
                    items = [item for item in items if predicate(item)]
                # Without sort the real API answers in an unspecified order; we keep insertion order.
                items = sort_resources(items, request.query.get("sort", []))
                page = [self._expand(i, request.query.get("expand", [])) for i in items[offset:offset + limit]]
        except PredicateError as exc:
            return _error(400, "InvalidInput", f"Malformed parameter: where/sort: {exc}")
        body = {"limit": limit, "offset": offset, "count": len(page), "results": page}
        if with_total:
            body["total"] = len(items)
        return Response.json(body)

    def _find(self, request: Request, resource: str, by: str | None) -> tuple[dict | None, Response | None]:
        """The resource the URL addresses (by id, key or order number), or a 404 ResourceNotFound."""
        store = self._store(resource)
        if by is None:
            item, label, value = store.get(request.params["id"]), "ID", request.params["id"]
        else:
            value = request.params["lookup"]
            item = next((i for i in store.values() if i.get(by) == value), None)
            label = {"orderNumber": "order number"}.get(by, by)
        if item is None:
            return None, _error(404, "ResourceNotFound", f"The Resource with {label} '{value}' was not found.")
        return item, None

    def get(self, request: Request, resource: str, by: str | None = None) -> Response:
        with self.lock:
            item, missing = self._find(request, resource, by)
            if missing:
                return missing
            return Response.json(self._expand(item, request.query.get("expand", [])))

    def create(self, request: Request, resource: str) -> Response:
        draft = _json_object(request)
        if resource == "customers":
            email = _field(draft, "email", str)
            extra = {k: draft[k] for k in ("key", "externalId", "addresses", "customerNumber") if k in draft}
            try:
                customer = self.create_customer(email=email, first_name=_field(draft, "firstName", str, required=False,
                                                                               default=""),
                                                last_name=_field(draft, "lastName", str, required=False, default=""),
                                                **extra)
            except ValueError:
                return _error(400, "DuplicateField", "There is already an existing customer with the provided email.",
                              field="email", duplicateValue=email)
            return Response.json({"customer": customer}, 201)
        if resource == "channels":
            key = _field(draft, "key", str)
            if self.channel_by_key(key):
                return _error(400, "DuplicateField", f"A duplicate value '\"{key}\"' exists for field 'key'.",
                              field="key", duplicateValue=key)
            name = draft.get("name", {})
            roles = _field(draft, "roles", list, required=False, default=["InventorySupply"])
            channel = self.create_channel(key=key, name=name.get("en", "") if isinstance(name, dict) else str(name),
                                          roles=roles)
            return Response.json(channel, 201)
        if resource == "inventory":
            sku = _field(draft, "sku", str)
            quantity = _field(draft, "quantityOnStock", int, required=False, default=0)
            channel_ref = _field(draft, "supplyChannel", dict, required=False, default={})
            channel_id = channel_ref.get("id")
            if channel_ref.get("key"):
                channel = self.channel_by_key(channel_ref["key"])
                channel_id = channel["id"] if channel else None
            if channel_ref and channel_id not in self.channels:
                return _error(400, "ReferencedResourceNotFound", "The referenced channel was not found.",
                              typeId="channel")
            with self.lock:
                for entry in self.inventory.values():
                    if entry["sku"] == sku and entry.get("supplyChannel", {}).get("id") == channel_id:
                        return _error(400, "DuplicateField", "An inventory entry for this sku and channel exists.",
                                      field="sku")
            entry = self.create_inventory_entry(sku=sku, channel_id=channel_id, quantity_on_stock=quantity,
                                                key=_field(draft, "key", str, required=False))
            return Response.json(entry, 201)
        return _error(400, "InvalidOperation", f"Creating {resource} through this sandbox is not supported; "
                                                "use the admin endpoint.")

    def update(self, request: Request, resource: str, by: str | None = None) -> Response:
        body = _json_object(request)
        version = _field(body, "version", int)
        actions = _field(body, "actions", list)
        for n, action in enumerate(actions):
            if not isinstance(action, dict) or not isinstance(action.get("action"), str):
                raise InvalidJson(f"actions[{n}]: expected an object with an 'action' name.")
        with self.lock:
            item, missing = self._find(request, resource, by)
            if missing:
                return missing
            if version != item["version"]:
                message = (f"Object {item['id']} has a different version than expected. "
                           f"Expected: {version} - Actual: {item['version']}.")
                return _error(409, "ConcurrentModification", message, currentVersion=item["version"])
            updated = copy.deepcopy(item)
            reserved = self.reserved.get(item["id"], 0)
            messages: list[tuple[str, dict]] = []
            for action in actions:
                name = action["action"]
                if resource == "orders" and name in DELIVERY_ACTIONS:
                    refused = self._delivery_action(updated, action, messages)
                    if refused is not None:
                        return refused
                    continue
                if resource == "inventory" and name in ("addQuantity", "removeQuantity", "changeQuantity"):
                    quantity = action.get("quantity")
                    if not isinstance(quantity, int) or isinstance(quantity, bool):
                        return _error(400, "InvalidField", "quantity must be an integer.", field="quantity")
                    if name == "addQuantity":
                        updated["quantityOnStock"] += quantity
                    elif name == "removeQuantity":
                        updated["quantityOnStock"] -= quantity
                    else:
                        updated["quantityOnStock"] = quantity
                    # Reservations stay: only quantityOnStock moves, availableQuantity follows it.
                    updated["availableQuantity"] = updated["quantityOnStock"] - reserved
                elif resource == "orders" and name == "changePaymentState":
                    updated["paymentState"] = self._enum(action, "paymentState", PAYMENT_STATES)
                elif resource == "orders" and name == "changeOrderState":
                    updated["orderState"] = self._enum(action, "orderState", ORDER_STATES)
                else:
                    return _error(400, "InvalidInput", f"Unknown update action '{name}' for {resource}.")
            old_payment = item.get("paymentState")
            item.clear()
            item.update(updated)
            self._bump(item)
            if resource == "orders" and item.get("paymentState") != old_payment:
                self._message(item, "OrderPaymentStateChanged", paymentState=item["paymentState"],
                              oldPaymentState=old_payment)
            for message_type, payload in messages:
                self._message(item, message_type, **payload)
            return Response.json(copy.deepcopy(item))

    # --- deliveries: addDelivery, addParcelToDelivery, setDeliveryItems, changeShipmentState --------

    def _delivery_items(self, order: dict, items, where: str) -> tuple[list[dict] | None, Response | None]:
        if items is None:
            return [], None
        if not isinstance(items, list):
            raise InvalidJson(f"{where}.items: expected an array of DeliveryItem.")
        known = {line["id"] for line in order.get("lineItems") or []} | {
            line["id"] for line in order.get("customLineItems") or []}
        out = []
        for n, entry in enumerate(items):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise InvalidJson(f"{where}.items[{n}]: expected an object with an 'id'.")
            quantity = entry.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                return None, _error(400, "InvalidField", f"{where}.items[{n}].quantity must be a non-negative integer.",
                                    field="quantity", invalidValue=quantity)
            if entry["id"] not in known:
                return None, _error(400, "InvalidInput", f"The order does not contain a line item with id "
                                                         f"'{entry['id']}'.")
            out.append({"id": entry["id"], "quantity": quantity})
        return out, None

    def _parcel(self, order: dict, draft: dict, where: str) -> tuple[dict | None, Response | None]:
        if not isinstance(draft, dict):
            raise InvalidJson(f"{where}: expected a ParcelDraft object.")
        items, refused = self._delivery_items(order, draft.get("items"), where)
        if refused:
            return None, refused
        parcel = {"id": str(uuid.uuid4()), "createdAt": self.now(), "items": items}
        key = draft.get("key", draft.get("parcelKey"))
        if key is not None:
            if not isinstance(key, str) or not _RESOURCE_KEY.match(key):
                return None, _error(400, "InvalidField", f"{where}.key must match [A-Za-z0-9_-]{{2,256}}.", field="key")
            parcel["key"] = key
        tracking = draft.get("trackingData")
        if tracking is not None:
            if not isinstance(tracking, dict):
                raise InvalidJson(f"{where}.trackingData: expected a TrackingData object.")
            parcel["trackingData"] = {k: tracking[k] for k in ("trackingId", "carrier", "provider", "providerTransaction")
                                      if tracking.get(k) is not None}
            parcel["trackingData"]["isReturn"] = bool(tracking.get("isReturn", False))
        if draft.get("measurements") is not None:
            parcel["measurements"] = draft["measurements"]
        return parcel, None

    @staticmethod
    def _find_delivery(order: dict, action: dict) -> dict | None:
        deliveries = (order.get("shippingInfo") or {}).get("deliveries") or []
        if action.get("deliveryId"):
            return next((d for d in deliveries if d["id"] == action["deliveryId"]), None)
        if action.get("deliveryKey"):
            return next((d for d in deliveries if d.get("key") == action["deliveryKey"]), None)
        return None

    def _delivery_action(self, order: dict, action: dict, messages: list) -> Response | None:
        """Apply one delivery action to `order` (a copy); an error Response refuses the whole update."""
        name = action["action"]
        if name == "changeShipmentState":
            old = order.get("shipmentState")
            order["shipmentState"] = self._enum(action, "shipmentState", SHIPMENT_STATES)
            if old != order["shipmentState"]:
                messages.append(("OrderShipmentStateChanged",
                                 {"shipmentState": order["shipmentState"], "oldShipmentState": old}))
            return None
        shipping = order.setdefault("shippingInfo", {"shippingMethodName": "Sandbox delivery", "deliveries": []})
        deliveries = shipping.setdefault("deliveries", [])
        if name == "addDelivery":
            items, refused = self._delivery_items(order, action.get("items"), "addDelivery")
            if refused:
                return refused
            delivery = {"id": str(uuid.uuid4()), "createdAt": self.now(), "items": items, "parcels": []}
            key = action.get("deliveryKey")
            if key is not None:
                if not isinstance(key, str) or not _RESOURCE_KEY.match(key):
                    return _error(400, "InvalidField", "deliveryKey must match [A-Za-z0-9_-]{2,256}.", field="deliveryKey")
                if any(d.get("key") == key for d in deliveries):
                    return _error(400, "DuplicateField", f"A delivery with key '{key}' already exists.",
                                  field="deliveryKey", duplicateValue=key)
                delivery["key"] = key
            for n, draft in enumerate(action.get("parcels") or []):
                parcel, refused = self._parcel(order, draft, f"addDelivery.parcels[{n}]")
                if refused:
                    return refused
                delivery["parcels"].append(parcel)
            deliveries.append(delivery)
            messages.append(("DeliveryAdded", {"delivery": copy.deepcopy(delivery)}))
            return None
        delivery = self._find_delivery(order, action)
        if delivery is None:
            return _error(400, "InvalidOperation", f"{name}: the order has no delivery "
                                                   f"{action.get('deliveryId') or action.get('deliveryKey')!r}.")
        if name == "addParcelToDelivery":
            draft = {k: action[k] for k in ("trackingData", "items", "measurements") if k in action}
            if "parcelKey" in action:
                draft["key"] = action["parcelKey"]
            parcel, refused = self._parcel(order, draft, "addParcelToDelivery")
            if refused:
                return refused
            if parcel.get("key") and any(p.get("key") == parcel["key"] for d in deliveries for p in d["parcels"]):
                return _error(400, "DuplicateField", f"A parcel with key '{parcel['key']}' already exists.",
                              field="parcelKey", duplicateValue=parcel["key"])
            delivery["parcels"].append(parcel)
            messages.append(("ParcelAddedToDelivery", {"delivery": copy.deepcopy(delivery), "parcel": copy.deepcopy(parcel)}))
            return None
        # setDeliveryItems
        items, refused = self._delivery_items(order, action.get("items"), "setDeliveryItems")
        if refused:
            return refused
        old_items, delivery["items"] = delivery["items"], items
        messages.append(("DeliveryItemsUpdated", {"deliveryId": delivery["id"], "items": items, "oldItems": old_items}))
        return None

    @staticmethod
    def _enum(action: dict, name: str, values: tuple[str, ...]) -> str:
        value = action.get(name)
        if value not in values:
            raise InvalidJson(f"{action['action']}.{name}: {value!r} is not one of {', '.join(values)}.")
        return value

    # --- admin endpoints (a sandbox in another process) --------------------------------------

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"ok": True})

    def admin_seed_demo(self, request: Request) -> Response:
        self.seed_demo()
        return Response.json({"channels": sorted(c["key"] for c in self.channels.values())})

    def admin_api_client(self, request: Request) -> Response:
        """{"id", "secret", "scope": "view_orders:ledgerline-demo …"}: an API Client with those scopes."""
        body = _json_object(request)
        try:
            client = self.add_api_client(_field(body, "id", str), _field(body, "secret", str),
                                         _field(body, "scope", str).split())
        except ValueError as exc:
            if isinstance(exc, InvalidJson):
                raise
            return _error(400, "InvalidInput", str(exc))
        return Response.json(client, 201)

    def admin_create_order(self, request: Request) -> Response:
        fields = _json_object(request, allow_empty=True)
        if "paymentState" in fields:
            fields["payment_state"] = fields.pop("paymentState")
        try:
            return Response.json(self.create_order(**fields), 201)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "InvalidInput", f"cannot build order: {exc}")

    def admin_payment_state(self, request: Request) -> Response:
        state = _json_object(request, allow_empty=True).get("paymentState", "Paid")
        if request.params["id"] not in self.orders:
            return _error(404, "ResourceNotFound", f"The Resource with ID '{request.params['id']}' was not found.")
        return Response.json(self.set_payment_state(request.params["id"], state))

    def admin_stats(self, request: Request) -> Response:
        with self.lock:
            return Response.json({
                "orders": len(self.orders),
                "customers": len(self.customers),
                "channels": len(self.channels),
                "inventory_entries": len(self.inventory),
                "products": len(self.product_records),  # published or not (ct_products)
                "published_products": len(self.products),
                "reserved_units": sum(self.reserved.values()),
                "tokens_issued": self.tokens_issued,
                "messages": len(self.messages),
                "rate_limited": self.limiter.rejected,
                "requests": len(self.requests_seen),
            })
