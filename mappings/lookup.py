"""Read-side of the mapping tables, as the flows use them."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .models import DepotMapping, SkuMapping, TaxCodeMapping


@dataclass(frozen=True)
class ResolvedSku:
    storefront_sku: str
    erp_item_code: str  # blank for a kit
    components: tuple[tuple[str, int], ...] = ()
    identity: bool = False  # no mapping row: the storefront SKU is the ERP item code


def resolve_sku(connection, storefront_sku: str) -> ResolvedSku | None:
    """None when a mapping row exists but is inactive (deliberately unmapped)."""
    row = SkuMapping.objects.filter(connection=connection, storefront_sku=storefront_sku).first()
    if row is None:
        return ResolvedSku(storefront_sku, storefront_sku, identity=True)
    if not row.active:
        return None
    components = tuple(row.components.values_list("erp_item_code", "quantity"))
    return ResolvedSku(storefront_sku, row.erp_item_code, components)


def resolve_tax_code(connection, *, rate: Decimal, country: str, category: str = "") -> str | None:
    """Most specific match wins: category+country, then country, then category, then any."""
    rows = TaxCodeMapping.objects.filter(connection=connection, rate=rate)
    for cat, ctry in ((category, country), ("", country), (category, ""), ("", "")):
        row = rows.filter(tax_category=cat, country=ctry).first()
        if row:
            return row.erp_tax_code
    return None


def resolve_depot(connection, *, country: str, location: str = "") -> str | None:
    rows = DepotMapping.objects.filter(connection=connection, active=True)
    for loc, ctry in ((location, country), ("", country), (location, ""), ("", "")):
        row = rows.filter(storefront_location=loc, country=ctry).first()
        if row:
            return row.depot_code
    return None
