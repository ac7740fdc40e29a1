"""One credit memo per storefront refund: store the refund, wait for its order, build, check, post once."""
from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import get_erp
from integrations.connectors.base import CREDIT_MEMOS, PermanentError, TransientError, supports
from integrations.domain import StorefrontRefund, format_amount, from_minor_units, to_minor_units
from integrations.models import InboundEvent, OrderEvent, OrderLink, Refund
from integrations.writes import outbound_write, write_succeeded

from ..orders.common import timeline_add, translate_payload
from ..orders.connection_settings import connection_settings
from ..orders.document import build_credit_memo
from ..orders.exception_types import REFUND_PENDING
from ..orders.posting import ErpResolver
from ..orders.state import set_state
from .exception_types import (
    CREDIT_MEMO_BLOCKED, CREDIT_MEMO_MISMATCH, CREDIT_MEMO_REJECTED, REFUND_ORDER_MISSING,
)

log = logging.getLogger("ledgerline.refunds")

# A posting claim older than this belongs to a worker that died: the refund may be claimed again.
CLAIM_LEASE = timedelta(seconds=django_settings.Q_CLUSTER.get("timeout", 120))
DEFAULT_GOODWILL_ITEM = "GOODWILL"
REFUND_TYPES = [t.code for t in (CREDIT_MEMO_MISMATCH, REFUND_ORDER_MISSING, CREDIT_MEMO_BLOCKED, CREDIT_MEMO_REJECTED)]


def goodwill_item(connection) -> str:
    """The ERP item a refund on no line is credited on: the connection's `goodwill_item`, else the
    environment's ORDERS["goodwill_item"], else the demo ERP's GOODWILL."""
    return ((connection.settings or {}).get("goodwill_item")
            or django_settings.ORDERS.get("goodwill_item") or DEFAULT_GOODWILL_ITEM)


def refund_from_payload(connection, payload: dict, order_payload: dict | None) -> StorefrontRefund:
    """The stored vendor refund in our words (ValueError when malformed)."""
    if connection.kind == "shopify":
        from integrations.connectors.shopify.refunds import refund_from_payload as shopify_refund

        basis = (connection.settings or {}).get("post_currency") or django_settings.ORDERS.get("post_currency", "shop")
        return shopify_refund(payload, order_payload, currency_basis=basis)
    from integrations.connectors.commercetools.refunds import refund_from_stored

    return refund_from_stored(payload)


def _minor(amount: Decimal | None, currency: str) -> int | None:
    if amount is None or not currency:
        return None
    try:
        return to_minor_units(amount, currency)
    except ValueError:
        return None


def refund_store(*, connection, refund: StorefrontRefund, payload: dict, event: InboundEvent | None = None) -> Refund:
    """Store the refund before anything is done with it; the same refund again finds the stored one
    (unique by connection and storefront refund id) and changes nothing."""
    with transaction.atomic():
        row, created = Refund.objects.select_for_update().get_or_create(
            connection=connection, storefront_refund_id=refund.storefront_refund_id,
            defaults=dict(storefront_order_id=refund.storefront_order_id, currency=refund.currency[:3],
                          amount_minor=_minor(refund.total, refund.currency), restock=refund.restock,
                          payload=payload, event=event),
        )
        link = OrderLink.objects.filter(connection=connection, storefront_order_id=refund.storefront_order_id).first()
        if link is not None and row.order_id is None:
            row.order = link
            row.save(update_fields=["order", "updated_at"])
        if created and link is not None:
            timeline_add(link, OrderEvent.Kind.REFUND_RECEIVED,
                         f"Refund {refund.storefront_refund_id} from {connection.name}: {row.amount_display}"
                         + (" (goods returned)" if refund.restock else ""), event)
    return row


def _claim(refund_id: int) -> bool:
    now = timezone.now()
    claimable = Q(state__in=[Refund.State.RECEIVED, Refund.State.WAITING_ORDER, Refund.State.HELD]) | Q(
        state=Refund.State.POSTING, posting_started_at__lt=now - CLAIM_LEASE)
    return bool(Refund.objects.filter(claimable, pk=refund_id).update(state=Refund.State.POSTING, posting_started_at=now))


