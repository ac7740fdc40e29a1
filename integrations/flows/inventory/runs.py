"""Inventory runs: full syncs (scheduled outside quiet hours, or by hand) and order-driven pushes, queued and claimed."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .exception_types import UNKNOWN_SKU

log = logging.getLogger("ledgerline.inventory")


def inventory_exception_retry(record) -> bool:
    """Retry handler: push the SKU's items again (or run a full sync for a location); True when clean."""
    from integrations.models import InventoryLevel, Connection

    connection = Connection.objects.get(code=record.retry_args["connection"])
    codes = record.retry_args.get("erp_item_codes") or []
    if record.type_code == UNKNOWN_SKU.code and codes:
        inventory_push_for_items(connection=connection, erp_item_codes=codes, queue=False)
        levels = InventoryLevel.objects.filter(connection=connection, storefront_sku=record.sku)
        return levels.exists() and not levels.exclude(last_error="").exists()
    run = inventory_sync_start(connection=connection, trigger="retry", queue=False)
    return run.exceptions_raised == 0



def quiet_hours(spec: str) -> list[tuple[int, int]]:
    """"11-14,18-21" -> [(11, 14), (18, 21)]: full syncs do not start from 11:00 to 13:59 and 18:00-20:59."""
    windows = []
    for part in (spec or "").split(","):
        part = part.strip()
        if part:
            start, _, end = part.partition("-")
            windows.append((int(start), int(end or int(start) + 1)))
    return windows


def in_quiet_window(moment: datetime, spec: str) -> bool:
    hour = timezone.localtime(moment).hour if timezone.is_aware(moment) else moment.hour
    for start, end in quiet_hours(spec):
        if (start <= hour < end) if start <= end else (hour >= start or hour < end):
            return True
    return False


def _queue(func: str, run_id: int, *, priority: bool = False) -> None:
    from django_q.tasks import async_task

    options = {"task_name": f"inventory-run-{run_id}"}
    cluster = getattr(settings, "INVENTORY_PRIORITY_CLUSTER", "") if priority else ""
    if cluster:
        options["cluster"] = cluster  # a dedicated qcluster so order-driven pushes never wait behind a full sync
    transaction.on_commit(lambda: async_task(func, run_id, **options))


def inventory_sync_start(*, connection, trigger: str = "manual", user=None, queue: bool = True):
    """Create a full-sync run (or return the one already pending/running) and queue it."""
    from integrations.models import InventorySyncRun

    Run = InventorySyncRun
    stale = timezone.now() - timedelta(hours=2)
    active = Run.objects.filter(connection=connection, kind=Run.Kind.FULL,
                                status__in=[Run.Status.PENDING, Run.Status.RUNNING], created_at__gte=stale).first()
    if active:
        return active
    run = Run.objects.create(connection=connection, kind=Run.Kind.FULL, trigger=trigger,
                             requested_by=user if user and user.is_authenticated else None)
    if queue:
        _queue("integrations.tasks.inventory_sync", run.pk)
        return run
    return inventory_sync_run(run_id=run.pk)


def inventory_push_for_items(*, connection, erp_item_codes: Iterable[str], queue: bool = True, erp=None,
                             storefront=None):
    """The order flow's high-priority path: push the ATS of these ERP items (and the kits made of them)
    to every mapped location of the storefront, immediately, as its own task."""
    from integrations.models import InventorySyncRun

    run = InventorySyncRun.objects.create(connection=connection, kind=InventorySyncRun.Kind.ORDER, trigger="order",
                                          item_codes=sorted(set(erp_item_codes)))
    if queue:
        _queue("integrations.tasks.inventory_push_items", run.pk, priority=True)
        return run
    return inventory_sync_run(run_id=run.pk, erp=erp, storefront=storefront)


def inventory_full_sync_scheduled(*, now: datetime | None = None) -> list[int]:
    """The schedule's entry: a full sync per active storefront, unless inside a quiet window."""
    from integrations.models import Connection

    moment = now or timezone.now()
    if in_quiet_window(moment, getattr(settings, "INVENTORY_QUIET_HOURS", "")):
        log.info("inventory full sync skipped: quiet hours %s", settings.INVENTORY_QUIET_HOURS)
        return []
    return [inventory_sync_start(connection=c, trigger="schedule").pk
            for c in Connection.objects.storefronts().filter(active=True)]


def inventory_sync_run(*, run_id: int, erp=None, storefront=None):
    """Run one queued run. Safe twice: the run is claimed PENDING → RUNNING by a conditional update,
    and every write is a compare-and-set / versioned update, so a replay never double-applies."""
    from integrations.models import InventorySyncRun

    Run = InventorySyncRun
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(
        status=Run.Status.RUNNING, started_at=timezone.now())
    run = Run.objects.select_related("connection").get(pk=run_id)
    if not claimed:
        return run
    from integrations.connectors import get_erp, get_storefront

    from .push import run_push

    try:
        run_push(run, erp=erp or get_erp(), storefront=storefront or get_storefront(run.connection))
    except Exception as exc:  # the run row must say it failed; the queue decides about retrying
        log.exception("inventory run %s failed", run_id)
        run.status = Run.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run.save()
        raise
    run.status = Run.Status.PARTIAL if run.exceptions_raised else Run.Status.SUCCEEDED
    run.finished_at = timezone.now()
    run.save()
    return run
