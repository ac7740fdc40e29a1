""""Restore ERP price": put one storefront variant's prices back to the ERP's master prices (the
storefront connector's PUBLISH_PRODUCTS `set_variant_prices`, through the outbound-write log), then
re-run the prices check for that SKU alone, so its price-mismatch exceptions resolve at once instead
of at the next scheduled run of the whole catalogue."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from exceptions_queue.models import ExceptionActivity, ExceptionRecord
from exceptions_queue.services import exception_resolve
from integrations.connectors.base import ConnectorError, supports
from integrations.connectors.catalogue import PUBLISH_PRODUCTS, ItemPrice
from integrations.domain import format_amount
from integrations.models import Connection, DriftFinding, OutboundWrite
from integrations.writes import outbound_write

from . import exception_types as types

log = logging.getLogger("ledgerline.drift")

CHECK = "prices"
ACTION = "restore_erp_price"
# A second click while the first restore is still talking to the storefront is refused, not sent twice.
IN_FLIGHT = timedelta(minutes=2)

# One SKU's variants with their prices (the prices check reads every variant page by page: too much for
# one SKU). The search matches the SKU exactly; the reader keeps only exact matches all the same.
SHOPIFY_SKU_PRICES = """
query RestoreVariantPrices($query: String!) {
  productVariants(first: 10, query: $query) {
    nodes { id sku title price compareAtPrice product { id title } }
  }
}"""


class RestoreRefused(Exception):
    """The restore cannot be done; the message says why, in words for the person who asked."""


@dataclass
class RestoreOutcome:
    connection: Connection
    sku: str
    prices: list[ItemPrice]
    write: OutboundWrite
    resolved: int = 0  # price-mismatch exceptions the re-check closed
    still_differ: list[str] = field(default_factory=list)  # scopes the re-check still finds different

    @property
    def message(self) -> str:
        done = f"Restored the ERP price of {self.sku} on {self.connection}: {describe(self.prices)}."
        if self.still_differ:
            return done + " The storefront still differs for " + "; ".join(self.still_differ) + "."
        return done + (f" {self.resolved} price exception{'s' if self.resolved != 1 else ''} resolved."
                       if self.resolved else " The storefront now agrees with the ERP.")


def describe(prices: list[ItemPrice]) -> str:
    parts = []
    for p in prices:
        scope = [p.type] if p.type != "list" else []
        scope += [v for v in (p.country, p.customer_group, p.channel) if v]
        if p.min_quantity > 1:
            scope.append(f"from {p.min_quantity}")
        parts.append(f"{format_amount(p.amount, p.currency)} {p.currency}" + (f" ({', '.join(scope)})" if scope else ""))
    return ", ".join(parts) or "no prices"


def _as_dict(price: ItemPrice) -> dict:
    """An ItemPrice in the prices check's form (integrations/connectors/erp.py `item_prices`)."""
    return {"currency": price.currency.upper(), "amount": Decimal(price.amount), "type": price.type or "list",
            "customer_group": price.customer_group, "channel": price.channel, "min_quantity": int(price.min_quantity or 1),
            "country": price.country}


def item_code_for(connection: Connection, sku: str) -> str:
    """The ERP item a storefront SKU sells (its SKU mapping; no mapping = the same code)."""
    from .checks.prices import _sku_to_item

    return _sku_to_item(connection).get(sku, sku) or sku


def erp_prices_for(connection: Connection, sku: str) -> list[ItemPrice]:
    """The ERP's master prices of the item behind this storefront SKU (the catalogue flow's `erp_prices`:
    the stored item master, else the ERP's own price list)."""
    from integrations.flows.catalogue import erp_prices

    return list(erp_prices(sku, connection))


def _key(connection: Connection, sku: str, prices: list[ItemPrice]) -> str:
    body = json.dumps([_as_dict(p) for p in prices], sort_keys=True, default=str)
    return f"restore-price:{connection.code}:{sku}:{hashlib.sha1(body.encode()).hexdigest()[:16]}"


def _open_exceptions(connection: Connection, sku: str) -> list[ExceptionRecord]:
    ids = (DriftFinding.objects.filter(check_code=CHECK, connection=connection, subject_id=sku, resolved_at__isnull=True)
           .exclude(exception=None).values_list("exception_id", flat=True))
    return list(ExceptionRecord.objects.filter(pk__in=list(ids), type_code=types.PRICE_MISMATCH.code,
                                               status__in=ExceptionRecord.ACTIVE_STATUSES))


