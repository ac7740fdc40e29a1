"""Retry handlers the exception registry calls (dotted paths in exception_types.py)."""
from __future__ import annotations

from integrations.models import Connection, PlannerVariant, Recommendation

from .approve import planner_mark_rejected, planner_told_rejected, recommendation_place
from .pull import ErpItems

S = Recommendation.Status


def retry_unknown_item(record) -> bool:
    """The SKU is mapped or the item exists now: the lines of the recommendation are checked again."""
    rec = Recommendation.objects.select_related("connection").filter(pk=record.retry_args.get("recommendation_id")).first()
    if rec is None:
        return False
    items = ErpItems(rec.connection)
    ok = True
    for line in rec.lines.filter(sku=record.retry_args.get("sku", "")):
        line.erp_item_code = items.item_for(line.sku)
        line.save(update_fields=["erp_item_code"])
        ok = ok and bool(line.erp_item_code)
    return ok


def retry_planner_sku(record) -> bool:
    connection = Connection.objects.filter(code=record.retry_args.get("connection", "")).first()
    sku = record.retry_args.get("sku", "")
    if connection is None or not sku:
        return False
    known = bool(ErpItems(connection).item_for(sku))
    PlannerVariant.objects.filter(connection=connection, sku=sku).update(erp_known=known)
    return known


def retry_place(record) -> bool:
    """Carry the approval on: raise the purchase order (once) and tell the planner."""
    rec_id = record.retry_args.get("recommendation_id")
    rec = Recommendation.objects.filter(pk=rec_id).first()
    if rec is None:
        return False
    if rec.status == S.REJECTED:  # the rejection is what the planner was not told
        return planner_told_rejected(planner_mark_rejected(recommendation_id=rec_id))
    status = recommendation_place(recommendation_id=rec_id)
    if status in (S.APPROVED, S.ORDERED):
        return False
    rec = Recommendation.objects.select_related("connection").get(pk=rec_id)
    if rec.planner_receipts_due:
        from .receipts import planner_receipts_tell

        return planner_receipts_tell(rec)
    return True


def retry_pull(record) -> bool:
    from .pull import recommendations_pull

    connection = Connection.objects.filter(code=record.retry_args.get("connection", ""), active=True).first()
    return connection is not None and recommendations_pull(connection=connection)["status"] == "ok"
