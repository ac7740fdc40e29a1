"""Prices: the ERP's master prices against what each storefront sells at. Shopify: each variant's price
(and compare-at price, when the ERP states one) in the shop's currency. commercetools: each price of
the ERP's, by currency, country, customer group, channel and quantity tier, against the variant's
embedded prices and tiers. Only prices in effect now are compared (a promotion's price list that has not
started or has ended is no gap), and Shopify's base price is the unscoped one. Decimal throughout; a difference within the tolerance (minor units) is no gap."""
from __future__ import annotations

import logging
from decimal import Decimal

from django.utils import timezone

from exceptions_queue.registry import Team
from integrations.connectors.base import ConnectorError
from integrations.domain import format_amount, quantum
from integrations.models import Connection, DriftRun

from .. import exception_types as types
from ..conf import drift_setting
from ..registry import Finding, drift_check

log = logging.getLogger("ledgerline.drift")


def _sku_to_item(connection: Connection) -> dict[str, str]:
    """Storefront SKU -> ERP item code from the SKU mappings (one query; no row = the same code; kits and
    inactive rows are left out: a kit has no master price of its own)."""
    from mappings.models import SkuMapping

    rows = SkuMapping.objects.filter(connection=connection).prefetch_related("components")
    return {row.storefront_sku: ("" if (not row.active or row.components.all()) else row.erp_item_code) for row in rows}


def _in_effect(price: dict, now) -> bool:
    """Valid now: a price list's promotion that has not started or has ended is no price to compare."""
    start, end = price.get("valid_from"), price.get("valid_until")
    return (start is None or start <= now) and (end is None or now < end)


def _scope(price: dict) -> str:
    parts = [price["currency"]]
    if price.get("type", "list") != "list":
        parts.append(price["type"])
    for name in ("country", "customer_group", "channel"):
        if price.get(name):
            parts.append(f"{name.replace('_', ' ')} {price[name]}")
    if int(price.get("min_quantity") or 1) > 1:
        parts.append(f"from {price['min_quantity']} units")
    return ", ".join(parts)


def _differs(ours: Decimal, theirs: Decimal | None, currency: str) -> bool:
    if theirs is None:
        return True
    return abs(ours - theirs) > quantum(currency) * int(drift_setting("price_tolerance_minor"))


def _money(amount: Decimal | None, currency: str) -> str:
    return "no price" if amount is None else f"{format_amount(amount, currency)} {currency}"


def _finding(connection, sku, item, erp_price, storefront_amount, findings):
    scope, currency = _scope(erp_price), erp_price["currency"]
    findings.append(Finding(
        key=f"{connection.code}:{sku}:{scope}", exception_type=types.PRICE_MISMATCH.code, connection=connection,
        subject_type="sku", subject_id=sku, sku=sku, group=f"prices:{connection.code}",
        message=(f"{sku} on {connection} ({scope}): the storefront sells at {_money(storefront_amount, currency)}, "
                 f"the ERP's master price for item {item} is {_money(erp_price['amount'], currency)}."),
        context={"sku": sku, "scope": scope},
        detail={"storefront": {"amount": None if storefront_amount is None else str(storefront_amount)},
                "erp": {"item": item, "amount": str(erp_price["amount"]), "scope": scope}}))


def _shopify(connection, client, erp_prices, findings, variants=None) -> int:
    """`variants`: only these (one SKU's re-check after "restore ERP price"); default every variant."""
    from integrations.connectors.shopify import catalogue_read

    currency = catalogue_read.shop_currency(client)
    mapped = _sku_to_item(connection)
    now = timezone.now()
    compared = 0
    for variant in (catalogue_read.variant_prices(client) if variants is None else variants):
        if not variant.sku:
            continue
        item = mapped.get(variant.sku, variant.sku)
        for price in erp_prices.get(item, ()):
            if (price["currency"] != currency or price.get("country") or price["customer_group"] or price["channel"]
                    or price["min_quantity"] > 1 or not _in_effect(price, now)):
                continue  # Shopify's variant price is the one base price in the shop's currency
            theirs = variant.price if price["type"] == "list" else (
                variant.compare_at_price if price["type"] == "compare_at" else None)
            if price["type"] not in ("list", "compare_at"):
                continue
            compared += 1
            if _differs(price["amount"], theirs, currency):
                _finding(connection, variant.sku, item, price, theirs, findings)
    return compared


def _commercetools(connection, client, erp_prices, findings, variants=None) -> int:
    from integrations.connectors.commercetools import catalogue_read

    mapped = _sku_to_item(connection)
    now = timezone.now()
    compared = 0
    for variant in (catalogue_read.variant_prices(client) if variants is None else variants):
        if not variant["sku"]:
            continue
        item = mapped.get(variant["sku"], variant["sku"])
        offered = {(r["currency"], r["country"] or "", r["customer_group"], r["channel"], r["min_quantity"]): r["amount"]
                   for r in variant["prices"]}
        for price in erp_prices.get(item, ()):
            if price["type"] != "list" or not _in_effect(price, now):
                continue  # commercetools has no compare-at price of its own
            compared += 1
            theirs = offered.get((price["currency"], price.get("country") or "", price["customer_group"],
                                  price["channel"], price["min_quantity"]))
            if _differs(price["amount"], theirs, price["currency"]):
                _finding(connection, variant["sku"], item, price, theirs, findings)
    return compared


@drift_check("prices", "Prices", Team.ECOMMERCE, "catalogue", 240,
             "ERP master prices against storefront prices: Shopify variant and compare-at prices, commercetools "
             "prices scoped by customer group, channel and quantity tiers.")
def prices(run: DriftRun) -> list[Finding]:
    from integrations.connectors import connector_for, get_erp

    if drift_setting("skip_vendor_reads"):
        run.summary["note"] = "vendor reads skipped: prices live only in the ERP and the storefronts"
        run.keep_open.add("")  # nothing was looked at: nothing is closed
        return []
    erp = get_erp()
    if not hasattr(erp, "item_prices"):
        run.summary["note"] = f"{type(erp).__name__} cannot read the item master's prices: nothing compared"
        return []
    erp_prices = dict(erp.item_prices())
    findings: list[Finding] = []
    compared = {}
    for connection in Connection.objects.storefronts().filter(active=True).order_by("code"):
        try:
            client = connector_for(connection)
            reader = _shopify if connection.kind == "shopify" else _commercetools
            compared[connection.code] = reader(connection, client, erp_prices, findings)
        except ConnectorError as exc:
            log.warning("prices: %s not read: %s", connection.code, exc)
            run.keep_open.add(f"{connection.code}:")
            run.summary.setdefault("not_read", {})[connection.code] = str(exc)[:300]
    run.summary["compared"] = compared
    return findings
