"""Raising, resolving and retrying exceptions: the only code that writes ExceptionRecord rows."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.utils import timezone

from . import registry
from .models import BulkJob, ExceptionActivity, ExceptionRecord
from .registry import ExceptionType

log = logging.getLogger("ledgerline.exceptions")


@dataclass
class ExceptionToRaise:
    """One exception for `exceptions_raise_many`: the arguments `exception_raise` takes."""

    exc_type: ExceptionType
    key: str
    fingerprint: str
    message: str
    context: dict | None = None
    order: object | None = None
    sku: str = ""
    retry_args: dict | None = None
    last_error: str = ""
    subject: tuple[str, str] | None = None


# What a raise (or a recurrence) sets on the row; the bulk path writes those that differ, and the reopen fields.
RAISE_FIELDS = ("team", "severity", "system", "fingerprint", "title", "message", "last_error", "context", "order",
                "sku", "subject_type", "subject_id", "retry_args", "last_seen")


def _raise_fields(item: ExceptionToRaise, now) -> tuple[str, dict]:
    """The full key and the row's fields for one raise (shared by the one-at-a-time and bulk paths)."""
    exc_type = item.exc_type
    registry.get(exc_type.code)  # nothing raises an unregistered type
    context = item.context or {}
    subject = item.subject
    if subject is None:
        subject = ("order", str(item.order.pk)) if item.order is not None else (("sku", item.sku) if item.sku else ("", ""))
    fields = dict(
        team=exc_type.team,
        severity=exc_type.severity,
        system=exc_type.system,
        fingerprint=f"{exc_type.code}:{item.fingerprint}"[:300],
        title=exc_type.render_title(context)[:300],
        message=item.message,
        last_error=item.last_error,
        context=context,
        order=item.order,
        sku=item.sku,
        subject_type=subject[0][:30],
        subject_id=str(subject[1])[:200],
        retry_args=item.retry_args or {},
        last_seen=now,
    )
    return f"{exc_type.code}:{item.key}"[:300], fields


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
    now = timezone.now()
    full_key, fields = _raise_fields(ExceptionToRaise(
        exc_type=exc_type, key=key, fingerprint=fingerprint, message=message, context=context, order=order,
        sku=sku, retry_args=retry_args, last_error=last_error, subject=subject), now)
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


# Rows per query in the set-based raise/resolve: small enough for any database's parameter limit.
BULK_BATCH = 1000


def exceptions_raise_many(*, items: Iterable[ExceptionToRaise]) -> dict[str, ExceptionRecord]:
    """Raise many exceptions at once, each with `exception_raise`'s meaning: a new key opens a row with a
    "raised" line; an active one counts a recurrence (occurrences, last_seen, no line); a resolved or
    ignored one reopens with a "reopened" line and a fresh SLA. A key given n times counts n sightings.
    Per batch of keys: one query finds (and locks) the rows that exist, one inserts the new ones, one
    updates the rest, one inserts the timeline lines. Returns {full key: record}."""
    now = timezone.now()
    grouped: dict[str, list] = {}  # full key -> [fields of the last sighting, first message, sightings, type]
    for item in items:
        full_key, fields = _raise_fields(item, now)
        entry = grouped.get(full_key)
        if entry is None:
            grouped[full_key] = [fields, item.message, 1, item.exc_type]
        else:
            entry[0] = fields
            entry[2] += 1
    out: dict[str, ExceptionRecord] = {}
    keys = sorted(grouped)  # one lock order for every caller: two bulk raises cannot deadlock
    for start in range(0, len(keys), BULK_BATCH):
        batch = keys[start:start + BULK_BATCH]
        try:
            with transaction.atomic():
                out.update(_raise_batch(batch, grouped, now))
        except IntegrityError:
            # Another worker created one of these keys between our read and insert: one at a time, which
            # updates theirs (the batch's own writes were rolled back with its savepoint).
            for full_key in batch:
                fields, message, sightings, exc_type = grouped[full_key]
                for _ in range(sightings):
                    record = exception_raise(
                        exc_type=exc_type, key=full_key.split(":", 1)[1], fingerprint=fields["fingerprint"].split(":", 1)[1],
                        message=fields["message"], context=fields["context"], order=fields["order"], sku=fields["sku"],
                        retry_args=fields["retry_args"], last_error=fields["last_error"],
                        subject=(fields["subject_type"], fields["subject_id"]))
                out[full_key] = record
    if grouped:
        log.info("exceptions raised in bulk: %s keys", len(grouped))
    return out


