"""After posting nothing is ignored: cancellations cancel the ERP order, edits and refunds become owned exceptions."""
from __future__ import annotations

import hashlib

from django.db import transaction

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import get_erp
from integrations.connectors.base import Conflict, PermanentError, TransientError
from integrations.domain import StorefrontOrder
from integrations.models import InboundEvent, OrderEvent, OrderLink
from integrations.writes import outbound_write

from .common import timeline_add
from .connection_settings import connection_settings
from .exception_types import CANCEL_NOT_POSSIBLE, EDITED_AFTER_POSTING, REFUND_PENDING


def sale_summary(order: StorefrontOrder) -> list:
    """What a sale consists of, comparable between two versions of the order."""
    rows = [[line.kind, line.sku or line.name, line.quantity, str(line.unit_price), str(line.discount),
             str(line.total) if line.total is not None else ""]
            for line in order.all_lines]
    rows.append(["total", "", 0, str(order.total), str(order.order_discount), ""])
    return rows


def _describe_changes(before: list, after: list) -> list[str]:
    def index(rows):
        return {(r[0], r[1]): r for r in rows}

    old, new = index(before), index(after)
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        label = "order total" if key[0] == "total" else f"{key[0]} {key[1]}"
        if a is None:
            changes.append(f"{label} added (qty {b[2]} at {b[3]})")
        elif b is None:
            changes.append(f"{label} removed (was qty {a[2]} at {a[3]})")
        elif key[0] == "total":
            changes.append(f"order total {a[3]} → {b[3]}")
        else:
            parts = []
            if a[2] != b[2]:
                parts.append(f"qty {a[2]} → {b[2]}")
            if a[3] != b[3]:
                parts.append(f"price {a[3]} → {b[3]}")
            if a[4] != b[4]:
                parts.append(f"discount {a[4]} → {b[4]}")
            if a[5] != b[5] and not parts:
                parts.append(f"line total {a[5]} → {b[5]}")
            changes.append(f"{label}: {', '.join(parts) or 'changed'}")
    return changes


REFUNDED_STATES = {"refunded", "partially_refunded", "creditowed"}


def raise_once(**kwargs) -> bool:
    """Raise an exception about a change only the first time that change is seen: a later
    update carrying the same change must not reopen what a person already resolved."""
    key = f"{kwargs['exc_type'].code}:{kwargs['key']}"[:300]
    if ExceptionRecord.objects.filter(key=key).exists():
        return False
    exception_raise(**kwargs)
    return True


def hold_refund(link: OrderLink, order: StorefrontOrder, event: InboundEvent | None = None) -> None:
    """A refund on a posted order becomes its credit memo through the refunds flow, for each refund
    the order payload carries (stored by refund id, so the refunds/create webhook of the same refund
    changes nothing). Where the ERP takes no credit memos, or the payload names no refund, it waits
    for one as a finance exception (once per refund state and amount: the same refund delivered
    again does not reopen it)."""
    from integrations.connectors.base import CREDIT_MEMOS, supports
    from integrations.flows.refunds import refunds_from_order

    if supports(get_erp(), CREDIT_MEMOS) and refunds_from_order(link, event):
        return
    state = (order.payment_state or "").lower()
    refunded = str(order.extra.get("total_refunded", "") or "")
    if not raise_once(
        exc_type=REFUND_PENDING, key=f"order:{link.pk}:refund:{state}:{refunded}", fingerprint="refund",
        message=(f"Order {link} ({link.erp_order_id}) was {state.replace('_', ' ')} in {link.connection.name}"
                 + (f" ({refunded} {link.currency})" if refunded else "")
                 + ". Its sale is posted in full; raise the credit memo in the ERP until the refunds flow "
                 "does it, then resolve this."),
        context={"order_number": str(link), "payment_state": order.payment_state, "refunded": refunded,
                 "erp_order_id": link.erp_order_id},
        order=link,
    ):
        return
    timeline_add(link, OrderEvent.Kind.REFUNDED, f"Payment {order.payment_state}: held for a credit memo", event)


