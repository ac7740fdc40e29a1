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
    return _most_specific(TaxCodeMapping.objects.filter(connection=connection, rate=rate),
                          ("tax_category", "country"), (category, country), "erp_tax_code")


def resolve_depot(connection, *, country: str, location: str = "") -> str | None:
    """Most specific match wins: location+country, then country, then location, then any."""
    return _most_specific(DepotMapping.objects.filter(connection=connection, active=True),
                          ("storefront_location", "country"), (location, country), "depot_code")


def _most_specific(rows, fields: tuple[str, str], wanted: tuple[str, str], value: str) -> str | None:
    """One query for the candidate rows (at most four: the tables are unique on these fields; blank
    means any), then the preference: both fields, the second alone, the first alone, neither."""
    (first, second), (a, b) = fields, wanted
    found = {
        (x, y): v
        for x, y, v in rows.filter(**{f"{first}__in": {a, ""}, f"{second}__in": {b, ""}})
        .order_by().values_list(first, second, value)
    }
    for key in ((a, b), ("", b), (a, ""), ("", "")):
        if key in found:
            return found[key]
    return None
