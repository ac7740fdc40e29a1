"""Order to cash: a paid/authorised storefront order becomes exactly one ERP Sales Order.

Path of one order: an inbound event (webhook or poll) is processed into an `OrderLink`; once the
payment is captured or authorised the link is claimed and posted: the Sales Order document is
built from the storefront's own figures (integrations.flows.sales_order_document) and checked to
total what the customer paid, the customer is matched or created, and the Sales Order is created
with the storefront order id as its external reference. After posting, a cancellation cancels the
ERP order, and an edit or a refund becomes an owned exception: nothing that arrives later is dropped.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve, exceptions_resolve_for_order
from integrations.connectors import get_erp, get_storefront, order_from_payload
from integrations.connectors.base import Conflict, ErpSalesOrderRequest, PermanentError, TransientError
from integrations.domain import StorefrontOrder, format_amount, from_minor_units, to_minor_units
from integrations.models import CustomerLink, InboundEvent, OrderEvent, OrderLink
from integrations.writes import outbound_write, write_succeeded
from integrations.ttl_cache import TtlCache
from mappings.lookup import resolve_depot, resolve_sku, resolve_tax_code

from .order_exception_types import (  # noqa: F401 - registered here, raised below
    CANCEL_NOT_POSSIBLE, CUSTOMER_CONFLICT, DUPLICATE_SKU, EDITED_AFTER_POSTING, ERP_REJECTED, ERP_TOTAL_MISMATCH,
    ERP_UNAVAILABLE, EVENT_STUCK, INVALID_DEPOT, MALFORMED_PAYLOAD, MISSING_TAX_MAPPING, POSTING_ERROR,
    REFUND_PENDING, TOTAL_MISMATCH, UNKNOWN_SKU,
)
from .order_settings import GUEST_ACCOUNT, STOREFRONT_CUSTOMER, OrderSettings, connection_settings
from .sales_order_document import Problem, build_sales_order

log = logging.getLogger("ledgerline.orders")

# A claim older than this is taken to belong to a worker that died: django-q2 hands the task out
# again only after Q_CLUSTER["retry"] seconds, which is longer than its timeout.
CLAIM_LEASE = timedelta(seconds=settings.Q_CLUSTER.get("timeout", 120))

# Bad shapes a payload can have beyond what the translation names itself: each becomes a
# malformed_payload exception, never a task that dies.
PAYLOAD_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, InvalidOperation)
# The largest amount in minor units the database stores (a signed 64-bit integer).
MAX_MINOR = 2**63 - 1

# --- the order's state machine: the only transitions anything may make ----------------------------

S = OrderLink.State
TRANSITIONS: dict[str, set[str]] = {
    S.RECEIVED: {S.WAITING_PAYMENT, S.POSTING, S.CANCELLED, S.TEST, S.FAILED},
    S.WAITING_PAYMENT: {S.POSTING, S.CANCELLED, S.TEST, S.FAILED},
    S.POSTING: {S.POSTED, S.FAILED, S.WAITING_PAYMENT},
    S.FAILED: {S.POSTING, S.CANCELLED, S.TEST},
    S.POSTED: {S.CANCELLED},
    S.TEST: {S.CANCELLED},
    S.CANCELLED: set(),
}


def can_transition(current: str, new: str) -> bool:
    return current == new or new in TRANSITIONS.get(current, set())


# --- small caches of ERP facts that rarely change (positive answers only) ------------------------

_known_items = TtlCache(ttl=300)
_depots = TtlCache(ttl=60)


def erp_caches_clear() -> None:
    _known_items.clear()
    _depots.clear()


def _timeline(order: OrderLink, kind: str, message: str = "", event: InboundEvent | None = None) -> None:
    OrderEvent.objects.create(order=order, kind=kind, message=message, event=event)


def _is_payment_done(link: OrderLink) -> bool:
    return connection_settings(link.connection).releases(link.payment_state)


def _translate_payload(connection, payload) -> StorefrontOrder:
    """The storefront payload in our words; any bad shape is a ValueError naming what is wrong."""
    try:
        return order_from_payload(connection, payload)
    except ValueError:
        raise
    except PAYLOAD_ERRORS as exc:
        raise ValueError(f"the order payload has an unexpected shape ({type(exc).__name__}: {exc})") from exc


# --- processing an inbound event ----------------------------------------------------------------

def _claim_event(event_id: int) -> bool:
    now = timezone.now()
    claimable = Q(status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]) | Q(
        status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - CLAIM_LEASE
    )
    return bool(
        InboundEvent.objects.filter(claimable, pk=event_id).update(
            status=InboundEvent.Status.PROCESSING, claimed_at=now, attempts=F("attempts") + 1
        )
    )


# Events that name an order without carrying it: the order is read from the storefront.
FETCH_ORDER_TOPICS = {"orders/edited", "refunds/create"}


def _fetches_order(event: InboundEvent) -> bool:
    if event.topic in FETCH_ORDER_TOPICS:
        return True
    return event.topic.startswith("message/") and not isinstance(event.payload.get("order"), dict)


def _event_payload_order(event: InboundEvent) -> dict:
    """The full order for an event: webhooks and polls carry it; an order edit, a refund and some
    commercetools messages only name it."""
    payload = event.payload
    if event.topic in FETCH_ORDER_TOPICS:
        return get_storefront(event.connection).get_order_payload(event.resource_id)
    if event.topic.startswith("message/"):
        if isinstance(payload.get("order"), dict):
            return payload["order"]
        return get_storefront(event.connection).get_order(event.resource_id)
    return payload


def inbound_event_process(*, event_id: int) -> str:
    """Apply one stored event to its order link, then post (or cancel) the order if it is ready."""
    event = InboundEvent.objects.select_related("connection").filter(pk=event_id).first()
    if event is None:
        return "missing"
    # An event that carries its order is claimed inside the transaction that applies it (one write);
    # one that needs the order fetched from the storefront is claimed first, outside any transaction.
    fetch = _fetches_order(event)
    if fetch and not _claim_event(event_id):
        return _post_after_replay(event_id)
    try:
        raw_order = _event_payload_order(event)
        order = _translate_payload(event.connection, raw_order)
        applied = _apply_order(event, order, raw_order, claim=not fetch)
    except (TransientError, PermanentError) as exc:
        InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, last_error=str(exc)[:2000])
        raise  # the task is retried by django-q2 and the sweep; the event stays stored
    except (*PAYLOAD_ERRORS, DatabaseError) as exc:
        # A shape the translation let through that the database refuses (a number too large…) is
        # malformed too: the apply's transaction rolled back, the event is kept and owned.
        if isinstance(exc, IntegrityError) or (isinstance(exc, DatabaseError) and not _is_data_error(exc)):
            raise
        if not fetch and not _claim_event(event_id):
            return _post_after_replay(event_id)
        _event_failed_malformed(event, str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}")
        return "malformed"
    if applied is None:
        return _post_after_replay(event_id)
    link, action = applied
    # A malformed-payload exception about this event is cleared now that it was read.
    for record in ExceptionRecord.objects.filter(
        type_code__in=[MALFORMED_PAYLOAD.code, EVENT_STUCK.code], retry_args__event_id=event.pk,
        status__in=ExceptionRecord.ACTIVE_STATUSES,
    ):
        exception_resolve(record=record, note="The event was read successfully.", action="auto_resolved")
    if action == "post":
        return order_post_to_erp(order_id=link.pk)
    if action == "cancel":
        return order_cancel_in_erp(order_id=link.pk)
    return link.state


def _is_data_error(exc: Exception) -> bool:
    from django.db import DataError

    return isinstance(exc, DataError)


def _post_after_replay(event_id: int) -> str:
    """A replayed task whose event was already applied: the worker may have died while posting."""
    event = InboundEvent.objects.filter(pk=event_id, status=InboundEvent.Status.DONE).first()
    if event is None:
        return "taken"  # another worker is applying it right now
    link = OrderLink.objects.filter(connection_id=event.connection_id, storefront_order_id=event.resource_id).first()
    if link is None or link.state not in (OrderLink.State.POSTING, OrderLink.State.RECEIVED):
        return "done"
    return order_post_to_erp(order_id=link.pk)


def orders_stuck_repost() -> int:
    """Orders whose posting worker died (claim lease expired) are posted again."""
    stale = OrderLink.objects.filter(
        state=OrderLink.State.POSTING, posting_started_at__lt=timezone.now() - CLAIM_LEASE
    ).values_list("pk", flat=True)
    posted = 0
    for pk in list(stale[:500]):
        try:
            posted += order_post_to_erp(order_id=pk) == "posted"
        except Exception:  # one order never stops the others
            log.exception("re-posting stuck order %s failed", pk)
    return posted


def _event_failed_malformed(event: InboundEvent, error: str) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.FAILED, last_error=error[:2000], processed_at=timezone.now()
    )
    exception_raise(
        exc_type=MALFORMED_PAYLOAD,
        key=f"event:{event.pk}",
        fingerprint=f"{event.connection.code}:{event.topic}",
        message=(
            f"The {event.connection.name} event {event.topic} ({event.external_id}) for order "
            f"{event.resource_id or '?'} cannot be read: {error}. Nothing was sent to the ERP."
        ),
        context={"storefront": event.connection.name, "event_id": event.pk, "topic": event.topic,
                 "resource_id": event.resource_id, "payload": event.payload},
        retry_args={"event_id": event.pk},
        last_error=error[:2000],
    )


def _total_minor(order: StorefrontOrder) -> int | None:
    if order.total is None:
        return None
    try:
        minor = to_minor_units(order.total, order.currency)
    except ValueError:
        return None
    if abs(minor) > MAX_MINOR:
        raise ValueError(f"order total {order.total} {order.currency} is too large to be a real order")
    return minor


def _apply_order(event: InboundEvent, order: StorefrontOrder, raw_order: dict, *, claim: bool
                 ) -> tuple[OrderLink, str] | None:
    """Upsert the link from this event. Returns (link, next action: "post", "cancel" or ""), or
    None when another worker has the event. An older payload never wins, and no event moves the
    order backwards (TRANSITIONS)."""
    cfg = connection_settings(event.connection)
    total_minor = _total_minor(order)
    with transaction.atomic():
        if claim and not _claim_event(event.pk):
            return None
        link, created = OrderLink.objects.select_for_update().get_or_create(
            connection=event.connection, storefront_order_id=order.storefront_order_id
        )
        if created:
            _timeline(link, OrderEvent.Kind.RECEIVED, f"{event.topic} from {event.connection.name}", event)
        stale = (
            not created
            and link.source_updated_at is not None
            and order.updated_at is not None
            and order.updated_at < link.source_updated_at
        )
        action = ""
        if stale:
            _timeline(
                link, OrderEvent.Kind.STALE_IGNORED,
                f"{event.topic} carried the order as of {order.updated_at:%Y-%m-%d %H:%M:%S}; "
                f"newer state from {link.source_updated_at:%Y-%m-%d %H:%M:%S} is kept",
                event,
            )
        else:
            if not created:
                _timeline(link, OrderEvent.Kind.UPDATED, f"{event.topic}: payment {order.payment_state or 'unknown'}", event)
            link.payload = raw_order
            link.order_number = order.order_number[:100]
            link.customer_email = order.customer_email[:254]
            link.currency = order.currency[:3]
            link.payment_state = order.payment_state[:40]
            link.source_updated_at = order.updated_at
            link.total_minor = total_minor
            action = _next_state(link, order, cfg, event)
        link.save()
        InboundEvent.objects.filter(pk=event.pk).update(
            status=InboundEvent.Status.DONE, processed_at=timezone.now(), last_error=""
        )
    if not stale and link.state == OrderLink.State.POSTED and action == "":
        _after_posting_changes(link, order, event)
    return link, action


def _next_state(link: OrderLink, order: StorefrontOrder, cfg: OrderSettings, event: InboundEvent) -> str:
    """Move the (locked) link on from this newer payload; returns the work to do after commit."""
    cancelled = order.cancelled or cfg.cancels(order.payment_state)
    state = link.state
    if state == OrderLink.State.CANCELLED:
        return ""  # final: a late event never reopens a cancelled order
    if state in (OrderLink.State.POSTED, OrderLink.State.POSTING):
        if cancelled and state == OrderLink.State.POSTED:
            return "cancel"
        return ""  # later updates never re-post; edits and refunds are looked at after commit
    if cancelled:
        _set_state(link, OrderLink.State.CANCELLED, OrderEvent.Kind.CANCELLED,
                   "Cancelled in the storefront before it was posted"
                   + (f" (payment {order.payment_state})" if cfg.cancels(order.payment_state) else ""), event)
        return ""
    if order.is_test and not cfg.post_test_orders:
        _set_state(link, OrderLink.State.TEST, OrderEvent.Kind.TEST_ORDER,
                   "Test order: not posted (this connection does not post test orders)", event)
        return ""
    if state == OrderLink.State.TEST:
        return ""
    if cfg.releases(order.payment_state):
        return "post"  # also for a FAILED order: a newer payload may fix it; posting re-checks all
    if state in (OrderLink.State.RECEIVED,):
        _set_state(link, OrderLink.State.WAITING_PAYMENT, OrderEvent.Kind.WAITING_PAYMENT,
                   f"Payment is {link.payment_state or 'unknown'}; the order posts once it is captured or authorised",
                   event)
    return ""


def _set_state(link: OrderLink, new: str, kind: str, message: str, event: InboundEvent | None = None) -> None:
    if link.state == new or not can_transition(link.state, new):
        return
    link.state = new
    _timeline(link, kind, message, event)


# --- posting an order to the ERP ----------------------------------------------------------------

class OrderNotReady(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def _claim_order(order_id: int) -> bool:
    now = timezone.now()
    claimable = Q(state__in=[OrderLink.State.RECEIVED, OrderLink.State.WAITING_PAYMENT, OrderLink.State.FAILED]) | Q(
        state=OrderLink.State.POSTING, posting_started_at__lt=now - CLAIM_LEASE
    )
    return bool(
        OrderLink.objects.filter(claimable, pk=order_id).update(state=OrderLink.State.POSTING, posting_started_at=now)
    )


class ErpResolver:
    """The mapping tables and the ERP's items and depots, as the document builder asks for them."""

    def __init__(self, connection, erp):
        self.connection, self.erp = connection, erp

    def sku(self, storefront_sku):
        return resolve_sku(self.connection, storefront_sku)

    def item_exists(self, code: str) -> bool:
        if _known_items.get(code):
            return True
        exists = self.erp.item_exists(code)
        if exists:
            _known_items.put(code, True)
        return exists

    def tax_code(self, *, rate, country, category):
        return resolve_tax_code(self.connection, rate=rate, country=country, category=category)

    def depot(self, *, country, location):
        return resolve_depot(self.connection, country=country, location=location) or settings.ORDERS["default_depot"]

    def erp_depots(self) -> set[str]:
        depots = _depots.get("all")
        if depots is None:
            depots = set(self.erp.list_depots())
            _depots.put("all", depots)
        return depots


