"""Mapping health: what the tables say against what the systems have. The catalogue drift check
(integrations/drift/checks/catalogue.py) runs this report on its schedule and raises each finding as
an owned exception; the health panel shows its last run (catalogue_panel), never calling a vendor.

Findings: ERP items no storefront variant sells; storefront variants whose ERP item does not exist;
SKUs on two Shopify products; mappings pointing at depots, warehouses or locations that are gone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from exceptions_queue.registry import ExceptionType, Severity, Team, register
from integrations.models import Connection

from .lookup import resolve_sku
from .models import DepotMapping, LocationMapping

log = logging.getLogger("ledgerline.mappings")

RUNBOOK_FOOT = "Fix it under Mappings; the scheduled check resolves this exception by itself once it is gone."

ERP_ITEM_UNSOLD = register(ExceptionType(
    code="mapping_erp_item_unsold",
    team=Team.ECOMMERCE,
    severity=Severity.LOW,
    title="ERP item {item} is on no storefront",
    runbook=(
        "The ERP has an item that no storefront variant sells (directly, through a SKU mapping or as a kit "
        "component). Check whether it should be listed; if it is sold under another SKU, add the SKU mapping. "
        + RUNBOOK_FOOT
    ),
    retry_handler="mappings.tasks.retry_health_finding",
    system="erp",
    sla=timedelta(days=7),
))
VARIANT_WITHOUT_ITEM = register(ExceptionType(
    code="mapping_variant_without_erp_item",
    team=Team.ECOMMERCE,
    severity=Severity.HIGH,
    title="SKU {sku} on {connection} has no ERP item {item}",
    runbook=(
        "A storefront variant's SKU translates (by mapping, or identically when no mapping exists) to an ERP item "
        "code the ERP does not have: its orders will fail to post. Map the SKU to the right ERP item under "
        "Mappings → SKUs, or create the item in the ERP. " + RUNBOOK_FOOT
    ),
    retry_handler="mappings.tasks.retry_health_finding",
    system="erp",
))
DUPLICATE_SKU_PRODUCTS = register(ExceptionType(
    code="duplicate_sku_products",
    team=Team.ECOMMERCE,
    severity=Severity.HIGH,
    title="SKU {sku} is on {count} Shopify products",
    runbook=(
        "The same SKU is used by variants of different Shopify products, so stock and orders for it cannot be "
        "told apart. Give each variant its own SKU in Shopify admin. " + RUNBOOK_FOOT
    ),
    retry_handler="mappings.tasks.retry_health_finding",
    system="shopify",
))
STALE_DEPOT = register(ExceptionType(
    code="mapping_stale_depot",
    team=Team.OPS,
    severity=Severity.HIGH,
    title="Mapping points at {depot}, which the ERP no longer has",
    runbook=(
        "A depot or location mapping names an ERP warehouse / Prima Depot the ERP does not list any more: orders "
        "or stock for it will fail. Point the mapping at an existing depot (Mappings → Depots or Locations). "
        + RUNBOOK_FOOT
    ),
    retry_handler="mappings.tasks.retry_health_finding",
    system="erp",
))
STALE_LOCATION = register(ExceptionType(
    code="mapping_stale_location",
    team=Team.OPS,
    severity=Severity.MEDIUM,
    title="Mapping points at {location} on {connection}, which the storefront no longer has",
    runbook=(
        "A location mapping names a Shopify location or commercetools supply channel the storefront does not "
        "have: stock for it is not published. Correct or deactivate the mapping under Mappings → Locations. "
        + RUNBOOK_FOOT
    ),
    retry_handler="mappings.tasks.retry_health_finding",
    system="storefront",
))
HEALTH_TYPES = (ERP_ITEM_UNSOLD, VARIANT_WITHOUT_ITEM, DUPLICATE_SKU_PRODUCTS, STALE_DEPOT, STALE_LOCATION)
# Declared with the drift checks, which run this report as their catalogue check.
from integrations.drift.exception_types import VARIANT_INCOMPLETE  # noqa: E402


@dataclass(frozen=True)
class Finding:
    exc_type: ExceptionType
    key: str  # stable identity of the finding (exception key)
    message: str
    context: dict
    sku: str = ""


@dataclass
class HealthReport:
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a system that could not be asked
    # which finding types were fully checked: only those may auto-resolve old exceptions
    checked: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why

    def of(self, exc_type: ExceptionType) -> list[Finding]:
        return [f for f in self.findings if f.exc_type == exc_type]

    @property
    def erp_items_unsold(self):
        return self.of(ERP_ITEM_UNSOLD)

    @property
    def variants_without_erp_item(self):
        return self.of(VARIANT_WITHOUT_ITEM)

    @property
    def duplicate_skus(self):
        return self.of(DUPLICATE_SKU_PRODUCTS)

    @property
    def stale(self):
        return self.of(STALE_DEPOT) + self.of(STALE_LOCATION)


def _connector_errors():
    from integrations.connectors.base import ConnectorError

    return (ConnectorError, ImportError, OSError, ValueError, AttributeError)


def _location_id(value) -> str:
    """Shopify ids come as 123 or gid://shopify/Location/123; compare the bare id."""
    return str(value).rsplit("/", 1)[-1].strip()


