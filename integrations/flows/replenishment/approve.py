"""Ops' decisions on a recommendation: edit a quantity, reject with a reason, approve. Approval raises
the purchase order in the ERP exactly once (double click, retry, crash replay) and then marks it in
Inventory Planner; both writes go through the outbound-write log."""
from __future__ import annotations

import logging
from datetime import date
from decimal import ROUND_HALF_UP

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from integrations.connectors import connector_for, erp_connection, get_erp
from integrations.connectors.base import (
    PURCHASE_ORDERS,
    ConnectorError,
    ErpPurchaseOrderLine,
    ErpPurchaseOrderRequest,
    TransientError,
    require,
)
from integrations.connectors.inventory_planner import CANCELLED, CLOSED, DRAFT, OPEN
from integrations.domain import quantum
from integrations.models import Recommendation, RecommendationLine
from integrations.writes import outbound_write

from . import exception_types as types
from . import exceptions
from .state import RecommendationRefused, recommendation_move

log = logging.getLogger("ledgerline.replenishment")
S = Recommendation.Status
MAX_QUANTITY = 1_000_000


def parse_quantity(raw) -> int:
    """A whole, non-negative number of units, or ValueError saying what is wrong."""
    text = str(raw if raw is not None else "").strip()
    if not text:
        raise ValueError("Enter a quantity.")
    if not text.isdigit():
        raise ValueError(f"{text[:20]!r} is not a whole number of units (0 or more).")
    value = int(text)
    if value > MAX_QUANTITY:
        raise ValueError(f"{value} is more than {MAX_QUANTITY} units.")
    return value


def line_quantity_set(*, line_id: int, quantity: int) -> RecommendationLine:
    """Change what ops approve on one line; only while the recommendation is open for review."""
    with transaction.atomic():
        line = RecommendationLine.objects.select_for_update().select_related("recommendation").get(pk=line_id)
        if not line.recommendation.is_open_for_review:
            raise RecommendationRefused(f"This recommendation is {line.recommendation.get_status_display().lower()}: "
                                        f"its quantities can no longer change.")
        line.quantity_approved = quantity
        line.save(update_fields=["quantity_approved"])
    return line


def recommendation_reject(*, recommendation_id: int, user, reason: str) -> Recommendation:
    reason = (reason or "").strip()
    if not reason:
        raise RecommendationRefused("Say why it is rejected.")
    if not recommendation_move(recommendation_id, frm=S.PENDING, to=S.REJECTED, decided_by=user,
                               decided_at=timezone.now(), reject_reason=reason[:500]):
        raise RecommendationRefused("This recommendation was already decided.")
    transaction.on_commit(lambda: _queue_tell_rejected(recommendation_id))
    return Recommendation.objects.get(pk=recommendation_id)


def _queue_tell_rejected(recommendation_id: int) -> None:
    from django_q.tasks import async_task

    async_task("integrations.flows.replenishment.tasks.tell_planner_rejected", recommendation_id,
               task_name=f"replenishment-reject-{recommendation_id}")


def planner_told_rejected(rec: Recommendation) -> bool:
    return rec.status == S.REJECTED and rec.planner_status in (CANCELLED, CLOSED)


