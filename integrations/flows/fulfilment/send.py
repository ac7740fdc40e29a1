"""Telling the storefront of a stored dispatch, exactly once: a Shopify fulfilment per fulfillment
order holding its lines, or a commercetools parcel (in its shipment's delivery) and shipment state.

The dispatch is claimed by a conditional update; every storefront write goes through the
outbound-write log keyed by the dispatch (and, on Shopify, the fulfillment order), and before
anything is sent the storefront is read: what an earlier attempt already made (a worker that died
after Shopify accepted) is recognised and not made again, and the customer is notified once. A
transient failure is retried with backoff (the sweep re-queues it when due); once the retries are
spent, or when the storefront refuses, it is an ops exception that keeps the tracking details, and
its retry completes the update.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import connector_for
from integrations.connectors.base import PermanentError, TransientError
from integrations.models import Dispatch, OrderEvent, OutboundWrite
from integrations.writes import outbound_write
from mappings.models import CarrierMapping

from ..orders.common import timeline_add
from .exception_types import FULFILMENT_FAILED, UNMAPPED_CARRIER

log = logging.getLogger("ledgerline.fulfilment")

S = Dispatch.Status
# Automatic retries of a transient failure before it becomes an ops exception, and their spacing.
DEFAULTS = {"max_auto_retries": 5, "retry_base_seconds": 30, "retry_max_seconds": 900, "claim_lease_seconds": 120}


def conf() -> dict:
    return {**DEFAULTS, **getattr(settings, "FULFILMENT", {})}


def retry_delay(attempt: int) -> timedelta:
    c = conf()
    return timedelta(seconds=min(c["retry_base_seconds"] * 2 ** max(attempt - 1, 0), c["retry_max_seconds"]))


def notify_customer(connection) -> bool:
    """Per connection `notify_customer` (on unless set false): Shopify's own default is false."""
    value = (connection.settings or {}).get("notify_customer", True)
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "no", "off")


def tracking_company(connection, carrier: str) -> tuple[str, bool]:
    """(what the storefront is told, mapped?): the mapped tracking company, else the ERP's own name."""
    if not carrier:
        return "", True
    row = CarrierMapping.objects.filter(connection=connection, erp_carrier__iexact=carrier.strip(), active=True).first()
    return (row.tracking_company, True) if row else (carrier, False)


def dispatch_claim(dispatch_id: int, *, allow_failed: bool = False) -> bool:
    """PENDING / RETRYING (and FAILED, for a person's retry) -> SENDING; a SENDING claim past its
    lease belonged to a worker that died and may be taken. 0 rows: another worker has it, or it is done."""
    now = timezone.now()
    lease = now - timedelta(seconds=conf()["claim_lease_seconds"])
    takeable = [S.PENDING, S.RETRYING, *([S.FAILED] if allow_failed else [])]
    return bool(Dispatch.objects.filter(Q(storefront_status__in=takeable) | Q(storefront_status=S.SENDING,
                                                                              claimed_at__lt=lease),
                                        pk=dispatch_id, order__isnull=False)
                .update(storefront_status=S.SENDING, claimed_at=now, attempts=F("attempts") + 1))


def dispatch_send(*, dispatch_id: int, allow_failed: bool = False) -> str:
    """Update the storefront for one dispatch; returns the dispatch's status afterwards."""
    if not dispatch_claim(dispatch_id, allow_failed=allow_failed):
        row = Dispatch.objects.filter(pk=dispatch_id).values_list("storefront_status", flat=True).first()
        return row or "missing"
    row = Dispatch.objects.select_related("order__connection").get(pk=dispatch_id)
    connection = row.order.connection
    company, mapped = tracking_company(connection, row.carrier)
    try:
        if connection.kind == "shopify":
            outcome = _send_shopify(row, company)
        elif connection.kind == "commercetools":
            outcome = _send_commercetools(row, company)
        else:
            raise PermanentError(f"{connection.code} is not a storefront ({connection.kind})", code="not_a_storefront")
    except TransientError as exc:
        return _failed_transient(row, exc, company)
    except PermanentError as exc:
        return _failed(row, f"{connection.name} refused the update: {exc}", company)
    except Exception as exc:  # a bug or an unexpected answer: owned by a person, never a task that dies quietly
        log.exception("fulfilment: dispatch %s failed unexpectedly", row.erp_dispatch_id)
        return _failed(row, f"{type(exc).__name__}: {exc}", company)
    if not mapped:
        _raise_unmapped_carrier(row, connection)
    return _succeeded(row, company, outcome)


