"""Reading the planner: its draft purchase orders become Recommendations to review, and its
figures per SKU (lead time, review period, replenishment, days to sell out) are stored for the screens."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from integrations.connectors import connector_for, get_erp
from integrations.connectors.base import ITEMS, ConnectorError, PermanentError, TransientError, supports
from integrations.connectors.inventory_planner import DRAFT, PlannerPurchaseOrder, PlannerVariant
from integrations.models import Connection, PlannerVariant as StoredVariant, Recommendation, RecommendationLine
from integrations.models.planner import URGENCY_RANK, Urgency
from mappings.lookup import resolve_depot, resolve_sku

from . import exception_types as types
from . import exceptions

log = logging.getLogger("ledgerline.replenishment")


def urgency_of(*, oos: int | None, lead_time: int | None, review_period: int | None) -> str:
    """Out of stock now; sells out before an order placed today arrives; before the next review; later."""
    if oos is None:
        return Urgency.LOW
    if oos <= 0:
        return Urgency.CRITICAL
    if lead_time is not None and oos < lead_time:
        return Urgency.HIGH
    if lead_time is not None and oos < lead_time + (review_period or 0):
        return Urgency.MEDIUM
    return Urgency.LOW


class ErpItems:
    """Which ERP item a planner SKU is, asked of the ERP once per SKU and run."""

    def __init__(self, connection: Connection, erp=None):
        self.connection = connection
        self.erp = erp if erp is not None else get_erp()
        self._known: dict[str, bool] = {}

    def item_for(self, sku: str) -> str:
        """The ERP item code, or "" when there is none (no active item, a deactivated mapping, a kit)."""
        resolved = resolve_sku(self.connection, sku)
        if resolved is None or not resolved.erp_item_code:
            return ""
        code = resolved.erp_item_code
        if code not in self._known:
            # Without the Items capability we cannot check; the ERP itself refuses an unknown item on create.
            self._known[code] = self.erp.item_exists(code) if supports(self.erp, ITEMS) else True
        return code if self._known[code] else ""


def _variant_store(connection: Connection, variant: PlannerVariant, *, erp_known: bool) -> StoredVariant:
    vendor = variant.vendors[0] if variant.vendors else None
    row, _ = StoredVariant.objects.update_or_create(
        connection=connection, variant_id=variant.id,
        defaults={"sku": variant.sku, "warehouse": variant.warehouse, "lead_time": variant.lead_time,
                  "review_period": variant.review_period, "replenishment": variant.replenishment,
                  "oos": variant.oos, "vendor": vendor.vendor if vendor else "",
                  "cost_price": vendor.cost_price if vendor else None, "erp_known": erp_known,
                  "fetched_at": timezone.now()})
    return row


def recommendations_pull(*, connection: Connection, erp=None) -> dict:
    """One read of the planner's drafts: {"status", "orders", "created", "lines_unknown"}. A planner that
    does not answer leaves everything as it was (the next scheduled run reads again); one that refuses
    us or answers nonsense is an owned exception on the connection."""
    counts = {"status": "ok", "orders": 0, "created": 0, "lines_unknown": 0}
    try:
        client = connector_for(connection)
        orders = list(client.list_purchase_orders(status=DRAFT))
        skus = sorted({item.sku for order in orders for item in order.items})
        variants = list(client.list_variants(skus=skus)) if skus else []
    except TransientError as exc:
        log.warning("replenishment: %s did not answer (%s); the next run reads again", connection.code, exc)
        return {**counts, "status": "planner_unavailable"}
    except (PermanentError, ValueError) as exc:
        exceptions.pull_failed_raise(connection, str(exc))
        return {**counts, "status": "failed", "error": str(exc)}
    items = ErpItems(connection, erp)
    try:
        figures = {}
        for variant in variants:
            row = _variant_store(connection, variant, erp_known=bool(items.item_for(variant.sku)))
            figures[(variant.sku, variant.warehouse)] = row
        for order in orders:
            created, unknown = recommendation_store(connection=connection, order=order, items=items, figures=figures)
            counts["orders"] += 1
            counts["created"] += int(created)
            counts["lines_unknown"] += unknown
    except ConnectorError as exc:  # the ERP could not say whether an item exists: read again next time
        log.warning("replenishment: the ERP did not answer the item check (%s)", exc)
        return {**counts, "status": "erp_unavailable"}
    exceptions.resolve(types.PLANNER_PULL_FAILED, connection.code, "The planner answered again.")
    return counts


def recommendation_store(*, connection: Connection, order: PlannerPurchaseOrder, items: ErpItems,
                         figures: dict) -> tuple[bool, int]:
    """Create or refresh the Recommendation of one draft: (created, lines without an ERP item). Once
    approved or rejected, only the planner's status is refreshed: what ops decided stays."""
    with transaction.atomic():
        rec, created = Recommendation.objects.select_for_update().get_or_create(
            connection=connection, planner_id=order.id, defaults={"warehouse": order.warehouse})
        rec.planner_status = order.status
        rec.planner_modified = order.last_modified
        if not rec.is_open_for_review and not created:
            rec.save(update_fields=["planner_status", "planner_modified", "updated_at"])
            return False, 0
        rec.planner_reference = order.reference
        rec.vendor = order.vendor
        rec.warehouse = order.warehouse
        rec.depot = resolve_depot(connection, country="", location=order.warehouse) or order.warehouse
        rec.currency = order.currency or (connection.settings or {}).get("currency", "GBP")
        rec.expected_date = order.expected_date
        seen, unknown, soonest, urgent = set(), [], None, Urgency.LOW
        for item in order.items:
            figure = figures.get((item.sku, order.warehouse))
            line, line_created = RecommendationLine.objects.get_or_create(
                recommendation=rec, planner_item_id=item.id,
                defaults={"sku": item.sku, "quantity_recommended": item.replenishment,
                          "quantity_approved": item.replenishment})
            if not line_created and not line.edited:
                line.quantity_approved = item.replenishment  # follow the planner unless ops changed it
            line.quantity_recommended = item.replenishment
            line.sku, line.variant_id, line.title = item.sku, item.variant, item.title
            line.unit_cost = item.cost if item.cost is not None else (figure.cost_price if figure else None)
            line.erp_item_code = items.item_for(item.sku)
            if figure is not None:
                line.lead_time, line.review_period, line.oos = figure.lead_time, figure.review_period, figure.oos
            line.save()
            seen.add(item.id)
            if not line.erp_item_code:
                unknown.append(line)
            if line.oos is not None and (soonest is None or line.oos < soonest):
                soonest = line.oos
            level = urgency_of(oos=line.oos, lead_time=line.lead_time, review_period=line.review_period)
            if URGENCY_RANK[level] < URGENCY_RANK[urgent]:
                urgent = level
        rec.lines.exclude(planner_item_id__in=seen).delete()
        rec.days_of_stock = soonest
        rec.urgency, rec.urgency_rank = urgent, URGENCY_RANK[urgent]
        rec.save()
    for line in rec.lines.all():
        if line.erp_item_code:
            exceptions.resolve(types.PURCHASE_LINE_UNKNOWN_ITEM, f"{rec.pk}:{line.sku}", "The SKU has an ERP item now.")
    for line in unknown:
        exceptions.unknown_item_raise(rec, line)
    return created, len(unknown)


def planner_catalogue_check(*, connection: Connection, erp=None) -> dict:
    """The planner's whole catalogue: every variant's figures stored, and each SKU the ERP does not
    know an owned exception (so what the planner recommends for it is never silently unorderable)."""
    counts = {"status": "ok", "variants": 0, "unknown": 0}
    items = ErpItems(connection, erp)
    try:
        for variant in connector_for(connection).list_variants():
            known = bool(items.item_for(variant.sku))
            _variant_store(connection, variant, erp_known=known)
            counts["variants"] += 1
            if known:
                exceptions.resolve(types.PLANNER_SKU_UNKNOWN, f"{connection.code}:{variant.sku}", "The SKU has an ERP item now.")
            else:
                counts["unknown"] += 1
                exceptions.planner_sku_raise(connection, variant.sku, variant.warehouse)
    except TransientError as exc:
        log.warning("replenishment: catalogue check of %s stopped (%s); the next run reads again", connection.code, exc)
        return {**counts, "status": "unavailable"}
    except (PermanentError, ValueError) as exc:
        exceptions.pull_failed_raise(connection, str(exc))
        return {**counts, "status": "failed", "error": str(exc)}
    return counts

