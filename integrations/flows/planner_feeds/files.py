"""The planner's files, written row by row from the feed tables (querysets read with .iterator(), CSV
written in chunks), in a fixed order and format so the same data always gives the same bytes.

CSV connector ("CSV/Excel integration", one warehouse per connection, full files fetched daily; a row
missing from the file is deleted in the planner). Its help article documents the products file's
columns used here (product_id, title, price, SKU, created_at, stock_quantity, cost_price, barcode,
updated_at, managing_stock, vendor). The docs as we could read them are silent on:
  - products: `lead_time`, `non_sellable_quantity`, `non_sellable_states` (our additions: lead time
    from the ERP item master, and the units held per non-sellable state);
  - sales orders: the column names of the sales orders file beyond its purpose; we use lower-case
    names in the products file's style (order_id, line_id, created_at, sku, quantity, price, discount,
    currency) plus what forecasting needs (channel, location, shipping_country, shipping_region,
    discount_codes, tags, kit_sku).

Advanced CSV connector (incremental files over SFTP): the column names are the documented ones
(warehouse, vendor, variant, variant warehouse, variant vendor and sales order file specifications);
a file with an unsupported column is not processed there, so nothing else is added. Lead time is
configured in the planner itself for this connector (not a file column). The docs are silent on the
subdirectory names: we use one per entity, named as the entity (`warehouses/`, `sales_orders/`…).
Channel, location, ship-to and promotion have no documented sales-order column: they ride in
REFERENCE2 as `channel=…;location=…;country=…;region=…;codes=…;tags=…` (REFERENCE is the
storefront's order number).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone as dt_timezone
from decimal import Context, Decimal
from typing import Iterable, Iterator

from django.db import connections

from integrations.models import Connection
from integrations.models.planner_feeds import PlannerItem, PlannerSalesLine, PlannerStock

from .collect import money_text

CHUNK_ROWS = 2000

PRODUCTS_COLUMNS = ("product_id", "SKU", "title", "price", "created_at", "updated_at", "stock_quantity",
                    "managing_stock", "cost_price", "barcode", "vendor", "lead_time", "non_sellable_quantity",
                    "non_sellable_states")
# The CSV connector's optional purchase orders file (the ERP's open orders: the planner's stock on order).
# Its help article names the file but, as we could read it, not its columns: these are the Advanced CSV
# stock order file's documented columns (ID, REFERENCE, STATUS, WAREHOUSE, VENDOR, CREATED_DATE,
# LINE_ITEM_ID, SKU, REPLENISHMENT, RECEIVED, COST_PRICE, EXPECTED_DATE), lower-cased in the products
# file's style. Statuses are the planner's (open, partial).
PURCHASE_ORDERS_COLUMNS = ("id", "reference", "status", "warehouse", "vendor", "created_date", "line_item_id", "sku",
                           "replenishment", "received", "cost_price", "expected_date")
SALES_COLUMNS = ("order_id", "line_id", "created_at", "sku", "quantity", "price", "discount", "currency", "channel",
                 "location", "shipping_country", "shipping_region", "discount_codes", "tags", "kit_sku")

ADVANCED_COLUMNS = {
    "warehouses": ("WAREHOUSE_ID", "DISPLAY_NAME", "UPDATED_AT", "REMOVED", "CURRENCY"),
    "vendors": ("VENDOR_ID", "DISPLAY_NAME", "CURRENCY", "REMOVED", "UPDATED_AT"),
    "variants": ("VARIANT_ID", "SKU", "TITLE", "BARCODE", "PRODUCT_ID", "PRICE", "CREATED_AT", "UPDATED_AT",
                 "REMOVED", "TYPE"),
    "variant_warehouses": ("VARIANT_ID", "WAREHOUSE_ID", "IN_STOCK", "REMOVED", "UPDATED_AT"),
    "variant_vendors": ("VARIANT_ID", "VENDOR_ID", "REMOVED", "UPDATED_AT", "COST_PRICE"),
    "sales_orders": ("ORDER_ID", "ID", "VARIANT_ID", "WAREHOUSE", "CURRENCY", "QUANTITY", "PRICE", "CREATED_AT",
                     "REMOVED", "UPDATED_AT", "REFERENCE", "REFERENCE2", "DISCOUNT"),
}
# Catalogue and warehouses before what refers to them; sales last.
ADVANCED_ORDER = ("warehouses", "vendors", "variants", "variant_warehouses", "variant_vendors", "sales_orders")
STATE_FIELDS = ("in_transit", "quality_inspection", "damaged", "returned_awaiting_inspection")


def stamp(moment: datetime | None) -> str:
    """TIMESTAMP_NTZ: UTC, to the second, no zone."""
    if moment is None:
        return ""
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(dt_timezone.utc)
    return moment.isoformat(" ", "seconds")[:19]  # isoformat: several times faster than strftime


_FOUR_PLACES = Decimal("0.0001")
_CONTEXT = Context(prec=28)
_RAW_MONEY: dict = {}


def raw_rows(queryset, chunk: int = 5000) -> Iterator[tuple]:
    """The rows of a values_list queryset as the database driver returns them, in chunks, without
    Django's per-value converters: the snapshot paths convert the few columns they print themselves
    (raw_stamp, raw_money), which is what keeps a year of sales within the time and memory targets."""
    sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(chunk)
            if not rows:
                return
            yield from rows


def raw_stamp(value) -> str:
    """A stored timestamp as TIMESTAMP_NTZ: SQLite hands back Django's UTC text, others a datetime."""
    if isinstance(value, str):
        return value[:19]
    return stamp(value)


