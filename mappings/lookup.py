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
    # One query for the candidates (at most four: the table is unique on them); preference applied here.
    found = {
        (cat, ctry): code
        for cat, ctry, code in TaxCodeMapping.objects.filter(
            connection=connection, rate=rate, tax_category__in={category, ""}, country__in={country, ""}
        ).order_by().values_list("tax_category", "country", "erp_tax_code")
    }
    return _first_match(found, (category, country), ("", country), (category, ""), ("", ""))


def resolve_depot(connection, *, country: str, location: str = "") -> str | None:
    found = {
        (loc, ctry): code
        for loc, ctry, code in DepotMapping.objects.filter(
            connection=connection, active=True, storefront_location__in={location, ""}, country__in={country, ""}
        ).order_by().values_list("storefront_location", "country", "depot_code")
    }
    return _first_match(found, (location, country), ("", country), (location, ""), ("", ""))


def _first_match(found: dict, *preference):
    for key in preference:
        if key in found:
            return found[key]
    return None