def sales_order_for(link: OrderLink, order: StorefrontOrder, erp):
    """The checked ERP document for this order (see sales_order_document.build_sales_order)."""
    return build_sales_order(
        order=order, settings=connection_settings(link.connection), resolver=ErpResolver(link.connection, erp),
        external_reference=link.external_reference, number=str(link), key_prefix=f"order:{link.pk}",
        storefront_name=link.connection.name,
    )


def order_post_to_erp(*, order_id: int, erp=None) -> str:
    """Post one order. Safe to run twice: claimed by a conditional update; the ERP is asked first."""
    link = OrderLink.objects.select_related("connection").get(pk=order_id)
    if link.state == OrderLink.State.POSTED:
        return "posted"
    if link.state in (OrderLink.State.CANCELLED, OrderLink.State.TEST):
        return link.state
    if not link.connection.active:
        return "inactive"  # an inactive connection posts nothing; reactivating it lets the sweep post
    if not _is_payment_done(link):
        if link.state == OrderLink.State.RECEIVED:
            with transaction.atomic():
                if OrderLink.objects.filter(pk=link.pk, state=OrderLink.State.RECEIVED).update(
                        state=OrderLink.State.WAITING_PAYMENT):
                    _timeline(link, OrderEvent.Kind.WAITING_PAYMENT, f"Payment is {link.payment_state or 'unknown'}")
        return "waiting_payment"
    with transaction.atomic():
        if not _claim_order(order_id):
            return "taken"
        _timeline(link, OrderEvent.Kind.POSTING, "Posting to the ERP")
    link.refresh_from_db()
    posted_payload = link.payload
    erp = erp or get_erp()
    try:
        order = _translate_payload(link.connection, link.payload)
        existing = erp.find_sales_order(link.external_reference)
        if existing is not None:
            _record_posted(link, existing.id, link.erp_customer_id, link.erp_payload, Decimal(0),
                           OrderEvent.Kind.LINKED_EXISTING,
                           f"The ERP already had Sales Order {existing.id} for {link.external_reference}",
                           summary=sale_summary(order))
            return _catch_up_after_posting(link.pk, posted_payload) or "posted"
        document = sales_order_for(link, order, erp)
        if document.problems:
            raise OrderNotReady(document.problems)
        customer_id = _ensure_customer(link, order, erp)
        request = ErpSalesOrderRequest(**{**document.request.__dict__, "customer_id": customer_id,
                                          "order_date": document.request.order_date or timezone.now().date().isoformat()})
        created, write_id = _create_sales_order(link, request, erp)
    except OrderNotReady as exc:
        _order_failed(link, exc.problems, str(exc))
        return "failed"
    except PAYLOAD_ERRORS as exc:
        _order_failed(link, [Problem(MALFORMED_PAYLOAD, f"order:{link.pk}", f"{link.connection.code}:order",
                                     f"Order {link} cannot be read: {exc}", {"storefront": link.connection.name})],
                      str(exc))
        return "failed"
    except TransientError as exc:
        _order_failed(link, [Problem(
            ERP_UNAVAILABLE, f"order:{link.pk}", "erp",
            f"The ERP did not accept order {link} after {getattr(erp, 'max_attempts', 'several')} attempts "
            f"({exc}). Ledgerline re-posts it automatically once the ERP answers again "
            "(or retry it yourself).",
            {"order_number": str(link)},
        )], str(exc), transient=True)
        return "failed"
    except PermanentError as exc:
        _order_failed(link, [Problem(
            ERP_REJECTED, f"order:{link.pk}", f"erp:{getattr(exc, 'code', '') or 'rejected'}",
            f"The ERP rejected order {link}: {exc}. Correct the data, then retry.",
            {"order_number": str(link), "status": getattr(exc, "status", None)},
        )], str(exc))
        return "failed"
    except Exception as exc:  # never a task that dies quietly: owned, and re-posted with backoff
        log.exception("posting order %s failed unexpectedly", link.pk)
        error = f"{type(exc).__name__}: {exc}"
        _order_failed(link, [Problem(
            POSTING_ERROR, f"order:{link.pk}", "internal",
            f"Order {link} could not be posted: {error}. Ledgerline re-posts it automatically with backoff.",
            {"order_number": str(link)},
        )], error, transient=True)
        return "failed"
    rounding = document.rounding
    _record_posted(link, created.id, customer_id, _request_as_dict(request), rounding, OrderEvent.Kind.POSTED,
                   f"Sales Order {created.id} created for {link.external_reference}, total "
                   f"{request.gross_total} {link.currency}"
                   + (f"; rounding difference {rounding} {link.currency}" if rounding else ""),
                   write_id=write_id, summary=sale_summary(order), posted_total=request.gross_total,
                   erp_total=created.gross_total)
    _compare_erp_total(link, request, created, document.breakdown)
    if (order.payment_state or "").lower() in REFUNDED_STATES:
        _hold_refund(link, order)  # first seen already refunded: the sale posted, the refund waits
    _push_stock_for(link, request)
    return _catch_up_after_posting(link.pk, posted_payload) or "posted"


