"""Posting a released order to the ERP: build and check the document, match the customer, create it once, compare totals."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve, exceptions_resolve_for_order
from integrations.connectors import get_erp
from integrations.connectors.base import (
    CUSTOMERS_IN_BATCH, AmbiguousCustomer, ErpSalesOrderRequest, PermanentError, TransientError, supports,
)
from integrations.domain import StorefrontOrder, format_amount, from_minor_units, to_minor_units
from integrations.models import OrderEvent, OrderLink, OutboundWrite, ReadySalesOrder
from integrations.writes import outbound_write, write_succeeded
from mappings.lookup import MappingLookup

from .common import (
    CLAIM_LEASE, PAYLOAD_ERRORS, OrderNotReady, auto_retry_delay, erp_depots_cache, erp_facts_fresh, erp_facts_key,
    is_payment_done, known_items,
    log, timeline_add, translate_payload,
)
from .connection_settings import connection_settings
from .document import Problem, build_sales_order
from .exception_types import (
    CUSTOMER_CONFLICT, DUPLICATE_SKU, ERP_REJECTED, ERP_TOTAL_MISMATCH, ERP_UNAVAILABLE, INVALID_DEPOT,
    MALFORMED_PAYLOAD, MISSING_TAX_MAPPING, POSTING_ERROR, TOTAL_MISMATCH, UNKNOWN_SKU,
)
from .after_posting import REFUNDED_STATES, after_posting_changes, hold_refund, order_cancel_in_erp, sale_summary
from .batches import batch_size, request_as_dict, sales_order_queue, sales_orders_send_soon
from .customers import customer_for_batch, customer_keys, ensure_customer, raise_customer_conflict


def _claim_order(order_id: int) -> bool:
    now = timezone.now()
    claimable = Q(state__in=[OrderLink.State.RECEIVED, OrderLink.State.WAITING_PAYMENT, OrderLink.State.FAILED]) | Q(
        state=OrderLink.State.POSTING, posting_started_at__lt=now - CLAIM_LEASE
    )
    return bool(
        OrderLink.objects.filter(claimable, pk=order_id).update(state=OrderLink.State.POSTING, posting_started_at=now)
    )


class ErpResolver:
    """The mapping tables and the ERP's items and depots, as the document builder asks for them.
    The mapping rows come from the cache while the tables are unchanged (mappings.lookup.MappingLookup:
    one statement per order checks that); a change is seen by the next order in any process."""

    def __init__(self, connection, erp):
        self.connection, self.erp = connection, erp
        self.mappings = MappingLookup(connection)
        erp_facts_fresh(self.mappings.version)
        self.facts = erp_facts_key(erp)

    def sku(self, storefront_sku):
        return self.mappings.sku(storefront_sku)

    def item_exists(self, code: str) -> bool:
        if known_items.get((self.facts, code)):
            return True
        exists = self.erp.item_exists(code)
        if exists:
            known_items.put((self.facts, code), True)
        return exists

    def tax_code(self, *, rate, country, category):
        return self.mappings.tax_code(rate=rate, country=country, category=category)

    def depot(self, *, country, location):
        return self.mappings.depot(country=country, location=location) or settings.ORDERS["default_depot"]

    def erp_depots(self) -> set[str]:
        depots = erp_depots_cache.get(self.facts)
        if depots is None:
            depots = set(self.erp.list_depots())
            erp_depots_cache.put(self.facts, depots)
        return depots


def sales_order_for(link: OrderLink, order: StorefrontOrder, erp):
    """The checked ERP document for this order (see sales_order_document.build_sales_order)."""
    return build_sales_order(
        order=order, settings=connection_settings(link.connection), resolver=ErpResolver(link.connection, erp),
        external_reference=link.external_reference, number=str(link), key_prefix=f"order:{link.pk}",
        storefront_name=link.connection.name,
    )


# Every field but the connection: re-read after the claim without loading the connection again.
_LINK_FIELDS = None


def _link_fields() -> list[str]:
    global _LINK_FIELDS
    if _LINK_FIELDS is None:
        _LINK_FIELDS = [f.attname for f in OrderLink._meta.concrete_fields if f.name not in ("id", "connection")]
    return _LINK_FIELDS


def order_post_to_erp(*, order_id: int, erp=None, link: OrderLink | None = None, claimed: bool = False,
                      order: StorefrontOrder | None = None) -> str:
    """Post one order. Safe to run twice: claimed by a conditional update (or, claimed=True, by the
    event's own transaction, on the locked row it just saved); the ERP is asked first when an earlier
    attempt was started, and a duplicate external reference is linked, never booked twice.
    `order` (with claimed=True) is the link's payload as the event's task just translated it."""
    if link is None or link.pk != order_id:  # the event's task hands over the link it just saved
        link, claimed = OrderLink.objects.select_related("connection").get(pk=order_id), False
    if claimed:
        return _post_claimed(link, erp, first_attempt=getattr(link, "first_attempt", False), order=order)
    if link.state in OrderLink.IN_ERP:
        return "posted"
    if link.state in (OrderLink.State.CANCELLED, OrderLink.State.TEST):
        return link.state
    if not link.connection.active:
        return "inactive"  # an inactive connection posts nothing; reactivating it lets the sweep post
    if not is_payment_done(link):
        if link.state == OrderLink.State.RECEIVED:
            with transaction.atomic():
                if OrderLink.objects.filter(pk=link.pk, state=OrderLink.State.RECEIVED).update(
                        state=OrderLink.State.WAITING_PAYMENT):
                    timeline_add(link, OrderEvent.Kind.WAITING_PAYMENT, f"Payment is {link.payment_state or 'unknown'}")
        return "waiting_payment"
    first_attempt = link.state == OrderLink.State.RECEIVED  # nothing moves an order back to received
    with transaction.atomic():
        if not _claim_order(order_id):
            return "taken"
        timeline_add(link, OrderEvent.Kind.POSTING, "Posting to the ERP")
    link.refresh_from_db(fields=_link_fields())
    return _post_claimed(link, erp, first_attempt=first_attempt)


def _post_claimed(link: OrderLink, erp, *, first_attempt: bool, order: StorefrontOrder | None = None) -> str:
    posted_payload = link.payload
    erp = erp or get_erp()
    try:
        if order is None:
            order = translate_payload(link.connection, link.payload)
        # Only an earlier attempt whose outcome is unknown makes the ERP worth asking first; a first
        # attempt creates directly, and the ERP's duplicate-reference answer means "already there".
        # (A stale "received" seen before the claim is harmless: the ERP's duplicate answer still links it.)
        existing = (erp.find_sales_order(link.external_reference)
                    if not first_attempt and _create_was_started(link) else None)
        if existing is not None:
            ReadySalesOrder.objects.filter(order_id=link.pk).delete()  # an earlier attempt's, if its sender died
            record_posted(link, existing.id, existing.customer_id or link.erp_customer_id, link.erp_payload, Decimal(0),
                           OrderEvent.Kind.LINKED_EXISTING,
                           f"The ERP already had Sales Order {existing.id} for {link.external_reference}",
                           summary=sale_summary(order))
            return catch_up_after_posting(link.pk, posted_payload) or "posted"
        document = sales_order_for(link, order, erp)
        if document.problems:
            raise OrderNotReady(document.problems)
        size = batch_size(erp)
        new_customer = None
        if size and supports(erp, CUSTOMERS_IN_BATCH):  # a new buyer's account comes with the batch's answer
            customer_id, new_customer = customer_for_batch(link, order, erp)
        else:
            customer_id = ensure_customer(link, order, erp)
        request = ErpSalesOrderRequest(**{**document.request.__dict__, "customer_id": customer_id,
                                          "new_customer": new_customer,
                                          "order_date": document.request.order_date or timezone.now().date().isoformat()})
        details = {"customer_id": customer_id, "rounding": str(document.rounding), "breakdown": document.breakdown,
                   "summary": sale_summary(order), "payment_state": order.payment_state or ""}
        if new_customer:
            details["customer_keys"] = customer_keys(order)
        if size:
            details["payload_digest"] = payload_digest(posted_payload)
            sales_order_queue(link=link, request=request, endpoint=erp_facts_key(erp),
                              system=getattr(erp, "system", ""), details=details, first_attempt=first_attempt)
        else:
            created, write_id = _create_sales_order(link, request, erp)
    except OrderNotReady as exc:
        order_failed(link, exc.problems, str(exc))
        return "failed"
    except PAYLOAD_ERRORS as exc:
        order_failed(link, [Problem(MALFORMED_PAYLOAD, f"order:{link.pk}", f"{link.connection.code}:order",
                                     f"Order {link} cannot be read: {exc}", {"storefront": link.connection.name})],
                      str(exc))
        return "failed"
    except (TransientError, PermanentError) as exc:
        _own_failure(link, exc, erp)
        return "failed"
    except Exception as exc:  # never a task that dies quietly: owned, and re-posted with backoff
        log.exception("posting order %s failed unexpectedly", link.pk)
        _own_failure(link, exc, erp)
        return "failed"
    if size:
        return _batched_outcome(link, erp, size)
    return order_created(link, created, request, details, write_id=write_id, posted_payload=posted_payload)


def _batched_outcome(link: OrderLink, erp, size: int) -> str:
    """Queued for the next batch: send what is due, then say where this order stands."""
    if not sales_orders_send_soon(erp, endpoint=erp_facts_key(erp), size=size):
        return "queued"  # the usual case: the background sender takes it, nothing to read back
    state = OrderLink.objects.filter(pk=link.pk).values_list("state", flat=True).first()
    if state in OrderLink.IN_ERP:
        return "posted"
    return "failed" if state == OrderLink.State.FAILED else "queued"


def order_created(link: OrderLink, created, request: ErpSalesOrderRequest, details: dict, *, write_id=None,
                  posted_payload: dict | None = None) -> str:
    """The ERP answered the create (alone or in a batch) with this order's Sales Order: record it."""
    customer_id = details["customer_id"]
    summary = details["summary"]
    posted = posted_payload if posted_payload is not None else details.get("payload_digest", "")
    if created.already_existed:  # another attempt or worker created it: link it, book nothing new
        record_posted(link, created.id, customer_id, request_as_dict(request), Decimal(0),
                       OrderEvent.Kind.LINKED_EXISTING,
                       f"The ERP already had Sales Order {created.id} for {link.external_reference}",
                       write_id=write_id, summary=summary)
        return catch_up_after_posting(link.pk, posted) or "posted"
    rounding = Decimal(details["rounding"])
    record_posted(link, created.id, customer_id, request_as_dict(request), rounding, OrderEvent.Kind.POSTED,
                   f"Sales Order {created.id} created for {link.external_reference}, total "
                   f"{request.gross_total} {link.currency}"
                   + (f"; rounding difference {rounding} {link.currency}" if rounding else ""),
                   write_id=write_id, summary=summary, posted_total=request.gross_total,
                   erp_total=created.gross_total)
    _compare_erp_total(link, request, created, details["breakdown"])
    if (details.get("payment_state") or "").lower() in REFUNDED_STATES:
        # first seen already refunded: the sale posted, the refund waits
        hold_refund(link, translate_payload(link.connection, link.payload))
    _push_stock_for(link, request)
    return catch_up_after_posting(link.pk, posted) or "posted"


def order_create_failed(link: OrderLink, exc: Exception, write_id: int, erp,
                        request: ErpSalesOrderRequest | None = None) -> None:
    """A batch's answer for this order was a failure: the same outcome as a single create failing."""
    OutboundWrite.objects.filter(pk=write_id).update(status=OutboundWrite.Status.FAILED, error=str(exc)[:2000],
                                                     finished_at=timezone.now())
    if isinstance(exc, AmbiguousCustomer):  # the new buyer it carried matches several accounts
        customer = (request.new_customer if request is not None else None) or {}
        try:
            raise_customer_conflict(link, customer.get("email", ""), customer.get("external_reference", ""),
                                    exc.candidates)
        except OrderNotReady as conflict:
            order_failed(link, conflict.problems, str(conflict))
            return
    _own_failure(link, exc, erp)


def _own_failure(link: OrderLink, exc: Exception, erp) -> None:
    """A create that failed becomes its owned exception: the ERP unavailable (re-posted automatically), the
    ERP's refusal (correct the data, then retry) or anything else (re-posted with backoff)."""
    if isinstance(exc, TransientError):
        order_failed(link, [Problem(
            ERP_UNAVAILABLE, f"order:{link.pk}", "erp",
            f"The ERP did not accept order {link} after {getattr(erp, 'max_attempts', 'several')} attempts "
            f"({exc}). Ledgerline re-posts it automatically once the ERP answers again "
            "(or retry it yourself).",
            {"order_number": str(link)},
        )], str(exc), transient=True)
    elif isinstance(exc, PermanentError):
        order_failed(link, [Problem(
            ERP_REJECTED, f"order:{link.pk}", f"erp:{getattr(exc, 'code', '') or 'rejected'}",
            f"The ERP rejected order {link}: {exc}. Correct the data, then retry.",
            {"order_number": str(link), "status": getattr(exc, "status", None)},
        )], str(exc))
    else:
        error = f"{type(exc).__name__}: {exc}"
        order_failed(link, [Problem(
            POSTING_ERROR, f"order:{link.pk}", "internal",
            f"Order {link} could not be posted: {error}. Ledgerline re-posts it automatically with backoff.",
            {"order_number": str(link)},
        )], error, transient=True)


def payload_digest(payload) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def catch_up_after_posting(order_id: int, posted_payload: dict | str) -> str:
    """Events applied while the order was being posted (a cancellation, an edit, a refund) were
    stored but not acted on: act on the newest payload now, so none is dropped. `posted_payload`
    is the payload posted, or its payload_digest (a batch keeps the digest, not the payload)."""
    payload, state = OrderLink.objects.filter(pk=order_id).values_list("payload", "state").get()
    same = payload_digest(payload) == posted_payload if isinstance(posted_payload, str) else payload == posted_payload
    if same or state not in OrderLink.IN_ERP:
        return ""  # the usual case, read without building the link and its connection
    latest = OrderLink.objects.select_related("connection").get(pk=order_id)
    try:
        newer = translate_payload(latest.connection, latest.payload)
    except ValueError:
        return ""  # the event that stored it already raised malformed_payload
    cfg = connection_settings(latest.connection)
    if newer.cancelled or cfg.cancels(newer.payment_state):
        return order_cancel_in_erp(order_id=order_id)
    after_posting_changes(latest, newer, None)
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
    timeline_add(link, OrderEvent.Kind.TOTAL_MISMATCH,
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


def record_posted(link, erp_order_id, customer_id, erp_payload, rounding, kind, message, write_id=None,
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
        timeline_add(link, kind, message)
    link.state, link.erp_order_id, link.posted_summary = OrderLink.State.POSTED, erp_order_id, summary or []
    has_exceptions, has_refunds = _open_exceptions_and_waiting_refunds(link)
    if has_exceptions:
        exceptions_resolve_for_order(order=link, note=f"Order posted to the ERP as {erp_order_id}.")
    if has_refunds:
        from integrations.flows.refunds import refunds_release_on_commit

        refunds_release_on_commit(link.pk)  # refunds that waited for this order are credited right after it


def _open_exceptions_and_waiting_refunds(link: OrderLink) -> tuple[bool, bool]:
    """Whether anything waits on this order being posted: its open exceptions, and refunds stored
    before it was (by order or by storefront order id, as refunds_release_on_commit looks). One
    prepared statement: the usual answer is (False, False), and it runs for every posted order."""
    from integrations.models import Refund

    db = connections[router.db_for_read(OrderLink)]
    active = list(ExceptionRecord.ACTIVE_STATUSES)
    waiting = [Refund.State.WAITING_ORDER, Refund.State.RECEIVED, Refund.State.HELD]
    exceptions, refunds = ExceptionRecord._meta.db_table, Refund._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS(SELECT 1 FROM {exceptions} WHERE order_id = %s AND status IN "
            f"({', '.join(['%s'] * len(active))})), "
            f"EXISTS(SELECT 1 FROM {refunds} WHERE (order_id = %s OR storefront_order_id = %s) AND state IN "
            f"({', '.join(['%s'] * len(waiting))}))",
            [link.pk, *active, link.pk, link.storefront_order_id, *waiting])
        row = cursor.fetchone()
    return bool(row[0]), bool(row[1])


def order_failed(link: OrderLink, problems: list[Problem], error: str, *, transient: bool = False) -> None:
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
            timeline_add(link, OrderEvent.Kind.FAILED, error[:2000])
            timeline_add(link, OrderEvent.Kind.RETRY_SCHEDULED, f"Re-posting automatically from {next_at:%H:%M:%S}")
        else:
            OrderLink.objects.filter(pk=link.pk).update(state=OrderLink.State.FAILED, last_error=error[:2000],
                                                        next_retry_at=None)
            timeline_add(link, OrderEvent.Kind.FAILED, error[:2000])
        if any(p.exc_type is TOTAL_MISMATCH for p in problems):
            timeline_add(link, OrderEvent.Kind.TOTAL_MISMATCH, "Not posted: the ERP document would not total what "
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
        order=link, status__in=ExceptionRecord.ACTIVE_STATUSES, type_code__in=POSTING_TYPES,
    ).exclude(key__in=keys):
        exception_resolve(record=record, note="No longer found when the order was retried.", action="auto_resolved")


# The exception types posting raises (and so may resolve when an attempt no longer finds them).
POSTING_TYPES = [t.code for t in (UNKNOWN_SKU, DUPLICATE_SKU, MISSING_TAX_MAPPING, INVALID_DEPOT, CUSTOMER_CONFLICT,
                                   ERP_REJECTED, ERP_UNAVAILABLE, TOTAL_MISMATCH, MALFORMED_PAYLOAD, POSTING_ERROR)]


def _create_was_started(link: OrderLink) -> bool:
    """Whether any attempt to create this order's Sales Order was ever started (its outcome may be unknown)."""
    return OutboundWrite.objects.filter(action="create_sales_order",
                                        external_reference=link.external_reference[:200]).exists()


def _create_sales_order(link: OrderLink, request: ErpSalesOrderRequest, erp):
    # The attempt row is committed before the call: a crash after the ERP accepted is visible, and
    # the replay finds the order by its external reference instead of creating a second one.
    with outbound_write(action="create_sales_order", idempotency_key=request.external_reference, order=link,
                        system=getattr(erp, "system", ""), finish=False) as write:
        created = erp.create_sales_order(request)
    return created, write.pk  # the attempt is marked succeeded together with the link
