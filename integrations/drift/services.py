"""What the screens call: the checks with their last run and open findings, and "Run now"."""
from __future__ import annotations

from django.db import transaction

from integrations.models import DriftFinding, DriftRun

from .registry import DriftCheck, UnknownCheck, all_checks, get_check, last_run


def drift_check_queue(*, code: str, user=None) -> DriftCheck:
    """Queue one run of the check `code` on behalf of `user` (after the request's transaction commits).
    Safe twice: a run already going when the task starts is not started again. Unknown code: UnknownCheck."""
    from django_q.tasks import async_task

    check = get_check(code)
    user_id = getattr(user, "pk", None)
    transaction.on_commit(lambda: async_task("integrations.drift.tasks.drift_check_task", check.code, user_id,
                                             task_name=f"drift check {check.code}"))
    return check


def drift_check_status(code: str) -> dict:
    """The check, its last finished run, whether one is running, and its open findings (newest first)."""
    check = get_check(code)
    return {
        "check": check,
        "last_run": last_run(code),
        "running": DriftRun.objects.filter(check_code=code, status=DriftRun.Status.RUNNING).first(),
        "findings": DriftFinding.objects.filter(check_code=code, resolved_at__isnull=True)
                                        .select_related("exception", "connection").order_by("key"),
    }


def drift_checks_overview() -> list[dict]:
    """Every check with its last run and count of open findings (no vendor is called)."""
    rows = []
    for check in all_checks():
        rows.append({"check": check, "last_run": last_run(check.code),
                     "open": DriftFinding.objects.filter(check_code=check.code, resolved_at__isnull=True).count()})
    return rows


__all__ = ["UnknownCheck", "drift_check_queue", "drift_check_status", "drift_checks_overview"]