def _catch_up_after_posting(order_id: int, posted_payload: dict) -> str:
    """Events applied while the order was being posted (a cancellation, an edit, a refund) were
    stored but not acted on: act on the newest payload now, so none is dropped."""
    latest = OrderLink.objects.select_related("connection").get(pk=order_id)
    if latest.payload == posted_payload or latest.state != OrderLink.State.POSTED:
        return ""
    try:
        newer = _translate_payload(latest.connection, latest.payload)
    except ValueError:
        return ""  # the event that stored it already raised malformed_payload
    cfg = connection_settings(latest.connection)
    if newer.cancelled or cfg.cancels(newer.payment_state):
        return order_cancel_in_erp(order_id=order_id)
    _after_posting_changes(latest, newer, None)
    return ""


def _minor(amount: str, currency: str) -> int | None:
    try:
        return to_minor_units(Decimal(amount), currency) if amount not in ("", None) else None
    except (InvalidOperation, ValueError):
        return None


def _compare_erp_total(link: OrderLink, request: ErpSalesOrderRequest, created, breakdown: dict) -> None:
    """After posting: the gross total the ERP booked must be the storefront's; else finance is told."""
    reported = _minor(created.gross_total, link.currency)
    if reported is None or reported == link.total_minor:
        return
    erp_total = format_amount(from_minor_units(reported, link.currency), link.currency)
    storefront_total = link.total_display
    exception_raise(
        exc_type=ERP_TOTAL_MISMATCH, key=f"order:{link.pk}:erp-total", fingerprint="erp-total",
        message=(f"Order {link} was posted as {link.erp_order_id} with the storefront's total "
                 f"{request.gross_total} {link.currency}, but the ERP reports {erp_total} {link.currency} "
                 f"(tax {created.tax_total or '?'}). Correct the ERP order so it matches."),
        context={"order_number": str(link), "erp_total": f"{erp_total} {link.currency}",
                 "storefront_total": storefront_total, "erp_order_id": created.id,
                 "erp_reported": {"total": created.total, "tax_total": created.tax_total,
                                  "gross_total": created.gross_total},
                 "breakdown": breakdown},
        order=link,
    )
    _timeline(link, OrderEvent.Kind.TOTAL_MISMATCH,
              f"The ERP reports {erp_total} {link.currency} for {created.id}; the storefront says {storefront_total}")


