"""Raising, resolving and retrying exceptions: the only code that writes ExceptionRecord rows."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from . import registry
from .models import BulkJob, ExceptionActivity, ExceptionRecord
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
    subject: tuple[str, str] | None = None,
) -> ExceptionRecord:
    """Open (or reopen, counting the recurrence) the exception identified by type + key. Its subject
    is what it is about: given, or the order, or the SKU."""
    registry.get(exc_type.code)  # nothing raises an unregistered type
    context = context or {}
    if subject is None:
        subject = ("order", str(order.pk)) if order is not None else (("sku", sku) if sku else ("", ""))
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
        subject_type=subject[0][:30],
        subject_id=str(subject[1])[:200],
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
                # A recurrence of an open exception only counts (occurrences, last_seen): one line per
                # recurrence grew thousands of identical timeline lines in a flash sale.
                record.occurrences += 1
                if not record.is_active:
                    record.status = ExceptionRecord.Status.OPEN
                    record.resolved_at = None
                    record.due_at = now + exc_type.sla
                    record.escalated_at = None
                    ExceptionActivity.objects.create(exception=record, action="reopened", note=message)
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
    """Re-run the failed step now, on behalf of `actor` (None: Ledgerline itself). True when it
    succeeded (and the exception is resolved). The handler finds the person as `record.retried_by`."""
    exc_type = registry.get(record.type_code)
    handler = exc_type.retry_function()
    if handler is None:
        ExceptionActivity.objects.create(exception=record, actor=actor, action="retry_unavailable")
        return False
    ExceptionActivity.objects.create(exception=record, actor=actor, action="retried")
    record.retried_by = actor
    try:
        ok = bool(handler(record))
    except Exception as exc:  # a handler that crashes is a failed retry, recorded on the exception
        log.exception("retry handler of %s crashed", record.key)
        ExceptionRecord.objects.filter(pk=record.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        ok = False
    record.refresh_from_db()
    if ok and record.is_active:
        exception_resolve(record=record, note="The retried step succeeded.", action="auto_resolved")
    elif not ok:
        ExceptionActivity.objects.create(
            exception=record, action="retry_failed", note=record.last_error or "The step failed again."
        )
    return ok


def _locked_active(record: ExceptionRecord) -> ExceptionRecord | None:
    record = ExceptionRecord.objects.select_for_update().get(pk=record.pk)
    return record if record.is_active else None


@transaction.atomic
def exception_assign(*, record: ExceptionRecord, assignee, actor) -> ExceptionRecord:
    """Assigning takes the exception in progress; unassigning (assignee=None) puts it back to open."""
    locked = _locked_active(record)
    if locked is None:
        return ExceptionRecord.objects.get(pk=record.pk)
    locked.assignee = assignee
    locked.status = ExceptionRecord.Status.IN_PROGRESS if assignee else ExceptionRecord.Status.OPEN
    locked.save(update_fields=["assignee", "status"])
    note = f"to {assignee.get_username()}" if assignee else "unassigned"
    ExceptionActivity.objects.create(exception=locked, actor=actor, action="assigned", note=note)
    return locked


def exception_comment(*, record: ExceptionRecord, note: str, actor) -> ExceptionActivity:
    return ExceptionActivity.objects.create(exception=record, actor=actor, action="commented", note=note)


def exception_ignore(*, record: ExceptionRecord, reason: str, actor) -> ExceptionRecord:
    with transaction.atomic():
        locked = _locked_active(record)
        if locked is None:
            return ExceptionRecord.objects.get(pk=record.pk)
        locked.status = ExceptionRecord.Status.IGNORED
        locked.resolution_note = reason
        locked.resolved_at = timezone.now()
        locked.save(update_fields=["status", "resolution_note", "resolved_at"])
        ExceptionActivity.objects.create(exception=locked, actor=actor, action="ignored", note=reason)
    return locked


def exception_reopen(*, record: ExceptionRecord, actor, note: str = "") -> ExceptionRecord:
    with transaction.atomic():
        locked = ExceptionRecord.objects.select_for_update().get(pk=record.pk)
        if locked.is_active:
            return locked
        exc_type = registry.find(locked.type_code)
        now = timezone.now()
        locked.status = ExceptionRecord.Status.OPEN
        locked.assignee = None
        locked.resolved_at = None
        locked.escalated_at = None
        locked.due_at = now + (exc_type.sla if exc_type else timedelta(hours=24))
        locked.save(update_fields=["status", "assignee", "resolved_at", "escalated_at", "due_at"])
        ExceptionActivity.objects.create(exception=locked, actor=actor, action="reopened", note=note)
    return locked


# --- many at once ------------------------------------------------------------------------------

def exceptions_retry_queue(*, records, actor=None, label: str = "", refused: dict[str, int] | None = None) -> BulkJob:
    """Queue a retry of these exceptions through django-q2; the returned job reports progress. The
    job carries the actor (the task retries on their behalf) and what the selection held that the
    actor may not retry (`refused`, {reason: count}), so its progress says both."""
    from django_q.tasks import async_task

    ids = [r.pk for r in records if r.is_active]
    job = BulkJob.objects.create(
        action="retry", label=label[:300], created_by=actor, exception_ids=ids, total=len(ids),
        refused=refused or {},
    )
    if not ids:
        BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.DONE, finished_at=timezone.now())
        job.refresh_from_db()
        return job
    transaction.on_commit(lambda: async_task("exceptions_queue.tasks.run_bulk_job", job.pk, task_name=f"exceptions-job-{job.pk}"))
    return job


def bulk_job_run(*, job_id: int) -> BulkJob:
    """Retry each exception of the job in turn, counting progress as it goes."""
    job = BulkJob.objects.select_related("created_by").get(pk=job_id)
    if job.is_finished:
        return job
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.RUNNING)
    for exception_id in job.exception_ids[job.done:]:
        record = ExceptionRecord.objects.filter(pk=exception_id).first()
        if record is None or not record.is_active:
            ok = record is not None  # fixed meanwhile (e.g. by an earlier item of the same order)
        else:
            ok = exception_retry(record=record, actor=job.created_by)
        BulkJob.objects.filter(pk=job.pk).update(
            done=F("done") + 1,
            succeeded=F("succeeded") + (1 if ok else 0),
            failed=F("failed") + (0 if ok else 1),
        )
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def exceptions_bulk_apply(*, records, action: str, actor, note: str = "", assignee=None) -> int:
    """Assign, resolve or ignore many exceptions; each one gets its own audit entry. Returns how many changed."""
    changed = 0
    for record in records:
        if not record.is_active:
            continue
        if action == "assign":
            exception_assign(record=record, assignee=assignee, actor=actor)
        elif action == "resolve":
            exception_resolve(record=record, note=note, actor=actor)
        elif action == "ignore":
            exception_ignore(record=record, reason=note, actor=actor)
        else:
            raise ValueError(f"unknown bulk action {action!r}")
        changed += 1
    return changed
