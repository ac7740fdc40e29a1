"""A batch's answers recorded together: the orders the ERP booked are marked posted in one transaction.

A single create records its order with a handful of statements (the attempt row succeeded, the link
posted, its timeline, what waits on it, a newer payload); for a batch of a hundred that is hundreds of
statements and a hundred commits, each queued behind the webhooks on SQLite. Here every booked order's
attempt row and link are updated by one prepared statement each (executemany), the timeline is one
insert, and what waits on the orders and their newest payloads are read once for the whole batch.
What is unusual (a failure, a document the ERP already had, a wrong total, a refund, a payload that
changed meanwhile) goes through the one-order functions of posting.py, exactly as a single create's.
A crash before the commit leaves every order of the batch posting with its attempt row started:
the replay asks the ERP by external reference first, so nothing is booked twice.
"""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exceptions_resolve_for_order
from integrations.inbox.store import insert_rows
from integrations.models import OrderEvent, OrderLink, OutboundWrite, Refund

from .common import log, translate_payload
from .after_posting import REFUNDED_STATES, hold_refund


_statements: dict[tuple, tuple[str, list]] = {}


def _prepared_update(model, fields: tuple[str, ...], using: str) -> tuple[str, list]:
    """UPDATE <table> SET <fields> WHERE id = %s, built once per model, fields and database."""
    key = (model, fields, using)
    if key not in _statements:
        quote = connections[using].ops.quote_name
        concrete = [model._meta.get_field(name) for name in fields]
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in concrete)
        _statements[key] = (f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
                            f"WHERE {quote(model._meta.pk.column)} = %s", concrete)
    return _statements[key]


def _update_rows(model, fields: tuple[str, ...], rows: list[tuple], using: str) -> None:
    """One prepared UPDATE for many rows: each row is (pk, value per field), adapted as save() would."""
    statement, concrete = _prepared_update(model, fields, using)
    db = connections[using]
    params = [[field.get_db_prep_save(value, connection=db) for field, value in zip(concrete, values)] + [pk]
              for pk, *values in rows]
    with db.cursor() as cursor:
        cursor.executemany(statement, params)


_WRITE_FIELDS = ("status", "response_id", "finished_at")
_LINK_FIELDS = ("state", "erp_order_id", "erp_customer_id", "erp_payload", "rounding_difference", "posted_at",
                "last_error", "next_retry_at", "auto_retries", "posted_summary", "posted_total_minor",
                "erp_total_minor")


def batch_answers_record(entries, requests_, answers, erp) -> None:
    """Apply each document's answer to its own order: the booked ones together, the rest one by one.
    One order's bookkeeping never stops the others; what fails is left to the sweep (re-posted after
    one existence check)."""
    from .posting import order_create_failed, order_created

    booked, alone = [], []
    for entry, request, answer in zip(entries, requests_, answers):
        if request.new_customer and not isinstance(answer, Exception) and answer.customer_id:
            entry.details["customer_id"] = answer.customer_id  # the account the ERP matched or opened
        if isinstance(answer, Exception) or answer.already_existed:
            alone.append((entry, request, answer))
        else:
            booked.append((entry, request, answer))
    if booked:
        try:
            record_batch_posted(booked)
        except Exception:
            log.exception("recording a batch of %s posted orders together failed; recording them one by one",
                          len(booked))
            alone += booked
            booked = []
    for entry, request, answer in alone:
        try:
            if isinstance(answer, Exception):
                order_create_failed(entry.order, answer, entry.write_id, erp, request)
            else:
                if request.new_customer:  # booked by an earlier attempt: its account is remembered all the same
                    using = router.db_for_write(OrderLink)
                    told: list = []
                    with transaction.atomic(using=using):
                        _new_customers_record([(entry, request, answer)], told, using)
                        insert_rows(told, using)
                order_created(entry.order, answer, request, entry.details, write_id=entry.write_id)
        except Exception:  # one order's bookkeeping never stops the others; the sweep re-posts it
            log.exception("applying the batch answer for order %s failed", entry.order_id)
    if booked:
        _after_posted(booked)


def record_batch_posted(booked: list) -> None:
    """The booked orders posted, their attempt rows succeeded and their timelines written: one
    transaction, as record_posted does for one order."""
    from .batches import request_as_dict
    from .posting import _minor

    using = router.db_for_write(OrderLink)
    now = timezone.now()
    writes, links, timeline, new_customers = [], [], [], []
    for entry, request, created in booked:
        link, details = entry.order, entry.details
        rounding = Decimal(details["rounding"])
        summary = details["summary"] or []
        writes.append((entry.write_id, OutboundWrite.Status.SUCCEEDED, (created.id or "")[:100], now))
        links.append((link.pk, OrderLink.State.POSTED, created.id, details["customer_id"] or "",
                      request_as_dict(request), rounding, now, "", None, 0, summary,
                      _minor(request.gross_total, link.currency), _minor(created.gross_total, link.currency)))
        if request.new_customer:
            new_customers.append((entry, request, created))
        timeline.append(OrderEvent(
            order=link, kind=OrderEvent.Kind.POSTED, at=now,
            message=(f"Sales Order {created.id} created for {link.external_reference}, total "
                     f"{request.gross_total} {link.currency}"
                     + (f"; rounding difference {rounding} {link.currency}" if rounding else ""))))
    with transaction.atomic(using=using):
        _update_rows(OutboundWrite, _WRITE_FIELDS, [w for w in writes if w[0]], using)
        _update_rows(OrderLink, _LINK_FIELDS, links, using)
        customer_entries = []  # at the posting's time and inserted before it: the account came first
        _new_customers_record(new_customers, customer_entries, using, at=now)
        insert_rows(customer_entries + timeline, using)
    for entry, request, created in booked:
        link = entry.order
        link.state, link.erp_order_id, link.posted_summary = OrderLink.State.POSTED, created.id, entry.details["summary"]