# --- Shopify ---------------------------------------------------------------------------------


def _wanted_lines(row: Dispatch, to_id) -> dict[str, int]:
    wanted: dict[str, int] = {}
    for line in row.lines:
        reference = line.get("line_reference") or ""
        if not reference:
            raise PermanentError(f"dispatch line {line.get('item_code') or '?'} names no storefront line "
                                 "(the Sales Order line carried no line reference)", code="no_line_reference")
        wanted[to_id(reference)] = wanted.get(to_id(reference), 0) + int(line.get("quantity") or 0)
    return wanted


def _send_shopify(row: Dispatch, company: str) -> dict:
    from integrations.connectors.shopify import fulfilment as shopify

    link = row.order
    client = connector_for(link.connection)
    state = shopify.fulfilment_state(client, link.storefront_order_id)
    tracking = shopify.Tracking(company=company, number=row.tracking_number, url=row.tracking_url)
    plan = shopify.fulfilment_plan(state, _wanted_lines(row, shopify.line_item_gid), row.tracking_number)
    notify = notify_customer(link.connection)
    # A fulfilment an earlier attempt made for this dispatch already told the customer (when asked to).
    notified = row.customer_notified or bool(plan.already and notify)
    references = [made.id for made in plan.already]
    calls = 1
    for planned in plan.to_create:
        key = f"{row.idempotency_key}:{planned.fulfillment_order_id}"
        done = OutboundWrite.objects.filter(external_reference=key, status=OutboundWrite.Status.SUCCEEDED).first()
        if done is not None:  # recorded as made, yet Shopify shows it open: never made twice
            references.append(done.response_id)
            continue
        with outbound_write(action="create_fulfilment", idempotency_key=key, connection=link.connection, order=link,
                            subject=("dispatch", str(row.pk))) as write:
            made = shopify.fulfilment_create(client, planned, tracking=tracking, notify_customer=notify and not notified,
                                             key_basis=row.idempotency_key)
            write.response_id = made["id"]
        calls += 1
        notified = notified or made["notified"]
        references.append(made["id"])
        log.info("fulfilment: %s -> Shopify %s (%s)", row.erp_dispatch_id, made["id"], planned.location_name)
    where = ", ".join(p.location_name for p in plan.to_create if p.location_name)
    return {"references": references, "notified": notified, "calls": calls,
            "what": f"{len(references)} Shopify fulfilment{'s' if len(references) != 1 else ''}"
                    + (f" ({where})" if where else "")}


# --- commercetools -------------------------------------------------------------------------


def _send_commercetools(row: Dispatch, company: str) -> dict:
    from integrations.connectors.commercetools import fulfilment as ct

    link = row.order
    client = connector_for(link.connection)
    items = tuple(_wanted_lines(row, lambda reference: reference).items())
    spec = ct.ParcelSpec(delivery_key=ct.shipment_key(row.sales_order_id, row.depot, row.dispatched_at),
                         parcel_key=ct.resource_key("ll", row.erp_dispatch_id), items=items,
                         tracking_id=row.tracking_number, carrier=company, provider_transaction=row.erp_dispatch_id)
    with outbound_write(action="add_delivery_parcel", idempotency_key=row.idempotency_key, connection=link.connection,
                        order=link, subject=("dispatch", str(row.pk))) as write:
        result = ct.add_parcel(client, link.storefront_order_id, spec)
        write.response_id = result.parcel_id
    return {"references": [r for r in (result.delivery_id, result.parcel_id) if r], "notified": False,
            "calls": 2 + result.conflicts * 2,
            "what": f"commercetools parcel in delivery {spec.delivery_key}, shipment {result.shipment_state}"}


