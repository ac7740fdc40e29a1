"""No order left behind: the scheduled sweep that re-runs what a lost, killed or failed task left
(inbound events, posts), and the queued retry a person starts from the order page.

The sweep only takes what is past its lease or its backoff, and every re-run goes through the
order flow's own claims (conditional updates), so two sweeps at once, or a sweep racing a late
task, still post each order once. Knobs: settings.ORDER_SWEEP (optional), defaults in DEFAULTS.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, IntegerField, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import get_erp
from integrations.connectors.base import PermanentError, TransientError
from integrations.flows import orders
from .exception_types import EVENT_STUCK, MALFORMED_PAYLOAD
from integrations.models import InboundEvent, OrderEvent, OrderLink

log = logging.getLogger("ledgerline.orders.sweep")

POST_ORDER_TASK = "integrations.tasks.post_order"

DEFAULTS = {
    # Claims of one event (each re-run is one) before it becomes an event_stuck exception instead.
    "event_max_attempts": 8,
    # A new event waits this long for its own task before the sweep takes it as lost.
    "event_pending_after": timedelta(minutes=2),
    # Events, and orders, taken per run; what is left waits for the next run (a minute later).
    "batch": 50,
    # Stop starting new items after this many seconds, well inside the task's Q_CLUSTER timeout.
    "time_budget": settings.Q_CLUSTER.get("timeout", 120) / 2,
}


def sweep_settings() -> dict:
    return {**DEFAULTS, **getattr(settings, "ORDER_SWEEP", {})}


def orders_sweep() -> dict:
    """Re-run stored events and orders whose task was lost or failed for a transient reason.

    Returns counts for the log: events_retried / events_done, events_stuck (raised as exceptions
    instead of re-run), events_resolved (stuck exceptions whose event is done now), orders_retried /
    orders_posted, errors (items that raised; the sweep went on), erp_down (the ERP did not answer
    the health check, so no order was re-posted this run).
    """
    conf = sweep_settings()
    deadline = time.monotonic() + conf["time_budget"]
    counts = dict(events_retried=0, events_done=0, events_stuck=0, events_resolved=0,
                  orders_retried=0, orders_posted=0, errors=0, erp_down=False)
    _sweep_events(conf, counts, deadline)
    _resolve_stuck_events(conf, counts)
    _sweep_orders(conf, counts, deadline)
    if any(counts.values()):
        log.info("orders sweep: %s", counts)
    return counts


# --- inbound events ---------------------------------------------------------------------------------

def _event_ref() -> Cast:
    """The event id an exception is about (its retry_args), comparable with InboundEvent.pk."""
    return Cast(KeyTextTransform("event_id", "retry_args"), IntegerField())


def _events_left_behind(now, conf: dict) -> QuerySet:
    """Events no task is working on any more: PENDING long after they arrived (the task was lost),
    PROCESSING past the claim lease (the worker died), FAILED for a transient reason. A malformed
    payload, or an event already raised as stuck, is a person's (open or ignored) and is left alone."""
    owned_by_a_person = ExceptionRecord.objects.annotate(event_ref=_event_ref()).filter(
        type_code__in=[MALFORMED_PAYLOAD.code, EVENT_STUCK.code],
        status__in=[*ExceptionRecord.ACTIVE_STATUSES, ExceptionRecord.Status.IGNORED],
        event_ref=OuterRef("pk"),
    )
    left = (
        Q(status=InboundEvent.Status.PENDING, received_at__lt=now - conf["event_pending_after"])
        | Q(status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - orders.CLAIM_LEASE)
        | Q(status=InboundEvent.Status.FAILED)
    )
    return (
        InboundEvent.objects.filter(left)
        .exclude(Exists(owned_by_a_person))
        .annotate(touched_at=Coalesce("claimed_at", "received_at"))
        .order_by("touched_at", "pk")
    )


def _backoff_over(now, max_attempts: int) -> Q:
    """Not re-run more often than the order flow's auto_retry_delay(attempts) after its last claim."""
    due = Q(pk__in=[])  # matches nothing; each attempt count adds its own wait
    for attempts in range(max_attempts):
        due |= Q(attempts=attempts, touched_at__lt=now - orders.auto_retry_delay(attempts))
    return due


def _sweep_events(conf: dict, counts: dict, deadline: float) -> None:
    now = timezone.now()
    max_attempts = conf["event_max_attempts"]
    left = _events_left_behind(now, conf)
    for event in left.filter(attempts__gte=max_attempts).select_related("connection")[: conf["batch"]]:
        try:
            _event_stuck_raise(event)
            counts["events_stuck"] += 1
        except Exception:
            counts["errors"] += 1
            log.exception("sweep: could not raise event %s as stuck", event.pk)
    due = list(left.filter(_backoff_over(now, max_attempts), attempts__lt=max_attempts)
               .values_list("pk", flat=True)[: conf["batch"]])
    for event_id in due:
        if time.monotonic() > deadline:
            log.warning("sweep: out of time; the remaining events wait for the next run")
            return
        counts["events_retried"] += 1
        try:
            _process_event(event_id)
        except (TransientError, PermanentError) as exc:
            # The flow stored the error on the event (FAILED); the next run retries it after its backoff.
            counts["errors"] += 1
            log.warning("sweep: event %s failed again: %s", event_id, exc)
            continue
        except Exception:
            counts["errors"] += 1
            log.exception("sweep: event %s raised", event_id)
            continue
        if InboundEvent.objects.filter(pk=event_id, status=InboundEvent.Status.DONE).exists():
            counts["events_done"] += 1


