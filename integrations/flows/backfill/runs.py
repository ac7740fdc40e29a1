"""Backfill runs: every order of a storefront since a date, read from the storefront and stored in the
inbox one by one (then the orders flow applies each as it applies a webhook).

Shopify is read through a bulk operation (one per run: its id is the run's cursor, and so is the
number of the file's orders already stored); commercetools through its Order query API, the cursor
being the (createdAt, id) of the last order stored. The cursor and the counts move in the same
transaction as the events they count, so a run whose worker died resumes exactly where it stopped
(`backfill_runs_resume`, on a schedule) and stores nothing twice.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import connector_for
from integrations.connectors.base import ConnectorError, NotFound
from integrations.models import BackfillRun, Connection, InboundEvent, OrderLink

from .exception_types import BACKFILL_FAILED
from .store import order_store

log = logging.getLogger("ledgerline.flows.backfill")

TASK = "integrations.flows.backfill.tasks.backfill_run_task"
LEASE = timedelta(minutes=5)  # a running run not heard of for this long is taken to have died
POLL_INTERVAL = 2.0  # seconds between polls of a Shopify bulk operation
SHOPIFY_RECENT_ORDERS = timedelta(days=60)  # older orders need read_all_orders
PAGE_SIZE = 100


class BackfillRefused(Exception):
    """A backfill that cannot start; the message says why, for the screen."""


def backfill_start(*, connection: Connection, since: datetime, actor=None) -> BackfillRun:
    """Create a run and queue it; a run of the connection that has not finished is returned instead."""
    if not connection.is_storefront:
        raise BackfillRefused(f"{connection.name} is not a storefront: only storefront orders are imported.")
    if not connection.active:
        raise BackfillRefused(f"{connection.name} is inactive: it accepts and posts nothing. Reactivate it first.")
    if since > timezone.now():
        raise BackfillRefused("The date is in the future: choose a day on or before today.")
    with transaction.atomic():
        Connection.objects.select_for_update().filter(pk=connection.pk).first()  # one start at a time
        running = BackfillRun.objects.filter(connection=connection, status__in=[
            BackfillRun.Status.PENDING, BackfillRun.Status.RUNNING]).first()
        if running is not None:
            return running
        run = BackfillRun.objects.create(connection=connection, since=since,
                                         started_by=actor if getattr(actor, "pk", None) else None)
        transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from django_q.tasks import async_task

    async_task(TASK, run_id, task_name=f"backfill-{run_id}")


def _claim(run_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status=BackfillRun.Status.PENDING) | Q(status=BackfillRun.Status.RUNNING,
                                                         heartbeat_at__lt=now - LEASE)
    return bool(BackfillRun.objects.filter(claimable, pk=run_id).update(
        status=BackfillRun.Status.RUNNING, heartbeat_at=now, attempts=F("attempts") + 1, error=""))


def _beat(run: BackfillRun, **fields) -> None:
    fields["heartbeat_at"] = timezone.now()
    BackfillRun.objects.filter(pk=run.pk).update(**fields)


def backfill_run_execute(*, run_id: int, client=None, sleep=time.sleep) -> str:
    """Run (or resume) one backfill. Safe twice: the run is claimed by a conditional update, and each
    order's event has a unique inbox id."""
    if not _claim(run_id):
        return "taken"
    run = BackfillRun.objects.select_related("connection").get(pk=run_id)
    if run.started_at is None:
        BackfillRun.objects.filter(pk=run.pk, started_at__isnull=True).update(started_at=timezone.now())
    connection = run.connection
    try:
        if not connection.active:
            raise BackfillRefused(f"{connection.name} was deactivated: the import stopped.")
        client = client or connector_for(connection)
        if connection.kind == "shopify":
            _shopify_import(run, client, sleep)
        else:
            _commercetools_import(run, client)
    except (ConnectorError, BackfillRefused, ValueError) as exc:
        return _failed(run, exc)
    backfill_recount(run)
    BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.COMPLETED, finished_at=timezone.now(),
                                                 heartbeat_at=timezone.now())
    for record in _open_exceptions(run):
        exception_resolve(record=record, note="The backfill completed.", action="auto_resolved")
    run.refresh_from_db()
    log.info("backfill %s of %s: %s found, %s stored, %s skipped", run.pk, connection.code, run.found, run.stored,
             run.skipped)
    return "completed"


def _open_exceptions(run: BackfillRun):
    from exceptions_queue.models import ExceptionRecord

    return ExceptionRecord.objects.filter(type_code=BACKFILL_FAILED.code, retry_args__run_id=run.pk,
                                          status__in=ExceptionRecord.ACTIVE_STATUSES)


def _failed(run: BackfillRun, exc: Exception) -> str:
    error = str(exc)[:2000] or type(exc).__name__
    backfill_recount(run)
    BackfillRun.objects.filter(pk=run.pk).update(status=BackfillRun.Status.FAILED, error=error,
                                                 finished_at=timezone.now())
    run.refresh_from_db()
    exception_raise(
        exc_type=BACKFILL_FAILED, key=f"run:{run.pk}", fingerprint=run.connection.code,
        message=(f"Importing the orders of {run.connection.name} since {run.since:%Y-%m-%d} stopped after "
                 f"{run.stored} stored and {run.skipped} skipped: {error}. Retry resumes where it stopped."),
        context={"storefront": run.connection.name, "run_id": run.pk, "since": run.since.isoformat(),
                 "stored": run.stored, "skipped": run.skipped},
        retry_args={"run_id": run.pk}, last_error=error, subject=("connection", str(run.connection_id)),
    )
    log.warning("backfill %s of %s failed: %s", run.pk, run.connection.code, error)
    return "failed"