def _raise_batch(batch: list[str], grouped: dict, now) -> dict[str, ExceptionRecord]:
    existing = {r.key: r for r in ExceptionRecord.objects.select_for_update().filter(key__in=batch).order_by("key")}
    created: list[ExceptionRecord] = []
    changed: list[ExceptionRecord] = []
    writes: list[tuple[int, dict]] = []  # (pk, the values that differ from the row's)
    lines: list[ExceptionActivity] = []
    for full_key in batch:
        fields, message, sightings, exc_type = grouped[full_key]
        record = existing.get(full_key)
        if record is None:
            created.append(ExceptionRecord(type_code=exc_type.code, key=full_key, first_seen=now, occurrences=sightings,
                                           due_at=now + exc_type.sla, **fields))
            continue
        values = {name: value for name, value in fields.items() if _differs(record, name, value)}
        values["occurrences"] = F("occurrences") + sightings
        for name, value in fields.items():
            setattr(record, name, value)
        record.occurrences += sightings
        if not record.is_active:
            record.status = ExceptionRecord.Status.OPEN
            record.resolved_at = None
            record.due_at = now + exc_type.sla
            record.escalated_at = None
            values.update(status=record.status, resolved_at=None, due_at=record.due_at, escalated_at=None)
            lines.append(ExceptionActivity(exception=record, action="reopened", note=message, at=now))
        writes.append((record.pk, values))
        changed.append(record)
    ExceptionRecord.objects.bulk_create(created)
    lines.extend(ExceptionActivity(exception=r, action="raised", note=grouped[r.key][1], at=now) for r in created)
    rows_update(ExceptionRecord, writes)
    ExceptionActivity.objects.bulk_create(lines)
    return {r.key: r for r in (*created, *changed)}


def _differs(record, name: str, value) -> bool:
    if name == "order":
        return record.order_id != (value.pk if value is not None else None)
    return getattr(record, name) != value


def _value_key(value):
    """A hashable stand-in for a value, so rows given the same value share one UPDATE."""
    if isinstance(value, Model):
        return ("model", type(value).__name__, value.pk)
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True, default=str))
    return (type(value).__name__, repr(value))


def rows_update(model, rows: list[tuple[int, dict]], *, distinct_limit: int = 20) -> None:
    """Write many rows' changed values ((pk, {field: value}) each) in as few UPDATEs as the values allow:
    a field given one value for many rows is one `UPDATE … WHERE id IN (…)` per few thousand rows; a
    field whose values differ row by row is a bulk_update of that field alone. (Django's bulk_update
    of every field builds a CASE for each row and field: about ten seconds for 2,500 rows × 20 fields.)"""
    by_field: dict[str, dict] = {}
    for pk, values in rows:
        for name, value in values.items():
            by_field.setdefault(name, {}).setdefault(_value_key(value), [value, []])[1].append(pk)
    for name, groups in by_field.items():
        if len(groups) <= distinct_limit:
            for value, pks in groups.values():
                for start in range(0, len(pks), 5000):
                    model.objects.filter(pk__in=pks[start:start + 5000]).update(**{name: value})
            continue
        objects = []
        for value, pks in groups.values():
            for pk in pks:
                obj = model(pk=pk)
                setattr(obj, name, value)
                objects.append(obj)
        model.objects.bulk_update(objects, [name], batch_size=BULK_BATCH)


def exceptions_resolve_many(*, ids: Iterable[int], note: str, actor=None, action: str = "auto_resolved") -> int:
    """Resolve each of these exceptions that is still active, as `exception_resolve` does (status, note,
    time and one timeline line each); closed ones are left as they are. Set-based: per batch one query
    locks the active rows, one updates them, one inserts their lines. Returns how many it resolved."""
    ids = sorted(set(ids))
    resolved = 0
    for start in range(0, len(ids), BULK_BATCH):
        with transaction.atomic():
            now = timezone.now()
            active = list(ExceptionRecord.objects.select_for_update()
                          .filter(pk__in=ids[start:start + BULK_BATCH], status__in=ExceptionRecord.ACTIVE_STATUSES)
                          .order_by("pk").values_list("pk", flat=True))
            if not active:
                continue
            ExceptionRecord.objects.filter(pk__in=active).update(
                status=ExceptionRecord.Status.RESOLVED, resolution_note=note, resolved_at=now)
            ExceptionActivity.objects.bulk_create(
                ExceptionActivity(exception_id=pk, actor=actor, action=action, note=note, at=now) for pk in active)
            resolved += len(active)
    return resolved