def _push_stock_for(link: OrderLink, request: ErpSalesOrderRequest) -> None:
    """A sale changes stock: queue the high-priority push for the sold items (kits included)."""
    if not getattr(settings, "INVENTORY_PUSH_ON_ORDER", True):
        return
    from integrations.flows.inventory import inventory_push_for_items

    items = sorted({line.item_code for line in request.lines if line.kind == "item"})
    try:
        inventory_push_for_items(connection=link.connection, erp_item_codes=items)
    except Exception:  # the order is posted; the scheduled full sync catches the stock up
        log.exception("could not queue the stock push for order %s", link.pk)


def _record_posted(link, erp_order_id, customer_id, erp_payload, rounding, kind, message, write_id=None,
                   summary=None, posted_total: str = "", erp_total: str = "") -> None:
    with transaction.atomic():
        if write_id:
            write_succeeded(write_id, erp_order_id)
        OrderLink.objects.filter(pk=link.pk).update(
            state=OrderLink.State.POSTED, erp_order_id=erp_order_id, erp_customer_id=customer_id or "",
            erp_payload=erp_payload or {}, rounding_difference=rounding, posted_at=timezone.now(), last_error="",
            next_retry_at=None, auto_retries=0, posted_summary=summary or [],
            posted_total_minor=_minor(posted_total, link.currency), erp_total_minor=_minor(erp_total, link.currency),
        )
        _timeline(link, kind, message)
    link.state, link.erp_order_id, link.posted_summary = OrderLink.State.POSTED, erp_order_id, summary or []
    exceptions_resolve_for_order(order=link, note=f"Order posted to the ERP as {erp_order_id}.")


