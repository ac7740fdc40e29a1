"""django-q2 entry points for the mapping tables: the scheduled health check and its retry handler."""
from __future__ import annotations

import logging

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve

from .health import HEALTH_TYPES, mappings_health

log = logging.getLogger("ledgerline.mappings")

SCHEDULE_NAME = "mappings health check"


def mappings_health_check() -> dict:
    """Raise an owned exception per finding and resolve the ones no longer found.

    Safe to run twice: exceptions are keyed by type + finding key, so a rerun counts a recurrence
    on the same row; a type is only auto-resolved when this run could check it completely.
    """
    report = mappings_health()
    found_keys = set()
    for finding in report.findings:
        record = exception_raise(
            exc_type=finding.exc_type,
            key=finding.key,
            fingerprint=finding.key,
            message=finding.message,
            context=finding.context,
            sku=finding.sku,
        )
        found_keys.add(record.key)
    resolved = 0
    checked = [t.code for t in HEALTH_TYPES if t.code in report.checked]
    stale = ExceptionRecord.objects.filter(type_code__in=checked, status__in=ExceptionRecord.ACTIVE_STATUSES).exclude(
        key__in=found_keys
    )
    for record in stale:
        exception_resolve(record=record, note="The mapping health check no longer finds this.", action="auto_resolved")
        resolved += 1
    if report.errors:
        log.warning("mappings health check incomplete: %s", "; ".join(report.errors))
    return {"found": len(report.findings), "resolved": resolved, "errors": report.errors}


def retry_health_finding(record: ExceptionRecord) -> bool:
    """Retry handler for the health exception types: True when a fresh check no longer finds it."""
    report = mappings_health()
    if record.type_code not in report.checked:
        return False  # could not check (outage): not fixed as far as we know
    return not any(f"{f.exc_type.code}:{f.key}"[:300] == record.key for f in report.findings)