def raw_money(value, currency: str) -> str:
    """A stored DecimalField value (SQLite: a float or int holding a 4-place decimal) as money text."""
    key = (value, currency)
    text = _RAW_MONEY.get(key)
    if text is None:
        if isinstance(value, float):
            number = _CONTEXT.create_decimal_from_float(value).quantize(_FOUR_PLACES)
        else:
            number = Decimal(str(value))
        text = money_text(number, currency)
        if len(_RAW_MONEY) > 200_000:
            _RAW_MONEY.clear()
        _RAW_MONEY[key] = text
    return text


def flag(value: bool) -> str:
    return "true" if value else "false"


def csv_chunks(columns: Iterable[str], rows: Iterable[tuple], counter: list | None = None) -> Iterator[bytes]:
    """UTF-8 CSV (RFC 4180: CRLF, minimal quoting) in chunks; counter[0] counts the data rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            if counter is not None:
                counter[0] = count
    if counter is not None:
        counter[0] = count
    yield buffer.getvalue().encode()


def _channels() -> dict[int, str]:
    return dict(Connection.objects.values_list("pk", "code"))


def _vendor_id(supplier: str) -> str:
    return supplier.strip()


# --- CSV connector snapshots -------------------------------------------------------------------


def products_rows(warehouse: str) -> Iterator[tuple]:
    stock = {code: (ats, *states) for code, ats, *states in raw_rows(
        PlannerStock.objects.filter(warehouse=warehouse, removed=False).order_by()
        .values_list("item_code", "ats", *STATE_FIELDS))}
    items = (PlannerItem.objects.filter(removed=False).order_by("item_code")
             .values_list("item_code", "title", "price", "currency", "created_at", "updated_at", "cost", "barcode",
                          "supplier", "lead_time_days"))
    for code, title, price, currency, created, updated, cost, barcode, supplier, lead_time in raw_rows(items):
        ats, *states = stock.get(code, (0, 0, 0, 0, 0))
        held = " ".join(f"{name}={units}" for name, units in zip(STATE_FIELDS, states) if units)
        yield (code, code, title, raw_money(price, currency) if price is not None else "0.00", raw_stamp(created),
               raw_stamp(updated), ats, "true", raw_money(cost, currency) if cost is not None else "", barcode,
               supplier, "" if lead_time is None else lead_time, sum(states), held)


def sales_rows(warehouse: str) -> Iterator[tuple]:
    channels = _channels()
    rows = (PlannerSalesLine.objects.filter(warehouse=warehouse, removed=False, held=False)
            .order_by("ordered_at", "order_key", "line_key")
            .values_list("order_key", "line_key", "ordered_at", "item_code", "quantity", "unit_price", "discount",
                         "currency", "storefront_id", "storefront_location", "ship_country", "ship_region",
                         "discount_codes", "tags", "kit_sku"))
    for (order_key, line_key, ordered_at, item, quantity, price, discount, currency, storefront, location, country,
         region, codes, tags, kit) in raw_rows(rows):
        yield (order_key, line_key, raw_stamp(ordered_at), item, quantity, raw_money(price, currency),
               raw_money(discount, currency), currency, channels.get(storefront, ""), location, country, region,
               codes, tags, kit)


def purchase_orders_rows(warehouse: str) -> Iterator[tuple]:
    """Open ERP purchase orders into this warehouse, line by line, for items the planner's catalogue has."""
    from integrations.models import PlannerPurchaseOrderLine

    known = PlannerItem.objects.filter(removed=False).values("item_code")
    rows = (PlannerPurchaseOrderLine.objects.filter(warehouse=warehouse, removed=False, item_code__in=known)
            .order_by("erp_po_id", "line_number")
            .values_list("erp_po_id", "line_number", "status", "supplier", "created_at", "item_code", "quantity",
                         "received", "unit_cost", "expected_date"))
    for po_id, number, status, supplier, created, item, quantity, received, cost, expected in raw_rows(rows):
        yield (po_id, po_id, "partial" if received else "open", warehouse, supplier, raw_stamp(created)[:10],
               f"{po_id}:{number}", item, quantity, received, cost, (expected or "")[:10])