def _storefront_location_ids(client) -> set[str] | None:
    """Shopify location ids or commercetools supply channel keys; None when the client cannot list them."""
    if hasattr(client, "list_channels"):
        return {(c.get("key") if isinstance(c, dict) else str(c)) or "" for c in client.list_channels()}
    if hasattr(client, "list_locations"):
        return {_location_id(c.get("id") if isinstance(c, dict) else c) for c in client.list_locations()}
    return None


def mappings_health(*, connections=None) -> HealthReport:
    """Ask the ERP and the storefronts, compare with the tables. Never raises for an outage."""
    from integrations.connectors import get_erp, get_storefront

    report = HealthReport()
    errors = _connector_errors()
    connections = list(connections if connections is not None else Connection.objects.storefronts().filter(active=True))

    erp_items: set[str] | None = None
    depots: set[str] | None = None
    try:
        erp = get_erp()
        erp_items = {str(item["code"]) for item in erp.list_items()}
        depots = set(erp.list_depots())
    except errors as exc:
        report.errors.append(f"The ERP could not be asked: {exc}")

    variants: dict[Connection, list[dict]] = {}
    locations: dict[Connection, set[str]] = {}
    variants_complete = True
    for conn in connections:
        try:
            client = get_storefront(conn)
        except errors as exc:
            report.errors.append(f"{conn.code} could not be asked: {exc}")
            variants_complete = False
            continue
        if hasattr(client, "list_variants"):
            try:
                variants[conn] = list(client.list_variants())
            except errors as exc:
                report.errors.append(f"{conn.code} variants could not be listed: {exc}")
                variants_complete = False
        else:
            report.notes.append(f"{conn.code}: its connector cannot list variants, so its SKUs are not checked.")
        try:
            ids = _storefront_location_ids(client)
        except errors as exc:
            report.errors.append(f"{conn.code} locations could not be listed: {exc}")
            ids = None
        if ids is not None:
            locations[conn] = ids
        else:
            report.notes.append(f"{conn.code}: its locations could not be checked.")

    # variants -> ERP items (identity when no mapping row), and SKUs on two Shopify products
    sold: set[str] = set()
    for conn, rows in variants.items():
        products_by_sku: dict[str, set[str]] = {}
        for variant in rows:
            sku = (variant.get("sku") or "").strip()
            if not sku:
                # The ERP needs a SKU to know the item: an order for this variant cannot post.
                report.findings.append(Finding(
                    VARIANT_INCOMPLETE, f"{conn.code}:{variant.get('variant_id', '')}:sku",
                    f"A variant of {variant.get('product_title') or variant.get('product_id', '')} on {conn.code} "
                    f"has no SKU, so its orders cannot be posted to the ERP.",
                    {"connection": conn.code, "product": variant.get("product_title") or variant.get("product_id", ""),
                     "missing": "a SKU", "variant_id": str(variant.get("variant_id", ""))},
                ))
                continue
            products_by_sku.setdefault(sku, set()).add(str(variant.get("product_id", "")))
            resolved = resolve_sku(conn, sku)
            if resolved is None:
                continue  # deliberately unmapped
            codes = [c for c, _q in resolved.components] or [resolved.erp_item_code]
            sold.update(codes)
            if erp_items is not None:
                for code in codes:
                    if code not in erp_items:
                        how = "identically (no mapping row)" if resolved.identity else "by its mapping"
                        report.findings.append(Finding(
                            VARIANT_WITHOUT_ITEM, f"{conn.code}:{sku}:{code}",
                            f"SKU {sku} on {conn.code} translates {how} to ERP item {code}, which the ERP does not have.",
                            {"sku": sku, "connection": conn.code, "item": code, "variant_id": str(variant.get("variant_id", ""))},
                            sku=sku,
                        ))
        if conn.kind == "shopify":
            for sku, products in sorted(products_by_sku.items()):
                if len(products) > 1:
                    report.findings.append(Finding(
                        DUPLICATE_SKU_PRODUCTS, f"{conn.code}:{sku}",
                        f"SKU {sku} is on {len(products)} Shopify products: {', '.join(sorted(products))}.",
                        {"sku": sku, "connection": conn.code, "count": len(products), "products": sorted(products)},
                        sku=sku,
                    ))
    if variants:
        report.checked.add(DUPLICATE_SKU_PRODUCTS.code)
        if variants_complete:
            report.checked.add(VARIANT_INCOMPLETE.code)
    if erp_items is not None and variants:
        report.checked.add(VARIANT_WITHOUT_ITEM.code)
        if variants_complete:
            report.checked.add(ERP_ITEM_UNSOLD.code)
            # Items the order flow posts charges to (not products a storefront sells).
            service_items = {settings.ORDERS.get(k) for k in (
                "default_custom_item", "shipping_item", "discount_item", "duty_item", "tip_item", "gift_card_item")}
            service_items.add(settings.ORDERS.get("goodwill_item") or "GOODWILL")  # refunds on no line
            for code in sorted(erp_items - sold - service_items):
                report.findings.append(Finding(
                    ERP_ITEM_UNSOLD, code, f"ERP item {code} is sold by no storefront variant.", {"item": code}
                ))

    # mappings -> depots the ERP still has
    if depots is not None:
        report.checked.add(STALE_DEPOT.code)
        for row in DepotMapping.objects.filter(active=True).select_related("connection"):
            if row.depot_code not in depots:
                report.findings.append(Finding(
                    STALE_DEPOT, f"depot:{row.pk}",
                    f"Depot mapping {row.connection.code} {row.country or 'any country'} points at depot "
                    f"{row.depot_code}, which the ERP does not list.",
                    {"depot": row.depot_code, "connection": row.connection.code, "country": row.country,
                     "table": "depots", "row": row.pk},
                ))
        for row in LocationMapping.objects.filter(active=True).select_related("connection"):
            if row.erp_warehouse not in depots:
                report.findings.append(Finding(
                    STALE_DEPOT, f"location-warehouse:{row.pk}",
                    f"Location {row.storefront_location} on {row.connection.code} takes stock from warehouse "
                    f"{row.erp_warehouse}, which the ERP does not list.",
                    {"depot": row.erp_warehouse, "connection": row.connection.code,
                     "location": row.storefront_location, "table": "locations", "row": row.pk},
                ))

    # mappings -> locations / supply channels the storefront still has
    if locations and len(locations) == len(connections):
        report.checked.add(STALE_LOCATION.code)
    for conn, ids in locations.items():
        wanted = [("locations", r) for r in LocationMapping.objects.filter(connection=conn, active=True)]
        wanted += [
            ("depots", r)
            for r in DepotMapping.objects.filter(connection=conn, active=True).exclude(storefront_location="")
        ]
        for table, row in wanted:
            loc = row.storefront_location
            present = loc in ids if conn.kind == "commercetools" else _location_id(loc) in ids
            if not present:
                report.findings.append(Finding(
                    STALE_LOCATION, f"{table}:{row.pk}",
                    f"{table[:-1].capitalize()} mapping on {conn.code} points at {loc}, which {conn.code} does not have.",
                    {"location": loc, "connection": conn.code, "table": table, "row": row.pk},
                ))
    return report