def planner_mark_rejected(*, recommendation_id: int) -> Recommendation:
    """Send a rejection back to Inventory Planner: the draft's status becomes cancelled and the reason is
    added to its notes, so the planner stops counting it as stock on order. The Stock Orders API
    documents status and notes as writable fields of a purchase order (PATCH) and no delete, so a
    rejected draft is cancelled, not deleted. Safe to repeat: it sets values, and a draft already
    cancelled or closed there is left alone. A draft someone moved on in the planner (open, partly
    received) is not cancelled: ops are asked to look, by an exception. A failure is retried by the
    five-minute sweep (receipts.recommendations_resume) and shown as an exception after three tries."""
    rec = Recommendation.objects.select_related("connection", "decided_by").get(pk=recommendation_id)
    if rec.status != S.REJECTED or planner_told_rejected(rec):
        return rec
    Recommendation.objects.filter(pk=rec.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    try:
        client = connector_for(rec.connection)
        current = client.get_purchase_order(rec.planner_id)
        if current.status in (CANCELLED, CLOSED):
            answer = current
        elif current.status != DRAFT:
            Recommendation.objects.filter(pk=rec.pk).update(planner_status=current.status)
            exceptions.rejection_not_sent_raise(
                rec, f"it is {current.status} in the planner, no longer a draft: cancel it there by hand if the "
                     f"rejection stands")
            return Recommendation.objects.get(pk=rec.pk)
        else:
            who = rec.decided_by.get_username() if rec.decided_by else "ops"
            line = f"Rejected in Ledgerline by {who}: {rec.reject_reason}"
            notes = f"{current.notes}\n{line}" if current.notes and line not in current.notes else (current.notes or line)
            with outbound_write(action="planner_mark_rejected", idempotency_key=f"{rec.external_reference}:cancelled",
                                connection=rec.connection, subject=("recommendation", rec.pk)) as write:
                answer = client.update_purchase_order(rec.planner_id, status=CANCELLED, notes=notes)
                write.response_id = answer.id
    except ConnectorError as exc:
        _failed(rec, exc, exceptions.rejection_not_sent_raise, "the planner's update")
        return Recommendation.objects.get(pk=rec.pk)
    Recommendation.objects.filter(pk=rec.pk).update(planner_status=answer.status, planner_modified=answer.last_modified,
                                                    last_error="")
    exceptions.resolve(types.PLANNER_REJECTION_NOT_SENT, str(rec.pk), "The planner was told of the rejection.")
    return Recommendation.objects.get(pk=rec.pk)


def recommendation_approve(*, recommendation_id: int, user) -> Recommendation:
    """Approve (once: a second click finds it decided) and queue the ERP purchase order."""
    rec = Recommendation.objects.select_related("connection").get(pk=recommendation_id)
    if not rec.is_open_for_review:
        raise RecommendationRefused(f"This recommendation is already {rec.get_status_display().lower()}.")
    lines = list(rec.lines.all())
    unknown = [line.sku for line in lines if not line.erp_item_code]
    if unknown:
        raise RecommendationRefused(f"SKU {', '.join(unknown)} has no ERP item: see the exception, map it, retry it.")
    if not any(line.quantity_approved for line in lines):
        raise RecommendationRefused("Every quantity is 0: reject it instead.")
    if not recommendation_move(rec.pk, frm=S.PENDING, to=S.APPROVED, decided_by=user, decided_at=timezone.now()):
        raise RecommendationRefused("This recommendation was already decided.")
    transaction.on_commit(lambda: _queue_place(rec.pk))
    rec.refresh_from_db()
    return rec


def _queue_place(recommendation_id: int) -> None:
    from django_q.tasks import async_task

    async_task("integrations.flows.replenishment.tasks.place_recommendation", recommendation_id,
               task_name=f"replenishment-place-{recommendation_id}")


def purchase_order_request(rec: Recommendation) -> ErpPurchaseOrderRequest:
    """The ERP document of an approved recommendation: the approved quantities of its lines, at the
    planner's unit costs on the currency's grid."""
    grid = quantum(rec.currency)
    lines = tuple(
        ErpPurchaseOrderLine(item_code=line.erp_item_code, quantity=line.quantity_approved,
                             unit_cost=str(line.unit_cost.quantize(grid, rounding=ROUND_HALF_UP))
                             if line.unit_cost is not None else "")
        for line in rec.lines.all() if line.quantity_approved)
    expected = rec.expected_date[:10]
    try:
        date.fromisoformat(expected)
    except ValueError:
        expected = ""
    return ErpPurchaseOrderRequest(
        external_reference=rec.external_reference, supplier=rec.vendor or "unknown vendor", depot=rec.depot,
        currency=rec.currency, lines=lines, expected_date=expected,
        note=f"Inventory Planner {rec.planner_reference or rec.planner_id}")


def recommendation_place(*, recommendation_id: int) -> str:
    """Raise the approved purchase order in the ERP, then mark it in the planner. Returns the status.

    Exactly once: the ERP is asked for the external reference first (a crash after its create
    finds it there), the create itself is unique by it in the ERP (a second worker gets the same
    order back), and every step moves the status by a conditional update."""
    rec = Recommendation.objects.select_related("connection").get(pk=recommendation_id)
    Recommendation.objects.filter(pk=rec.pk).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    if rec.status == S.APPROVED:
        try:
            erp = get_erp()
            require(erp, PURCHASE_ORDERS)
            order = erp.find_purchase_order(rec.external_reference)
            if order is None:
                with outbound_write(action="create_purchase_order", idempotency_key=rec.external_reference,
                                    connection=erp_connection(), system=getattr(erp, "system", ""),
                                    subject=("recommendation", rec.pk)) as write:
                    order = erp.create_purchase_order(purchase_order_request(rec))
                    write.response_id = order.id
        except ConnectorError as exc:
            return _failed(rec, exc, exceptions.not_raised_raise, "the purchase order")
        raised_in_erp(rec, order)
        exceptions.resolve(types.PURCHASE_ORDER_NOT_RAISED, str(rec.pk), "The ERP raised the purchase order.")
        rec.refresh_from_db()
    if rec.status == S.ORDERED:
        rec = planner_mark_ordered(rec)
    return rec.status


def raised_in_erp(rec: Recommendation, order) -> None:
    """Keep the ERP's purchase order on the recommendation (the step a crash may interrupt)."""
    recommendation_move(rec.pk, frm=S.APPROVED, to=S.ORDERED, erp_po_id=order.id, erp_po_status=order.status,
                        erp_modified=order.modified_at, last_error="")


def planner_mark_ordered(rec: Recommendation) -> Recommendation:
    """Tell the planner the draft is ordered (open), with the ERP's number as its extra reference.
    Setting values, it is safe to repeat."""
    try:
        client = connector_for(rec.connection)
        with outbound_write(action="planner_mark_ordered", idempotency_key=f"{rec.external_reference}:open",
                            connection=rec.connection, subject=("recommendation", rec.pk)) as write:
            answer = client.update_purchase_order(rec.planner_id, status=OPEN, extra_reference=rec.erp_po_id)
            write.response_id = answer.id
    except ConnectorError as exc:
        _failed(rec, exc, lambda r, e: exceptions.planner_not_updated_raise(r, e, "that it was ordered"),
                "the planner's update")
        return Recommendation.objects.get(pk=rec.pk)
    recommendation_move(rec.pk, frm=S.ORDERED, to=S.SENT, planner_status=answer.status, last_error="")
    exceptions.resolve(types.PLANNER_NOT_UPDATED, str(rec.pk), "The planner was told.")
    return Recommendation.objects.get(pk=rec.pk)


def _failed(rec: Recommendation, exc: Exception, raise_exception, what: str) -> str:
    """A transient failure waits for the sweep (and is shown); a refusal is owned by ops now. Either
    way an exception says what happened, so nothing waits unseen."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    Recommendation.objects.filter(pk=rec.pk).update(last_error=error)
    log.warning("replenishment: %s of %s failed: %s", what, rec.external_reference, error)
    if not isinstance(exc, TransientError) or rec.attempts + 1 >= 3:
        raise_exception(rec, error)
    return Recommendation.objects.get(pk=rec.pk).status