# Automatic re-posts after a transient failure: 1, 2, 4 … minutes apart, at most an hour.
AUTO_RETRY_BASE = timedelta(minutes=1)
AUTO_RETRY_MAX = timedelta(hours=1)


def auto_retry_delay(attempt: int) -> timedelta:
    return min(AUTO_RETRY_BASE * (2 ** min(max(attempt, 0), 16)), AUTO_RETRY_MAX)


def _order_failed(link: OrderLink, problems: list[Problem], error: str, *, transient: bool = False) -> None:
    """The order needs a person (transient=False) or an automatic re-post later (transient=True:
    the sweep re-posts it at next_retry_at, with backoff)."""
    keys = set()
    with transaction.atomic():
        if transient:
            current = OrderLink.objects.filter(pk=link.pk).values_list("auto_retries", flat=True).first() or 0
            next_at = timezone.now() + auto_retry_delay(current)
            OrderLink.objects.filter(pk=link.pk).update(
                state=OrderLink.State.FAILED, last_error=error[:2000], next_retry_at=next_at,
                auto_retries=F("auto_retries") + 1)
            _timeline(link, OrderEvent.Kind.FAILED, error[:2000])
            _timeline(link, OrderEvent.Kind.RETRY_SCHEDULED, f"Re-posting automatically from {next_at:%H:%M:%S}")
        else:
            OrderLink.objects.filter(pk=link.pk).update(state=OrderLink.State.FAILED, last_error=error[:2000],
                                                        next_retry_at=None)
            _timeline(link, OrderEvent.Kind.FAILED, error[:2000])
        if any(p.exc_type is TOTAL_MISMATCH for p in problems):
            _timeline(link, OrderEvent.Kind.TOTAL_MISMATCH, "Not posted: the ERP document would not total what "
                      "the storefront says (see the total_mismatch exception)")
    for p in problems:
        context = {"order_number": str(link), "storefront": link.connection.name, **p.context}
        record = exception_raise(
            exc_type=p.exc_type, key=f"{p.key}", fingerprint=p.fingerprint, message=p.message,
            context=context, order=link, sku=p.sku, retry_args={"order_id": link.pk}, last_error=error[:2000],
        )
        keys.add(record.key)
    # Whatever this attempt no longer finds (e.g. one of two SKUs now mapped) is resolved.
    for record in ExceptionRecord.objects.filter(
        order=link, status__in=ExceptionRecord.ACTIVE_STATUSES, type_code__in=_POSTING_TYPES,
    ).exclude(key__in=keys):
        exception_resolve(record=record, note="No longer found when the order was retried.", action="auto_resolved")