def _release(row: Refund, state: str, error: str = "") -> None:
    if state not in Refund.TRANSITIONS[Refund.State.POSTING]:
        raise ValueError(f"a refund being posted cannot become {state}")
    Refund.objects.filter(pk=row.pk, state=Refund.State.POSTING).update(state=state, last_error=error[:2000])


def _raise(row: Refund, link: OrderLink | None, exc_type, fingerprint: str, message: str, context: dict,
           error: str = "") -> None:
    exception_raise(
        exc_type=exc_type, key=f"refund:{row.pk}:{fingerprint}", fingerprint=fingerprint, message=message,
        context={"refund_id": row.storefront_refund_id, "storefront_order_id": row.storefront_order_id,
                 "storefront": row.connection.name, "amount": row.amount_display,
                 "order_number": str(link) if link else row.storefront_order_id, **context},
        order=link, subject=None if link else ("refund", str(row.pk)),
        retry_args={"refund_id": row.pk}, last_error=error[:2000],
    )


def _resolve_refund_exceptions(row: Refund, note: str, keep: set[str] = frozenset()) -> None:
    for record in ExceptionRecord.objects.filter(
        retry_args__refund_id=row.pk, type_code__in=REFUND_TYPES, status__in=ExceptionRecord.ACTIVE_STATUSES,
    ).exclude(key__in=keep):
        exception_resolve(record=record, note=note, action="auto_resolved")


def refund_post_to_erp(*, refund_id: int, erp=None) -> str:
    """Credit one stored refund in the ERP. Safe twice: claimed by a conditional update; the memo's
    external reference is the refund id, looked up before it is created and logged before the call."""
    row = Refund.objects.select_related("connection").get(pk=refund_id)
    if row.state == Refund.State.POSTED:
        return "posted"
    if not _claim(refund_id):
        return "taken"
    row.refresh_from_db()
    link = row.order or OrderLink.objects.filter(connection=row.connection,
                                                 storefront_order_id=row.storefront_order_id).first()
    if link is not None and row.order_id is None:
        Refund.objects.filter(pk=row.pk).update(order=link)
        row.order = link
    if link is None or link.state in (OrderLink.State.CANCELLED, OrderLink.State.TEST):
        why = ("Ledgerline never received that order" if link is None else
               f"the order was {link.get_state_display().lower()} and never posted")
        _raise(row, link, REFUND_ORDER_MISSING, "order-missing",
               f"{row.connection.name} refunded {row.amount_display} (refund {row.storefront_refund_id}) on order "
               f"{row.storefront_order_id}, but {why}: there is no Sales Order to credit. Get the order posted, "
               "then retry, or credit it in the ERP by hand.", {"reason": why})
        _release(row, Refund.State.HELD, why)
        return "order_missing"
    if link.state not in OrderLink.IN_ERP:
        _release(row, Refund.State.WAITING_ORDER)
        if not link.timeline.filter(kind=OrderEvent.Kind.REFUND_RECEIVED,
                                    message__contains=f"{row.storefront_refund_id} waits").exists():
            timeline_add(link, OrderEvent.Kind.REFUND_RECEIVED,
                         f"Refund {row.storefront_refund_id} waits for the order to post; its credit memo follows it")
        return "waiting_order"
    erp = erp or get_erp()
    if not supports(erp, CREDIT_MEMOS):
        exception_raise(
            exc_type=REFUND_PENDING, key=f"order:{link.pk}:refund:{row.storefront_refund_id}", fingerprint="refund",
            message=(f"Order {link} ({link.erp_order_id}) was refunded in {link.connection.name} "
                     f"({row.amount_display}, refund {row.storefront_refund_id}). This ERP takes no credit memos "
                     "from Ledgerline: raise it in the ERP, then resolve this."),
            context={"order_number": str(link), "refunded": row.amount_display, "erp_order_id": link.erp_order_id},
            order=link,
        )
        _release(row, Refund.State.HELD, "the ERP takes no credit memos")
        return "held"
    try:
        refund = refund_from_payload(row.connection, row.payload, link.payload)
        order = translate_payload(link.connection, link.payload)
        document = build_credit_memo(
            refund=refund, settings=connection_settings(link.connection), resolver=ErpResolver(link.connection, erp),
            goodwill_item=goodwill_item(link.connection), mismatch_type=CREDIT_MEMO_MISMATCH,
            external_reference=row.external_reference, sales_order_id=link.erp_order_id,
            customer_id=link.erp_customer_id, number=str(link), key_prefix=f"refund:{row.pk}",
            storefront_name=link.connection.name, country=order.country, price_rounding=order.price_rounding,
            tax_rounding=order.tax_rounding,
        )
    except ValueError as exc:
        _raise(row, link, CREDIT_MEMO_BLOCKED, "unreadable", f"Refund {row.storefront_refund_id} on order {link} "
               f"cannot be read: {exc}. Nothing was sent to the ERP.", {}, str(exc))
        _release(row, Refund.State.HELD, str(exc))
        return "held"
    except TransientError as exc:
        return _failed_transient(row, link, exc)
    if document.problems:
        return _held_for_problems(row, link, document)
    if not document.request.lines:
        return _posted(row, link, "", None, {}, write_id=None, note="Nothing to credit (no money was returned)")
    try:
        existing = erp.find_credit_memo(row.external_reference)
        if existing is not None:
            return _posted(row, link, existing.id, existing.gross_total, _as_dict(document.request),
                           write_id=None, note=f"The ERP already had credit memo {existing.id}")
        with outbound_write(action="create_credit_memo", idempotency_key=row.external_reference, order=link,
                            subject=("refund", str(row.pk)), system=getattr(erp, "system", ""), finish=False) as write:
            memo = erp.create_credit_memo(document.request)
    except TransientError as exc:
        return _failed_transient(row, link, exc)
    except PermanentError as exc:
        code = getattr(exc, "code", "") or "rejected"
        _raise(row, link, CREDIT_MEMO_REJECTED, f"erp:{code}",
               f"The ERP refused the credit memo for refund {row.storefront_refund_id} on order {link} "
               f"({link.erp_order_id}): {exc}. Correct it, then retry.", {"erp_code": code}, str(exc))
        _release(row, Refund.State.HELD, str(exc))
        return "held"
    return _posted(row, link, memo.id, memo.gross_total, _as_dict(document.request), write_id=write.pk)


