"""Applying stored refund events: Shopify refunds/create, commercetools ReturnInfoAdded and payment
transaction messages. Each event is claimed by a conditional update, its refunds are stored (unique
by refund id), and each stored refund is credited once."""
from __future__ import annotations

from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import get_storefront
from integrations.connectors.base import PermanentError, TransientError
from integrations.models import InboundEvent, OrderEvent, OrderLink, Refund

from ..orders.common import CLAIM_LEASE, PAYLOAD_ERRORS, timeline_add
from .exception_types import REFUND_MALFORMED
from .posting import refund_from_payload, refund_post_to_erp, refund_store

RETURN_TOPICS = {"message/ReturnInfoAdded"}
PAYMENT_TOPICS = {"message/payment/PaymentTransactionAdded", "message/payment/PaymentTransactionStateChanged"}


def _claim(event_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]) | Q(
        status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - CLAIM_LEASE)
    return bool(InboundEvent.objects.filter(claimable, pk=event_id).update(
        status=InboundEvent.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1))


def _done(event: InboundEvent) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.DONE, processed_at=timezone.now(),
                                                    last_error="")
    for record in ExceptionRecord.objects.filter(type_code=REFUND_MALFORMED.code, retry_args__event_id=event.pk,
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note="The refund was read successfully.", action="auto_resolved")


def _malformed(event: InboundEvent, error: str) -> str:
    InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, last_error=error[:2000],
                                                    processed_at=timezone.now())
    exception_raise(
        exc_type=REFUND_MALFORMED, key=f"event:{event.pk}", fingerprint=f"{event.connection.code}:{event.topic}",
        message=(f"The {event.connection.name} event {event.topic} ({event.external_id}) cannot be read as a "
                 f"refund: {error}. Nothing was sent to the ERP."),
        context={"storefront": event.connection.name, "event_id": event.pk, "topic": event.topic,
                 "resource_id": event.resource_id},
        subject=("event", str(event.pk)), retry_args={"event_id": event.pk}, last_error=error[:2000],
    )
    return "malformed"


def _credited_return_items(connection, order_id: str) -> set[str]:
    credited: set[str] = set()
    for payload in Refund.objects.filter(connection=connection, storefront_order_id=order_id).values_list(
            "payload", flat=True):
        credited.update(i.get("id") for i in (payload or {}).get("return_items") or [] if isinstance(i, dict))
    return credited


def _refunds_of(event: InboundEvent) -> list[tuple[object, dict]]:
    """(StorefrontRefund, the payload to store) for each refund the event carries or names."""
    connection = event.connection
    if connection.kind == "shopify":
        link = OrderLink.objects.filter(connection=connection, storefront_order_id=event.resource_id).first()
        refund = refund_from_payload(connection, event.payload, link.payload if link else None)
        return [(refund, event.payload)]
    from integrations.connectors.commercetools.refunds import payment_refunds, refund_from_stored, stored_refund

    payment_id = str((event.payload.get("resource") or {}).get("id") or "")
    if not payment_id:
        raise ValueError("the payment message names no payment")
    order, transactions = payment_refunds(get_storefront(connection), payment_id)
    found = []
    for transaction in transactions:
        if Refund.objects.filter(connection=connection, storefront_refund_id=transaction.get("id")).exists():
            found.append((None, {"transaction": transaction}))  # stored already: credited by its own row
            continue
        order_id = (order or {}).get("id", "")
        stored = stored_refund(order, payment_id, transaction,
                               credited_return_items=_credited_return_items(connection, order_id))
        found.append((refund_from_stored(stored), stored))
    return found


def refund_event_process(*, event_id: int) -> str:
    """Store the refunds an event carries, then credit each. Safe twice: the event is claimed by a
    conditional update and each refund is stored once by its refund id (and credited once by it)."""
    event = InboundEvent.objects.select_related("connection").filter(pk=event_id).first()
    if event is None:
        return "missing"
    if not _claim(event_id):
        return "taken"
    if event.topic in RETURN_TOPICS:
        return _return_noted(event)
    try:
        refunds = _refunds_of(event)
    except (TransientError, PermanentError) as exc:
        InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, last_error=str(exc)[:2000])
        raise  # the task is retried; the event stays stored
    except PAYLOAD_ERRORS as exc:
        return _malformed(event, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
    rows = [refund_store(connection=event.connection, refund=refund, payload=payload, event=event)
            for refund, payload in refunds if refund is not None]
    _done(event)
    results = [refund_post_to_erp(refund_id=row.pk) for row in rows]
    return ",".join(results) or "no_refund"


def _return_noted(event: InboundEvent) -> str:
    """A commercetools return: the goods are announced; the credit memo follows the refund transaction."""
    info = event.payload.get("returnInfo") if isinstance(event.payload.get("returnInfo"), dict) else {}
    link = OrderLink.objects.filter(connection=event.connection, storefront_order_id=event.resource_id).first()
    if link is not None:
        items = [f"{i.get('quantity')} × line {i.get('lineItemId')} ({i.get('shipmentState', '?')})"
                 for i in info.get("items") or [] if isinstance(i, dict)]
        timeline_add(link, OrderEvent.Kind.REFUND_RECEIVED,
                     f"Return announced in {event.connection.name}: {', '.join(items) or 'no items'}; "
                     "the credit memo follows the refund", event)
    _done(event)
    return "return_noted"


def refunds_from_order(link: OrderLink, event: InboundEvent | None = None) -> bool:
    """The refunds a posted order's newest payload names (Shopify `refunds[]`; commercetools: the
    Refund transactions of its payments), stored and credited like their own webhooks would be.
    False when it names none (or the storefront cannot be read now)."""
    connection = link.connection
    found: list[tuple[object, dict]] = []
    try:
        if connection.kind == "shopify":
            for raw in (link.payload or {}).get("refunds") or []:
                if isinstance(raw, dict) and raw.get("id") is not None:
                    found.append((refund_from_payload(connection, {"order_id": link.storefront_order_id, **raw},
                                                      link.payload), {"order_id": link.storefront_order_id, **raw}))
        else:
            from integrations.connectors.commercetools.refunds import (
                payment_refunds, refund_from_stored, stored_refund,
            )

            payments = ((link.payload or {}).get("paymentInfo") or {}).get("payments") or []
            client = get_storefront(connection) if payments else None
            for ref in payments:
                if not isinstance(ref, dict) or not ref.get("id"):
                    continue
                order, transactions = payment_refunds(client, ref["id"])
                for transaction in transactions:
                    if Refund.objects.filter(connection=connection, storefront_refund_id=transaction.get("id")).exists():
                        found.append((None, {}))
                        continue
                    stored = stored_refund(order, ref["id"], transaction, order_id=link.storefront_order_id,
                                           credited_return_items=_credited_return_items(connection,
                                                                                        link.storefront_order_id))
                    found.append((refund_from_stored(stored), stored))
    except (TransientError, PermanentError, *PAYLOAD_ERRORS):
        return False  # the finance hold stands in; the refund's own event credits it
    rows = [refund_store(connection=connection, refund=refund, payload=payload, event=event)
            for refund, payload in found if refund is not None]
    for row in rows:
        refund_post_to_erp(refund_id=row.pk)
    return bool(found)
