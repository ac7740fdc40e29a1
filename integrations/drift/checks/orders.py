"""Orphaned orders: a paid order with no ERP Sales Order, found even when its webhooks never arrived.

1. The reconciliation poll re-reads each storefront's orders by updated-at from its cursor (minus an
   overlap window) and stores every order Ledgerline does not hold at that version through the inbox
   (flows/backfill/store.py), so the normal order path posts it.
2. Set-based, in SQL: paid orders still without an ERP Sales Order after the threshold; orders in the
   ERP whose payment the storefront no longer shows as taken.
3. Cancelled or refunded storefront orders whose ERP Sales Order is still open (`get_sales_order`,
   the newest few per run)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db.models import Exists, OuterRef
from django.db.models.functions import Lower
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.registry import Team
from integrations.connectors.base import ConnectorError, NotFound
from integrations.models import Connection, DriftRun, InboundEvent, OrderLink, Refund

from .. import exception_types as types
from ..conf import drift_setting
from ..registry import Finding, drift_check, last_run

log = logging.getLogger("ledgerline.drift")
CODE = "orphaned_orders"
SOURCE = "drift reconciliation poll"
S = OrderLink.State


def _iso(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _cursors() -> dict:
    previous = last_run(CODE)
    return dict((previous.summary or {}).get("cursors") or {}) if previous else {}


def _storefronts():
    return Connection.objects.storefronts().filter(active=True).order_by("code")


# --- 1. the reconciliation poll ---------------------------------------------------------------------

def _known(connection: Connection, ids: list[str]) -> dict[str, datetime | None]:
    return dict(OrderLink.objects.filter(connection=connection, storefront_order_id__in=ids)
                .values_list("storefront_order_id", "source_updated_at"))


def _on_their_way(connection: Connection, ids: list[str]) -> set[str]:
    """Orders with an event already stored and not yet applied: the normal path has them."""
    return set(InboundEvent.objects.filter(
        connection=connection, resource_id__in=ids,
        status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.PROCESSING]).values_list("resource_id", flat=True))


def _missing(connection: Connection, rows: list[tuple[str, datetime | None]]) -> list[str]:
    """Of (order id, updated at) read from the storefront, those Ledgerline lacks at that version."""
    ids = [order_id for order_id, _ in rows]
    known, waiting = _known(connection, ids), _on_their_way(connection, ids)
    out = []
    for order_id, updated in rows:
        if order_id in waiting:
            continue
        held = known.get(order_id, "absent")
        if held == "absent" or (updated is not None and (held is None or held < updated)):
            out.append(order_id)
    return out


def _poll_shopify(connection: Connection, client, since: datetime) -> tuple[int, list[str]]:
    from integrations.connectors.shopify import orders_poll, orders_read
    from integrations.flows.backfill.store import order_store

    seen, recovered = 0, []
    for page in orders_poll.orders_updated_since(client, since):
        seen += len(page)
        names = {row["id"]: row["name"] for row in page}
        for order_id in _missing(connection, [(row["id"], _parse(row["updated_at"])) for row in page]):
            payload = orders_read.fetch_order(client, order_id)
            if payload is None:
                continue
            stored = order_store(connection=connection, payload=payload, source=SOURCE)
            if stored.created:
                recovered.append(names.get(order_id) or order_id)
    return seen, recovered


def _poll_commercetools(connection: Connection, client, since: datetime) -> tuple[int, list[str]]:
    from integrations.flows.backfill.store import order_store

    seen, recovered = 0, []
    for page in client.orders_modified_since(_iso(since), "", page_size=100):
        seen += len(page)
        by_id = {order["id"]: order for order in page}
        for order_id in _missing(connection, [(o["id"], _parse(o.get("lastModifiedAt"))) for o in page]):
            stored = order_store(connection=connection, payload=by_id[order_id], source=SOURCE)
            if stored.created:
                recovered.append(by_id[order_id].get("orderNumber") or order_id)
    return seen, recovered


def reconciliation_poll(run: DriftRun, findings: list[Finding]) -> None:
    """Read every storefront's orders changed since its cursor (minus the overlap) and store the ones
    Ledgerline lacks; the cursor moves to when this poll started, only once the read succeeded."""
    from integrations.connectors import connector_for

    cursors = _cursors()
    overlap = timedelta(minutes=drift_setting("poll_overlap_minutes"))
    first = timedelta(hours=drift_setting("poll_first_lookback_hours"))
    started = timezone.now()
    polled = {}
    for connection in _storefronts():
        cursor = _parse(cursors.get(connection.code))
        since = (cursor or started - first) - overlap
        try:
            client = connector_for(connection)
            reader = _poll_shopify if connection.kind == "shopify" else _poll_commercetools
            seen, recovered = reader(connection, client, since)
        except (ConnectorError, ValueError) as exc:
            log.warning("reconciliation poll of %s failed: %s", connection.code, exc)
            polled[connection.code] = {"error": str(exc)[:300]}
            findings.append(Finding(
                key=f"poll:{connection.code}", exception_type=types.RECONCILIATION_POLL_FAILED.code,
                connection=connection, subject_type="connection", subject_id=connection.code,
                group=f"poll:{connection.code}", message=f"Reading the orders of {connection} failed: {exc}",
                detail={"since": _iso(since), "error": str(exc)[:500]}))
            continue
        cursors[connection.code] = _iso(started)
        polled[connection.code] = {"since": _iso(since), "orders_read": seen, "recovered": recovered}
    run.summary["cursors"] = cursors
    run.summary["poll"] = polled
    run.summary["recovered"] = sum(len(p.get("recovered", [])) for p in polled.values())


# --- 2. in SQL: paid but not posted; posted but not paid ------------------------------------------------

def _released_states(connection: Connection) -> set[str]:
    from integrations.flows.orders.connection_settings import ALWAYS_RELEASED, connection_settings

    cfg = connection_settings(connection)
    return {s.lower() for s in cfg.release_states} | ALWAYS_RELEASED.get(connection.kind, set())


def _owned_elsewhere():
    """An order with an active exception already has an owner: it is not raised a second time."""
    return Exists(ExceptionRecord.objects.filter(order=OuterRef("pk"), status__in=ExceptionRecord.ACTIVE_STATUSES)
                  .exclude(type_code__startswith="drift_"))


def _owned_order_ids() -> set[int]:
    """The same, as one query for the set-based scans (active exceptions are few; orders are many)."""
    return set(ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES, order__isnull=False)
               .exclude(type_code__startswith="drift_").values_list("order_id", flat=True))


def orphans(findings: list[Finding]) -> int:
    threshold = timezone.now() - timedelta(minutes=drift_setting("orphan_after_minutes"))
    count = 0
    owned = _owned_order_ids()
    for connection in _storefronts():
        released = _released_states(connection)
        rows = (OrderLink.objects.filter(connection=connection, erp_order_id="", created_at__lt=threshold,
                                         state__in=[S.RECEIVED, S.POSTING, S.FAILED])
                .annotate(payment=Lower("payment_state")).filter(payment__in=released)
                .only("pk", "storefront_order_id", "order_number", "state", "payment_state", "created_at",
                      "total_minor", "currency", "connection_id"))
        for link in rows.iterator(chunk_size=2000):
            if link.pk in owned:
                continue
            link.connection = connection
            count += 1
            age = int((timezone.now() - link.created_at).total_seconds() // 60)
            number = link.order_number or link.storefront_order_id
            findings.append(Finding(
                key=f"orphan:{connection.code}:{link.storefront_order_id}",
                exception_type=types.ORPHANED_ORDER.code, connection=connection, order=link,
                subject_type="order", subject_id=str(link.pk), group=f"orphan:{connection.code}",
                message=(f"Order {number} on {connection} is {link.payment_state} but has no ERP Sales Order "
                         f"{age} minutes after it was received (state: {link.get_state_display()})."),
                context={"order_number": number},
                detail={"storefront": {"order": number, "payment": link.payment_state, "total_minor": link.total_minor,
                                       "currency": link.currency},
                        "ledgerline": {"state": link.state, "received_at": link.created_at.isoformat()},
                        "erp": {"sales_order": None}}))
    return count


def payment_mismatches(findings: list[Finding]) -> int:
    count = 0
    owned = _owned_order_ids()
    for connection in _storefronts():
        released = _released_states(connection)
        rows = (OrderLink.objects.filter(connection=connection, state__in=[S.POSTED, S.PARTLY_DISPATCHED, S.DISPATCHED])
                .exclude(erp_order_id="").exclude(payment_state="")
                .annotate(payment=Lower("payment_state")).exclude(payment__in=released)
                .only("pk", "storefront_order_id", "order_number", "payment_state", "erp_order_id", "connection_id"))
        for link in rows.iterator(chunk_size=2000):
            if link.pk in owned:
                continue
            link.connection = connection
            count += 1
            number = link.order_number or link.storefront_order_id
            findings.append(Finding(
                key=f"payment:{connection.code}:{link.storefront_order_id}:{link.payment_state.lower()}",
                exception_type=types.PAYMENT_STATE_MISMATCH.code, connection=connection, order=link,
                subject_type="order", subject_id=str(link.pk), group=f"payment:{connection.code}",
                message=(f"ERP Sales Order {link.erp_order_id} is open for order {number}, whose payment "
                         f"{connection} shows as {link.payment_state}."),
                context={"order_number": number, "payment_state": link.payment_state},
                detail={"storefront": {"payment": link.payment_state}, "erp": {"sales_order": link.erp_order_id}}))
    return count


# --- 3. cancelled / refunded on the storefront, open in the ERP ------------------------------------------

ERP_CLOSED = {"cancelled", "canceled", "closed", "credited"}


def erp_still_open(run: DriftRun, findings: list[Finding]) -> int:
    from integrations.connectors import get_erp

    since = timezone.now() - timedelta(days=drift_setting("erp_status_window_days"))
    credited = Refund.objects.filter(order=OuterRef("pk")).exclude(credit_memo_id="")
    links = list(OrderLink.objects.filter(state__in=[S.CANCELLED, S.REFUNDED], updated_at__gte=since)
                 .exclude(erp_order_id="").annotate(credited=Exists(credited), owned=_owned_elsewhere())
                 .filter(owned=False).select_related("connection")
                 .order_by("-updated_at")[:drift_setting("erp_status_checks_per_run")])
    if not links:
        return 0
    erp = get_erp()
    count = 0
    for link in links:
        if link.state == S.REFUNDED and link.credited:
            continue  # refunded with its credit memo booked: the books agree
        try:
            status = (erp.get_sales_order(link.erp_order_id).status or "").lower()
        except NotFound:
            status = "missing"
        except ConnectorError as exc:
            run.keep_open.add(f"erp_open:{link.connection.code}:{link.storefront_order_id}")
            run.summary.setdefault("erp_errors", []).append(f"{link.erp_order_id}: {exc}"[:200])
            continue
        if status in ERP_CLOSED or status == "missing":
            continue
        if link.state == S.REFUNDED and status == "dispatched":
            continue  # refunded after dispatch: the refunds flow books the credit memo (its own exceptions)
        count += 1
        number = link.order_number or link.storefront_order_id
        storefront_state = link.get_state_display().lower()
        findings.append(Finding(
            key=f"erp_open:{link.connection.code}:{link.storefront_order_id}",
            exception_type=types.ERP_ORDER_STILL_OPEN.code, connection=link.connection, order=link,
            subject_type="order", subject_id=str(link.pk), group=f"erp_open:{link.connection.code}",
            message=(f"Order {number} is {storefront_state} on {link.connection}, but ERP Sales Order "
                     f"{link.erp_order_id} is {status}" + ("" if link.state == S.CANCELLED else " and no credit memo was booked") + "."),
            context={"order_number": number, "storefront_state": storefront_state, "erp_status": status},
            detail={"storefront": {"state": link.state}, "erp": {"sales_order": link.erp_order_id, "status": status}}))
    return count


@drift_check(CODE, "Orphaned orders", Team.OPS, "orders", 5,
             "Paid storefront orders with no ERP Sales Order (found by a reconciliation poll even when their "
             "webhooks never arrived), ERP orders whose storefront order is cancelled or refunded, and payment "
             "states that differ between the storefront and the ERP.")
def orphaned_orders(run: DriftRun) -> list[Finding]:
    findings: list[Finding] = []
    if drift_setting("skip_vendor_reads"):
        run.keep_open.update({"poll:", "erp_open:"})  # not looked at this time: not closed either
    else:
        reconciliation_poll(run, findings)
    run.summary["orphans"] = orphans(findings)
    run.summary["payment_mismatches"] = payment_mismatches(findings)
    if not drift_setting("skip_vendor_reads"):
        run.summary["erp_still_open"] = erp_still_open(run, findings)
    return findings
