"""The registry of drift checks and the one function that runs one: a check returns the gaps it
finds; `check_run` records the run and turns each gap into (or keeps, or closes) a finding and its
grouped exception, so the same gap is never raised twice and a gap that is gone is resolved."""
from __future__ import annotations

import hashlib
import json
import logging
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions_queue import registry as exception_registry
from exceptions_queue.models import ExceptionRecord
from exceptions_queue.registry import ExceptionType
from exceptions_queue.services import (
    ExceptionToRaise, exception_raise, exception_resolve, exceptions_raise_many, exceptions_resolve_many,
    rows_update,
)
from integrations.models import DriftFinding, DriftRun

log = logging.getLogger("ledgerline.drift")


@dataclass
class Finding:
    """One gap a check found. `key` is its identity within the check (the same gap, the same key);
    `group` is the cause it shares with others (the exception queue groups rows by it)."""

    key: str
    message: str
    exception_type: str  # a registered exception type code (integrations/drift/exception_types.py)
    connection: object | None = None  # a Connection, or None for a gap about the ERP alone
    subject_type: str = ""
    subject_id: str = ""
    group: str = ""
    detail: dict = field(default_factory=dict)  # both sides of the gap, as people read them
    context: dict = field(default_factory=dict)  # fills the exception type's title
    order: object | None = None  # the OrderLink concerned, if any
    sku: str = ""
    # The exception's own key, when the gap has an exception under an older key (the mapping health
    # check's): the same gap stays one exception. Default: "<check>:<key>".
    exception_key: str = ""


@dataclass(frozen=True)
class DriftCheck:
    code: str
    label: str
    team: str
    flow: str
    schedule_minutes: int
    description: str
    run: Callable[[DriftRun], list[Finding]]

    @property
    def task_name(self) -> str:
        """The django-q2 entry point its schedule calls (integrations/drift/tasks.py)."""
        return f"integrations.drift.tasks.{self.code}"

    @property
    def lease(self) -> timedelta:
        """A run still 'running' after this is taken for dead (its worker was killed)."""
        return timedelta(minutes=max(30, self.schedule_minutes * 3))


_CHECKS: dict[str, DriftCheck] = {}


class UnknownCheck(LookupError):
    pass


def drift_check(code: str, label: str, team: str, flow: str, schedule_minutes: int, description: str):
    """Register the decorated `run(run: DriftRun) -> list[Finding]` as the check `code`."""

    def register(func: Callable[[DriftRun], list[Finding]]):
        check = DriftCheck(code=code, label=label, team=team, flow=flow, schedule_minutes=schedule_minutes,
                           description=description, run=func)
        existing = _CHECKS.get(code)
        if existing is not None and existing.run.__qualname__ != func.__qualname__:
            raise ValueError(f"drift check {code!r} is registered twice")
        _CHECKS[code] = check
        return func

    return register


def _load() -> None:
    from . import checks  # noqa: F401  (registers every check)


def all_checks() -> list[DriftCheck]:
    _load()
    return sorted(_CHECKS.values(), key=lambda c: c.code)


def get_check(code: str) -> DriftCheck:
    _load()
    try:
        return _CHECKS[code]
    except KeyError:
        raise UnknownCheck(f"no drift check {code!r}") from None


def last_run(code: str) -> DriftRun | None:
    return DriftRun.objects.filter(check_code=code).exclude(status=DriftRun.Status.RUNNING).first()


def _fingerprint(finding: Finding) -> str:
    body = json.dumps({"m": finding.message, "d": finding.detail}, sort_keys=True, default=str)
    return hashlib.sha1(body.encode()).hexdigest()


def _start(check: DriftCheck, *, trigger: str, user) -> tuple[DriftRun, bool]:
    """The new run, or (the run already going, False): one check never runs twice at once."""
    now = timezone.now()
    # A run whose worker died keeps no lock for ever: past its lease it is closed as failed.
    for stale in DriftRun.objects.filter(check_code=check.code, status=DriftRun.Status.RUNNING,
                                         started_at__lt=now - check.lease):
        DriftRun.objects.filter(pk=stale.pk, status=DriftRun.Status.RUNNING).update(
            status=DriftRun.Status.FAILED, finished_at=now, error="The run stopped without finishing (worker lost).")
    try:
        with transaction.atomic():
            return DriftRun.objects.create(check_code=check.code, trigger=trigger, user=user), True
    except IntegrityError:
        running = DriftRun.objects.filter(check_code=check.code, status=DriftRun.Status.RUNNING).first()
        if running is None:  # it finished between our insert and read: start again once
            return DriftRun.objects.create(check_code=check.code, trigger=trigger, user=user), True
        return running, False


