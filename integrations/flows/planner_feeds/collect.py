"""What the planner's files hold, brought up to date from Ledgerline's own data: sales rows from
posted orders (kits as their components, returns as negative quantities, each in the warehouse that
fulfils it), the catalogue from the ERP item master and each item's stock pool per warehouse. A row's
`updated_at` moves only when what the planner would see of it changes: that is the incremental
feed's cursor."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.domain import currency_exponent
from integrations.models import Connection, InventoryLevel, OrderLink, PollCursor, Refund
from integrations.models.planner_feeds import PlannerItem, PlannerSalesLine, PlannerStock

from .exception_types import PLANNER_UNKNOWN_SKU
from .order_facts import order_facts

log = logging.getLogger("ledgerline.planner_feeds")

PRICE_PLACES = Decimal("0.0001")
SALES_FIELDS = ("order_id", "order_key", "order_number", "item_code", "kit_sku", "warehouse", "storefront_location",
                "currency", "quantity", "unit_price", "discount", "ordered_at", "ship_country", "ship_region",
                "discount_codes", "tags", "held", "removed")
STATE_FIELDS = ("in_transit", "quality_inspection", "damaged", "returned_awaiting_inspection")


# --- sales ------------------------------------------------------------------------------------


def _kit_components(connection, sku: str) -> tuple[tuple[str, int], ...] | None:
    """[(item, units per kit)], or None when the SKU is deliberately unmapped."""
    from mappings.lookup import resolve_sku

    resolved = resolve_sku(connection, sku)
    if resolved is None:
        return None
    if resolved.components:
        return tuple(sorted(resolved.components))
    return ((resolved.erp_item_code, 1),)


def _split(total: Decimal, weights: list[int]) -> list[Decimal]:
    """`total` shared by weight, each share to PRICE_PLACES, the last taking the rounding rest so the
    shares add up to the storefront's figure exactly."""
    whole = sum(weights) or 1
    shares = [(total * w / whole).quantize(PRICE_PLACES, ROUND_HALF_EVEN) for w in weights[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def _warehouse(connection, link: OrderLink, order) -> str:
    """The warehouse that fulfils the order: the depot the posted Sales Order names, else the mappings'."""
    from mappings.lookup import resolve_depot
    from mappings.models import LocationMapping

    depot = str((link.erp_payload or {}).get("depot") or "")
    if depot:
        return depot
    if order.location:
        mapped = (LocationMapping.objects.filter(connection=connection, storefront_location=order.location, active=True)
                  .values_list("erp_warehouse", flat=True).first())
        if mapped:
            return mapped
    return resolve_depot(connection, country=order.country, location=order.location) or \
        settings.ORDERS.get("default_depot", "")


def _component_rows(*, base: dict, sku: str, quantity: int, unit_price: Decimal, discount: Decimal,
                    components) -> list[dict]:
    """One row per ERP item of the line: the item itself, or a kit's components sharing its price and
    discount by units (so the rows still total what the storefront charged)."""
    if len(components) == 1 and components[0][1] == 1:
        item, _ = components[0]
        return [{**base, "item_code": item, "kit_sku": "", "quantity": quantity,
                 "unit_price": unit_price.quantize(PRICE_PLACES), "discount": discount.quantize(PRICE_PLACES),
                 "component": item}]
    weights = [units for _, units in components]
    prices = _split(unit_price, weights)
    discounts = _split(discount, weights)
    rows = []
    for (item, units), price, disc in zip(components, prices, discounts):
        rows.append({**base, "item_code": item, "kit_sku": sku, "quantity": quantity * units,
                     "unit_price": (price / units).quantize(PRICE_PLACES, ROUND_HALF_EVEN), "discount": disc,
                     "component": item})
    return rows


def _returns(connection, link: OrderLink) -> list:
    """The order's refunds in our words: its stored Refund rows, else the refunds its payload names."""
    from integrations.flows.refunds.posting import refund_from_payload

    found = []
    stored = list(Refund.objects.filter(connection=connection, storefront_order_id=link.storefront_order_id)
                  .order_by("storefront_refund_id"))
    for row in stored:
        try:
            found.append(refund_from_payload(connection, row.payload, link.payload))
        except (ValueError, TypeError, KeyError, InvalidOperation):
            log.warning("planner feed: refund %s cannot be read", row.storefront_refund_id)
    if stored or connection.kind != "shopify":
        return found
    for raw in (link.payload or {}).get("refunds") or []:
        if isinstance(raw, dict) and raw.get("id") is not None:
            try:
                found.append(refund_from_payload(connection, {"order_id": link.storefront_order_id, **raw},
                                                 link.payload))
            except (ValueError, TypeError, KeyError, InvalidOperation):
                log.warning("planner feed: a refund of order %s cannot be read", link.storefront_order_id)
    return found


def sales_rows_for_order(connection: Connection, link: OrderLink) -> list[dict]:
    """The feed rows of one order as it stands: nothing unless it is in the ERP (posted and after)."""
    from integrations.connectors import order_from_payload

    if link.state not in OrderLink.IN_ERP:
        return []
    try:
        order = order_from_payload(connection, link.payload or {})
    except (ValueError, TypeError, KeyError, InvalidOperation):
        log.warning("planner feed: order %s cannot be read; its rows are left as they were", link.pk)
        raise
    facts = order_facts(connection.kind, link.payload or {})
    base = {
        "order_id": link.pk, "order_key": f"{connection.code}:{link.storefront_order_id}",
        "order_number": link.order_number or order.order_number, "warehouse": _warehouse(connection, link, order),
        "storefront_location": order.location, "currency": order.currency,
        "ordered_at": order.created_at or link.created_at, "ship_country": (order.country or "")[:2],
        "ship_region": facts.ship_region[:50], "discount_codes": " ".join(facts.discount_codes)[:300],
        "tags": ", ".join(facts.tags)[:300],
    }
    rows: list[dict] = []
    by_line = {}
    for line in order.lines:
        if line.kind != "item" or not line.sku:
            continue
        components = _kit_components(connection, line.sku)
        if not components:
            continue
        by_line[line.line_id] = (line, components)
        for row in _component_rows(base=base, sku=line.sku, quantity=line.quantity, unit_price=line.unit_price,
                                   discount=line.discount, components=components):
            row["line_key"] = f"{link.storefront_order_id}:{line.line_id or line.sku}:{row.pop('component')}"
            rows.append(row)
    for refund in _returns(connection, link):
        for rline in refund.lines:
            if rline.kind != "item" or rline.quantity <= 0:
                continue
            original = by_line.get(rline.line_id)
            if original is None and rline.sku:
                original = next(((l, c) for l, c in by_line.values() if l.sku == rline.sku), None)
            if original is None:
                continue
            line, components = original
            returned_at = refund.created_at or link.updated_at
            for row in _component_rows(base={**base, "ordered_at": returned_at}, sku=line.sku,
                                       quantity=-rline.quantity, unit_price=line.unit_price,
                                       discount=Decimal(0), components=components):
                row["line_key"] = (f"{link.storefront_order_id}:return:{refund.storefront_refund_id}:"
                                   f"{rline.line_id or line.sku}:{row.pop('component')}")
                rows.append(row)
    return rows


def _same(row: PlannerSalesLine, values: dict) -> bool:
    return all(getattr(row, name) == values[name] for name in SALES_FIELDS)


def sales_store_for_order(connection: Connection, link: OrderLink, known: set[str]) -> set[str]:
    """Bring the order's stored rows in line with what it is now; rows it no longer has are marked
    removed. Returns the unknown items of rows held back. Safe to repeat: unchanged rows are untouched."""
    try:
        wanted = {r["line_key"]: r for r in sales_rows_for_order(connection, link)}
    except (ValueError, TypeError, KeyError, InvalidOperation):
        return set()
    unknown = set()
    for values in wanted.values():
        values["held"] = values["item_code"] not in known
        values["removed"] = False
        if values["held"]:
            unknown.add(values["item_code"])
    now = timezone.now()
    order_key = f"{connection.code}:{link.storefront_order_id}"
    with transaction.atomic():
        existing = {row.line_key: row for row in PlannerSalesLine.objects.select_for_update()
                    .filter(storefront=connection, order_key=order_key)}
        create = []
        for key, values in wanted.items():
            row = existing.get(key)
            if row is None:
                create.append(PlannerSalesLine(storefront=connection, updated_at=now, **values))
            elif not _same(row, values):
                PlannerSalesLine.objects.filter(pk=row.pk).update(updated_at=now, **values)
        for key, row in existing.items():
            if key not in wanted and not row.removed:
                PlannerSalesLine.objects.filter(pk=row.pk).update(removed=True, updated_at=now)
        PlannerSalesLine.objects.bulk_create(create)
    return unknown


def _cursor(connection: Connection, resource: str) -> PollCursor:
    return PollCursor.objects.get_or_create(connection=connection, resource=resource)[0]


def _changed_since(queryset, cursor: PollCursor, stamp: str = "updated_at"):
    """Rows changed after the cursor, oldest first ((stamp, id) so rows sharing a stamp are not skipped)."""
    since = parse_datetime(cursor.last_modified_at) if cursor.last_modified_at else None
    if since is not None:
        last_id = int(cursor.last_id or 0)
        queryset = queryset.filter(Q(**{f"{stamp}__gt": since}) | Q(**{stamp: since, "pk__gt": last_id}))
    return queryset.order_by(stamp, "pk")


def _advance(cursor: PollCursor, stamp: datetime, pk: int, count: int) -> None:
    cursor.last_modified_at, cursor.last_id, cursor.last_run_count = stamp.isoformat(), str(pk), count
    cursor.save(update_fields=["last_modified_at", "last_id", "last_run_count", "updated_at"])


def planner_sales_collect(*, storefront: Connection, batch: int = 500) -> dict:
    """Every order (and refund) of this storefront changed since the last collection, applied to the
    feed's rows. Resumes from its cursors (PollCursor "planner_sales" / "planner_refunds")."""
    known = set(PlannerItem.objects.filter(removed=False).values_list("item_code", flat=True))
    orders_cursor, refunds_cursor = _cursor(storefront, "planner_sales"), _cursor(storefront, "planner_refunds")
    unknown: dict[str, set[str]] = {}
    seen = 0
    while True:
        links = list(_changed_since(OrderLink.objects.filter(connection=storefront), orders_cursor)
                     .only("pk", "updated_at", "state", "payload", "erp_payload", "storefront_order_id",
                           "order_number", "created_at", "connection_id")[:batch])
        for link in links:
            for item in sales_store_for_order(storefront, link, known):
                unknown.setdefault(item, set()).add(link.order_number or link.storefront_order_id)
        if links:
            seen += len(links)
            _advance(orders_cursor, links[-1].updated_at, links[-1].pk, len(links))
        if len(links) < batch:
            break
    while True:
        refunds = list(_changed_since(Refund.objects.filter(connection=storefront), refunds_cursor)
                       .select_related("order")[:batch])
        for refund in refunds:
            if refund.order is not None:
                for item in sales_store_for_order(storefront, refund.order, known):
                    unknown.setdefault(item, set()).add(refund.order.order_number)
        if refunds:
            _advance(refunds_cursor, refunds[-1].updated_at, refunds[-1].pk, len(refunds))
        if len(refunds) < batch:
            break
    for item, orders in sorted(unknown.items()):
        unknown_sku_raise(item_code=item, what="order line", detail=f"orders {', '.join(sorted(orders)[:10])}",
                          storefront=storefront)
    return {"orders": seen, "unknown_items": sorted(unknown)}


def unknown_sku_raise(*, item_code: str, what: str, detail: str, storefront: Connection | None = None):
    from exceptions_queue.services import exception_raise

    where = f" from {storefront.name}" if storefront is not None else ""
    return exception_raise(
        exc_type=PLANNER_UNKNOWN_SKU, key=f"{what}:{item_code}", fingerprint=item_code, sku=item_code,
        message=(f"{what.capitalize()}s{where} name ERP item {item_code}, which is not in the catalogue sent to "
                 f"Inventory Planner ({detail}). Their rows are held back from the feed."),
        context={"item_code": item_code, "what": what, "detail": detail},
        retry_args={"item_code": item_code, "what": what},
    )


def held_rows_release(*, item_code: str | None = None) -> int:
    """Rows held for an item the catalogue now has go out with the next feed (their stamp moves)."""
    known = PlannerItem.objects.filter(removed=False).values_list("item_code", flat=True)
    rows = PlannerSalesLine.objects.filter(held=True, item_code__in=known)
    if item_code:
        rows = rows.filter(item_code=item_code)
    return rows.update(held=False, updated_at=timezone.now())


# --- catalogue and stock ------------------------------------------------------------------------


def _non_stock_items() -> set[str]:
    return {str(v) for k, v in settings.ORDERS.items() if k.endswith("_item") and v} | {
        str(settings.ORDERS.get("goodwill_item") or "GOODWILL")}


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number.quantize(Decimal("0.000001")) if number.is_finite() else None


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class CatalogueResult:
    items_changed: int = 0
    stock_changed: int = 0
    unknown_stock: tuple[str, ...] = ()


def planner_catalogue_refresh(*, erp=None, warehouses: list[str] | None = None) -> CatalogueResult:
    """The ERP item master and stock, as the planner's catalogue and stock pools. Items and pools the
    ERP no longer has are marked removed. Only rows whose figures changed get a new stamp."""
    from integrations.connectors import get_erp
    from integrations.flows.inventory.ats import LocationRule, available_to_sell, stock_figures

    erp = erp or get_erp()
    now = timezone.now()
    result = CatalogueResult()
    if not hasattr(erp, "list_items"):
        # Prima's connector offers no item list yet: keep the catalogue as it is rather than empty it.
        log.warning("planner feeds: the ERP connector lists no items; the catalogue is left unchanged")
        return result
    skip = _non_stock_items()
    listed = {}
    for item in erp.list_items():
        code = str(item.get("code") or "")
        if not code or code in skip or item.get("stock_item") is False:
            continue
        listed[code] = {
            "title": str(item.get("description") or code)[:300], "barcode": str(item.get("barcode") or "")[:100],
            "currency": str(item.get("currency") or "")[:3], "price": _decimal(item.get("price")),
            "cost": _decimal(item.get("unit_cost")), "lead_time_days": _int(item.get("lead_time_days")),
            "supplier": str(item.get("supplier") or "")[:200], "removed": not item.get("active", True),
        }
    with transaction.atomic():
        existing = {row.item_code: row for row in PlannerItem.objects.select_for_update()}
        for code, values in listed.items():
            row = existing.get(code)
            if row is None:
                PlannerItem.objects.create(item_code=code, created_at=now, updated_at=now, **values)
                result.items_changed += 1
            elif any(getattr(row, k) != v for k, v in values.items()):
                PlannerItem.objects.filter(pk=row.pk).update(updated_at=now, **values)
                result.items_changed += 1
        gone = [row.pk for code, row in existing.items() if code not in listed and not row.removed]
        result.items_changed += PlannerItem.objects.filter(pk__in=gone).update(removed=True, updated_at=now)
        dropped = {code for code, row in existing.items() if not row.removed
                   and (code not in listed or listed[code]["removed"])}

    # One pool per item and warehouse however many channels sell from it: what is really available
    # (on hand − allocated − reserved − every held state), with no storefront's safety buffer.
    pool_rule = LocationRule("", "")
    wanted_warehouses = set(warehouses) if warehouses else None
    pools = {}
    for row in erp.get_stock():
        code, warehouse = str(row.get("item_code") or ""), str(row.get("depot") or "")
        if code not in listed or (wanted_warehouses is not None and warehouse not in wanted_warehouses):
            continue
        figures = stock_figures(row)
        states = dict(zip(STATE_FIELDS, figures[3:]))
        pools[(code, warehouse)] = {"ats": available_to_sell(figures, pool_rule), **states, "removed": False}
    with transaction.atomic():
        existing = {(r.item_code, r.warehouse): r for r in PlannerStock.objects.select_for_update()}
        for key, values in pools.items():
            row = existing.get(key)
            if row is None:
                PlannerStock.objects.create(item_code=key[0], warehouse=key[1], updated_at=now, **values)
                result.stock_changed += 1
            elif any(getattr(row, k) != v for k, v in values.items()):
                PlannerStock.objects.filter(pk=row.pk).update(updated_at=now, **values)
                result.stock_changed += 1
        gone = [row.pk for key, row in existing.items() if key not in pools and not row.removed
                and (wanted_warehouses is None or key[1] in wanted_warehouses)]
        result.stock_changed += PlannerStock.objects.filter(pk__in=gone).update(removed=True, updated_at=now)

    # A stock update the storefronts get for an item the planner's catalogue lacks.
    known = {code for code, v in listed.items() if not v["removed"]}
    levels = (InventoryLevel.objects.exclude(erp_item_code="").exclude(erp_item_code__in=known)
              .values_list("erp_item_code", "storefront_sku").order_by("erp_item_code"))
    unknown: dict[str, set[str]] = {}
    for code, sku in levels:
        unknown.setdefault(code, set()).add(sku)
    for code, skus in unknown.items():
        unknown_sku_raise(item_code=code, what="stock update", detail=f"storefront SKUs {', '.join(sorted(skus)[:10])}")
    result.unknown_stock = tuple(sorted(unknown))
    # Sales already sent for an item the catalogue no longer has: held back (REMOVED in the next
    # increment, gone from the snapshot) and said, rather than left naming a variant the planner lacks.
    for code in sorted(dropped):
        orders = sorted(set(PlannerSalesLine.objects.filter(item_code=code, held=False, removed=False)
                            .values_list("order_number", flat=True)[:10]))
        if orders and PlannerSalesLine.objects.filter(item_code=code, held=False, removed=False).update(
                held=True, updated_at=now):
            unknown_sku_raise(item_code=code, what="order line", detail=f"orders {', '.join(orders)}")
    held_rows_release()
    return result


# --- open purchase orders (the CSV connector's optional purchase orders file) ----------------------

OPEN_PO_STATUSES = ("open", "partially_received")
PO_PAGES = 50  # per refresh; the cursor carries on next hour


def _po_cursor(erp):
    from integrations.connectors import erp_connection
    from integrations.flows.fulfilment.store import erp_key
    from integrations.models import ReceiptCursor

    return ReceiptCursor.objects.get_or_create(erp=f"planner-feeds:{erp_key(erp_connection())}"[:200])[0]


def planner_purchase_orders_collect(*, erp=None, max_pages: int = PO_PAGES) -> dict:
    """The ERP's purchase orders changed since the cursor, as the purchase orders file's lines: open and
    partly received orders listed, received or cancelled ones removed. Orders raised from the planner's
    drafts (external reference "planner:…") are left out: the planner holds them already. A line for an
    item the planner's catalogue does not know is an owned exception, and the file leaves it out."""
    from integrations.connectors import get_erp
    from integrations.connectors.base import PURCHASE_ORDERS, ConnectorError, supports
    from integrations.models import ReceiptCursor

    erp = erp or get_erp()
    if not supports(erp, PURCHASE_ORDERS):  # Prima: no purchase orders file, the planner keeps its own
        return {"status": "unsupported", "orders": 0}
    cursor = _po_cursor(erp)
    now = timezone.now()
    known = set(PlannerItem.objects.filter(removed=False).values_list("item_code", flat=True))
    counts = {"status": "ok", "orders": 0, "lines_changed": 0}
    unknown: dict[str, set[str]] = {}
    for _ in range(max_pages):
        try:
            page = erp.purchase_orders_since(cursor.cursor)
        except ConnectorError as exc:  # read again next hour from the same cursor
            log.warning("planner feeds: the ERP's purchase orders were not read (%s)", exc)
            counts["status"] = "erp_unavailable"
            break
        with transaction.atomic():
            for order in page.purchase_orders:
                if order.external_reference.startswith("planner:"):
                    continue
                counts["orders"] += 1
                counts["lines_changed"] += _po_store(order, now)
                for line in order.lines:
                    if line.item_code not in known and order.status in OPEN_PO_STATUSES:
                        unknown.setdefault(line.item_code, set()).add(order.id)
            ReceiptCursor.objects.filter(pk=cursor.pk).update(cursor=page.cursor)
        cursor.cursor = page.cursor
        if not page.more:
            break
    if counts["status"] == "ok":
        counts["reread"] = _po_reread_same_second(erp, cursor.cursor, now)
    for item, orders in sorted(unknown.items()):
        unknown_sku_raise(item_code=item, what="purchase order line",
                          detail=f"ERP purchase orders {', '.join(sorted(orders)[:10])}")
    counts["unknown_items"] = sorted(unknown)
    return counts


def _po_reread_same_second(erp, cursor: str, now) -> int:
    """ERP times are whole seconds and the cursor skips the orders it read at its last second, so an order
    received in that same second would wait for its next change: the open ones read at that second are
    asked for again by their reference (a handful)."""
    from integrations.connectors.base import ConnectorError, decode_cursor
    from integrations.models import PlannerPurchaseOrderLine

    _, seen = decode_cursor(cursor)
    references = set(PlannerPurchaseOrderLine.objects.filter(erp_po_id__in=list(seen)[:200], removed=False)
                     .values_list("erp_reference", flat=True))
    changed = 0
    for reference in sorted(r for r in references if r):
        try:
            order = erp.find_purchase_order(reference)
        except ConnectorError:
            break
        if order is not None:
            with transaction.atomic():
                changed += _po_store(order, now)
    return changed


def _po_store(order, now) -> int:
    """Create or refresh one order's lines; only a line whose file row would change gets a new stamp."""
    from integrations.models import PlannerPurchaseOrderLine

    existing = {row.line_number: row for row in PlannerPurchaseOrderLine.objects.filter(erp_po_id=order.id)}
    is_open = order.status in OPEN_PO_STATUSES
    changed = 0
    for number, line in enumerate(order.lines, start=1):
        values = {"erp_reference": order.external_reference, "status": order.status, "supplier": order.supplier,
                  "warehouse": order.depot,
                  "item_code": line.item_code, "quantity": line.quantity, "received": line.received_quantity,
                  "unit_cost": line.unit_cost or "", "expected_date": order.expected_date, "removed": not is_open}
        row = existing.pop(number, None)
        if row is None:
            if is_open:
                PlannerPurchaseOrderLine.objects.create(erp_po_id=order.id, line_number=number, created_at=now,
                                                        updated_at=now, **values)
                changed += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            PlannerPurchaseOrderLine.objects.filter(pk=row.pk).update(updated_at=now, **values)
            changed += 1
    for row in existing.values():  # a line the ERP no longer has on the order
        if not row.removed:
            PlannerPurchaseOrderLine.objects.filter(pk=row.pk).update(removed=True, updated_at=now)
            changed += 1
    return changed


def planner_feeds_refresh(*, erp=None) -> dict:
    """Catalogue and stock first (what the planner knows), then the ERP's open purchase orders and every
    storefront's sales."""
    catalogue = planner_catalogue_refresh(erp=erp)
    purchase_orders = planner_purchase_orders_collect(erp=erp)
    sales = {c.code: planner_sales_collect(storefront=c) for c in Connection.objects.storefronts().order_by("code")}
    return {"items_changed": catalogue.items_changed, "stock_changed": catalogue.stock_changed,
            "purchase_orders": purchase_orders, "sales": sales}


_MONEY_TEXT: dict = {}


def money_text(value: Decimal, currency: str) -> str:
    """A price as the files write it: at least the currency's decimals, more only when a kit's share
    needs them; never a float, always the same text for the same value. (Memoised: a year of sales
    repeats the same few thousand prices.)"""
    key = (value, currency)
    text = _MONEY_TEXT.get(key)
    if text is None:
        places = currency_exponent(currency) if currency else 2
        exponent = value.normalize().as_tuple().exponent
        text = f"{value:.{max(places, -exponent if exponent < 0 else 0)}f}"
        if len(_MONEY_TEXT) > 200_000:
            _MONEY_TEXT.clear()
        _MONEY_TEXT[key] = text
    return text
