"""Raising and clearing the replenishment flow's exceptions (their types are in exception_types.py)."""
from __future__ import annotations

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve

from . import exception_types as types


def _context(rec, **extra) -> dict:
    return {"reference": rec.planner_reference or rec.planner_id, "vendor": rec.vendor, "warehouse": rec.warehouse,
            "depot": rec.depot, "external_reference": rec.external_reference, "erp_po": rec.erp_po_id,
            "connection": rec.connection.code, **extra}


def unknown_item_raise(rec, line) -> None:
    exception_raise(
        exc_type=types.PURCHASE_LINE_UNKNOWN_ITEM, key=f"{rec.pk}:{line.sku}", fingerprint=line.sku,
        message=(f"Purchase order {rec.planner_reference or rec.planner_id} from Inventory Planner has a line for "
                 f"SKU {line.sku}, which has no active ERP item: map it under Mappings → SKUs or create the item, "
                 f"then retry."),
        context=_context(rec, sku=line.sku, quantity=line.quantity_recommended), sku=line.sku,
        subject=("recommendation", str(rec.pk)), retry_args={"recommendation_id": rec.pk, "sku": line.sku})


def planner_sku_raise(connection, sku: str, warehouse: str) -> None:
    exception_raise(
        exc_type=types.PLANNER_SKU_UNKNOWN, key=f"{connection.code}:{sku}", fingerprint=sku,
        message=f"Inventory Planner ({connection.code}) plans SKU {sku}, which has no active ERP item.",
        context={"sku": sku, "warehouse": warehouse, "connection": connection.code}, sku=sku,
        subject=("sku", sku), retry_args={"connection": connection.code, "sku": sku})


def not_raised_raise(rec, error: str) -> None:
    exception_raise(
        exc_type=types.PURCHASE_ORDER_NOT_RAISED, key=str(rec.pk), fingerprint=rec.connection.code,
        message=f"The ERP did not raise purchase order {rec.planner_reference or rec.planner_id}: {error}",
        context=_context(rec), last_error=error, subject=("recommendation", str(rec.pk)),
        retry_args={"recommendation_id": rec.pk})


def planner_not_updated_raise(rec, error: str, what: str) -> None:
    exception_raise(
        exc_type=types.PLANNER_NOT_UPDATED, key=str(rec.pk), fingerprint=rec.connection.code,
        message=f"Inventory Planner was not told {what} for {rec.planner_reference or rec.planner_id}: {error}",
        context=_context(rec, what=what), last_error=error, subject=("recommendation", str(rec.pk)),
        retry_args={"recommendation_id": rec.pk})


def rejection_not_sent_raise(rec, error: str) -> None:
    exception_raise(
        exc_type=types.PLANNER_REJECTION_NOT_SENT, key=str(rec.pk), fingerprint=rec.connection.code,
        message=f"Inventory Planner was not told that {rec.planner_reference or rec.planner_id} was rejected: {error}",
        context=_context(rec), last_error=error, subject=("recommendation", str(rec.pk)),
        retry_args={"recommendation_id": rec.pk})


def pull_failed_raise(connection, error: str) -> None:
    exception_raise(
        exc_type=types.PLANNER_PULL_FAILED, key=connection.code, fingerprint=connection.code,
        message=f"Reading recommendations from {connection.name} failed: {error}",
        context={"connection": connection.code}, last_error=error, subject=("connection", connection.code),
        retry_args={"connection": connection.code})


def resolve(exc_type, key: str, note: str) -> None:
    for record in ExceptionRecord.objects.filter(key=f"{exc_type.code}:{key}",
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=note, action="auto_resolved")