def check_run(code: str, *, trigger: str = DriftRun.Trigger.SCHEDULE, user=None) -> DriftRun:
    """Run the check `code` now and record it. Safe to call twice: a check already running is not
    started again (its running run is returned), and each gap is keyed, so nothing is raised twice."""
    check = get_check(code)
    run, started = _start(check, trigger=trigger, user=user)
    if not started:
        return run
    clock = time.monotonic()
    run.keep_open = set()  # key prefixes the check could not look at this time: their findings stay open
    try:
        findings = check.run(run) or []
        # One transaction for the findings and their exceptions: a run that dies half-way leaves none of
        # its writes (the next run does them all), and a thousand gaps are not a thousand commits.
        with transaction.atomic():
            counts = _reconcile(check, run, findings)
    except Exception as exc:  # a failed check is recorded and owned, never a task that dies quietly
        log.exception("drift check %s failed", code)
        run.status = DriftRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.duration_ms = int((time.monotonic() - clock) * 1000)
        run.save()
        _raise_failed(check, run)
        return run
    run.found, run.raised, run.updated, run.resolved = counts
    run.status = DriftRun.Status.FINDINGS if run.found else DriftRun.Status.OK
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - clock) * 1000)
    run.save()
    _resolve_failed(check)
    return run


def _chunks(items: list, size: int = 5000):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _reconcile(check: DriftCheck, run: DriftRun, findings: list[Finding]) -> tuple[int, int, int, int]:
    """Set-based: the check's findings and their exceptions' states are read once, new and changed gaps
    are raised in bulk (exceptions_raise_many), and gone ones closed in bulk (exceptions_resolve_many),
    so a run's cost grows with its queries' sizes, not with a round trip per gap."""
    now = timezone.now()
    by_key: dict[str, Finding] = {}
    for finding in findings:
        by_key.setdefault(finding.key[:250], finding)
    known = {
        key: (pk, resolved_at, detail_hash, exc_id)
        for pk, key, resolved_at, detail_hash, exc_id in DriftFinding.objects.filter(check_code=check.code).values_list(
            "pk", "key", "resolved_at", "fingerprint", "exception_id").iterator(chunk_size=5000)
    }
    # The state of every open finding's exception, in one query per 5,000.
    exception_status: dict[int, str] = {}
    for ids in _chunks([row[3] for row in known.values() if row[3] and row[1] is None]):
        exception_status.update(ExceptionRecord.objects.filter(pk__in=ids).values_list("pk", "status"))
    active = set(ExceptionRecord.ACTIVE_STATUSES)
    raised = updated = 0
    unchanged: list[int] = []
    to_raise: list[tuple[str, Finding, str]] = []  # (key, finding, its fingerprint)
    for key, finding in by_key.items():
        fingerprint = _fingerprint(finding)
        row = known.get(key)
        if row is not None and row[1] is None and row[2] == fingerprint and row[3]:
            status = exception_status.get(row[3])
            # The same gap, told the same way: only its last_seen moves. A person resolved or ignored the
            # exception while the gap stays: an ignored one stays ignored; a resolved one is reopened.
            if status in active or status == ExceptionRecord.Status.IGNORED:
                unchanged.append(row[0])
                updated += 1
                continue
        to_raise.append((key, finding, fingerprint))
    records = exceptions_raise_many(items=[_exception_for(check, finding) for _, finding, _ in to_raise])
    created: list[DriftFinding] = []
    changed: list[tuple[int, dict]] = []
    for key, finding, fingerprint in to_raise:
        record = records[_exception_key(check, finding)]
        values = dict(
            connection=finding.connection, subject_type=finding.subject_type[:30], subject_id=str(finding.subject_id)[:200],
            message=finding.message, detail=finding.detail, fingerprint=fingerprint, last_seen=now,
            resolved_at=None, last_run=run, exception=record,
        )
        row = known.get(key)
        if row is None:
            created.append(DriftFinding(check_code=check.code, key=key, first_seen=now, **values))
            raised += 1
        else:
            changed.append((row[0], values))
            if row[1] is None:
                updated += 1
            else:
                raised += 1  # a gap that had closed is back
    DriftFinding.objects.bulk_create(created, batch_size=2000)
    _findings_update(changed)
    for pks in _chunks(unchanged):
        DriftFinding.objects.filter(pk__in=pks).update(last_seen=now, last_run=run)
    gone = [
        (row[0], row[3]) for key, row in known.items()
        if row[1] is None and key not in by_key and not any(key.startswith(p) for p in run.keep_open)
    ]
    for pks in _chunks([pk for pk, _ in gone]):
        DriftFinding.objects.filter(pk__in=pks, resolved_at__isnull=True).update(resolved_at=now, last_run=run)
    exceptions_resolve_many(ids=[exc_id for _, exc_id in gone if exc_id], action="auto_resolved",
                            note=f"The {check.label.lower()} check no longer finds this gap.")
    return len(by_key), raised, updated, len(gone)