def _failed_transient(row: Refund, link: OrderLink, exc: Exception) -> str:
    _raise(row, link, CREDIT_MEMO_REJECTED, "erp:unavailable",
           f"The ERP did not answer while crediting refund {row.storefront_refund_id} on order {link} ({exc}). "
           "Retry once it answers: the memo is created once, by its refund id.", {"erp_code": "unavailable"}, str(exc))
    _release(row, Refund.State.HELD, str(exc))
    return "held"


def _held_for_problems(row: Refund, link: OrderLink, document) -> str:
    keys = set()
    for problem in document.problems:
        if problem.exc_type is CREDIT_MEMO_MISMATCH:
            exc_type, context = CREDIT_MEMO_MISMATCH, problem.context
        else:
            exc_type, context = CREDIT_MEMO_BLOCKED, {"cause": problem.exc_type.code, **problem.context}
        _raise(row, link, exc_type, problem.fingerprint, problem.message, context, problem.message)
        keys.add(f"{exc_type.code}:refund:{row.pk}:{problem.fingerprint}"[:300])
    if any(p.exc_type is CREDIT_MEMO_MISMATCH for p in document.problems):
        timeline_add(link, OrderEvent.Kind.TOTAL_MISMATCH,
                     f"Refund {row.storefront_refund_id} not credited: the credit memo would not total the money "
                     "returned (see the credit_memo_mismatch exception)")
    _resolve_refund_exceptions(row, "No longer found when the refund was retried.", keep=keys)
    _release(row, Refund.State.HELD, "; ".join(p.message for p in document.problems))
    return "held"


