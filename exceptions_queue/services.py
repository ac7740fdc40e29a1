"""Raising, resolving and retrying exceptions: the only code that writes ExceptionRecord rows."""
from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import registry
from .models import ExceptionActivity, ExceptionRecord
from .registry import ExceptionType

log = logging.getLogger("ledgerline.exceptions")


def exception_raise(
    *,
    exc_type: ExceptionType,
    key: str,
    fingerprint: str,
    message: str,
    context: dict | None = None,
    order=None,
    sku: str = "",
    retry_args: dict | None = None,
    last_error: str = "",
) -> ExceptionRecord:
    """Open (or reopen, counting the recurrence) the exception identified by type + key."""
    registry.get(exc_type.code)  # nothing raises an unregistered type
    context = context or {}
    full_key = f"{exc_type.code}:{key}"[:300]
    now = timezone.now()
    fields = dict(
        team=exc_type.team,
        severity=exc_type.severity,
        system=exc_type.system,
        fingerprint=f"{exc_type.code}:{fingerprint}"[:300],
        title=exc_type.render_title(context)[:300],
        message=message,
        last_error=last_error,
        context=context,
        order=order,
        sku=sku,
        retry_args=retry_args or {},
        last_seen=now,
    )
    for _ in range(2):
        try:
            with transaction.atomic():
                record = ExceptionRecord.objects.select_for_update().filter(key=full_key).first()
                if record is None:
                    record = ExceptionRecord.objects.create(
                        type_code=exc_type.code, key=full_key, first_seen=now, due_at=now + exc_type.sla, **fields
                    )
                    ExceptionActivity.objects.create(exception=record, action="raised", note=message)
                    log.info("exception raised %s", full_key)
                    return record
                for name, value in fields.items():
                    setattr(record, name, value)
                record.occurrences += 1
                if not record.is_active:
                    record.status = ExceptionRecord.Status.OPEN
                    record.resolved_at = None
                    record.due_at = now + exc_type.sla
                    ExceptionActivity.objects.create(exception=record, action="reopened", note=message)
                else:
                    ExceptionActivity.objects.create(exception=record, action="recurred", note=message)
                record.save()
                return record
        except IntegrityError:
            continue  # another worker created it between our read and insert: update theirs
    raise RuntimeError(f"could not raise exception {full_key}")


def exception_resolve(*, record: ExceptionRecord, note: str, actor=None, action: str = "resolved") -> ExceptionRecord:
    with transaction.atomic():
        record = ExceptionRecord.objects.select_for_update().get(pk=record.pk)
        if not record.is_active:
            return record
        record.status = ExceptionRecord.Status.RESOLVED
        record.resolution_note = note
        record.resolved_at = timezone.now()
        record.save(update_fields=["status", "resolution_note", "resolved_at"])
        ExceptionActivity.objects.create(exception=record, actor=actor, action=action, note=note)
    return record


def exceptions_resolve_for_order(*, order, note: str) -> int:
    """The step succeeded: every open exception about this order is resolved automatically."""
    count = 0
    for record in ExceptionRecord.objects.filter(order=order, status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=note, action="auto_resolved")
        count += 1
    return count


def exception_retry(*, record: ExceptionRecord, actor=None) -> bool:
    """Re-run the failed step now. True when it succeeded (and the exception is resolved)."""
    exc_type = registry.get(record.type_code)
    handler = exc_type.retry_function()
    if handler is None:
        ExceptionActivity.objects.create(exception=record, actor=actor, action="retry_unavailable")
        return False
    ExceptionActivity.objects.create(exception=record, actor=actor, action="retried")
    ok = bool(handler(record))
    record.refresh_from_db()
    if ok and record.is_active:
        exception_resolve(record=record, note="The retried step succeeded.", action="auto_resolved")
    return ok
