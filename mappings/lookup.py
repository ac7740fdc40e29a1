"""Read-side of the mapping tables, as the flows use them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db import connections, router

from .models import DepotMapping, KitComponent, LocationMapping, SkuMapping, TaxCodeMapping


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


# --- cached, as the order flow reads them -----------------------------------------------------
#
# A flash sale asks the same few SKU, tax and depot rows for every order. They are kept in Django's
# cache under the mapping tables' change mark (mappings_version): every save or delete of a mapping
# row writes its history row (simple-history), so the mark moves with the change, in every process,
# and the next order reads the tables afresh. One statement per order instead of one per lookup.

# The order-relevant tables whose change mark is read (LocationMapping: the ERP facts follow it).
_VERSIONED = (SkuMapping, KitComponent, DepotMapping, TaxCodeMapping, LocationMapping)
_version_sql: dict[str, str] = {}
CACHE_SECONDS = 600
_MISSING = object()


def mappings_version(using: str | None = None) -> str:
    """A mark that changes whenever a SKU, kit, depot, tax-code or location mapping row is saved or
    deleted: the newest history row of each table, by id and time (the time too because SQLite hands
    a rolled-back id out again), as a short digest."""
    using = using or router.db_for_read(SkuMapping)
    statement = _version_sql.get(using)
    if statement is None:
        quote = connections[using].ops.quote_name
        parts = []
        for model in _VERSIONED:
            table, pk = quote(model.history.model._meta.db_table), quote(model.history.model._meta.pk.column)
            parts += [f"(SELECT {column} FROM {table} ORDER BY {pk} DESC LIMIT 1)"
                      for column in (pk, quote("history_date"))]
        statement = _version_sql[using] = "SELECT " + ", ".join(parts)
    with connections[using].cursor() as cursor:
        cursor.execute(statement)
        mark = "|".join(str(value or 0) for value in cursor.fetchone())
    return hashlib.sha1(mark.encode()).hexdigest()[:20]


class MappingLookup:
    """resolve_sku / resolve_tax_code / resolve_depot for one connection, answered from Django's
    cache while the mapping tables are as they were when this lookup was made (one per order)."""

    def __init__(self, connection, version: str | None = None):
        self.connection = connection
        self.version = version if version is not None else mappings_version()
        self._prefix = f"ledgerline:mappings:{self.version}:{connection.pk}:"

    def _cached(self, what: str, args: tuple, read):
        # Hashed: SKUs and tax titles may hold characters a cache key must not.
        key = self._prefix + what + ":" + hashlib.sha1(repr(args).encode()).hexdigest()
        found = cache.get(key, _MISSING)
        if found is _MISSING:
            found = read()
            cache.set(key, found, CACHE_SECONDS)
        return found

    def sku(self, storefront_sku: str) -> ResolvedSku | None:
        return self._cached("sku", (storefront_sku,), lambda: resolve_sku(self.connection, storefront_sku))

    def tax_code(self, *, rate: Decimal, country: str, category: str = "") -> str | None:
        rate_text = format(Decimal(rate).normalize(), "f")
        return self._cached("tax", (rate_text, country, category), lambda: resolve_tax_code(
            self.connection, rate=rate, country=country, category=category))

    def depot(self, *, country: str, location: str = "") -> str | None:
        return self._cached("depot", (country, location), lambda: resolve_depot(
            self.connection, country=country, location=location))
