"""Receipts back: what the ERP received on the purchase orders we raised reaches the recommendation
(received quantities, status) and Inventory Planner (received per line, partial / closed)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from integrations.connectors import connector_for, erp_connection, get_erp
from integrations.connectors.base import (
    PURCHASE_ORDERS,
    ConnectorError,
    PermanentError,
    TransientError,
    decode_cursor,
    require,
)
from integrations.connectors.inventory_planner import CANCELLED, CLOSED, PARTIAL
from integrations.flows.fulfilment.store import erp_key
from integrations.models import ReceiptCursor, Recommendation
from integrations.models.planner import TRANSITIONS
from integrations.writes import outbound_write

from . import exception_types as types
from . import exceptions
from .approve import planner_mark_ordered, planner_mark_rejected, recommendation_place
from .state import recommendation_move

log = logging.getLogger("ledgerline.replenishment")
S = Recommendation.Status
MAX_PAGES = 20
RESUME_AFTER_MINUTES = 2
MAX_AUTOMATIC_ATTEMPTS = 20  # then only a person's Retry on the exception carries it on


def receipts_apply(order) -> Recommendation | None:
    """One ERP purchase order as read back: its received quantities onto our lines (by item, in line
    order), and the status they make. Re-reading the same order changes nothing."""
    if not order.external_reference.startswith("planner:"):
        return None
    rec = Recommendation.objects.filter(erp_po_id=order.id).first()
    if rec is None:
        _, code, planner_id = (order.external_reference.split(":", 2) + ["", ""])[:3]
        rec = Recommendation.objects.filter(connection__code=code, planner_id=planner_id).first()
    if rec is None or rec.status in (S.PENDING, S.REJECTED):
        return None
    with transaction.atomic():
        received: dict[str, int] = {}
        for erp_line in order.lines:
            received[erp_line.item_code] = received.get(erp_line.item_code, 0) + erp_line.received_quantity
        changed = False
        lines = list(rec.lines.select_for_update().order_by("pk"))
        for line in lines:
            left = received.get(line.erp_item_code, 0)
            take = min(left, line.quantity_approved) if line is not _last_of(lines, line.erp_item_code) else left
            received[line.erp_item_code] = left - take
            if line.quantity_received != take:
                line.quantity_received = take
                line.save(update_fields=["quantity_received"])
                changed = True
        complete = all(line.quantity_received >= line.quantity_approved for line in lines)
        anything = any(line.quantity_received for line in lines)
        target = S.RECEIVED if complete else (S.PARTLY_RECEIVED if anything else rec.status)
        fields = {"erp_po_id": order.id, "erp_po_status": order.status, "erp_modified": order.modified_at}
        if changed:
            fields["planner_receipts_due"] = True
        moved = target in TRANSITIONS[rec.status] and recommendation_move(rec.pk, frm=rec.status, to=target, **fields)
        if not moved:
            Recommendation.objects.filter(pk=rec.pk).update(**fields)
    return Recommendation.objects.get(pk=rec.pk)


def _last_of(lines, item_code: str):
    """The last line for an item takes whatever the ERP received beyond the approved quantities."""
    matching = [line for line in lines if line.erp_item_code == item_code]
    return matching[-1] if matching else None


def planner_receipts_tell(rec: Recommendation) -> bool:
    """Tell the planner what was received per line (and partial / closed). Safe to repeat: it sets
    the received quantities, it never adds to them."""
    received = {line.planner_item_id: line.quantity_received for line in rec.lines.all()}
    status = CLOSED if rec.status == S.RECEIVED else PARTIAL
    told = {"status": status, "received": received}
    key = f"{rec.external_reference}:received:" + ",".join(f"{k}={v}" for k, v in sorted(received.items()))
    try:
        client = connector_for(rec.connection)
        with outbound_write(action="planner_receipts", idempotency_key=key, connection=rec.connection,
                            subject=("recommendation", rec.pk)) as write:
            answer = client.update_purchase_order(
                rec.planner_id, status=status, extra_reference=rec.erp_po_id, received=received,
                received_date=timezone.now().date().isoformat())
            write.response_id = answer.id
    except TransientError as exc:
        Recommendation.objects.filter(pk=rec.pk).update(last_error=str(exc)[:500])
        return False  # still due: the next run tells it
    except (PermanentError, ConnectorError, ValueError) as exc:
        Recommendation.objects.filter(pk=rec.pk).update(last_error=str(exc)[:500])
        exceptions.planner_not_updated_raise(rec, str(exc), "what was received")
        return False
    Recommendation.objects.filter(pk=rec.pk).update(planner_receipts_told=told, planner_receipts_due=False,
                                                    planner_status=answer.status, last_error="")
    exceptions.resolve(types.PLANNER_NOT_UPDATED, str(rec.pk), "The planner was told.")
    return True


def receipts_sync(*, max_pages: int = MAX_PAGES) -> dict:
    """One read of the ERP's purchase orders by cursor, then the planner told of what changed, and
    approvals a crash or an outage left half-way carried on. {"status", "read", "applied", "told"}."""
    counts = {"status": "ok", "read": 0, "applied": 0, "told": 0, "resumed": 0}
    counts["resumed"] = recommendations_resume()
    try:
        erp = get_erp()
        require(erp, PURCHASE_ORDERS)
    except PermanentError as exc:
        log.warning("replenishment: %s", exc)
        return {**counts, "status": "unsupported"}
    cursor, _ = ReceiptCursor.objects.get_or_create(erp=erp_key(erp_connection()))
    for _ in range(max_pages):
        try:
            page = erp.purchase_orders_since(cursor.cursor)
        except TransientError as exc:
            log.warning("replenishment: the ERP did not answer the receipts read (%s)", exc)
            counts["status"] = "erp_unavailable"
            break
        for order in page.purchase_orders:
            counts["read"] += 1
            counts["applied"] += int(receipts_apply(order) is not None)
        # Only now, with the page applied, does the cursor move past it.
        ReceiptCursor.objects.filter(pk=cursor.pk).update(cursor=page.cursor)
        cursor.cursor = page.cursor
        if not page.more:
            break
    counts["reread"] = _reread_same_second(erp, cursor.cursor)
    for rec in Recommendation.objects.filter(planner_receipts_due=True).select_related("connection"):
        if rec.status == S.ORDERED:
            rec = planner_mark_ordered(rec)
        counts["told"] += int(planner_receipts_tell(rec))
    return counts


def _reread_same_second(erp, cursor: str) -> int:
    """ERPs stamp changes in whole seconds and the cursor skips the ids it read at its last second, so a
    second receipt on an order within that same second would wait for the order's next change: the
    open orders last read at that second are read again by their reference."""
    try:
        since, _ = decode_cursor(cursor)
    except PermanentError:
        return 0
    applied = 0
    if not since:
        return 0
    for rec in Recommendation.objects.filter(status__in=(S.ORDERED, S.SENT, S.PARTLY_RECEIVED), erp_modified=since):
        try:
            order = erp.find_purchase_order(rec.external_reference)
        except TransientError:
            return applied
        if order is not None and receipts_apply(order) is not None:
            applied += 1
    return applied


def recommendations_resume() -> int:
    """Approvals left half-way (the ERP was down, a worker died between the ERP and the planner) are
    carried on; each step is safe to repeat."""
    count = 0
    settled = timezone.now() - timedelta(minutes=RESUME_AFTER_MINUTES)  # not the one a worker is placing now
    due = Recommendation.objects.filter(status__in=(S.APPROVED, S.ORDERED), updated_at__lt=settled,
                                        attempts__lt=MAX_AUTOMATIC_ATTEMPTS)
    for rec_id in due.values_list("pk", flat=True):
        recommendation_place(recommendation_id=rec_id)
        count += 1
    # Rejections the planner was not told yet (it was down when ops rejected): it still counts them on order.
    untold = (Recommendation.objects.filter(status=S.REJECTED, updated_at__lt=settled, attempts__lt=MAX_AUTOMATIC_ATTEMPTS)
              .exclude(planner_status__in=(CANCELLED, CLOSED)))
    for rec_id in untold.values_list("pk", flat=True):
        planner_mark_rejected(recommendation_id=rec_id)
        count += 1
    return count
