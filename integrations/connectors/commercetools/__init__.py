"""The commercetools HTTP API client: OAuth client credentials, orders by cursor, customers, channels
and inventory with optimistic concurrency, and the translation of an Order into a StorefrontOrder.
"""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from decimal import ROUND_HALF_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Iterator
from urllib.parse import quote, urlsplit

import requests

from integrations.domain import OrderLine, StorefrontOrder, TaxLine, currency_exponent, round_to_currency

from ..base import (
    Conflict,
    NotFound,
    PermanentError,
    RateLimited,
    RetryingClient,
    TransientError,
    parse_retry_after,
)
from ..catalogue import PUBLISH_PRODUCTS

ORDER_EXPAND = ("lineItems[*].supplyChannel",)

# What Ledgerline does in a project, in the scopes the HTTP API reference asks for: read orders and record
# their deliveries and shipment state (fulfilment.py; manage_orders includes view_orders), find and
# create customers, read channels and products and move inventory (inventory needs manage_products).
LEDGERLINE_SCOPES = ("manage_orders", "manage_customers", "manage_products")

_SCOPE_IN_TEXT = re.compile(r"\b[a-z]+(?:_[a-z]+)+:[A-Za-z0-9_-]+(?::[A-Za-z0-9_-]+)?")


def ledgerline_scope(project_key: str) -> str:
    """The least-privilege scope to ask a token for, when no scope is configured."""
    return " ".join(f"{name}:{project_key}" for name in LEDGERLINE_SCOPES)


class AuthenticationFailed(PermanentError):
    """The client credentials or the token were refused (401)."""


class MissingScope(PermanentError):
    """The API client does not hold a scope the call needs: `invalid_scope` from the token endpoint (the
    scope asked for is not the client's) or 403 `insufficient_scope` from the API. Retrying will not
    help; someone must grant the scope to the API client (or ask for it in COMMERCETOOLS["scope"])."""

    def __init__(self, message: str, *, scopes: tuple[str, ...] = (), **kw):
        super().__init__(message, **kw)
        self.scopes = scopes


class ConcurrentModification(Conflict):
    """409 ConcurrentModification: the resource moved on; re-read it at `current_version` and retry."""

    def __init__(self, message: str, *, current_version: int | None, **kw):
        super().__init__(message, **kw)
        self.current_version = current_version