# --- outcomes --------------------------------------------------------------------------------


def _succeeded(row: Dispatch, company: str, outcome: dict) -> str:
    now = timezone.now()
    notified = bool(outcome["notified"])
    with transaction.atomic():
        updated = Dispatch.objects.filter(pk=row.pk, storefront_status=S.SENDING).update(
            storefront_status=S.SENT, sent_at=now, tracking_company=company[:100],
            storefront_references=outcome["references"], customer_notified=notified,
            notified_at=now if notified and not row.notified_at else row.notified_at, next_retry_at=None, last_error="")
        if updated:
            tracking = " ".join(p for p in (company, row.tracking_number) if p)
            message = (f"{row.erp_dispatch_id}: {outcome['what']}"
                       + (f" · tracking {tracking}" if tracking else "")
                       + (f" {row.tracking_url}" if row.tracking_url else "")
                       + (" · customer notified" if notified else " · customer not notified"))
            timeline_add(row.order, OrderEvent.Kind.FULFILMENT_SENT, message)
    for record in ExceptionRecord.objects.filter(type_code=FULFILMENT_FAILED.code, subject_type="dispatch",
                                                 subject_id=str(row.pk), status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note="The storefront was updated.", action="auto_resolved")
    return S.SENT


def _failed_transient(row: Dispatch, exc: Exception, company: str) -> str:
    attempts = Dispatch.objects.filter(pk=row.pk).values_list("attempts", flat=True).first() or 1
    if attempts > conf()["max_auto_retries"]:
        return _failed(row, f"still failing after {attempts} attempts: {exc}", company)
    due = timezone.now() + retry_delay(attempts)
    Dispatch.objects.filter(pk=row.pk, storefront_status=S.SENDING).update(
        storefront_status=S.RETRYING, next_retry_at=due, last_error=str(exc)[:2000])
    log.warning("fulfilment: dispatch %s: %s; retry %s at %s", row.erp_dispatch_id, exc, attempts, due.isoformat())
    return S.RETRYING


def _failed(row: Dispatch, error: str, company: str) -> str:
    Dispatch.objects.filter(pk=row.pk, storefront_status=S.SENDING).update(
        storefront_status=S.FAILED, next_retry_at=None, last_error=error[:2000])
    link = row.order
    exception_raise(
        exc_type=FULFILMENT_FAILED, key=f"{row.erp}:{row.erp_dispatch_id}", fingerprint=link.connection.code,
        message=(f"The storefront was not told of dispatch {row.erp_dispatch_id} ({row.lines_display}): {error}. "
                 "The tracking details are kept; Retry sends them once the storefront answers."),
        context={"storefront": link.connection.name, "order_number": link.order_number or link.storefront_order_id,
                 "dispatch": row.erp_dispatch_id, "lines": row.lines_display, "carrier": row.carrier,
                 "tracking_company": company, "tracking_number": row.tracking_number, "tracking_url": row.tracking_url},
        order=link, subject=("dispatch", str(row.pk)), retry_args={"dispatch_id": row.pk}, last_error=error[:2000],
    )
    return S.FAILED


def _raise_unmapped_carrier(row: Dispatch, connection) -> None:
    exception_raise(
        exc_type=UNMAPPED_CARRIER, key=f"{connection.code}:{row.carrier.strip().lower()}"[:250],
        fingerprint=row.carrier.strip().lower()[:200],
        message=(f"Dispatch {row.erp_dispatch_id} went with carrier \"{row.carrier}\", which has no tracking company "
                 f"for {connection.name}: sent with the ERP's name and tracking URL. Map it under Mappings → Carriers."),
        context={"carrier": row.carrier, "storefront": connection.name, "connection": connection.code,
                 "tracking_url": row.tracking_url},
        subject=("connection", connection.code), retry_args={"connection": connection.code, "carrier": row.carrier},
    )