def _new_customers_record(booked: list, timeline: list, using: str, at=None) -> None:
    """The accounts the ERP matched or opened for documents that carried their new customer:
    remembered under the buyers' keys (one INSERT, in the caller's transaction) and told on each
    order's timeline as a one-request match-or-create would be (appended to `timeline`, at `at`)."""
    at = at or timezone.now()
    from .customers import customer_keys_remember

    customer_keys_remember([(entry.order.connection_id, entry.details.get("customer_keys") or [], created.customer_id)
                            for entry, _, created in booked], using)
    for entry, request, created in booked:
        email = request.new_customer.get("email", "")
        if created.customer_created:
            timeline.append(OrderEvent(order=entry.order, kind=OrderEvent.Kind.CUSTOMER_CREATED, at=at,
                                       message=f"Created ERP customer {created.customer_id} for {email}"))
        elif created.customer_matched_on == "email":
            timeline.append(OrderEvent(order=entry.order, kind=OrderEvent.Kind.CUSTOMER_MATCHED, at=at,
                                       message=f"Matched ERP customer {created.customer_id} by e-mail {email}"))


def _after_posted(booked: list) -> None:
    """What follows a posting, for the whole batch, in record_posted's and order_created's order: open
    exceptions resolved and waiting refunds released, the total the ERP booked checked, a refund seen
    before posting held, the stock push queued once per storefront, and a payload that changed while
    the batch was out acted on."""
    from .posting import _compare_erp_total, catch_up_after_posting, payload_digest

    links = [entry.order for entry, _, _ in booked]
    everyone = {link.pk for link in links}
    try:
        waiting_exceptions, waiting_refunds = _waiting_on(links)
        current = {pk: (payload, state) for pk, payload, state in
                   OrderLink.objects.filter(pk__in=everyone).values_list("pk", "payload", "state")}
    except Exception:  # read again order by order below
        log.exception("reading what waits on a batch of posted orders failed")
        waiting_exceptions, waiting_refunds, current = everyone, everyone, None
    sold: dict[int, tuple] = {}
    for entry, request, created in booked:
        link, details = entry.order, entry.details
        digest = details.get("payload_digest", "")
        try:
            if link.pk in waiting_exceptions:
                exceptions_resolve_for_order(order=link, note=f"Order posted to the ERP as {created.id}.")
            if link.pk in waiting_refunds:
                from integrations.flows.refunds import refunds_release_on_commit

                refunds_release_on_commit(link.pk)
            _compare_erp_total(link, request, created, details["breakdown"])
            if (details.get("payment_state") or "").lower() in REFUNDED_STATES:
                hold_refund(link, translate_payload(link.connection, link.payload))
            connection, items = sold.setdefault(link.connection_id, (link.connection, set()))
            items.update(line.item_code for line in request.lines if line.kind == "item")
            if current is None:
                catch_up_after_posting(link.pk, digest)
                continue
            payload, state = current.get(link.pk, (None, None))
            if payload is not None and state in OrderLink.IN_ERP and payload_digest(payload) != digest:
                catch_up_after_posting(link.pk, digest)  # an event applied while the batch was out
        except Exception:  # one order's follow-up never stops the others
            log.exception("following up posted order %s failed", link.pk)
    _push_stock(sold)


def _waiting_on(links: list[OrderLink]) -> tuple[set[int], set[int]]:
    """Which of these orders have open exceptions, and which have refunds stored before they were
    posted (by order or by storefront order id, as refunds_release_on_commit looks): two statements
    for the batch; the usual answer is none."""
    ids = {link.pk for link in links}
    exceptions = set(ExceptionRecord.objects.filter(order_id__in=ids, status__in=ExceptionRecord.ACTIVE_STATUSES)
                     .values_list("order_id", flat=True))
    by_storefront_id: dict[str, list[int]] = {}
    for link in links:
        by_storefront_id.setdefault(link.storefront_order_id, []).append(link.pk)
    refunds = set()
    for order_id, storefront_order_id in Refund.objects.filter(
            Q(order_id__in=ids) | Q(storefront_order_id__in=list(by_storefront_id)),
            state__in=[Refund.State.WAITING_ORDER, Refund.State.RECEIVED, Refund.State.HELD],
    ).values_list("order_id", "storefront_order_id"):
        if order_id in ids:
            refunds.add(order_id)
        refunds.update(by_storefront_id.get(storefront_order_id, ()))
    return exceptions, refunds


def _push_stock(sold: dict[int, tuple]) -> None:
    """A sale changes stock: one high-priority push per storefront for the items the batch sold."""
    if not getattr(settings, "INVENTORY_PUSH_ON_ORDER", True):
        return
    from integrations.flows.inventory import inventory_push_for_items

    for connection, items in sold.values():
        try:
            inventory_push_for_items(connection=connection, erp_item_codes=sorted(items))
        except Exception:  # the orders are posted; the scheduled full sync catches the stock up
            log.exception("could not queue the stock push for a batch of orders on %s", connection.code)
