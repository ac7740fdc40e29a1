"""The price comparison screen's figures: each ERP master price of an item beside what each storefront
sells it at, scope by scope, from the last run of the prices check (its open findings hold the
storefront's differing price; a price the run compared and did not report agrees). Nothing here calls
a vendor for the catalogue: the check does that, on its schedule or when someone presses "Run now"."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db.models import Q

from integrations.models import Connection, DriftFinding, DriftRun
from integrations.models.catalogue import CatalogItem, CatalogPublication
from integrations.ttl_cache import TtlCache

from .checks.prices import _scope
from .conf import drift_setting
from .registry import last_run

log = logging.getLogger("ledgerline.drift")

CHECK = "prices"
DIFFERS, AGREES, NOT_COMPARED, UNCHECKED = "differs", "agrees", "not_compared", "unchecked"
_currencies = TtlCache(ttl=3600)  # a shop's currency, asked once an hour at most
_erp_read = TtlCache(ttl=60)  # the ERP's price lists when no item master is stored yet


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def price_dict(row: dict) -> dict:
    """An ERP price (an ItemPrice as JSON, or the ERP client's row) in the prices check's form."""
    return {"currency": str(row.get("currency") or "").upper(), "amount": _decimal(row.get("amount")),
            "type": row.get("type") or "list", "customer_group": row.get("customer_group") or "",
            "channel": row.get("channel") or "", "min_quantity": int(row.get("min_quantity") or 1),
            "country": row.get("country") or "", "valid_from": row.get("valid_from") or None,
            "valid_until": row.get("valid_until") or None, "price_list": row.get("price_list") or ""}


@dataclass
class ErpItem:
    code: str
    name: str
    prices: list[dict]


def _item(row) -> ErpItem:
    data = row.data or {}
    return ErpItem(row.code, row.name or data.get("name") or "",
                   [price_dict(p) for p in data.get("prices") or () if _decimal(p.get("amount")) is not None])


def _erp_fallback() -> list[ErpItem]:
    """Every active item's prices, read from the ERP (kept a minute): only while no item master is stored."""
    cached = _erp_read.get("items")
    if cached is None:
        from integrations.connectors import get_erp

        erp = get_erp()
        cached = [] if not hasattr(erp, "item_prices") else [
            ErpItem(code, "", [price_dict(p) for p in rows]) for code, rows in erp.item_prices()]
        cached.sort(key=lambda item: item.code)
        _erp_read.put("items", cached)
    return cached


def erp_items(*, search: str = "", codes: list[str] | None = None):
    """ERP items with their prices, ordered by code, for a Paginator: the stored item master's
    CatalogItems (as_items makes them ErpItems), or while none is stored the ERP's own price lists."""
    if CatalogItem.objects.exists():
        rows = CatalogItem.objects.order_by("code", "pk").exclude(status=CatalogItem.Status.RETIRED)
        if search:
            rows = rows.filter(Q(code__icontains=search) | Q(name__icontains=search))
        if codes is not None:
            rows = rows.filter(code__in=codes)
        return rows
    items = _erp_fallback()
    if search:
        needle = search.lower()
        items = [i for i in items if needle in i.code.lower() or needle in i.name.lower()]
    if codes is not None:
        wanted = set(codes)
        items = [i for i in items if i.code in wanted]
    return items


def as_items(rows) -> list[ErpItem]:
    return [row if isinstance(row, ErpItem) else _item(row) for row in rows]


def shop_currency(connection: Connection) -> str:
    """The currency a Shopify shop's variant prices are in: the connection's `currency` setting, else
    asked of the shop (one small query, kept an hour); "" when neither answers."""
    own = str((connection.settings or {}).get("currency") or "").upper()
    if own:
        return own
    hit = _currencies.get(connection.pk)
    if hit is not None:
        return hit
    from integrations.connectors import connector_for
    from integrations.connectors.shopify import catalogue_read

    try:
        currency = catalogue_read.shop_currency(connector_for(connection))
    except Exception as exc:  # the page shows what it can: an unknown currency compares every base price
        log.warning("prices screen: the currency of %s is unknown: %s", connection.code, exc)
        return ""
    if currency:
        _currencies.put(connection.pk, currency)
    return currency


def rule(connection: Connection) -> str:
    """The rule the prices check applies to this storefront, in words."""
    tolerance = int(drift_setting("price_tolerance_minor"))
    slack = f"a difference of more than {tolerance} minor unit{'s' if tolerance != 1 else ''}" if tolerance else \
        "any difference"
    if connection.kind == "shopify":
        currency = shop_currency(connection) or "the shop's currency"
        return (f"{connection}: the variant's price is the ERP list price in {currency} and its compare-at price the "
                "ERP compare-at price; prices for a customer group, a channel or a quantity tier are not Shopify "
                f"variant prices and are not compared. {slack.capitalize()} is a difference.")
    return (f"{connection}: each ERP list price against the variant's price of the same currency, customer group "
            "and channel, quantity tiers by their minimum quantity; commercetools has no compare-at price. "
            f"{slack.capitalize()} is a difference.")


def _compared_here(connection: Connection, price: dict, currency: str) -> tuple[bool, str]:
    """Does the prices check compare this ERP price on this storefront? (and why not)."""
    if connection.kind == "shopify":
        if price["type"] not in ("list", "compare_at"):
            return False, f"a {price['type']} price is not a Shopify variant price"
        if price["customer_group"] or price["channel"] or price["min_quantity"] > 1:
            return False, "Shopify's variant price is one base price: no customer group, channel or tier"
        if currency and price["currency"] != currency:
            return False, f"the shop sells in {currency}"
        return True, ""
    if price["type"] != "list":
        return False, "commercetools has no compare-at price"
    return True, ""


@dataclass
class PriceRow:
    price: dict
    scope: str
    status: str
    storefront_amount: Decimal | None = None
    note: str = ""
    finding: DriftFinding | None = None

    @property
    def differs(self) -> bool:
        return self.status == DIFFERS


@dataclass
class SkuGroup:
    """One item's prices on one storefront."""

    connection: Connection
    sku: str  # the storefront SKU
    item: ErpItem
    rows: list[PriceRow] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return any(row.differs for row in self.rows)

    @property
    def anchor(self) -> str:
        """An HTML id for this group (a SKU may hold characters an id may not)."""
        digest = hashlib.sha1(f"{self.connection.code}:{self.sku}".encode()).hexdigest()[:12]
        return f"prices-{digest}"

    @property
    def exceptions(self) -> list:
        return [row.finding.exception for row in self.rows if row.finding is not None and row.finding.exception_id]


def storefront_skus(connection: Connection, codes: list[str]) -> dict[str, str]:
    """ERP item code -> the SKU this storefront sells it under (its SKU mapping; none = the same code)."""
    from mappings.models import SkuMapping

    out = {code: code for code in codes}
    for sku, code in (SkuMapping.objects.filter(connection=connection, active=True, erp_item_code__in=codes)
                      .values_list("storefront_sku", "erp_item_code")):
        out[code] = sku
    return out


def _publications(connection: Connection, codes: list[str]) -> dict:
    """ERP item code -> its CatalogPublication on this storefront (none before the item master is stored)."""
    return {pub.item.code: pub for pub in CatalogPublication.objects.filter(connection=connection, item__code__in=codes)
            .select_related("item")}


def last_check() -> dict:
    """The last finished prices run: when, what it read per storefront, what it could not read."""
    run = last_run(CHECK)
    running = DriftRun.objects.filter(check_code=CHECK, status=DriftRun.Status.RUNNING).first()
    summary = (run.summary or {}) if run is not None and run.status != DriftRun.Status.FAILED else {}
    return {"run": run, "running": running, "compared": summary.get("compared") or {},
            "not_read": summary.get("not_read") or {}, "note": summary.get("note") or ""}


def compare(items: list[ErpItem], connections: list[Connection], *, check: dict | None = None) -> list[SkuGroup]:
    """One SkuGroup per item and storefront, each ERP price a row: differs (an open finding of the last
    check, with the storefront's price), agrees (the check compared it and found no gap), not compared
    (the storefront holds no such price), or unchecked (no finished run read this storefront)."""
    check = check or last_check()
    codes = [item.code for item in items]
    groups: list[SkuGroup] = []
    for connection in connections:
        skus = storefront_skus(connection, codes)
        publications = _publications(connection, codes)
        for code, pub in publications.items():
            if pub.sku:
                skus[code] = pub.sku
        currency = shop_currency(connection) if connection.kind == "shopify" else ""
        keys, row_items = {}, {}
        for item in items:
            group = SkuGroup(connection, skus[item.code], item)
            for price in item.prices:
                scope = _scope(price)
                row = PriceRow(price, scope, UNCHECKED)
                keys[f"{connection.code}:{group.sku}:{scope}"[:250]] = row
                row_items[f"{connection.code}:{group.sku}:{scope}"[:250]] = item.code
                group.rows.append(row)
            groups.append(group)
        findings = {f.key: f for f in DriftFinding.objects.filter(
            check_code=CHECK, connection=connection, resolved_at__isnull=True, key__in=list(keys)
        ).select_related("exception")}
        read = connection.code in check["compared"]
        for key, row in keys.items():
            finding = findings.get(key)
            if finding is not None:
                row.status, row.finding = DIFFERS, finding
                row.storefront_amount = _decimal(((finding.detail or {}).get("storefront") or {}).get("amount"))
                row.note = "" if row.storefront_amount is not None else "the storefront has no such price"
                continue
            compared, why = _compared_here(connection, row.price, currency)
            pub = publications.get(row_items[key])
            if pub is not None and pub.state != "live":
                waits = f" (waits for {', '.join(pub.missing)})" if pub.missing else ""
                row.status, row.note = NOT_COMPARED, f"not live on this storefront: {pub.get_state_display().lower()}{waits}"
            elif not compared:
                row.status, row.note = NOT_COMPARED, why
            elif read:
                row.status, row.storefront_amount = AGREES, row.price["amount"]
            elif connection.code in check["not_read"]:
                row.note = f"the last check could not read {connection}: {check['not_read'][connection.code]}"
            else:
                row.note = "no finished check has read this storefront yet"
    return groups
