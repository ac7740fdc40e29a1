"""Sales orders in batches, where the ERP takes several per request (BATCH_SALES_ORDERS).

A task that has checked an order saves its attempt row and a `ReadySalesOrder` (one transaction) and
moves on. Whoever sees a full batch waiting sends it at once; otherwise one worker per host (a
non-blocking file lock) waits at most ORDERS["batch_wait"] seconds for the batch to fill, then sends
what is there. Each document's answer is applied to its own order exactly as a single create's
would be: booked or already there → posted; refused → that order alone fails (an owned exception);
the request itself failing → every order in it is re-posted automatically later, and that re-post
asks the ERP first by external reference, since the batch may have been booked.
Safe twice: rows are claimed by a conditional update (batch = this sender's token), and the ERP
books each external reference once.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import router, transaction
from django.utils import timezone

from integrations.connectors.base import (
    BATCH_SALES_ORDERS, ErpSalesOrderLine, ErpSalesOrderRequest, PermanentError, TransientError, supports,
)
from integrations.inbox.store import insert_row, prepared_value
from integrations.models import OrderLink, OutboundWrite, ReadySalesOrder

from .common import log
from .statements import count_where

POLL_SECONDS = 0.05


def batch_size(erp) -> int:
    """How many sales orders go in one request to this ERP: 0 when they go one by one (the ERP has no
    batch endpoint, batching is switched off, or the queue runs tasks synchronously, where no other
    worker could fill a batch)."""
    from django_q.conf import Conf

    size = min(int(settings.ORDERS.get("batch_max", 100) or 0), int(getattr(erp, "max_batch", 0) or 0))
    if size <= 1 or Conf.SYNC or not supports(erp, BATCH_SALES_ORDERS):
        return 0
    return size


def request_as_dict(request: ErpSalesOrderRequest) -> dict:
    data = dict(request.__dict__)
    data["lines"] = [dict(line.__dict__) for line in request.lines]
    return data


def request_from_dict(data: dict) -> ErpSalesOrderRequest:
    return ErpSalesOrderRequest(**{**data, "lines": tuple(ErpSalesOrderLine(**line) for line in data["lines"])})


def sales_order_queue(*, link: OrderLink, request: ErpSalesOrderRequest, endpoint: str, system: str,
                      details: dict, first_attempt: bool = False) -> None:
    """Save the attempt row and the ready document together: from here a crash is visible (the
    write was started) and a replay asks the ERP first."""
    using = router.db_for_write(ReadySalesOrder)
    write = OutboundWrite(action="create_sales_order", external_reference=request.external_reference[:200],
                          system=system, order=link, subject_type="order", subject_id=str(link.pk))
    document = request_as_dict(request)
    # The document's JSON is encoded before the transaction, not while it holds the write lock.
    ready = {"request": prepared_value(ReadySalesOrder, "request", document, using),
             "details": prepared_value(ReadySalesOrder, "details", details, using)} if first_attempt else None
    with transaction.atomic(using=using):
        insert_row(write, using)  # compiled once per process (integrations.inbox.store)
        if first_attempt:  # no earlier attempt left a row
            insert_row(ReadySalesOrder(order_id=link.pk, write=write, endpoint=endpoint,
                                       request=document, details=details), using, ready=ready)
            return
        # The row of an earlier attempt (its sender died) is replaced, unclaimed again.
        updated = ReadySalesOrder.objects.filter(order_id=link.pk).update(
            write=write, endpoint=endpoint, request=document, details=details,
            ready_at=timezone.now(), batch="")
        if not updated:
            ReadySalesOrder.objects.create(order_id=link.pk, write=write, endpoint=endpoint,
                                           request=document, details=details)


def _unclaimed(endpoint: str):
    return ReadySalesOrder.objects.filter(endpoint=endpoint, batch="")


def _unclaimed_count(endpoint: str) -> int:
    """How many documents wait for this ERP: asked after every queued order and while a batch fills,
    so by a statement compiled once."""
    return count_where(ReadySalesOrder, {"endpoint": endpoint, "batch": ""}, router.db_for_read(ReadySalesOrder))


def _claim(endpoint: str, size: int) -> str | None:
    ids = list(_unclaimed(endpoint).order_by("id").values_list("id", flat=True)[:size])
    if not ids:
        return None
    token = uuid.uuid4().hex
    if not ReadySalesOrder.objects.filter(id__in=ids, batch="").update(batch=token):
        return None  # another sender took them first
    return token


_host_locks: dict[str, int] = {}
_host_locks_guard = threading.Lock()


class _Waiter:
    """The one worker per host (and ERP) that waits for a batch to fill: a non-blocking lock on a
    file, so a worker that finds it taken goes back to preparing orders instead of waiting too."""

    def __init__(self, endpoint: str):
        self.path = os.path.join(str(settings.VAR_DIR),
                                 f"erp-batch-{hashlib.sha1(endpoint.encode()).hexdigest()[:12]}.lock")
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def sales_orders_flush(erp, *, endpoint: str, size: int, wait: float | None = None,
                       full_batches: bool = True) -> int:
    """Send what is ready for this ERP: full batches at once; a partial one by the host's waiter after
    at most `wait` seconds. Returns the orders sent by this call. full_batches=False leaves the full
    batches to whoever queued their last document (sales_orders_send_soon counts after queueing) or
    to the waiter, which sends them as it fills."""
    wait = settings.ORDERS.get("batch_wait", 1.0) if wait is None else wait
    sent = 0
    while full_batches and _unclaimed_count(endpoint) >= size:
        sent += _send_claimed(erp, _claim(endpoint, size))
    waiter = _Waiter(endpoint)
    while waiter.acquire():
        try:
            sent += _wait_and_send(erp, endpoint, size, wait)
        finally:
            waiter.release()
        # A document queued while this worker held the lock found it taken: look once more after
        # releasing, so nothing is left waiting for a waiter that is gone.
        if not _unclaimed_count(endpoint):
            break
    return sent


class _Sender:
    """This process's background sender: the task that queued an order goes back to work at once,
    while this thread (one per process and ERP, and one waiting per host by the lock above) waits for
    the batch to fill and sends it. A process that dies with it leaves its rows to the next sender,
    or to the sweep. Between wakes the thread stays LINGER seconds, with its database connection
    and ERP session, instead of a new thread and connection for every order of a sale."""

    LINGER = 5.0

    def __init__(self):
        self.guard = threading.Lock()
        self.running: dict[str, bool] = {}
        self.pending: dict[str, threading.Event] = {}

    def wake(self, erp, endpoint: str, size: int) -> None:
        with self.guard:
            self.pending.setdefault(endpoint, threading.Event()).set()
            if self.running.get(endpoint):
                return
            self.running[endpoint] = True
        # Not a daemon: a worker process that is recycled (it exits after its share of tasks) waits
        # for its batch to be sent and recorded instead of leaving it to the sweep.
        threading.Thread(target=self._run, args=(erp, endpoint, size), daemon=False,
                         name=f"sales-order-batches {endpoint}").start()

    def _next_wake(self, endpoint: str, pending: threading.Event) -> bool:
        """Wait for the next wake; False once LINGER seconds passed without one, or at once when the
        process is exiting (its main thread is done: a recycled worker is not held up). Deciding to
        stop and saying so (running = False) is one step under the guard, so no wake is missed."""
        deadline = time.monotonic() + self.LINGER
        while not pending.wait(0.1):
            if time.monotonic() > deadline or not threading.main_thread().is_alive():
                with self.guard:
                    if not pending.is_set():
                        self.running[endpoint] = False
                        return False
                break
        pending.clear()
        return True

    def _run(self, erp, endpoint: str, size: int) -> None:
        from django.db import connection

        from integrations.connectors import get_erp

        stopped = False
        try:
            erp = get_erp()  # this thread's own client and session: a requests.Session is not shared
            pending = self.pending[endpoint]
            while self._next_wake(endpoint, pending):
                try:
                    sales_orders_flush(erp, endpoint=endpoint, size=size, full_batches=False)
                except Exception:  # the rows stay; the next wake or the sweep sends them
                    log.exception("sending sales order batches failed")
                    time.sleep(1)
            stopped = True
        finally:
            if not stopped:  # died of an exception: the next wake starts a new thread
                with self.guard:
                    self.running[endpoint] = False
            connection.close()


_sender = _Sender()


def sales_orders_send_soon(erp, *, endpoint: str, size: int) -> int:
    """After queueing: a full batch goes out now, from this task; a partial one from the background.
    Returns the orders this call sent."""
    sent = 0
    while _unclaimed_count(endpoint) >= size:
        sent += _send_claimed(erp, _claim(endpoint, size))
    _sender.wake(erp, endpoint, size)
    return sent


def _wait_and_send(erp, endpoint: str, size: int, wait: float) -> int:
    sent = 0
    while True:
        oldest = _unclaimed(endpoint).order_by("id").values_list("ready_at", flat=True).first()
        if oldest is None:
            return sent
        deadline = time.time() + max(0.0, wait - (timezone.now() - oldest).total_seconds())
        while time.time() < deadline and _unclaimed_count(endpoint) < size:
            time.sleep(POLL_SECONDS)
        sent += _send_claimed(erp, _claim(endpoint, size))


def stale_batches_send(erp, endpoint: str, size: int) -> int:
    """The sweep's part: documents waiting longer than a batch ever should (their waiter died)."""
    wait = settings.ORDERS.get("batch_wait", 1.0)
    if not _unclaimed(endpoint).filter(ready_at__lt=timezone.now() - timedelta(seconds=wait + 5)).exists():
        return 0
    return sales_orders_flush(erp, endpoint=endpoint, size=size, wait=0)


def _send_claimed(erp, token: str | None) -> int:
    """One batch request for the rows claimed under `token`, each answer applied to its own order."""
    from .batch_answers import batch_answers_record

    if token is None:
        return 0
    # The orders' storefront payloads and posted documents are not read here (a follow-up that needs
    # one, such as a refund seen before posting, loads it): decoding them for a hundred orders was a
    # tenth of a batch's bookkeeping.
    entries = list(ReadySalesOrder.objects.filter(batch=token).select_related("order__connection")
                   .defer("order__payload", "order__erp_payload").order_by("id"))
    requests_ = [request_from_dict(entry.request) for entry in entries]
    try:
        answers = erp.create_sales_orders(requests_)
    except (TransientError, PermanentError) as exc:
        answers = [exc] * len(entries)
    except Exception as exc:  # never a batch that dies quietly: each order owned, re-posted with backoff
        log.exception("sending a batch of %s sales orders failed unexpectedly", len(entries))
        answers = [exc] * len(entries)
    batch_answers_record(entries, requests_, answers, erp)
    ReadySalesOrder.objects.filter(batch=token).delete()
    return len(entries)