def after_posting_changes(link: OrderLink, order: StorefrontOrder, event: InboundEvent) -> None:
    """A newer payload of a posted order: a refund or an edit is never dropped silently."""
    state = (order.payment_state or "").lower()
    if state in REFUNDED_STATES:
        hold_refund(link, order, event)
        return
    if not link.posted_summary:
        return
    changes = _describe_changes(link.posted_summary, sale_summary(order))
    if not changes:
        return
    digest = hashlib.sha1("|".join(changes).encode()).hexdigest()[:16]
    if not raise_once(
        exc_type=EDITED_AFTER_POSTING, key=f"order:{link.pk}:edit:{digest}",
        fingerprint="edit",
        message=(f"Order {link} changed in {link.connection.name} after it was posted as {link.erp_order_id}: "
                 + "; ".join(changes) + ". Amend the ERP order by hand, then resolve this."),
        context={"order_number": str(link), "changes": changes, "erp_order_id": link.erp_order_id},
        order=link,
    ):
        return
    timeline_add(link, OrderEvent.Kind.EDITED, "; ".join(changes), event)


def order_cancel_in_erp(*, order_id: int, erp=None) -> str:
    """A posted order cancelled in the storefront: cancel the ERP order where the ERP allows it
    (nothing dispatched); otherwise ops own it. Safe twice: the ERP's cancel is idempotent and the
    link's state only moves POSTED -> CANCELLED once."""
    link = OrderLink.objects.select_related("connection").get(pk=order_id)
    if link.state not in OrderLink.IN_ERP or link.state == OrderLink.State.REFUNDED or not link.erp_order_id:
        return link.state
    cfg = connection_settings(link.connection)
    problem = ""
    if not cfg.cancel_in_erp:
        problem = "cancelling in the ERP is switched off for this connection"
    else:
        erp = erp or get_erp()
        try:
            with outbound_write(action="cancel_sales_order", idempotency_key=link.external_reference, order=link,
                                system=getattr(erp, "system", "")) as write:
                erp.cancel_sales_order(link.erp_order_id, reason="Cancelled in the storefront")
                write.response_id = link.erp_order_id
        except (Conflict, PermanentError, TransientError) as exc:
            if isinstance(exc, TransientError):
                problem = f"the ERP did not answer ({exc}); retry once it does"
            elif getattr(exc, "code", "") == "already_dispatched":
                problem = f"the ERP says {link.erp_order_id} was already dispatched"
            else:
                problem = f"the ERP refused: {exc}"
    if problem:
        exception_raise(
            exc_type=CANCEL_NOT_POSSIBLE, key=f"order:{link.pk}:cancel", fingerprint="cancel",
            message=(f"Order {link} was cancelled in {link.connection.name} after it was posted as "
                     f"{link.erp_order_id}, but {problem}. Stop the shipment and cancel or credit the ERP "
                     "order by hand."),
            context={"order_number": str(link), "erp_order_id": link.erp_order_id, "reason": problem},
            order=link, retry_args={"order_id": link.pk},
        )
        timeline_add(link, OrderEvent.Kind.FAILED, f"Cancellation not applied in the ERP: {problem}")
        return "cancel_failed"
    with transaction.atomic():
        OrderLink.objects.filter(pk=link.pk, state=OrderLink.State.POSTED).update(state=OrderLink.State.CANCELLED)
        timeline_add(link, OrderEvent.Kind.CANCELLED_IN_ERP,
                  f"Cancelled in the storefront; ERP Sales Order {link.erp_order_id} cancelled")
    for record in ExceptionRecord.objects.filter(order=link, type_code=CANCEL_NOT_POSSIBLE.code,
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=f"{link.erp_order_id} cancelled in the ERP.", action="auto_resolved")
    return "cancelled"
