"""django-q2 entry points of the drift checks: one per check, named after its code, for its schedule
in config/schedules.py. Safe to run twice: a check already running is not started again, and each gap
is keyed (check + key), so a repeated run raises nothing new."""
from __future__ import annotations

from integrations.models import DriftRun

from .registry import check_run


def drift_check_task(code: str, user_id: int | None = None) -> str:
    """Run one check (queued by "Run now" with the person's id, or by a schedule)."""
    user = None
    if user_id is not None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=user_id).first()
    trigger = DriftRun.Trigger.MANUAL if user_id is not None else DriftRun.Trigger.SCHEDULE
    return check_run(code, trigger=trigger, user=user).status


def orphaned_orders() -> str:
    return drift_check_task("orphaned_orders")


def inventory_drift() -> str:
    return drift_check_task("inventory_drift")


def catalogue() -> str:
    return drift_check_task("catalogue")


def prices() -> str:
    return drift_check_task("prices")


def tax_rounding() -> str:
    return drift_check_task("tax_rounding")


def integration_health() -> str:
    return drift_check_task("integration_health")