def _quote(value: str) -> str:
    """A string literal for a Query Predicate."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _after(cursor: tuple[str, str], previous: tuple[str, str]) -> bool:
    """Is (lastModifiedAt, id) strictly after the previous cursor? Timestamps compared as instants."""
    (t, i), (pt, pi) = cursor, previous
    try:
        t, pt = datetime.fromisoformat(t.replace("Z", "+00:00")), datetime.fromisoformat(pt.replace("Z", "+00:00"))
    except ValueError:
        pass  # compare the strings as sent
    return (t, i) > (pt, pi)


def _first_error(body) -> dict:
    if isinstance(body, dict) and body.get("errors"):
        return body["errors"][0] or {}
    return {}


class CommercetoolsClient(RetryingClient):
    # Storefront capabilities (integrations.connectors.base.supports): products and prices from the item
    # master (catalogue_write.py).
    capabilities = frozenset({PUBLISH_PRODUCTS})

    def __init__(
        self,
        api_url: str,
        auth_url: str,
        project_key: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        connection_settings: dict | None = None,
        **retry_kwargs,
    ):
        super().__init__(**retry_kwargs)
        # The connection's own settings (language, product_type, price_precision, …) for catalogue_write.
        self.connection_settings = dict(connection_settings or {})
        self.api_url = api_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.project_key = project_key
        self.client_id = client_id
        self.client_secret = client_secret
        # What the token asks for: COMMERCETOOLS["scope"], else only what Ledgerline uses (a client holding
        # manage_project may still grant those narrower scopes).
        self.scope = scope or ledgerline_scope(project_key)
        self._token = ""
        self._token_valid_until = 0.0
        self._token_lock = threading.Lock()
        self.tokens_fetched = 0

    @classmethod
    def from_settings(cls, **overrides) -> "CommercetoolsClient":
        from django.conf import settings

        conf = settings.COMMERCETOOLS
        options = {
            "api_url": conf["api_url"],
            "auth_url": conf["auth_url"],
            "project_key": conf["project_key"],
            "client_id": conf["client_id"],
            "client_secret": conf["client_secret"],
            "scope": conf.get("scope", ""),
        }
        for name in ("timeout", "max_attempts", "backoff_base", "backoff_max"):
            if name in conf:
                options[name] = conf[name]
        options.update(overrides)
        return cls(**options)

    # --- transport ---------------------------------------------------------------------------

    def classify(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        error = _first_error(body)
        code = error.get("code") or (body.get("error", "") if isinstance(body, dict) else "")
        message = (body.get("message") if isinstance(body, dict) else "") or error.get("message") or str(body)
        text = f"commercetools {status} {code}: {message}"
        if error.get("detailedErrorMessage"):  # InvalidJsonInput says what was wrong only here
            text += f" ({error['detailedErrorMessage']})"
        if code in ("invalid_scope", "insufficient_scope"):
            raise self._missing_scope(response, status, code, body, message)
        if status == 429:
            raise RateLimited(text, status=status, code=code, body=body,
                              retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransientError(text, status=status, code=code, body=body)
        if status == 401:
            raise AuthenticationFailed(text, status=status, code=code, body=body)
        if status == 404:
            raise NotFound(text, status=status, code=code, body=body)
        if status == 409:
            if code == "ConcurrentModification":
                raise ConcurrentModification(text, status=status, code=code, body=body,
                                             current_version=error.get("currentVersion"))
            raise Conflict(text, status=status, code=code, body=body)
        raise PermanentError(text, status=status, code=code, body=body)

    def _missing_scope(self, response: requests.Response, status: int, code: str, body, message: str) -> MissingScope:
        """A MissingScope naming the scope: as the error lists it, else (token endpoint) what was asked for."""
        texts = [message]
        if isinstance(body, dict):
            texts.append(str(body.get("error_description") or ""))
            texts += [str(e.get("message") or "") for e in body.get("errors") or [] if isinstance(e, dict)]
        scopes = tuple(dict.fromkeys(_SCOPE_IN_TEXT.findall(" ".join(texts))))
        if code == "invalid_scope":
            scopes = scopes or tuple(self.scope.split())
            where = "the token endpoint would not grant it"
        else:
            where = f"needed for {response.request.method} {urlsplit(response.request.url).path}"
        named = " or ".join(scopes) if scopes else "a scope"
        return MissingScope(f"commercetools client lacks scope {named} ({where}; commercetools says: {message})",
                            status=status, code=code, body=body, scopes=scopes)

    def access_token(self, *, refresh: bool = False) -> str:
        """The cached token, fetched again shortly before it expires (or when `refresh`)."""
        with self._token_lock:
            if refresh or not self._token or time.monotonic() >= self._token_valid_until:
                data = {"grant_type": "client_credentials"}
                if self.scope:
                    data["scope"] = self.scope
                response = self.request("POST", f"{self.auth_url}/oauth/token", data=data,
                                        auth=(self.client_id, self.client_secret))
                body = response.json()
                expires_in = float(body.get("expires_in") or 0)
                self._token = body["access_token"]
                # Refresh a little early so a request never leaves with a token about to lapse.
                self._token_valid_until = time.monotonic() + expires_in - min(300.0, expires_in / 10)
                self.tokens_fetched += 1
            return self._token

    def api(self, method: str, path: str, *, params=None, json=None) -> dict:
        """Call `{api_url}/{projectKey}/{path}`; a 401 invalid_token refreshes the token once and retries."""
        url = f"{self.api_url}/{self.project_key}/{path.lstrip('/')}"
        token = self.access_token()
        for attempt in (1, 2):
            try:
                response = self.request(method, url, params=params, json=json,
                                        headers={"Authorization": f"Bearer {token}"})
                return response.json()
            except AuthenticationFailed as exc:
                if attempt == 2 or exc.code != "invalid_token":
                    raise
                token = self.access_token(refresh=True)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- orders ------------------------------------------------------------------------------

    def query_orders(self, *, where=None, sort=None, limit: int = 100, offset: int = 0,
                     expand=ORDER_EXPAND, with_total: bool = True) -> dict:
        """One PagedQueryResponse {limit, offset, count, total?, results} of Orders."""
        return self.api("GET", "orders", params=self._query_params(where, sort, limit, offset, expand, with_total))

    @staticmethod
    def _query_params(where, sort, limit, offset, expand=(), with_total=True) -> list[tuple[str, str]]:
        params: list[tuple[str, str]] = []
        for name, values in (("where", where), ("sort", sort), ("expand", expand)):
            if isinstance(values, str):
                values = [values]
            params.extend((name, value) for value in values or ())
        params.append(("limit", str(limit)))
        if offset:
            params.append(("offset", str(offset)))
        if not with_total:
            params.append(("withTotal", "false"))
        return params

    def orders_modified_since(self, last_modified_at: str, last_id: str, page_size: int = 100) -> Iterator[list[dict]]:
        """Pages (lists of Orders) modified after the cursor (lastModifiedAt, id), oldest first.

        Keyset pagination: each page asks for what comes after the last order seen, so ties on
        lastModifiedAt are broken by id and no offset scan ever runs.
        """
        while True:
            where = None
            if last_modified_at:
                t = _quote(last_modified_at)
                where = f"lastModifiedAt > {t} or (lastModifiedAt = {t} and id > {_quote(last_id)})"
            page = self.query_orders(where=where, sort=["lastModifiedAt asc", "id asc"], limit=page_size,
                                     with_total=False)
            results = page.get("results") or []
            if not results:
                return
            yield results
            cursor = (results[-1]["lastModifiedAt"], results[-1]["id"])
            if last_modified_at and not _after(cursor, (last_modified_at, last_id)):
                # A server that ignores the predicate or the sort would page forever.
                raise PermanentError(f"commercetools order cursor did not advance past {last_modified_at} {last_id}")
            last_modified_at, last_id = cursor
            if len(results) < page_size:
                return

    def get_order(self, order_id: str) -> dict:
        return self.api("GET", f"orders/{order_id}", params=[("expand", e) for e in ORDER_EXPAND])

    def get_order_by_number(self, order_number: str) -> dict | None:
        """The Order with this orderNumber, or None. The number goes into the path URL-encoded, as the API
        asks for anything outside [a-zA-Z0-9_-] ("WEB/2024 #7" -> WEB%2F2024%20%237)."""
        try:
            return self.api("GET", f"orders/order-number={quote(order_number, safe='')}",
                            params=[("expand", e) for e in ORDER_EXPAND])
        except NotFound:
            return None

    # --- customers ---------------------------------------------------------------------------

    def find_customers_by_email(self, email: str) -> list[dict]:
        page = self.api("GET", "customers", params=self._query_params(f"email={_quote(email)}", None, 20, 0))
        return page.get("results") or []

    def create_customer(self, *, email: str, first_name: str = "", last_name: str = "", key: str | None = None,
                        external_id: str | None = None, addresses: list[dict] | None = None) -> dict:
        draft: dict = {"email": email, "firstName": first_name, "lastName": last_name}
        if key:
            draft["key"] = key
        if external_id:
            draft["externalId"] = external_id
        if addresses:
            draft["addresses"] = addresses
        return self.api("POST", "customers", json=draft)["customer"]

    # --- products -----------------------------------------------------------------------------

    def list_variants(self, page_size: int = 100) -> Iterator[dict]:
        """Every variant of every published product (current projections), paged by id cursor:
        sku, variant_id, product_id, product_title (for the mapping health panel)."""
        last_id = ""
        while True:
            where = f"id > {_quote(last_id)}" if last_id else None
            params = self._query_params(where, ["id asc"], page_size, 0, with_total=False)
            page = self.api("GET", "product-projections", params=[("staged", "false"), *params])
            results = page.get("results") or []
            for product in results:
                name = product.get("name") or {}
                title = next(iter(name.values()), "") if isinstance(name, dict) else str(name)
                for variant in [product.get("masterVariant") or {}, *(product.get("variants") or [])]:
                    yield {"sku": variant.get("sku") or "", "variant_id": f"{product['id']}/{variant.get('id', '')}",
                           "product_id": product["id"], "product_title": title}
            if len(results) < page_size:
                return
            if results[-1]["id"] <= last_id:
                raise PermanentError("commercetools product cursor did not advance")
            last_id = results[-1]["id"]

    # --- the item master: PUBLISH_PRODUCTS (catalogue_write.py) ---------------------------------

    def publish_products(self, products: list) -> list:
        """Create or update each Product by key and publish it (unpublish a retired one); one PublishResult each."""
        from .catalogue_write import CatalogueWriter

        return CatalogueWriter(self, self.connection_settings).publish_products(products)

    def set_variant_prices(self, sku: str, prices: list) -> None:
        """Put one variant's embedded prices back to the ERP's (restore ERP price), then publish."""
        from .catalogue_write import CatalogueWriter

        CatalogueWriter(self, self.connection_settings).set_variant_prices(sku, prices)

    # --- channels and inventory --------------------------------------------------------------

    def list_channels(self, where: str | None = None) -> list[dict]:
        page = self.api("GET", "channels", params=self._query_params(where, ["key asc"], 500, 0))
        return page.get("results") or []

    def get_inventory_entry(self, sku: str, channel_id: str) -> dict | None:
        where = f"sku = {_quote(sku)} and supplyChannel(id = {_quote(channel_id)})"
        results = self.api("GET", "inventory", params=self._query_params(where, None, 2, 0)).get("results") or []
        return results[0] if results else None

    def inventory_entries(self, where: str | None = None, page_size: int = 100) -> Iterator[dict]:
        """Every inventory entry matching `where`, paged by id cursor."""
        last_id = ""
        while True:
            clauses = [f"({where})"] if where else []
            if last_id:
                clauses.append(f"id > {_quote(last_id)}")
            page = self.api("GET", "inventory", params=self._query_params(
                " and ".join(clauses) or None, ["id asc"], page_size, 0, with_total=False))
            results = page.get("results") or []
            yield from results
            if len(results) < page_size:
                return
            last_id = results[-1]["id"]

    def create_inventory_entry(self, *, sku: str, channel_id: str, quantity_on_stock: int) -> dict:
        draft = {"sku": sku, "supplyChannel": {"typeId": "channel", "id": channel_id},
                 "quantityOnStock": quantity_on_stock}
        return self.api("POST", "inventory", json=draft)

    def update_inventory_entry(self, entry_id: str, version: int, actions: list[dict]) -> dict:
        """Apply update actions at `version`; raises ConcurrentModification (a Conflict) when it moved on."""
        return self.api("POST", f"inventory/{entry_id}", json={"version": version, "actions": actions})

    # --- translation -------------------------------------------------------------------------

    @staticmethod
    def order_from_payload(order: dict) -> StorefrontOrder:
        """An Order (HTTP API JSON) in our words, with the storefront's own figures, every amount exact.

        Raises ValueError naming the field path of anything malformed."""
        return _OrderReader(order).translate()


_MISSING = object()

# commercetools RoundingMode -> the Python decimal rounding it means.
ROUNDING_MODES = {"HalfEven": ROUND_HALF_EVEN, "HalfUp": ROUND_HALF_UP, "HalfDown": ROUND_HALF_DOWN}


class _OrderReader:
    """One Order read into a StorefrontOrder. Line totals, line taxes, the order total and the tax per
    rate are commercetools' own (totalPrice, taxedPrice, taxPortions); nothing is recomputed from rates
    unless commercetools states no tax amount at all."""

    def __init__(self, order):
        if not isinstance(order, dict):
            raise ValueError("commercetools order is not a JSON object")
        order_id = order.get("id")
        if not isinstance(order_id, str) or not order_id:
            raise ValueError("commercetools order without an id")
        self.order = order
        self.order_id = order_id
        total_price = order.get("totalPrice")
        currency = total_price.get("currencyCode") if isinstance(total_price, dict) else None
        if not isinstance(currency, str) or not currency:
            raise ValueError(f"commercetools order {order_id} has no totalPrice.currencyCode")
        self.currency = currency
        self.where = "order"  # the part being read, for errors nobody anticipated
        self.includes_tax: list[bool] = []  # taxRate.includedInPrice of every taxed line
        self.tax_rounding = self.price_rounding = ""

    # --- reading typed values --------------------------------------------------------------

    def error(self, path: str, problem: str) -> ValueError:
        return ValueError(f"commercetools order {self.order_id}: {path} {problem}")

    def obj(self, value, path: str) -> dict:
        if value is _MISSING:
            raise self.error(path, "is missing")
        if not isinstance(value, dict):
            raise self.error(path, f"is not an object: {value!r}")
        return value

    def array(self, node: dict, key: str, path: str, *, required: bool = False) -> list:
        value = node.get(key, _MISSING)
        if value is _MISSING and not required:
            return []
        if value is _MISSING:
            raise self.error(path, "is missing")
        if not isinstance(value, list):
            raise self.error(path, f"is not a list: {value!r}")
        return value

    def text(self, value, path: str) -> str:
        if value is _MISSING or value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(path, f"is not a string: {value!r}")
        return str(value)  # an int id stays exact however large

    def localized(self, value, path: str) -> str:
        if isinstance(value, dict):
            text = value.get("en") or next((v for v in value.values() if v), "")
            return self.text(text, path)
        return self.text(value, path)

    def whole(self, value, path: str) -> int:
        if value is _MISSING or value is None:
            raise self.error(path, "is missing")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # JSON parsed into floats (or Decimals): whole values only, and only where a float is still exact.
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            return int(value)
        raise self.error(path, f"is not a whole number: {value!r}")

    def money(self, value, path: str) -> Decimal:
        """TypedMoney in major units, exact: centAmount, or preciseAmount for highPrecision."""
        if value is _MISSING or value is None:
            raise self.error(path, "is missing (not a Money object)")
        if not isinstance(value, dict):
            raise self.error(path, f"is not a Money object: {value!r}")
        if value.get("currencyCode") != self.currency:
            raise self.error(path, f"is in {value.get('currencyCode')!r}, the order in {self.currency}")
        kind = value.get("type", "centPrecision")
        if kind == "highPrecision":
            units = self.whole(value.get("preciseAmount", _MISSING), f"{path}.preciseAmount")
            digits = self.whole(value.get("fractionDigits", _MISSING), f"{path}.fractionDigits")
        elif kind == "centPrecision":
            units = self.whole(value.get("centAmount", _MISSING), f"{path}.centAmount")
            digits = currency_exponent(self.currency)
            if value.get("fractionDigits") is not None:
                digits = self.whole(value["fractionDigits"], f"{path}.fractionDigits")
        else:
            raise self.error(path, f"has an unknown Money type {kind!r}")
        if not 0 <= digits <= 20:
            raise self.error(f"{path}.fractionDigits", f"is out of range: {digits}")
        return Decimal(f"{units}E-{digits}")  # built from text: exact whatever the context precision

    def optional_money(self, node: dict, key: str, path: str) -> Decimal | None:
        value = node.get(key)
        return None if value is None else self.money(value, path)

    def rate(self, value, path: str) -> Decimal:
        """A tax rate as written (0.075 stays 0.075: through str, never float arithmetic)."""
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise self.error(path, f"is not a number: {value!r}")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise self.error(path, f"is not a number: {value!r}") from None
        if not rate.is_finite() or not 0 <= rate <= 1:
            raise self.error(path, f"is not a rate between 0 and 1: {value!r}")
        return rate

    def rounding(self, key: str) -> str:
        mode = self.order.get(key)
        if mode is None:
            return ""
        if not isinstance(mode, str) or mode not in ROUNDING_MODES:
            raise self.error(key, f"is not a RoundingMode: {mode!r}")
        return ROUNDING_MODES[mode]

    def when(self, key: str) -> datetime | None:
        value = self.order.get(key)
        if not value:
            return None
        if not isinstance(value, str):
            raise self.error(key, f"is not a timestamp: {value!r}")
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(key, f"is a bad timestamp {value!r}") from None

    # --- lines -----------------------------------------------------------------------------

    def line_discount(self, item: dict, unit: Decimal, path: str) -> Decimal:
        """(price − discountedPrice) × quantity over the discounted quantities: exact, not rounded."""
        total = Decimal(0)
        for i, part in enumerate(self.array(item, "discountedPricePerQuantity", f"{path}.discountedPricePerQuantity")):
            where = f"{path}.discountedPricePerQuantity[{i}]"
            part = self.obj(part, where)
            discounted = self.obj(part.get("discountedPrice", _MISSING), f"{where}.discountedPrice")
            value = self.money(discounted.get("value", _MISSING), f"{where}.discountedPrice.value")
            total += (unit - value) * self.whole(part.get("quantity", _MISSING), f"{where}.quantity")
        return total

    def taxes(self, item: dict, path: str, total: Decimal) -> tuple[TaxLine, ...]:
        """The line's own tax (taxedPrice) at its combined rate (sub-rates summed), one TaxLine per line."""
        rate_obj, taxed = item.get("taxRate"), item.get("taxedPrice")
        if rate_obj is None and taxed is None:
            return ()
        name = country = ""
        included = False
        if rate_obj is not None:
            rate_obj = self.obj(rate_obj, f"{path}.taxRate")
            rate = self.rate(rate_obj.get("amount"), f"{path}.taxRate.amount")
            name = self.text(rate_obj.get("name"), f"{path}.taxRate.name")
            country = self.text(rate_obj.get("country"), f"{path}.taxRate.country")
            included = rate_obj.get("includedInPrice") is True
            self.includes_tax.append(included)
        if taxed is not None:
            taxed = self.obj(taxed, f"{path}.taxedPrice")
            if rate_obj is None:  # an external tax amount without its rate: the portions carry it
                portions = self.array(taxed, "taxPortions", f"{path}.taxedPrice.taxPortions")
                rate = sum((self.portion(p, f"{path}.taxedPrice.taxPortions[{i}]").rate
                            for i, p in enumerate(portions)), Decimal(0))
            if taxed.get("totalTax") is not None:
                tax = self.money(taxed["totalTax"], f"{path}.taxedPrice.totalTax")
            else:
                tax = (self.money(taxed.get("totalGross", _MISSING), f"{path}.taxedPrice.totalGross")
                       - self.money(taxed.get("totalNet", _MISSING), f"{path}.taxedPrice.totalNet"))
        else:
            # commercetools states no taxedPrice for this line (taxes not calculated yet), so the rate is
            # all there is: the one place tax is derived, rounded once with the order's tax rounding mode.
            tax = total - total / (1 + rate) if included else total * rate
            tax = round_to_currency(tax, self.currency, self.tax_rounding or ROUND_HALF_EVEN)
        return (TaxLine(rate=rate, amount=tax, title=name, country=country),)

    def portion(self, value, path: str) -> TaxLine:
        portion = self.obj(value, path)
        return TaxLine(rate=self.rate(portion.get("rate"), f"{path}.rate"),
                       amount=self.money(portion.get("amount", _MISSING), f"{path}.amount"),
                       title=self.text(portion.get("name"), f"{path}.name"))

    def line_item(self, item, path: str) -> OrderLine:
        item = self.obj(item, path)
        price = self.obj(item.get("price", _MISSING), f"{path}.price")
        unit = self.money(price.get("value", _MISSING), f"{path}.price.value")
        # totalPrice is the line after its discounts, as commercetools rounded it (priceRoundingMode) or
        # as it was set (ExternalTotal price mode, External tax modes): authoritative, never unit × qty.
        total = self.money(item.get("totalPrice", _MISSING), f"{path}.totalPrice")
        variant = item.get("variant")
        variant = self.obj(variant, f"{path}.variant") if variant is not None else {}
        return OrderLine(
            sku=self.text(variant.get("sku"), f"{path}.variant.sku"),
            name=self.localized(item.get("name"), f"{path}.name"),
            quantity=self.whole(item.get("quantity", _MISSING), f"{path}.quantity"),
            unit_price=unit,
            discount=self.line_discount(item, unit, path),
            tax_lines=self.taxes(item, path, total),
            line_id=self.text(item.get("id"), f"{path}.id"),
            kind="item",
            product_id=self.text(item.get("productId"), f"{path}.productId"),
            variant_id=self.text(variant.get("id"), f"{path}.variant.id"),
            total=total,
        )

    def custom_line_item(self, item, path: str) -> OrderLine:
        item = self.obj(item, path)
        unit = self.money(item.get("money", _MISSING), f"{path}.money")
        total = self.money(item.get("totalPrice", _MISSING), f"{path}.totalPrice")
        category = item.get("taxCategory")
        category = self.obj(category, f"{path}.taxCategory") if category is not None else {}
        return OrderLine(
            sku="",
            name=self.localized(item.get("name"), f"{path}.name") or self.text(item.get("slug"), f"{path}.slug"),
            quantity=self.whole(item.get("quantity", _MISSING), f"{path}.quantity"),
            unit_price=unit,
            discount=self.line_discount(item, unit, path),
            tax_lines=self.taxes(item, path, total),
            line_id=self.text(item.get("id"), f"{path}.id"),
            tax_category=self.text(category.get("id"), f"{path}.taxCategory.id"),
            kind="custom",
            total=total,
        )

    def shipping_line(self, info, path: str, key: str = "") -> OrderLine:
        info = self.obj(info, path)
        price = self.money(info.get("price", _MISSING), f"{path}.price")
        total = price
        discounted = info.get("discountedPrice")
        if discounted is not None:
            discounted = self.obj(discounted, f"{path}.discountedPrice")
            total = self.money(discounted.get("value", _MISSING), f"{path}.discountedPrice.value")
        method = info.get("shippingMethod")
        method = self.obj(method, f"{path}.shippingMethod") if method is not None else {}
        return OrderLine(
            sku="",
            name=self.text(info.get("shippingMethodName"), f"{path}.shippingMethodName") or key or "Shipping",
            quantity=1,
            unit_price=price,
            discount=price - total,
            tax_lines=self.taxes(info, path, total),
            # In Multiple mode two shippings may use one method: the shippingKey is what is unique.
            line_id=key or self.text(method.get("id"), f"{path}.shippingMethod.id") or "shipping",
            kind="shipping",
            total=total,
        )

    def shipping_lines(self) -> tuple[OrderLine, ...]:
        if self.order.get("shippingMode") == "Multiple":
            lines = []
            for i, entry in enumerate(self.array(self.order, "shipping", "shipping", required=True)):
                self.where = path = f"shipping[{i}]"
                entry = self.obj(entry, path)
                key = self.text(entry.get("shippingKey"), f"{path}.shippingKey")
                lines.append(self.shipping_line(entry.get("shippingInfo", _MISSING), f"{path}.shippingInfo", key))
            return tuple(lines)
        if self.order.get("shippingInfo") is None:
            return ()
        self.where = "shippingInfo"
        return (self.shipping_line(self.order["shippingInfo"], "shippingInfo"),)

    # --- the order -------------------------------------------------------------------------

    def discount_tax(self, lines: tuple[OrderLine, ...], summary: tuple[TaxLine, ...] | None,
                     stated: Decimal | None) -> tuple[TaxLine, ...]:
        """The tax removed with discountOnTotalPrice, per rate.

        commercetools keeps each line's taxedPrice undiscounted and puts the discounted tax in the
        order's taxPortions, so per rate: the lines' tax − the portion is exactly what the discount took
        (and what makes the ERP's tax per rate equal the summary). Only when the rates do not line up
        (sub-rates) is the stated discountedGrossAmount − discountedNetAmount used, on one rate."""
        if summary is None:
            return ()
        by_rate: dict[Decimal, Decimal] = {}
        for line in lines:
            for tax in line.tax_lines:
                by_rate[tax.rate] = by_rate.get(tax.rate, Decimal(0)) + tax.amount
        portions: dict[Decimal, Decimal] = {}
        titles: dict[Decimal, str] = {}
        for portion in summary:
            portions[portion.rate] = portions.get(portion.rate, Decimal(0)) + portion.amount
            titles.setdefault(portion.rate, portion.title)
        if set(portions) <= set(by_rate):
            return tuple(TaxLine(rate=rate, amount=amount - portions.get(rate, Decimal(0)), title=titles.get(rate, ""))
                         for rate, amount in by_rate.items() if amount != portions.get(rate, Decimal(0)))
        if not stated:
            return ()
        # No exact split: the whole stated amount on the rate carrying the most tax, said so in its title.
        rate = max(by_rate or portions, key=lambda r: (by_rate or portions)[r])
        return (TaxLine(rate=rate, amount=stated, title="discountOnTotalPrice"),)

    def translate(self) -> StorefrontOrder:
        try:
            return self._translate()
        except ValueError as exc:
            if str(exc).startswith("commercetools order"):
                raise
            raise ValueError(f"commercetools order {self.order_id}: {self.where} is malformed: {exc}") from None
        except (KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            raise ValueError(f"commercetools order {self.order_id}: {self.where} is malformed: {exc!r}") from None

    def _translate(self) -> StorefrontOrder:
        order = self.order
        self.tax_rounding = self.rounding("taxRoundingMode")
        self.price_rounding = self.rounding("priceRoundingMode")
        lines = []
        location = ""
        for i, item in enumerate(self.array(order, "lineItems", "lineItems", required=True)):
            self.where = f"lineItems[{i}]"
            lines.append(self.line_item(item, self.where))
            channel = item.get("supplyChannel")
            if isinstance(channel, dict) and not location:
                location = self.text((channel.get("obj") or {}).get("key") or channel.get("id"),
                                     f"{self.where}.supplyChannel")
        for i, item in enumerate(self.array(order, "customLineItems", "customLineItems")):
            self.where = f"customLineItems[{i}]"
            lines.append(self.custom_line_item(item, self.where))
        shipping = self.shipping_lines()

        self.where = "order"
        net_total = self.money(order["totalPrice"], "totalPrice")
        taxed = order.get("taxedPrice")
        total, total_tax, summary = net_total, None, None
        if taxed is not None:
            taxed = self.obj(taxed, "taxedPrice")
            total = self.money(taxed.get("totalGross", _MISSING), "taxedPrice.totalGross")
            total_tax = self.optional_money(taxed, "totalTax", "taxedPrice.totalTax")
            if total_tax is None:
                total_tax = total - self.money(taxed.get("totalNet", _MISSING), "taxedPrice.totalNet")
            summary = tuple(self.portion(p, f"taxedPrice.taxPortions[{i}]")
                            for i, p in enumerate(self.array(taxed, "taxPortions", "taxedPrice.taxPortions")))
        taxes_included = any(self.includes_tax)

        order_discount, discount_tax, stated = Decimal(0), (), None
        if order.get("discountOnTotalPrice") is not None:
            self.where = "discountOnTotalPrice"
            dotp = self.obj(order["discountOnTotalPrice"], "discountOnTotalPrice")
            order_discount = self.money(dotp.get("discountedAmount", _MISSING), "discountOnTotalPrice.discountedAmount")
            # discountedAmount is in the cart's own terms; net and gross are stated when taxedPrice exists.
            net = self.optional_money(dotp, "discountedNetAmount", "discountOnTotalPrice.discountedNetAmount")
            gross = self.optional_money(dotp, "discountedGrossAmount", "discountOnTotalPrice.discountedGrossAmount")
            if taxes_included and gross is not None:
                order_discount = gross
            elif not taxes_included and net is not None:
                order_discount = net
            stated = gross - net if net is not None and gross is not None else None
            discount_tax = self.discount_tax((*lines, *shipping), summary, stated)

        self.where = "order"
        addresses = [self.obj(order[k], k) for k in ("shippingAddress", "billingAddress") if order.get(k) is not None]
        address = addresses[0] if addresses else {}
        phone = next((self.text(a.get(k), k) for a in addresses for k in ("phone", "mobile") if a.get(k)), "")
        version = order.get("version")
        if version is not None:
            version = self.whole(version, "version")
        customer_email = self.text(order.get("customerEmail"), "customerEmail")
        return StorefrontOrder(
            storefront_order_id=self.order_id,
            order_number=self.text(order.get("orderNumber"), "orderNumber") or self.order_id,
            currency=self.currency,
            payment_state=self.text(order.get("paymentState"), "paymentState"),
            updated_at=self.when("lastModifiedAt"),
            created_at=self.when("createdAt"),
            customer_email=customer_email,
            customer_name=" ".join(self.text(address.get(k), k) for k in ("firstName", "lastName") if address.get(k)),
            customer_storefront_id=self.text(order.get("customerId"), "customerId"),
            country=self.text(address.get("country") or order.get("country"), "shippingAddress.country"),
            lines=tuple(lines),
            shipping=shipping,
            order_discount=order_discount,
            total=total,
            location=location,
            cancelled=order.get("orderState") == "Cancelled",
            taxes_included=taxes_included,
            tax_summary=summary,
            total_tax=total_tax,
            order_discount_tax=discount_tax,
            price_rounding=self.price_rounding,
            tax_rounding=self.tax_rounding,
            customer_phone=phone,
            version=version,
            extra={
                "version": version,
                "order_state": self.text(order.get("orderState"), "orderState"),
                "total_net": str(net_total),  # totalPrice: net, or gross when prices include tax
                "taxes_included": taxes_included,
                "tax_mode": self.text(order.get("taxMode"), "taxMode"),
                "tax_calculation_mode": self.text(order.get("taxCalculationMode"), "taxCalculationMode"),
                "shipping_mode": self.text(order.get("shippingMode"), "shippingMode"),
                # discountedGrossAmount − discountedNetAmount as commercetools states it (for the record).
                "discount_on_total_price_tax": str(stated) if stated is not None else "",
            },
        )