def _process_event(event_id: int) -> None:
    """Re-run an event through the flow its topic names: the order flow's own, or another flow's handler."""
    from integrations.inbox.routing import ORDERS, flow_for, handle

    row = InboundEvent.objects.filter(pk=event_id).values_list("connection__kind", "topic").first()
    if row is not None and flow_for(*row) not in (None, ORDERS):
        handle(event_id, *row)
    else:
        orders.inbound_event_process(event_id=event_id)


def _event_stuck_raise(event: InboundEvent) -> None:
    connection = event.connection
    error = event.last_error or "no error recorded (its task was lost or killed)"
    exception_raise(
        exc_type=EVENT_STUCK,
        key=f"event:{event.pk}",
        fingerprint=f"{connection.code}:{event.topic}",
        message=(
            f"The {connection.name} event {event.topic} ({event.external_id}) for order "
            f"{event.resource_id or '?'} is still {event.get_status_display().lower()} after {event.attempts} "
            f"attempts: {error}. The event is kept; Ledgerline stopped retrying it on its own. Fix the "
            "cause, then retry."
        ),
        context={"topic": event.topic, "resource_id": event.resource_id or "?", "storefront": connection.name,
                 "event_id": event.pk, "last_error": event.last_error},
        retry_args={"event_id": event.pk},
        last_error=event.last_error,
    )


def _resolve_stuck_events(conf: dict, counts: dict) -> None:
    """A stuck event that got done after all (a person's retry, a late task) clears its exception."""
    done = InboundEvent.objects.filter(pk=OuterRef("event_ref"), status=InboundEvent.Status.DONE)
    records = (
        ExceptionRecord.objects.filter(type_code=EVENT_STUCK.code, status__in=ExceptionRecord.ACTIVE_STATUSES)
        .annotate(event_ref=_event_ref())
        .filter(Exists(done))
    )
    for record in records[: conf["batch"]]:
        try:
            exception_resolve(record=record, note="The event was processed.", action="auto_resolved")
            counts["events_resolved"] += 1
        except Exception:
            counts["errors"] += 1
            log.exception("sweep: could not resolve %s", record.key)


# --- orders -------------------------------------------------------------------------------------------

def _orders_left_behind(now) -> QuerySet:
    """POSTING past the claim lease (the worker died), RECEIVED past it (applied, never posted: a
    crash between the two), FAILED for a transient reason whose automatic re-post is due."""
    lease_over = now - orders.CLAIM_LEASE
    return OrderLink.objects.filter(
        Q(state=OrderLink.State.POSTING, posting_started_at__lt=lease_over)
        | Q(state=OrderLink.State.RECEIVED, updated_at__lt=lease_over)
        | Q(state=OrderLink.State.FAILED, next_retry_at__lte=now)
    ).order_by("pk")


def erp_answers() -> bool:
    """One cheap read, one request (no client retries): the sweep itself comes back in a minute."""
    try:
        erp = get_erp()
        if hasattr(erp, "max_attempts"):
            erp.max_attempts = 1
        erp.list_depots()
    except (TransientError, PermanentError, requests.RequestException) as exc:
        log.warning("sweep: the ERP does not answer (%s); orders wait for the next run", exc)
        return False
    return True


def _send_stale_batches(counts: dict) -> None:
    """Documents queued for a batch whose waiting worker died go out now (their orders stay POSTING,
    so without this they would wait for the claim lease)."""
    from integrations.connectors.base import BATCH_SALES_ORDERS, supports
    from integrations.models import ReadySalesOrder
    from .batches import stale_batches_send
    from .common import erp_facts_key

    if not ReadySalesOrder.objects.filter(batch="").exists():
        return
    erp = get_erp()
    if supports(erp, BATCH_SALES_ORDERS):
        counts["orders_posted"] += stale_batches_send(erp, erp_facts_key(erp), erp.max_batch)


def _sweep_orders(conf: dict, counts: dict, deadline: float) -> None:
    try:
        _send_stale_batches(counts)
    except Exception:
        counts["errors"] += 1
        log.exception("sweep: sending the waiting batch failed")
    due = list(_orders_left_behind(timezone.now()).values_list("pk", flat=True)[: conf["batch"]])
    if not due:
        return
    # Asked once per run: while the ERP is down every post would spend its own retries and fail.
    if not erp_answers():
        counts["erp_down"] = True
        return
    for order_id in due:
        if time.monotonic() > deadline:
            log.warning("sweep: out of time; the remaining orders wait for the next run")
            return
        counts["orders_retried"] += 1
        try:
            result = orders.order_post_to_erp(order_id=order_id)
        except Exception:
            counts["errors"] += 1
            log.exception("sweep: posting order %s raised", order_id)
            continue
        counts["orders_posted"] += result == "posted"


# --- a person's retry -----------------------------------------------------------------------------

def order_retry_queue(*, order: OrderLink, actor=None) -> bool:
    """Queue a re-post (the order page's "Retry posting"): the ERP is called by a worker, never in
    the request. False when there is nothing to retry (already posted)."""
    from django_q.tasks import async_task

    if order.state in OrderLink.IN_ERP:
        return False
    who = actor.get_username() if actor else "Ledgerline"
    with transaction.atomic():
        OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.RETRIED, message=f"Retry queued by {who}")
        transaction.on_commit(lambda: async_task(POST_ORDER_TASK, order.pk, task_name=f"order-retry-{order.pk}"))
    return True