def retry_backfill_exception(record) -> bool:
    """Retry of a backfill_failed exception: the run resumes from its cursor."""
    run_id = record.retry_args.get("run_id")
    if not run_id:
        return False
    BackfillRun.objects.filter(pk=run_id, status=BackfillRun.Status.FAILED).update(status=BackfillRun.Status.PENDING)
    backfill_run_execute(run_id=run_id)
    return BackfillRun.objects.filter(pk=run_id, status=BackfillRun.Status.COMPLETED).exists()


def backfill_runs_resume() -> int:
    """The schedule's safety net: a run whose worker died (or whose task was lost) is resumed."""
    stale = BackfillRun.objects.filter(
        Q(status=BackfillRun.Status.RUNNING, heartbeat_at__lt=timezone.now() - LEASE)
        | Q(status=BackfillRun.Status.PENDING, created_at__lt=timezone.now() - LEASE)).values_list("pk", flat=True)
    resumed = 0
    for run_id in list(stale[:20]):
        try:
            resumed += backfill_run_execute(run_id=run_id) == "completed"
        except Exception:  # one run never stops the others
            log.exception("resuming backfill %s failed", run_id)
    return resumed


def backfill_recount(run: BackfillRun) -> None:
    """Orders this run stored that are now in the ERP (the progress bar's last figure)."""
    stored_ids = InboundEvent.objects.filter(connection_id=run.connection_id,
                                             **{"headers__X-Ledgerline-Source": _source(run)}).values("resource_id")
    posted = OrderLink.objects.filter(connection_id=run.connection_id, storefront_order_id__in=stored_ids,
                                      state__in=OrderLink.IN_ERP).count()
    BackfillRun.objects.filter(pk=run.pk).update(posted=posted)


def _source(run: BackfillRun) -> str:
    return f"backfill {run.pk}"


def _store_one(run: BackfillRun, payload: dict, cursor: dict) -> None:
    """Store one order and move the cursor and the counts on, in one transaction."""
    with transaction.atomic():
        stored = order_store(connection=run.connection, payload=payload, source=_source(run))
        counts = {"found": F("found") + 1, "cursor": cursor, "heartbeat_at": timezone.now()}
        if stored.created:
            counts["stored"] = F("stored") + 1
        else:
            counts["skipped"] = F("skipped") + 1
        BackfillRun.objects.filter(pk=run.pk).update(**counts)
    run.cursor = cursor


# --- Shopify: one bulk operation -------------------------------------------------------------------


def _read_all_orders_warning(run: BackfillRun, client) -> str:
    """Orders older than 60 days need read_all_orders: say so when it is missing."""
    from integrations.onboarding.scopes import implied, shopify_scopes_check

    oldest = timezone.now() - SHOPIFY_RECENT_ORDERS
    if run.since >= oldest:
        return ""
    granted, _ = shopify_scopes_check(run.connection, client)
    if "read_all_orders" in implied(granted):
        return ""
    return (f"read_all_orders is missing: orders older than 60 days cannot be imported, so only orders since "
            f"{oldest:%Y-%m-%d} were read (not since {run.since:%Y-%m-%d}). Grant the scope (reinstall the app "
            f"with it) and run the backfill again for the older ones.")


def _shopify_import(run: BackfillRun, client, sleep) -> None:
    from integrations.connectors.shopify import bulk, orders_read

    if not run.cursor.get("bulk_operation"):
        warning = _read_all_orders_warning(run, client)
        operation = bulk.start_orders_export(client, run.since)
        run.cursor = {"bulk_operation": operation.id, "done": 0}
        _beat(run, cursor=run.cursor, warning=warning)
    operation_id = run.cursor["bulk_operation"]
    try:
        operation = bulk.wait_until_finished(client, operation_id, interval=POLL_INTERVAL, sleep=sleep,
                                             heartbeat=lambda op: _beat(run))
    except NotFound:
        operation = None
    done = int(run.cursor.get("done", 0))
    for index, order in enumerate(bulk.orders_from_lines(bulk.download_lines(operation.url if operation else None))):
        if index < done:
            continue  # stored before the worker died
        payload = order.payload
        if order.needs_reread:  # refunds cannot be read in bulk: the whole order, once
            payload = orders_read.fetch_order(client, order.id) or payload
        _store_one(run, payload, {"bulk_operation": operation_id, "done": index + 1})


# --- commercetools: the Order query API --------------------------------------------------------------


def _commercetools_import(run: BackfillRun, client) -> None:
    from integrations.connectors.commercetools.orders_read import orders_created_since

    after = tuple(run.cursor["after"]) if run.cursor.get("after") else None
    since = run.since.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for page in orders_created_since(client, since, after=after, page_size=PAGE_SIZE):
        for order in page:
            _store_one(run, order, {"after": [order["createdAt"], order["id"]]})