def price_restore(*, connection: Connection, sku: str, user=None) -> RestoreOutcome:
    """Set the storefront variant `sku` to the ERP's prices, then re-check that SKU.

    Safe twice: the prices are set absolutely (a second restore of the same prices changes nothing), and
    a restore of the same prices still in flight (its write row started moments ago) is refused."""
    from integrations.connectors import connector_for

    if not connection.is_storefront:
        raise RestoreRefused(f"{connection} is not a storefront: it sells at no price to restore.")
    client = connector_for(connection)
    if not supports(client, PUBLISH_PRODUCTS) or not hasattr(client, "set_variant_prices"):
        raise RestoreRefused(f"Ledgerline cannot set prices on {connection} yet (its {connection.get_kind_display()} "
                             "connector does not publish products): correct the price in the storefront's admin.")
    try:
        prices = erp_prices_for(connection, sku)
    except ConnectorError as exc:
        raise RestoreRefused(f"The ERP's prices of {sku} could not be read: {exc}") from exc
    if not prices:
        raise RestoreRefused(f"The ERP states no price for {sku}: there is nothing to restore.")
    key = _key(connection, sku, prices)
    if OutboundWrite.objects.filter(external_reference=key, status=OutboundWrite.Status.STARTED,
                                    started_at__gte=timezone.now() - IN_FLIGHT).exists():
        raise RestoreRefused(f"The ERP price of {sku} on {connection} is already being restored.")
    try:
        with outbound_write(action=ACTION, idempotency_key=key, connection=connection, subject=("sku", sku)) as write:
            client.set_variant_prices(sku, prices)
    except ConnectorError as exc:
        log.warning("restore ERP price: %s on %s failed: %s", sku, connection.code, exc)
        raise RestoreRefused(f"{connection} refused the prices of {sku}: {exc}") from exc
    except NotImplementedError as exc:
        raise RestoreRefused(f"Ledgerline cannot set prices on {connection} yet: {exc or 'not supported'}") from exc
    outcome = RestoreOutcome(connection=connection, sku=sku, prices=prices, write=write)
    note = f"Restored the ERP price on {connection}: {describe(prices)} (write {key})."
    for record in _open_exceptions(connection, sku):
        ExceptionActivity.objects.create(exception=record, actor=user, action="erp_price_restored", note=note)
    log.info("restore ERP price: %s on %s by %s: %s", sku, connection.code, getattr(user, "username", "-"),
             describe(prices))
    try:
        outcome.resolved, outcome.still_differ = prices_recheck_sku(connection=connection, sku=sku, prices=prices,
                                                                    user=user)
    except ConnectorError as exc:  # the write went through; the next scheduled check resolves it
        log.warning("restore ERP price: re-check of %s on %s failed: %s", sku, connection.code, exc)
        outcome.still_differ = [f"(the re-check could not read {connection}: {exc}; the next check will)"]
    return outcome


def _shopify_variants(client, sku: str) -> list:
    from integrations.connectors.shopify.catalogue_read import VariantPrice, _decimal

    query = 'sku:"{}"'.format(sku.replace("\\", "\\\\").replace('"', '\\"'))
    nodes = (client.graphql(SHOPIFY_SKU_PRICES, {"query": query}).get("productVariants") or {}).get("nodes") or ()
    out = []
    for node in nodes:
        if (node.get("sku") or "") != sku:
            continue
        product = node.get("product") or {}
        out.append(VariantPrice(sku, node["id"], node.get("title") or "", product.get("id") or "",
                                product.get("title") or "", _decimal(node.get("price")),
                                _decimal(node.get("compareAtPrice"))))
    return out


def _commercetools_variants(client, sku: str) -> list[dict]:
    """The published variant with this SKU, in the form catalogue_read.variant_prices yields."""
    from integrations.connectors.commercetools import _quote
    from integrations.connectors.commercetools.catalogue_read import price_rows

    where = f"masterVariant(sku = {_quote(sku)}) or variants(sku = {_quote(sku)})"
    expand = [("expand", f"{part}.prices[*].customerGroup") for part in ("masterVariant", "variants[*]")]
    page = client.api("GET", "product-projections", params=[("staged", "false"), ("where", where), ("limit", "5"),
                                                            ("withTotal", "false"), *expand])
    channel_keys = {c["id"]: c.get("key") or c["id"] for c in client.list_channels()}
    out = []
    for product in page.get("results") or ():
        for variant in [product.get("masterVariant") or {}, *(product.get("variants") or [])]:
            if variant.get("sku") != sku:
                continue
            rows = []
            for price in variant.get("prices") or ():
                rows.extend(price_rows(price, channel_keys))
            out.append({"sku": sku, "variant_id": f"{product['id']}/{variant.get('id', '')}", "product_id": product["id"],
                        "product_title": "", "prices": rows})
    return out


def prices_recheck_sku(*, connection: Connection, sku: str, prices: list[ItemPrice] | None = None,
                       user=None) -> tuple[int, list[str]]:
    """The prices check for one SKU on one storefront, by the check's own rules: the SKU's open findings
    it no longer finds are closed with their exceptions. Returns (exceptions resolved, scopes still
    differing). A gap it still finds stays as the scheduled check left it."""
    from integrations.connectors import connector_for

    from .checks import prices as check

    if prices is None:
        prices = erp_prices_for(connection, sku)
    client = connector_for(connection)
    item = item_code_for(connection, sku)
    erp = {item: [_as_dict(p) for p in prices]}
    findings = []
    if connection.kind == "shopify":
        check._shopify(connection, client, erp, findings, variants=_shopify_variants(client, sku))
    else:
        check._commercetools(connection, client, erp, findings, variants=_commercetools_variants(client, sku))
    found = {f.key[:250] for f in findings}
    now = timezone.now()
    resolved = 0
    for finding in DriftFinding.objects.filter(check_code=CHECK, connection=connection, subject_id=sku,
                                               resolved_at__isnull=True).select_related("exception"):
        if finding.key in found:
            continue
        DriftFinding.objects.filter(pk=finding.pk, resolved_at__isnull=True).update(resolved_at=now)
        record = finding.exception
        if record is not None and record.is_active:
            exception_resolve(record=record, actor=None, action="auto_resolved",
                              note=f"The prices check of {sku} on {connection} no longer finds this gap "
                                   f"(re-checked after the ERP price was restored{f' by {user}' if user else ''}).")
            resolved += 1
    return resolved, [f.context.get("scope", f.key) for f in findings]