# The exception types posting raises (and so may resolve when an attempt no longer finds them).
_POSTING_TYPES = [t.code for t in (UNKNOWN_SKU, DUPLICATE_SKU, MISSING_TAX_MAPPING, INVALID_DEPOT, CUSTOMER_CONFLICT,
                                   ERP_REJECTED, ERP_UNAVAILABLE, TOTAL_MISMATCH, MALFORMED_PAYLOAD, POSTING_ERROR)]


def _request_as_dict(request: ErpSalesOrderRequest) -> dict:
    data = dict(request.__dict__)
    data["lines"] = [dict(line.__dict__) for line in request.lines]
    return data


def _create_sales_order(link: OrderLink, request: ErpSalesOrderRequest, erp):
    # The attempt row is committed before the call: a crash after the ERP accepted is visible, and
    # the replay finds the order by its external reference instead of creating a second one.
    with outbound_write(action="create_sales_order", idempotency_key=request.external_reference, order=link,
                        system=getattr(erp, "system", ""), finish=False) as write:
        created = erp.create_sales_order(request)
    return created, write.pk  # the attempt is marked succeeded together with the link


# --- customers -------------------------------------------------------------------------------------

def _customer_keys(order: StorefrontOrder) -> list[str]:
    """The storefront's ways to know a customer again, most specific first."""
    keys = []
    if order.customer_storefront_id:
        keys.append(f"id:{order.customer_storefront_id}")
    if order.customer_email.strip():
        keys.append(f"email:{order.customer_email.strip().lower()}")
    return keys


def _remember_customer(link: OrderLink, keys: list[str], customer_id: str) -> None:
    for key in keys:
        try:
            with transaction.atomic():
                CustomerLink.objects.get_or_create(connection=link.connection, key=key[:300],
                                                   defaults={"erp_customer_id": customer_id})
        except IntegrityError:  # a concurrent worker remembered it first
            pass


