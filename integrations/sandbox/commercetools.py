"""A commercetools stand-in: OAuth client credentials, Orders, Customers, Channels and Inventory.

Served at /commercetools: the HTTP API at /commercetools/{projectKey}/…, the token endpoint at
/commercetools/auth/oauth/token, admin endpoints for a sandbox in another process at
/commercetools/_sandbox/…. Shapes follow the documented HTTP API (PagedQueryResponse, typed Money,
ConcurrentModification errors); `where` takes a real subset of the Query Predicate language.
Inventory keeps reservations like the real platform: availableQuantity = quantityOnStock − reserved.
"""
from __future__ import annotations

import base64
import copy
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import parse_qs

from integrations.domain import currency_exponent, format_percent

from .ct_predicates import PredicateError, parse_predicates, sort_resources
from .server import RateLimiter, Request, Response, VendorApp

MAX_LIMIT = 500
MAX_OFFSET = 10000
DEFAULT_LIMIT = 20


def _error(status: int, code: str, message: str, **extra) -> Response:
    body = {"statusCode": status, "message": message, "errors": [{"code": code, "message": message, **extra}]}
    return Response.json(body, status)


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


class CommercetoolsSandbox(VendorApp):
    prefix = "/commercetools"
    token_ttl = 172800  # seconds, as the real auth service grants for client credentials

    def __init__(
        self,
        ct_project_key: str = "ledgerline-demo",
        ct_client_id: str = "sandbox-client",
        ct_client_secret: str = "sandbox-secret",
        ct_rate_limit: float = 0,
        **_ignored,
    ):
        self.project_key = ct_project_key
        self.client_id = ct_client_id
        self.client_secret = ct_client_secret
        self.rate_limit = ct_rate_limit
        super().__init__()
        self.reset()

    # --- state -------------------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
            self.tokens_issued = 0
            self.orders: dict[str, dict] = {}
            self.customers: dict[str, dict] = {}
            self.channels: dict[str, dict] = {}
            self.inventory: dict[str, dict] = {}
            self.products: dict[str, dict] = {}  # published ProductProjections by id
            self.reserved: dict[str, int] = {}  # inventory entry id -> quantity held by open checkouts
            self.messages: list[dict] = []  # Subscription deliveries that would have been sent
            self.order_sequence = 0
            self.limiter = RateLimiter(self.rate_limit)
            self.requests_seen = []
            self.queries_seen: list[tuple[str, dict[str, list[str]]]] = []  # (path, query) of each API call
            self._last_moment = datetime.now(timezone.utc) - timedelta(days=1)

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
                               channel_id: str | None = None) -> dict:
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
            name = f"Standard {country} {format_percent(rate)}%" if rate else f"Zero {country}"
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
        with self.lock:
            self.queries_seen.append((request.path, request.query))
        return super().dispatch(request)

    # --- routes ------------------------------------------------------------------------------

    def register_routes(self) -> None:
        self.route("POST", "/auth/oauth/token", self.token)
        self.route("POST", "/_sandbox/reset", self.admin_reset)
        self.route("POST", "/_sandbox/seed-demo", self.admin_seed_demo)
        self.route("POST", "/_sandbox/orders", self.admin_create_order)
        self.route("POST", "/_sandbox/orders/(?P<id>[^/]+)/payment-state", self.admin_payment_state)
        self.route("GET", "/_sandbox/stats", self.admin_stats)
        project = r"/(?P<project>[^/_][^/]*)"
        self.route("GET", f"{project}/product-projections", self._api(self.query, "product-projections"))
        self.route("GET", f"{project}/product-projections/(?P<id>[^/]+)", self._api(self.get, "product-projections"))
        for resource in ("orders", "customers", "channels", "inventory"):
            self.route("GET", f"{project}/{resource}", self._api(self.query, resource))
            self.route("POST", f"{project}/{resource}", self._api(self.create, resource))
            self.route("GET", f"{project}/{resource}/(?P<id>[^/]+)", self._api(self.get, resource))
            self.route("POST", f"{project}/{resource}/(?P<id>[^/]+)", self._api(self.update, resource))

    def _api(self, handler, resource: str):
        def guarded(request: Request) -> Response:
            if request.params.get("project") != self.project_key:
                return _error(404, "ResourceNotFound", f"The project '{request.params.get('project')}' was not found.")
            header = request.headers.get("authorization", "")
            token = header[7:] if header.lower().startswith("bearer ") else ""
            with self.lock:
                expiry = self.tokens.get(token)
            if not token:
                return self._unauthorized("Authorization header missing or not a Bearer token.")
            if expiry is None or expiry < time.time():
                return self._unauthorized("The access token provided is invalid or expired.")
            wait = self.limiter.check(token)
            if wait is not None:
                return Response.json(
                    {"statusCode": 429, "message": "Too many requests.",
                     "errors": [{"code": "TooManyRequests", "message": "Too many requests."}]},
                    429,
                    {"Retry-After": str(max(1, round(wait)))},
                )
            return handler(request, resource)

        return guarded

    @staticmethod
    def _unauthorized(message: str) -> Response:
        body = {"statusCode": 401, "message": message, "errors": [{"code": "invalid_token", "message": message}],
                "error": "invalid_token", "error_description": message}
        return Response.json(body, 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'})

    def token(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        client_id = client_secret = ""
        if header.lower().startswith("basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                pass
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            body = {"statusCode": 401, "message": "Please provide valid client credentials using HTTP Basic Authentication.",
                    "errors": [{"code": "invalid_client", "message": "Please provide valid client credentials."}],
                    "error": "invalid_client"}
            return Response.json(body, 401)
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return Response.json({"statusCode": 400, "message": "Unsupported grant type.", "error": "unsupported_grant_type",
                                  "errors": [{"code": "unsupported_grant_type", "message": "Unsupported grant type."}]}, 400)
        scope = form.get("scope") or f"manage_project:{self.project_key}"
        access_token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access_token] = time.time() + self.token_ttl
            self.tokens_issued += 1
        return Response.json({"access_token": access_token, "token_type": "Bearer", "expires_in": self.token_ttl,
                              "scope": scope})

    def _store(self, resource: str) -> dict[str, dict]:
        return {"orders": self.orders, "customers": self.customers, "channels": self.channels,
                "inventory": self.inventory, "product-projections": self.products}[resource]

    def _expand(self, resource: dict, paths: list[str]) -> dict:
        """Reference Expansion for `lineItems[*].supplyChannel`-style paths onto channels and customers."""
        if not paths:
            return resource
        resource = copy.deepcopy(resource)
        stores = {"channel": self.channels, "customer": self.customers, "order": self.orders}

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

    def get(self, request: Request, resource: str) -> Response:
        with self.lock:
            item = self._store(resource).get(request.params["id"])
            if item is None:
                return _error(404, "ResourceNotFound", f"The Resource with ID '{request.params['id']}' was not found.")
            return Response.json(self._expand(item, request.query.get("expand", [])))

    def create(self, request: Request, resource: str) -> Response:
        draft = request.json() or {}
        try:
            if resource == "customers":
                if not draft.get("email"):
                    return _error(400, "InvalidJsonInput", "Request body does not contain valid JSON: email missing.")
                extra = {k: draft[k] for k in ("key", "externalId", "addresses", "customerNumber") if k in draft}
                try:
                    customer = self.create_customer(email=draft["email"], first_name=draft.get("firstName", ""),
                                                    last_name=draft.get("lastName", ""), **extra)
                except ValueError:
                    return _error(400, "DuplicateField", "There is already an existing customer with the provided email.",
                                  field="email", duplicateValue=draft["email"])
                return Response.json({"customer": customer}, 201)
            if resource == "channels":
                if self.channel_by_key(draft.get("key", "")):
                    return _error(400, "DuplicateField", f"A duplicate value '\"{draft['key']}\"' exists for field 'key'.",
                                  field="key", duplicateValue=draft["key"])
                name = draft.get("name", {})
                channel = self.create_channel(key=draft["key"], name=name.get("en", "") if isinstance(name, dict) else name,
                                              roles=draft.get("roles", ["InventorySupply"]))
                return Response.json(channel, 201)
            if resource == "inventory":
                channel_ref = draft.get("supplyChannel") or {}
                channel_id = channel_ref.get("id")
                if channel_ref.get("key"):
                    channel = self.channel_by_key(channel_ref["key"])
                    channel_id = channel["id"] if channel else None
                if channel_ref and channel_id not in self.channels:
                    return _error(400, "ReferencedResourceNotFound", "The referenced channel was not found.",
                                  typeId="channel")
                with self.lock:
                    for entry in self.inventory.values():
                        if entry["sku"] == draft.get("sku") and entry.get("supplyChannel", {}).get("id") == channel_id:
                            return _error(400, "DuplicateField", "An inventory entry for this sku and channel exists.",
                                          field="sku")
                entry = self.create_inventory_entry(sku=draft["sku"], channel_id=channel_id,
                                                    quantity_on_stock=int(draft.get("quantityOnStock", 0)))
                return Response.json(entry, 201)
        except KeyError as exc:
            return _error(400, "InvalidJsonInput", f"Request body does not contain valid JSON: missing {exc}.")
        return _error(400, "InvalidOperation", f"Creating {resource} through this sandbox is not supported; "
                                                "use the admin endpoint.")

    def update(self, request: Request, resource: str) -> Response:
        body = request.json() or {}
        if not isinstance(body.get("version"), int) or not isinstance(body.get("actions"), list):
            return _error(400, "InvalidJsonInput", "Request body must contain version and actions.")
        with self.lock:
            item = self._store(resource).get(request.params["id"])
            if item is None:
                return _error(404, "ResourceNotFound", f"The Resource with ID '{request.params['id']}' was not found.")
            if body["version"] != item["version"]:
                message = (f"Object {item['id']} has a different version than expected. "
                           f"Expected: {body['version']} - Actual: {item['version']}.")
                return _error(409, "ConcurrentModification", message, currentVersion=item["version"])
            updated = copy.deepcopy(item)
            reserved = self.reserved.get(item["id"], 0)
            for action in body["actions"]:
                name = action.get("action")
                if resource == "inventory" and name in ("addQuantity", "removeQuantity", "changeQuantity"):
                    quantity = action.get("quantity")
                    if not isinstance(quantity, int):
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
                    updated["paymentState"] = action["paymentState"]
                elif resource == "orders" and name == "changeOrderState":
                    updated["orderState"] = action["orderState"]
                else:
                    return _error(400, "InvalidInput", f"Unknown update action '{name}' for {resource}.")
            old_payment = item.get("paymentState")
            item.clear()
            item.update(updated)
            self._bump(item)
            if resource == "orders" and item.get("paymentState") != old_payment:
                self._message(item, "OrderPaymentStateChanged", paymentState=item["paymentState"],
                              oldPaymentState=old_payment)
            return Response.json(copy.deepcopy(item))

    # --- admin endpoints (a sandbox in another process) --------------------------------------

    def admin_reset(self, request: Request) -> Response:
        self.reset()
        return Response.json({"ok": True})

    def admin_seed_demo(self, request: Request) -> Response:
        self.seed_demo()
        return Response.json({"channels": sorted(c["key"] for c in self.channels.values())})

    def admin_create_order(self, request: Request) -> Response:
        fields = request.json() or {}
        if "paymentState" in fields:
            fields["payment_state"] = fields.pop("paymentState")
        try:
            return Response.json(self.create_order(**fields), 201)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "InvalidInput", f"cannot build order: {exc}")

    def admin_payment_state(self, request: Request) -> Response:
        state = (request.json() or {}).get("paymentState", "Paid")
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
                "reserved_units": sum(self.reserved.values()),
                "tokens_issued": self.tokens_issued,
                "messages": len(self.messages),
                "rate_limited": self.limiter.rejected,
                "requests": len(self.requests_seen),
            })
