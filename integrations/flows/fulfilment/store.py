"""Storing a confirmed ERP dispatch once, before anything acts on it: its row, its order's timeline
entry and state (partly dispatched / dispatched), and the storefront update queued after the commit."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from exceptions_queue.services import exception_raise
from integrations.connectors.base import ErpDispatch
from integrations.models import Dispatch, InboundEvent, OrderEvent, OrderLink

from ..orders.common import timeline_add
from ..orders.state import set_state
from .exception_types import DISPATCH_WITHOUT_ORDER

log = logging.getLogger("ledgerline.fulfilment")

SEND_TASK = "integrations.flows.fulfilment.tasks.send_dispatch"
CONFIRMED = "confirmed"


def erp_key(connection=None) -> str:
    """How dispatches name the ERP they came from: its connection's code, else the environment's kind."""
    if connection is not None:
        return connection.code
    return f"env:{settings.ERP.get('kind', 'rest')}"


def order_for(dispatch: ErpDispatch | Dispatch) -> OrderLink | None:
    """The order link a dispatch is for: by the Sales Order's external reference (ours:
    "<connection>:<storefront order id>"), else by the ERP's Sales Order id."""
    reference = dispatch.external_reference or ""
    code, _, storefront_id = reference.partition(":")
    link = None
    if code and storefront_id:
        link = OrderLink.objects.select_related("connection").filter(
            connection__code=code, storefront_order_id=storefront_id).first()
    if link is None and dispatch.sales_order_id:
        link = OrderLink.objects.select_related("connection").filter(erp_order_id=dispatch.sales_order_id).first()
    return link


def _lines(dispatch: ErpDispatch) -> list[dict]:
    return [{"item_code": line.item_code, "quantity": int(line.quantity), "line_reference": line.line_reference}
            for line in dispatch.lines if int(line.quantity) > 0]


def dispatch_store(*, erp: str, dispatch: ErpDispatch, source: str = Dispatch.Source.POLL,
                   event: InboundEvent | None = None) -> tuple[Dispatch | None, bool]:
    """(row, created). Only a confirmed dispatch is stored; the same ERP dispatch id again (re-polled,
    a webhook redelivered, both paths) finds the stored row and changes nothing. Once stored, the
    storefront update is queued after the commit (its own claim makes a second queueing harmless)."""
    if (dispatch.status or "").lower() != CONFIRMED:
        return None, False
    existing = Dispatch.objects.filter(erp=erp, erp_dispatch_id=dispatch.id).first()
    if existing is not None:
        return existing, False
    with transaction.atomic():
        row, created = Dispatch.objects.get_or_create(
            erp=erp, erp_dispatch_id=dispatch.id,
            defaults={
                "sales_order_id": dispatch.sales_order_id[:100], "external_reference": dispatch.external_reference[:200],
                "lines": _lines(dispatch), "carrier": dispatch.carrier[:100],
                "tracking_number": dispatch.tracking_number[:200], "tracking_url": dispatch.tracking_url[:1000],
                "depot": dispatch.depot[:50], "dispatched_at": dispatch.dispatched_at[:40], "source": source,
                "inbound_event": event,
            })
        if not created:
            return row, False
        link = order_for(dispatch)
        if link is None:
            Dispatch.objects.filter(pk=row.pk).update(storefront_status=Dispatch.Status.NO_ORDER)
            row.storefront_status = Dispatch.Status.NO_ORDER
            _raise_without_order(row)
            return row, True
        dispatch_link_order(row, link)
    return row, True


def dispatch_link_order(row: Dispatch, link: OrderLink) -> None:
    """Tie a stored dispatch to its order: the timeline entry, the order's state, the queued update.
    Call inside a transaction."""
    link = OrderLink.objects.select_for_update().select_related("connection").get(pk=link.pk)
    row.order = link
    before = link.state
    complete = _fully_dispatched(link, extra=row)
    wanted = OrderLink.State.DISPATCHED if complete else OrderLink.State.PARTLY_DISPATCHED
    message = dispatch_summary(row)
    set_state(link, wanted, OrderEvent.Kind.DISPATCHED, message)
    if link.state != before:
        link.save(update_fields=["state", "updated_at"])
        entry = link.timeline.filter(kind=OrderEvent.Kind.DISPATCHED).order_by("-id").first()
    else:
        timeline_add(link, OrderEvent.Kind.DISPATCHED, message)
        entry = link.timeline.filter(kind=OrderEvent.Kind.DISPATCHED).order_by("-id").first()
    Dispatch.objects.filter(pk=row.pk).update(order=link, timeline_event=entry,
                                              storefront_status=Dispatch.Status.PENDING)
    row.timeline_event, row.storefront_status = entry, Dispatch.Status.PENDING
    transaction.on_commit(lambda: dispatch_send_queue(row.pk))


def dispatch_send_queue(dispatch_id: int) -> None:
    from django_q.tasks import async_task

    async_task(SEND_TASK, dispatch_id, task_name=f"dispatch-{dispatch_id}")


def dispatch_summary(row: Dispatch) -> str:
    parts = [f"{row.erp_dispatch_id}: {row.lines_display or 'no lines'}"]
    if row.carrier or row.tracking_number:
        parts.append(" ".join(p for p in (row.carrier, row.tracking_number) if p))
    if row.tracking_url:
        parts.append(row.tracking_url)
    return " · ".join(parts)


def _fully_dispatched(link: OrderLink, *, extra: Dispatch) -> bool:
    """Has every item line of the Sales Order we posted left, counting this dispatch? Lines are
    matched by the storefront line they came from, else by item code."""
    ordered: dict[str, int] = {}
    for line in (link.erp_payload or {}).get("lines") or []:
        if line.get("kind", "item") != "item":
            continue
        key = line.get("line_reference") or line.get("item_code") or ""
        ordered[key] = ordered.get(key, 0) + int(line.get("quantity") or 0)
    if not ordered:
        return False
    sent: dict[str, int] = {}
    rows = list(Dispatch.objects.filter(order=link).exclude(pk=extra.pk)) + [extra]
    for row in rows:
        for line in row.lines:
            key = line.get("line_reference") if line.get("line_reference") in ordered else line.get("item_code")
            sent[key] = sent.get(key, 0) + int(line.get("quantity") or 0)
    return all(sent.get(key, 0) >= units for key, units in ordered.items())


def _raise_without_order(row: Dispatch) -> None:
    exception_raise(
        exc_type=DISPATCH_WITHOUT_ORDER, key=f"{row.erp}:{row.erp_dispatch_id}", fingerprint=row.erp,
        message=(f"The ERP dispatch {row.erp_dispatch_id} (Sales Order {row.sales_order_id or '?'}, reference "
                 f"{row.external_reference or '?'}) matches no order Ledgerline posted; no storefront was told."),
        context={"dispatch": row.erp_dispatch_id, "sales_order": row.sales_order_id or "?",
                 "external_reference": row.external_reference or "?", "lines": row.lines_display,
                 "carrier": row.carrier, "tracking_number": row.tracking_number, "tracking_url": row.tracking_url},
        subject=("dispatch", str(row.pk)), retry_args={"dispatch_id": row.pk},
    )