SNAPSHOT_FILES = {
    "products": (PRODUCTS_COLUMNS, products_rows),
    "sales_orders": (SALES_COLUMNS, sales_rows),
    "purchase_orders": (PURCHASE_ORDERS_COLUMNS, purchase_orders_rows),
}


def snapshot_chunks(kind: str, warehouse: str, counter: list | None = None) -> Iterator[bytes]:
    columns, rows = SNAPSHOT_FILES[kind]
    return csv_chunks(columns, rows(warehouse), counter)


# --- Advanced CSV increments --------------------------------------------------------------------


def _window(queryset, since: datetime | None, until: datetime):
    queryset = queryset.filter(updated_at__lte=until)
    return queryset.filter(updated_at__gt=since) if since is not None else queryset


def increment_rows(kind: str, *, warehouses: list[str], currency: str, since: datetime | None, until: datetime,
                   send_warehouses: bool) -> Iterator[tuple]:
    """The rows of one incremental file: what changed in (since, until]; removed rows say REMOVED."""
    if kind == "warehouses":
        if send_warehouses:
            for code in warehouses:
                yield (code, code, stamp(until), "false", currency)
        return
    # Increments list rows oldest change first: the updated_at index finds them without reading the year.
    items = _window(PlannerItem.objects.all(), since, until).order_by("updated_at", "item_code")
    if kind == "vendors":
        seen = {}
        for supplier, item_currency, updated in items.exclude(supplier="").values_list("supplier", "currency",
                                                                                     "updated_at").iterator():
            if supplier not in seen or updated > seen[supplier][1]:
                seen[supplier] = (item_currency or currency, updated)
        for supplier in sorted(seen):
            yield (_vendor_id(supplier), supplier, seen[supplier][0], "false", stamp(seen[supplier][1]))
        return
    if kind == "variants":
        for code, title, barcode, price, item_currency, created, updated, removed in items.values_list(
                "item_code", "title", "barcode", "price", "currency", "created_at", "updated_at", "removed").iterator():
            yield (code, code, title, barcode, code,
                   money_text(price, item_currency or currency) if price is not None else "0.00",
                   stamp(created), stamp(updated), flag(removed), "simple")
        return
    if kind == "variant_vendors":
        for code, supplier, cost, item_currency, updated, removed in items.exclude(supplier="").values_list(
                "item_code", "supplier", "cost", "currency", "updated_at", "removed").iterator():
            yield (code, _vendor_id(supplier), flag(removed), stamp(updated),
                   money_text(cost, item_currency or currency) if cost is not None else "")
        return
    if kind == "variant_warehouses":
        stock = (_window(PlannerStock.objects.filter(warehouse__in=warehouses), since, until)
                 .order_by("updated_at", "warehouse", "item_code")
                 .values_list("item_code", "warehouse", "ats", "removed", "updated_at"))
        for code, warehouse, ats, removed, updated in stock.iterator():
            yield (code, warehouse, ats, flag(removed), stamp(updated))
        return
    if kind == "sales_orders":
        channels = _channels()
        # The window alone in SQL (a day is a few thousand rows by the updated_at index); the warehouse
        # filter in Python, or SQLite would walk a year of the warehouse's rows by the snapshot index.
        wanted = set(warehouses)
        rows = (_window(PlannerSalesLine.objects.all(), since, until)
                .order_by("updated_at", "order_key", "line_key")
                .values_list("line_key", "order_key", "item_code", "warehouse", "currency", "quantity", "unit_price",
                             "ordered_at", "removed", "held", "updated_at", "order_number", "storefront_id",
                             "storefront_location", "ship_country", "ship_region", "discount_codes", "tags",
                             "discount"))
        for (line_key, order_key, item, warehouse, row_currency, quantity, price, ordered_at, removed, held, updated,
             number, storefront, location, country, region, codes, tags, discount) in rows.iterator(chunk_size=5000):
            if warehouse not in wanted:
                continue
            reference2 = (f"channel={channels.get(storefront, '')};location={location};country={country};"
                          f"region={region};codes={codes};tags={tags}")[:256]
            yield (f"{order_key}:{line_key}"[:256], order_key, item, warehouse, row_currency, quantity,
                   money_text(price, row_currency), stamp(ordered_at), flag(removed or held), stamp(updated), number,
                   reference2, money_text(discount, row_currency))
        return
    raise ValueError(f"unknown feed file kind {kind!r}")
