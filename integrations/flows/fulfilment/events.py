"""The ERP's dispatch webhook, once the inbox stored it: the dispatch it carries is stored like a
polled one (the same ERP dispatch id is one row, whichever path brought it first)."""
from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors.erp import RestErpClient
from integrations.models import Dispatch, InboundEvent

from .exception_types import DISPATCH_WEBHOOK_UNREADABLE
from .store import dispatch_store, erp_key


def dispatch_event_process(*, event_id: int) -> str:
    # Safe twice: the event is claimed PENDING/FAILED -> PROCESSING; the dispatch is unique per ERP id.
    now = timezone.now()
    claimed = InboundEvent.objects.filter(
        pk=event_id, status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]).update(
        status=InboundEvent.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return "claimed"
    event = InboundEvent.objects.select_related("connection").get(pk=event_id)
    try:
        data = (event.payload or {}).get("data")
        if not isinstance(data, dict) or not data.get("id"):
            raise ValueError("the payload has no 'data' object with the dispatch's 'id'")
        dispatch = RestErpClient._dispatch(data)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        InboundEvent.objects.filter(pk=event_id).update(status=InboundEvent.Status.DONE, last_error=str(exc)[:2000],
                                                        processed_at=timezone.now())
        exception_raise(
            exc_type=DISPATCH_WEBHOOK_UNREADABLE, key=f"event:{event_id}", fingerprint=event.connection.code,
            message=f"The dispatch webhook {event.external_id} cannot be read: {exc}.",
            context={"erp": event.connection.name, "external_id": event.external_id},
            subject=("connection", event.connection.code), retry_args={"event_id": event_id}, last_error=str(exc)[:2000])
        return "malformed"
    row, _ = dispatch_store(erp=erp_key(event.connection), dispatch=dispatch, source=Dispatch.Source.WEBHOOK,
                            event=event)
    InboundEvent.objects.filter(pk=event_id).update(status=InboundEvent.Status.DONE, processed_at=timezone.now(),
                                                    last_error="")
    for record in ExceptionRecord.objects.filter(type_code=DISPATCH_WEBHOOK_UNREADABLE.code,
                                                 retry_args__event_id=event_id,
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note="The webhook was read.", action="auto_resolved")
    return "stored" if row is not None else "not_confirmed"