FINDING_FIELDS = ("connection", "subject_type", "subject_id", "message", "detail", "fingerprint", "last_seen",
                  "resolved_at", "last_run", "exception")


def _findings_update(changed: list[tuple[int, dict]]) -> None:
    """Write the findings that changed or came back: only the values that differ from the stored row (a
    gap that is back, told the same way, changes its times and run alone), grouped by value."""
    stored: dict[int, dict] = {}
    for pks in _chunks([pk for pk, _ in changed]):
        for row in DriftFinding.objects.filter(pk__in=pks).values("pk", *[f"{n}_id" if n in ("connection", "last_run", "exception") else n for n in FINDING_FIELDS]):
            stored[row.pop("pk")] = row
    writes = []
    for pk, values in changed:
        old = stored.get(pk, {})
        diff = {}
        for name, value in values.items():
            if name in ("connection", "last_run", "exception"):
                if old.get(f"{name}_id", object()) != (value.pk if value is not None else None):
                    diff[name] = value
            elif old.get(name, object()) != value:
                diff[name] = value
        writes.append((pk, diff))
    rows_update(DriftFinding, writes)


def _exception_key(check: DriftCheck, finding: Finding) -> str:
    """The full key (type + key) of the finding's exception, as the exception queue stores it."""
    return f"{finding.exception_type}:{finding.exception_key or f'{check.code}:{finding.key}'}"[:300]


def _exception_for(check: DriftCheck, finding: Finding) -> ExceptionToRaise:
    exc_type: ExceptionType = exception_registry.get(finding.exception_type)
    connection = finding.connection
    context = {"check": check.label, "connection": str(connection or ""), **finding.context}
    if connection is not None:
        context.setdefault("storefront", getattr(connection, "code", str(connection)))
    subject = (finding.subject_type, str(finding.subject_id)) if finding.subject_type else None
    return ExceptionToRaise(
        exc_type=exc_type, key=finding.exception_key or f"{check.code}:{finding.key}",
        fingerprint=finding.group or check.code,
        message=finding.message, context={**context, "detail": finding.detail}, order=finding.order,
        sku=finding.sku, subject=subject,
        retry_args={"check": check.code, "key": finding.key[:250]},
    )


def _raise_failed(check: DriftCheck, run: DriftRun) -> None:
    from .exception_types import CHECK_FAILED

    exception_raise(
        exc_type=CHECK_FAILED, key=check.code, fingerprint=check.code,
        message=f"The {check.label} check failed: {run.error}", context={"check": check.label, "code": check.code},
        subject=("drift_check", check.code), retry_args={"check": check.code}, last_error=run.error,
    )


def _resolve_failed(check: DriftCheck) -> None:
    from .exception_types import CHECK_FAILED

    record = ExceptionRecord.objects.filter(key=f"{CHECK_FAILED.code}:{check.code}",
                                            status__in=ExceptionRecord.ACTIVE_STATUSES).first()
    if record is not None:
        exception_resolve(record=record, action="auto_resolved", note="The check ran again and finished.")


def retry_drift_exception(record) -> bool:
    """Retry = re-run the check; True when the gap (or the failure) is gone."""
    code = record.retry_args.get("check")
    if not code:
        return False
    run = check_run(code, trigger=DriftRun.Trigger.MANUAL, user=getattr(record, "retried_by", None))
    if run.status == DriftRun.Status.FAILED:
        record.last_error = run.error
        ExceptionRecord.objects.filter(pk=record.pk).update(last_error=run.error[:2000])
        return False
    if run.status == DriftRun.Status.RUNNING:
        return False  # another run is going: it will resolve the gap if it is gone
    key = record.retry_args.get("key")
    if not key:
        return True
    return not DriftFinding.objects.filter(check_code=code, key=key, resolved_at__isnull=True).exists()