def _posted(row: Refund, link: OrderLink, memo_id: str, erp_gross: str | None, erp_payload: dict, *,
            write_id: int | None, note: str = "") -> str:
    booked = None
    if erp_gross:
        try:
            booked = to_minor_units(Decimal(erp_gross), row.currency)
        except (ArithmeticError, ValueError):
            booked = None
    with transaction.atomic():
        if write_id:
            write_succeeded(write_id, memo_id)
        Refund.objects.filter(pk=row.pk).update(
            state=Refund.State.POSTED, credit_memo_id=memo_id, credit_memo_total_minor=booked,
            erp_payload=erp_payload, posted_at=timezone.now(), last_error="")
        row.refresh_from_db()
        if memo_id:
            timeline_add(link, OrderEvent.Kind.CREDIT_MEMO_POSTED,
                         f"Credit memo {memo_id} for refund {row.storefront_refund_id}: "
                         f"{row.credit_memo_total_display if booked is not None else row.amount_display}"
                         + (f" ({note})" if note else "") + (" — returned goods await inspection" if row.restock else ""))
        else:
            timeline_add(link, OrderEvent.Kind.CREDIT_MEMO_POSTED, f"Refund {row.storefront_refund_id}: {note}")
        credited = Refund.objects.filter(order=link, state=Refund.State.POSTED).aggregate(
            total=Sum("amount_minor"))["total"] or 0
        locked = OrderLink.objects.select_for_update().get(pk=link.pk)
        if locked.total_minor is not None and credited >= locked.total_minor:
            set_state(locked, OrderLink.State.REFUNDED, OrderEvent.Kind.REFUNDED,
                      f"Refunded in full: {format_amount(from_minor_units(credited, row.currency), row.currency)} "
                      f"{row.currency} credited")
            locked.save(update_fields=["state", "updated_at"])
    _resolve_refund_exceptions(row, f"Credit memo {memo_id or '(none needed)'} posted.")
    # A finance hold raised from the order's payment state before the refund itself arrived is settled too.
    for record in ExceptionRecord.objects.filter(order=link, type_code=REFUND_PENDING.code,
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=f"Credited by {memo_id or 'the refunds flow'}.", action="auto_resolved")
    return "posted"


def _as_dict(request) -> dict:
    data = dict(request.__dict__)
    data["lines"] = [dict(line.__dict__) for line in request.lines]
    return data


def refunds_release_for_order(order_id: int) -> int:
    """The order is in the ERP now: every refund that waited for it is credited, oldest first.
    Safe twice: each refund is claimed by a conditional update and posted once by its refund id."""
    link = OrderLink.objects.filter(pk=order_id).first()
    if link is None or link.state not in OrderLink.IN_ERP:
        return 0
    waiting = Refund.objects.filter(
        Q(order=link) | Q(order__isnull=True, storefront_order_id=link.storefront_order_id),
        connection_id=link.connection_id, state__in=[Refund.State.WAITING_ORDER, Refund.State.RECEIVED],
    ).order_by("created_at", "pk").values_list("pk", flat=True)
    held_for_order = ExceptionRecord.objects.filter(
        type_code=REFUND_ORDER_MISSING.code, status__in=ExceptionRecord.ACTIVE_STATUSES,
        context__storefront_order_id=link.storefront_order_id,
    ).values_list("retry_args__refund_id", flat=True)
    posted = 0
    for refund_id in [*waiting, *[pk for pk in held_for_order if pk]]:
        try:
            posted += refund_post_to_erp(refund_id=refund_id) == "posted"
        except Exception:  # one refund never stops the next; it stays stored and retryable
            log.exception("crediting refund %s after its order posted failed", refund_id)
    return posted


def refunds_release_on_commit(order_id: int) -> None:
    """Queue the release of waiting refunds once the order's posting commits (a task, by id)."""
    from django_q.tasks import async_task

    if not Refund.objects.filter(
        Q(order_id=order_id) | Q(storefront_order_id=OrderLink.objects.filter(pk=order_id).values("storefront_order_id")[:1]),
        state__in=[Refund.State.WAITING_ORDER, Refund.State.RECEIVED, Refund.State.HELD],
    ).exists():
        return
    transaction.on_commit(lambda: async_task("integrations.flows.refunds.refunds_release_task", order_id,
                                             task_name=f"refunds-release-{order_id}"))