# The panel's sections: each kind of finding of the catalogue check, in the order people read them.
PANEL_SECTIONS = (
    (ERP_ITEM_UNSOLD.code, "ERP items with no storefront variant"),
    (VARIANT_WITHOUT_ITEM.code, "Storefront variants with no ERP item"),
    (DUPLICATE_SKU_PRODUCTS.code, "SKUs on two Shopify products"),
    (VARIANT_INCOMPLETE.code, "Variants missing what the ERP needs"),
    ("stale", "Mappings to depots or locations that are gone"),
)


def catalogue_panel() -> dict:
    """What the health panel shows: the catalogue check's last run and its open findings, by kind.
    Read from the database only: a page view never calls a vendor."""
    from integrations.drift.services import drift_check_status

    status = drift_check_status("catalogue")
    sections = {code: [] for code, _ in PANEL_SECTIONS}
    stale = {STALE_DEPOT.code, STALE_LOCATION.code}
    for finding in status["findings"]:
        kind = finding.key.split(":", 1)[0]
        sections.setdefault("stale" if kind in stale else kind, []).append(finding)
    status["sections"] = [(code, title, sections.get(code, [])) for code, title in PANEL_SECTIONS]
    summary = (status["last_run"].summary if status["last_run"] else {}) or {}
    status["errors"], status["notes"] = summary.get("errors", []), summary.get("notes", [])
    return status
