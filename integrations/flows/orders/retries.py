"""Retry handlers the exception registry calls (dotted paths in exception_types.py)."""
from __future__ import annotations

from integrations.models import InboundEvent, OrderEvent, OrderLink

from .common import timeline_add
from .after_posting import order_cancel_in_erp
from .posting import order_post_to_erp
from .events import inbound_event_process


def order_retry_post(*, order: OrderLink, actor=None) -> str:
    """A person (or a retry handler) re-runs posting: the claim allows FAILED orders."""
    timeline_add(order, OrderEvent.Kind.RETRIED, f"Retried by {actor.get_username() if actor else 'Ledgerline'}")
    return order_post_to_erp(order_id=order.pk)


def retry_order_exception(record) -> bool:
    if record.order_id is None:
        order_id = record.retry_args.get("order_id")
        if not order_id:
            return False
        order = OrderLink.objects.get(pk=order_id)
    else:
        order = record.order
    if order.state in OrderLink.IN_ERP:
        return True
    return order_retry_post(order=order, actor=getattr(record, "retried_by", None)) == "posted"


def retry_cancel_exception(record) -> bool:
    order_id = record.order_id or record.retry_args.get("order_id")
    if not order_id:
        return False
    return order_cancel_in_erp(order_id=order_id) in ("cancelled", OrderLink.State.CANCELLED)


def retry_event_exception(record) -> bool:
    event_id = record.retry_args.get("event_id")
    if not event_id:
        return False
    InboundEvent.objects.filter(pk=event_id).exclude(status=InboundEvent.Status.DONE).update(
        status=InboundEvent.Status.PENDING
    )
    inbound_event_process(event_id=event_id)
    return InboundEvent.objects.filter(pk=event_id, status=InboundEvent.Status.DONE).exists()
