"""Retry handlers the exception registry calls (dotted paths in exception_types.py)."""
from __future__ import annotations

from django.db import transaction

from integrations.models import Connection, Dispatch, InboundEvent
from mappings.models import CarrierMapping

from .send import dispatch_send
from .store import dispatch_link_order, order_for


def retry_dispatch_exception(record) -> bool:
    """A person's retry after the storefront recovered: the kept dispatch is sent (once)."""
    dispatch_id = record.retry_args.get("dispatch_id")
    if not dispatch_id or not Dispatch.objects.filter(pk=dispatch_id).exists():
        return False
    if Dispatch.objects.filter(pk=dispatch_id, storefront_status=Dispatch.Status.SENT).exists():
        return True
    return dispatch_send(dispatch_id=dispatch_id, allow_failed=True) == Dispatch.Status.SENT


def retry_dispatch_match(record) -> bool:
    """The order is known now (posted or linked since): tie the dispatch to it and send it."""
    row = Dispatch.objects.filter(pk=record.retry_args.get("dispatch_id")).first()
    if row is None:
        return False
    if row.order_id is None:
        link = order_for(row)
        if link is None:
            return False
        with transaction.atomic():
            dispatch_link_order(row, link)
    return True


def retry_carrier_exception(record) -> bool:
    """Resolved once the carrier is mapped (later dispatches use the mapping)."""
    connection = Connection.objects.filter(code=record.retry_args.get("connection", "")).first()
    carrier = (record.retry_args.get("carrier") or "").strip()
    return bool(connection and carrier and CarrierMapping.objects.filter(
        connection=connection, erp_carrier__iexact=carrier, active=True).exists())


def retry_dispatch_event(record) -> bool:
    from .events import dispatch_event_process

    event_id = record.retry_args.get("event_id")
    if not event_id:
        return False
    InboundEvent.objects.filter(pk=event_id).update(status=InboundEvent.Status.PENDING)
    return dispatch_event_process(event_id=event_id) == "stored"