def _ensure_customer(link: OrderLink, order: StorefrontOrder, erp) -> str:
    """The ERP account this order posts under. A customer seen before (same storefront customer or
    e-mail) is remembered and not searched for again; guests without an e-mail follow the
    connection's guest policy; several real candidates in the ERP are a conflict for a person."""
    keys = _customer_keys(order)
    email = order.customer_email.strip().lower()
    if email and keys:
        known = dict(CustomerLink.objects.filter(connection=link.connection, key__in=keys)
                     .values_list("key", "erp_customer_id"))
        for key in keys:
            if key in known:
                _remember_customer(link, [k for k in keys if k not in known], known[key])
                return known[key]
    if not email:
        return _guest_customer(link, order, erp)
    reference = f"{link.connection.code}:customer:{order.customer_storefront_id or email}"
    by_ref = erp.find_customers(external_reference=reference)
    if len(by_ref) == 1:
        customer_id = by_ref[0].id
    else:
        candidates = by_ref if len(by_ref) > 1 else erp.find_customers(email=email)
        if len(candidates) > 1:
            _raise_customer_conflict(link, email, reference, candidates)
        if candidates:
            customer_id = candidates[0].id
            _timeline(link, OrderEvent.Kind.CUSTOMER_MATCHED, f"Matched ERP customer {customer_id} by e-mail {email}")
        else:
            customer_id = _create_customer(link, erp, email=email, name=order.customer_name or email,
                                           reference=reference, country=order.country, phone=order.customer_phone)
    _remember_customer(link, keys, customer_id)
    return customer_id


def _raise_customer_conflict(link, email, reference, candidates) -> None:
    accounts = sorted({c.id for c in candidates})
    listed = ", ".join(f"{c.id} ({c.name or c.email or 'no name'}"
                       f"{', ref ' + c.external_reference if c.external_reference else ''})"
                       for c in sorted(candidates, key=lambda c: c.id))
    raise OrderNotReady([Problem(
        CUSTOMER_CONFLICT, f"order:{link.pk}:customer", f"customer:{email or reference}",
        f"Customer {email or reference} on order {link} matches {len(accounts)} ERP accounts: {listed}. "
        "Merge them (or correct the e-mail) in the ERP, then retry.",
        {"email": email or reference, "count": len(accounts), "erp_accounts": accounts, "reference": reference},
    )])


def _guest_customer(link: OrderLink, order: StorefrontOrder, erp) -> str:
    """An order without an e-mail: a customer keyed by storefront customer id or phone (policy
    storefront_customer, when the order has one), else the connection's guest account for its
    currency. Unrelated guests are only ever merged into that named guest account."""
    cfg = connection_settings(link.connection)
    code = link.connection.code
    if cfg.guest_policy == STOREFRONT_CUSTOMER and (order.customer_storefront_id or order.customer_phone):
        key = f"id:{order.customer_storefront_id}" if order.customer_storefront_id else f"phone:{order.customer_phone}"
        known = CustomerLink.objects.filter(connection=link.connection, key=key).values_list(
            "erp_customer_id", flat=True).first()
        if known:
            return known
        reference = f"{code}:customer:{order.customer_storefront_id}" if order.customer_storefront_id \
            else f"{code}:phone:{order.customer_phone}"
        found = erp.find_customers(external_reference=reference)
        if len(found) > 1:
            _raise_customer_conflict(link, "", reference, found)
        if found:
            customer_id = found[0].id
        elif order.customer_phone:
            customer_id = _create_customer(link, erp, email="", phone=order.customer_phone, reference=reference,
                                           name=order.customer_name or order.customer_phone, country=order.country)
        else:
            customer_id = ""
        if customer_id:
            _remember_customer(link, [key], customer_id)
            return customer_id
    return _guest_account(link, order, erp, cfg)


def _guest_account(link: OrderLink, order: StorefrontOrder, erp, cfg: OrderSettings) -> str:
    configured = cfg.guest_accounts.get(order.currency) or cfg.guest_accounts.get("*")
    if configured:
        return configured
    key = f"guest:{order.currency}"
    known = CustomerLink.objects.filter(connection=link.connection, key=key).values_list(
        "erp_customer_id", flat=True).first()
    if known:
        return known
    reference = f"{link.connection.code}:guest:{order.currency}"
    found = erp.find_customers(external_reference=reference)
    customer_id = found[0].id if found else _create_customer(
        link, erp, email="", name=f"{link.connection.name} guest sales ({order.currency})", reference=reference,
        country=order.country, guest=True)
    _remember_customer(link, [key], customer_id)
    _timeline(link, OrderEvent.Kind.CUSTOMER_MATCHED,
              f"Guest order without an e-mail: posted under the guest account {customer_id} ({order.currency})")
    return customer_id


