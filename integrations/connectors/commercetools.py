"""The commercetools HTTP API client: OAuth client credentials, orders by cursor, customers, channels
and inventory with optimistic concurrency, and the translation of an Order into a StorefrontOrder.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime
from decimal import Decimal
from typing import Iterator

import requests

from integrations.domain import OrderLine, StorefrontOrder, TaxLine

from .base import (
    Conflict,
    NotFound,
    PermanentError,
    RateLimited,
    RetryingClient,
    TransientError,
    parse_retry_after,
)

ORDER_EXPAND = ("lineItems[*].supplyChannel",)


class AuthenticationFailed(PermanentError):
    """The client credentials or the token were refused (401)."""


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
    def __init__(
        self,
        api_url: str,
        auth_url: str,
        project_key: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        **retry_kwargs,
    ):
        super().__init__(**retry_kwargs)
        self.api_url = api_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")
        self.project_key = project_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
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
        """An Order (HTTP API JSON) in our words, with every amount exact (high precision kept)."""
        if not isinstance(order, dict) or not order.get("id"):
            raise ValueError("commercetools order without an id")
        order_id = order["id"]
        try:
            currency = order["totalPrice"]["currencyCode"]
        except (KeyError, TypeError):
            raise ValueError(f"commercetools order {order_id} has no totalPrice.currencyCode") from None

        def amount(m, where: str) -> Decimal:
            if not isinstance(m, dict):
                raise ValueError(f"commercetools order {order_id}: {where} is not a Money object")
            if m.get("currencyCode") != currency:
                raise ValueError(f"commercetools order {order_id}: {where} is in {m.get('currencyCode')}, "
                                 f"the order in {currency}")
            try:
                if m.get("type") == "highPrecision":
                    return Decimal(int(m["preciseAmount"])).scaleb(-int(m["fractionDigits"]))
                return Decimal(int(m["centAmount"])).scaleb(-int(m["fractionDigits"]))
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"commercetools order {order_id}: {where} is malformed: {m!r}") from None

        def name_of(localized) -> str:
            if isinstance(localized, dict):
                return localized.get("en") or next(iter(localized.values()), "")
            return str(localized or "")

        def taxes(item: dict, where: str, net_fallback: Decimal) -> tuple[TaxLine, ...]:
            rate = item.get("taxRate")
            if not rate:
                return ()
            taxed = item.get("taxedPrice")
            if taxed and taxed.get("totalTax"):
                tax = amount(taxed["totalTax"], f"{where}.taxedPrice.totalTax")
            elif taxed:
                tax = amount(taxed["totalGross"], f"{where}.taxedPrice.totalGross") - amount(
                    taxed["totalNet"], f"{where}.taxedPrice.totalNet")
            else:
                tax = net_fallback * Decimal(str(rate["amount"]))
            return (TaxLine(rate=Decimal(str(rate["amount"])), amount=tax, title=rate.get("name", "")),)

        def line_discount(item: dict, unit: Decimal, where: str) -> Decimal:
            total = Decimal(0)
            for i, part in enumerate(item.get("discountedPricePerQuantity") or []):
                discounted = amount(part["discountedPrice"]["value"], f"{where}.discountedPricePerQuantity[{i}]")
                total += (unit - discounted) * int(part["quantity"])
            return total

        lines = []
        location = ""
        try:
            for i, item in enumerate(order.get("lineItems") or []):
                where = f"lineItems[{i}]"
                unit = amount(item["price"]["value"], f"{where}.price.value")
                quantity = int(item["quantity"])
                discount = line_discount(item, unit, where)
                lines.append(OrderLine(
                    sku=(item.get("variant") or {}).get("sku") or "",
                    name=name_of(item.get("name")),
                    quantity=quantity,
                    unit_price=unit,
                    discount=discount,
                    tax_lines=taxes(item, where, unit * quantity - discount),
                    line_id=item.get("id", ""),
                    kind="item",
                    product_id=str(item.get("productId") or ""),
                ))
                channel = item.get("supplyChannel")
                if channel and not location:
                    location = (channel.get("obj") or {}).get("key") or channel.get("id", "")
            for i, item in enumerate(order.get("customLineItems") or []):
                where = f"customLineItems[{i}]"
                unit = amount(item["money"], f"{where}.money")
                quantity = int(item["quantity"])
                discount = line_discount(item, unit, where)
                lines.append(OrderLine(
                    sku="",
                    name=name_of(item.get("name")) or item.get("slug", ""),
                    quantity=quantity,
                    unit_price=unit,
                    discount=discount,
                    tax_lines=taxes(item, where, unit * quantity - discount),
                    line_id=item.get("id", ""),
                    tax_category=(item.get("taxCategory") or {}).get("id", ""),
                    kind="custom",
                ))
            shipping = ()
            info = order.get("shippingInfo")
            if info:
                price = amount(info["price"], "shippingInfo.price")
                discount = Decimal(0)
                if info.get("discountedPrice"):
                    discount = price - amount(info["discountedPrice"]["value"], "shippingInfo.discountedPrice.value")
                shipping = (OrderLine(
                    sku="",
                    name=info.get("shippingMethodName", "Shipping"),
                    quantity=1,
                    unit_price=price,
                    discount=discount,
                    tax_lines=taxes(info, "shippingInfo", price - discount),
                    line_id=(info.get("shippingMethod") or {}).get("id", "shipping"),
                    kind="shipping",
                ),)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith("commercetools order"):
                raise
            raise ValueError(f"commercetools order {order_id} is malformed: {exc!r}") from None

        def when(value: str | None) -> datetime | None:
            if not value:
                return None
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(f"commercetools order {order_id}: bad timestamp {value!r}") from None

        address = order.get("shippingAddress") or order.get("billingAddress") or {}
        taxed = order.get("taxedPrice")
        net_total = amount(order["totalPrice"], "totalPrice")
        total = amount(taxed["totalGross"], "taxedPrice.totalGross") if taxed else net_total
        order_discount = Decimal(0)
        if order.get("discountOnTotalPrice"):
            order_discount = amount(order["discountOnTotalPrice"]["discountedAmount"],
                                    "discountOnTotalPrice.discountedAmount")
        taxes_included = any(
            (line_item.get("taxRate") or {}).get("includedInPrice")
            for line_item in (order.get("lineItems") or []) + (order.get("customLineItems") or [])
        )
        return StorefrontOrder(
            storefront_order_id=order_id,
            order_number=order.get("orderNumber") or order_id,
            currency=currency,
            payment_state=order.get("paymentState") or "",
            updated_at=when(order.get("lastModifiedAt")),
            created_at=when(order.get("createdAt")),
            customer_email=order.get("customerEmail") or "",
            customer_name=" ".join(p for p in (address.get("firstName"), address.get("lastName")) if p),
            customer_storefront_id=order.get("customerId") or "",
            country=address.get("country") or "",
            lines=tuple(lines),
            shipping=shipping,
            order_discount=order_discount,
            total=total,
            location=location,
            cancelled=order.get("orderState") == "Cancelled",
            extra={
                "version": order.get("version"),
                "order_state": order.get("orderState", ""),
                "total_net": str(net_total),
                "taxes_included": taxes_included,
            },
        )
