"""django-q2 entry points for the mapping tables: the retry handler of the catalogue's exception types.

The hourly mapping health check is retired: the catalogue drift check (integrations/drift/checks/
catalogue.py, schedule "drift: catalogue") runs the same report and raises the same exceptions under the
same keys. Its old schedule is removed on upgrade (migration integrations 0022 and config/schedules.py's
OBSOLETE list)."""
from __future__ import annotations

from exceptions_queue.models import ExceptionRecord

CATALOGUE_CHECK = "catalogue"


def mappings_health_check() -> str:
    """Kept for a task the retired schedule queued before an upgrade: it runs the catalogue drift check.
    Safe to run twice: a check already running is not started again and each gap is keyed."""
    from integrations.drift.registry import check_run

    return check_run(CATALOGUE_CHECK).status


def retry_health_finding(record: ExceptionRecord) -> bool:
    """Retry handler for the catalogue's exception types: run the catalogue drift check again; True when
    it could look at this kind of gap and no longer finds this one."""
    from integrations.drift.registry import check_run
    from integrations.models import DriftFinding, DriftRun

    run = check_run(CATALOGUE_CHECK, trigger=DriftRun.Trigger.MANUAL, user=getattr(record, "retried_by", None))
    if run.status == DriftRun.Status.FAILED:
        ExceptionRecord.objects.filter(pk=record.pk).update(last_error=run.error[:2000])
        return False
    if run.status == DriftRun.Status.RUNNING:
        return False  # another run is going: it resolves the gap if it is gone
    if record.type_code not in (run.summary or {}).get("checked", []):
        return False  # could not check (an outage): not fixed as far as we know
    # An exception the retired hourly check raised carries no retry arguments; its key is the finding's.
    key = (record.retry_args or {}).get("key") or record.key[:250]
    return not DriftFinding.objects.filter(check_code=CATALOGUE_CHECK, key=key, resolved_at__isnull=True).exists()