def _create_customer(link: OrderLink, erp, *, email: str, name: str, reference: str, country: str,
                     phone: str = "", guest: bool = False) -> str:
    try:
        with outbound_write(action="create_customer", idempotency_key=reference, order=link,
                            system=getattr(erp, "system", "")) as write:
            customer = erp.create_customer(email=email, name=name, external_reference=reference, country=country,
                                           phone=phone, guest=guest)
            write.response_id = customer.id
    except PermanentError as exc:
        if getattr(exc, "status", None) == 409:
            again = erp.find_customers(external_reference=reference)  # created by a concurrent worker
            if again:
                return again[0].id
        raise
    _timeline(link, OrderEvent.Kind.CUSTOMER_CREATED,
              f"Created ERP {'guest account' if guest else 'customer'} {customer.id} for {email or phone or name}")
    return customer.id


# --- after posting: cancellations, edits, refunds ------------------------------------------------

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


def _raise_once(**kwargs) -> bool:
    """Raise an exception about a change only the first time that change is seen: a later
    update carrying the same change must not reopen what a person already resolved."""
    key = f"{kwargs['exc_type'].code}:{kwargs['key']}"[:300]
    if ExceptionRecord.objects.filter(key=key).exists():
        return False
    exception_raise(**kwargs)
    return True


def _hold_refund(link: OrderLink, order: StorefrontOrder, event: InboundEvent | None = None) -> None:
    """A refund on a posted order waits for its credit memo as a finance exception (once per
    refund state and amount: the same refund delivered again does not reopen it)."""
    state = (order.payment_state or "").lower()
    refunded = str(order.extra.get("total_refunded", "") or "")
    if not _raise_once(
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
    _timeline(link, OrderEvent.Kind.REFUNDED, f"Payment {order.payment_state}: held for a credit memo", event)


def _after_posting_changes(link: OrderLink, order: StorefrontOrder, event: InboundEvent) -> None:
    """A newer payload of a posted order: a refund or an edit is never dropped silently."""
    state = (order.payment_state or "").lower()
    if state in REFUNDED_STATES:
        _hold_refund(link, order, event)
        return
    if not link.posted_summary:
        return
    changes = _describe_changes(link.posted_summary, sale_summary(order))
    if not changes:
        return
    digest = hashlib.sha1("|".join(changes).encode()).hexdigest()[:16]
    if not _raise_once(
        exc_type=EDITED_AFTER_POSTING, key=f"order:{link.pk}:edit:{digest}",
        fingerprint="edit",
        message=(f"Order {link} changed in {link.connection.name} after it was posted as {link.erp_order_id}: "
                 + "; ".join(changes) + ". Amend the ERP order by hand, then resolve this."),
        context={"order_number": str(link), "changes": changes, "erp_order_id": link.erp_order_id},
        order=link,
    ):
        return
    _timeline(link, OrderEvent.Kind.EDITED, "; ".join(changes), event)


def order_cancel_in_erp(*, order_id: int, erp=None) -> str:
    """A posted order cancelled in the storefront: cancel the ERP order where the ERP allows it
    (nothing dispatched); otherwise ops own it. Safe twice: the ERP's cancel is idempotent and the
    link's state only moves POSTED -> CANCELLED once."""
    link = OrderLink.objects.select_related("connection").get(pk=order_id)
    if link.state != OrderLink.State.POSTED or not link.erp_order_id:
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
        _timeline(link, OrderEvent.Kind.FAILED, f"Cancellation not applied in the ERP: {problem}")
        return "cancel_failed"
    with transaction.atomic():
        OrderLink.objects.filter(pk=link.pk, state=OrderLink.State.POSTED).update(state=OrderLink.State.CANCELLED)
        _timeline(link, OrderEvent.Kind.CANCELLED_IN_ERP,
                  f"Cancelled in the storefront; ERP Sales Order {link.erp_order_id} cancelled")
    for record in ExceptionRecord.objects.filter(order=link, type_code=CANCEL_NOT_POSSIBLE.code,
                                                 status__in=ExceptionRecord.ACTIVE_STATUSES):
        exception_resolve(record=record, note=f"{link.erp_order_id} cancelled in the ERP.", action="auto_resolved")
    return "cancelled"


# --- retries ---------------------------------------------------------------------------------------

def order_retry_post(*, order: OrderLink, actor=None) -> str:
    """A person (or a retry handler) re-runs posting: the claim allows FAILED orders."""
    _timeline(order, OrderEvent.Kind.RETRIED, f"Retried by {actor.get_username() if actor else 'Ledgerline'}")
    return order_post_to_erp(order_id=order.pk)


def retry_order_exception(record) -> bool:
    if record.order_id is None:
        order_id = record.retry_args.get("order_id")
        if not order_id:
            return False
        order = OrderLink.objects.get(pk=order_id)
    else:
        order = record.order
    if order.state == OrderLink.State.POSTED:
        return True
    return order_retry_post(order=order) == "posted"


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
