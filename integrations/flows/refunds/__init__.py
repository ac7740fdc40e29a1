"""Returns and refunds to the ERP: every storefront refund becomes exactly one credit memo.

Path of one refund: the stored inbound event (Shopify refunds/create; commercetools payment
transaction messages) is translated by its connector into a StorefrontRefund and stored as a
`Refund` (unique by connection and refund id) before anything else (events.py). Once its order is
in the ERP the refund is claimed and credited (posting.py): the credit memo is built by the orders'
pure document builder (document.build_credit_memo: the same SKU, tax and rounding rules) and must
total the money the storefront returned, else it is held as credit_memo_mismatch with both sides.
The memo carries the refund id as its external reference and goes through the outbound-write log.
A refund whose order is not posted yet waits and is released when the order posts.
"""
from .events import refund_event_process, refunds_from_order
from .exception_types import (
    CREDIT_MEMO_BLOCKED, CREDIT_MEMO_MISMATCH, CREDIT_MEMO_REJECTED, REFUND_MALFORMED, REFUND_ORDER_MISSING,
)
from .posting import (
    goodwill_item, refund_post_to_erp, refund_store, refunds_release_for_order, refunds_release_on_commit,
)


def refunds_release_task(order_id: int) -> int:
    # Safe twice: each waiting refund is claimed by a conditional update and credited once by its refund id.
    return refunds_release_for_order(order_id)


def retry_refund_exception(record) -> bool:
    """A person retries a held refund: it is credited now if it can be."""
    from integrations.models import Refund

    refund_id = record.retry_args.get("refund_id")
    if not refund_id or not Refund.objects.filter(pk=refund_id).exists():
        return False
    return refund_post_to_erp(refund_id=refund_id) == "posted"


def retry_refund_event_exception(record) -> bool:
    from integrations.models import InboundEvent

    event_id = record.retry_args.get("event_id")
    if not event_id:
        return False
    InboundEvent.objects.filter(pk=event_id).exclude(status=InboundEvent.Status.DONE).update(
        status=InboundEvent.Status.PENDING)
    refund_event_process(event_id=event_id)
    return InboundEvent.objects.filter(pk=event_id, status=InboundEvent.Status.DONE).exists()


__all__ = [
    "CREDIT_MEMO_BLOCKED", "CREDIT_MEMO_MISMATCH", "CREDIT_MEMO_REJECTED", "REFUND_MALFORMED", "REFUND_ORDER_MISSING",
    "goodwill_item", "refund_event_process", "refunds_from_order", "refund_post_to_erp", "refund_store", "refunds_release_for_order",
    "refunds_release_on_commit", "refunds_release_task", "retry_refund_event_exception", "retry_refund_exception",
]
