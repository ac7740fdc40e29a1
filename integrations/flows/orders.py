"""Order to cash: a paid/authorised storefront order becomes exactly one ERP Sales Order.

Path of one order: an inbound event (webhook or poll) is processed into an `OrderLink`; once the
payment is captured or authorised the link is claimed and posted: mappings are checked, the
customer is matched or created, and the Sales Order is created with the storefront order id as its
external reference, after asking the ERP whether that reference already exists.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue import registry
from exceptions_queue.models import ExceptionRecord
from exceptions_queue.registry import ExceptionType, Severity, Team
from exceptions_queue.services import exception_raise, exception_resolve, exceptions_resolve_for_order
from integrations.connectors import get_erp, get_storefront, order_from_payload
from integrations.connectors.base import (
    ErpSalesOrderLine,
    ErpSalesOrderRequest,
    PermanentError,
    TransientError,
)
from integrations.domain import StorefrontOrder, currency_exponent, format_amount, to_minor_units
from integrations.models import ErpWrite, InboundEvent, OrderEvent, OrderLink, Platform
from integrations.ttl_cache import TtlCache
from mappings.lookup import resolve_depot, resolve_sku, resolve_tax_code

log = logging.getLogger("ledgerline.orders")

# A claim older than this is taken to belong to a worker that died: django-q2 hands the task out
# again only after Q_CLUSTER["retry"] seconds, which is longer than its timeout.
CLAIM_LEASE = timedelta(seconds=settings.Q_CLUSTER.get("timeout", 120))

from .order_exception_types import (  # noqa: F401 - registered here, raised below
    CANCEL_NOT_POSSIBLE, CUSTOMER_CONFLICT, DUPLICATE_SKU, EDITED_AFTER_POSTING, ERP_REJECTED, ERP_TOTAL_MISMATCH,
    ERP_UNAVAILABLE, EVENT_STUCK, INVALID_DEPOT, MALFORMED_PAYLOAD, MISSING_TAX_MAPPING, REFUND_PENDING,
    TOTAL_MISMATCH, UNKNOWN_SKU,
)

# --- small caches of ERP facts that rarely change (positive answers only) ------------------------

_known_items = TtlCache(ttl=300)
_depots = TtlCache(ttl=60)


def erp_caches_clear() -> None:
    _known_items.clear()
    _depots.clear()


# --- processing an inbound event ----------------------------------------------------------------

def _post_states(connection) -> set[str]:
    if connection.platform == Platform.SHOPIFY:
        return {s.lower() for s in settings.SHOPIFY_POST_ON_FINANCIAL_STATUSES}
    return {s.lower() for s in settings.COMMERCETOOLS["post_on_payment_states"]}


def _is_payment_done(link: OrderLink) -> bool:
    return link.payment_state.lower() in _post_states(link.connection)


def _timeline(order: OrderLink, kind: str, message: str = "", event: InboundEvent | None = None) -> None:
    OrderEvent.objects.create(order=order, kind=kind, message=message, event=event)


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


def _event_payload_order(event: InboundEvent) -> dict:
    """The full order for an event: webhooks and polls carry it; some commercetools messages do not."""
    payload = event.payload
    if event.topic.startswith("message/"):
        if isinstance(payload.get("order"), dict):
            return payload["order"]
        return get_storefront(event.connection).get_order(event.resource_id)
    return payload


def inbound_event_process(*, event_id: int) -> str:
    """Apply one stored event to its order link, then post the order if it is ready."""
    event = InboundEvent.objects.select_related("connection").filter(pk=event_id).first()
    if event is None:
        return "missing"
    # An event that carries its order is claimed inside the transaction that applies it (one write);
    # one that needs the order fetched from the storefront is claimed first, outside any transaction.
    fetch = event.topic.startswith("message/") and not isinstance(event.payload.get("order"), dict)
    if fetch and not _claim_event(event_id):
        return _post_after_replay(event_id)
    try:
        raw_order = _event_payload_order(event)
        order = order_from_payload(event.connection, raw_order)
    except ValueError as exc:
        if not fetch and not _claim_event(event_id):
            return _post_after_replay(event_id)
        _event_failed_malformed(event, str(exc))
        return "malformed"
    except (TransientError, PermanentError) as exc:
        InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.FAILED, last_error=str(exc))
        raise  # the task is retried by django-q2; the event stays stored
    applied = _apply_order(event, order, raw_order, claim=not fetch)
    if applied is None:
        return _post_after_replay(event_id)
    link, ready = applied
    # A malformed-payload exception about this event is cleared now that it was read.
    for record in ExceptionRecord.objects.filter(
        type_code=MALFORMED_PAYLOAD.code, retry_args__event_id=event.pk, status__in=ExceptionRecord.ACTIVE_STATUSES
    ):
        exception_resolve(record=record, note="The event was read successfully.", action="auto_resolved")
    if ready:
        return order_post_to_erp(order_id=link.pk)
    return link.state


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
    """Drift check: orders whose posting worker died (claim lease expired) are posted again."""
    stale = OrderLink.objects.filter(
        state=OrderLink.State.POSTING, posting_started_at__lt=timezone.now() - CLAIM_LEASE
    ).values_list("pk", flat=True)
    return sum(order_post_to_erp(order_id=pk) == "posted" for pk in list(stale[:500]))


def _event_failed_malformed(event: InboundEvent, error: str) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(
        status=InboundEvent.Status.FAILED, last_error=error, processed_at=timezone.now()
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
        last_error=error,
    )


def _apply_order(event: InboundEvent, order: StorefrontOrder, raw_order: dict, *, claim: bool
                 ) -> tuple[OrderLink, bool] | None:
    """Upsert the link from this event. Returns (link, ready_to_post), or None when another worker
    has the event. An older payload never wins."""
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
            link.currency = order.currency
            link.payment_state = order.payment_state
            link.source_updated_at = order.updated_at
            if order.total is not None:
                try:
                    link.total_minor = to_minor_units(order.total, order.currency)
                except ValueError:
                    link.total_minor = None
        ready = False
        if link.state in (OrderLink.State.POSTED, OrderLink.State.POSTING):
            pass  # later updates never re-post
        elif order.cancelled and not stale:
            if link.state != OrderLink.State.CANCELLED:
                link.state = OrderLink.State.CANCELLED
                _timeline(link, OrderEvent.Kind.CANCELLED, "Cancelled in the storefront before it was posted", event)
        elif _is_payment_done(link):
            ready = True  # also for a FAILED order: a newer payload may fix it; posting re-checks all
        elif link.state != OrderLink.State.WAITING_PAYMENT:
            link.state = OrderLink.State.WAITING_PAYMENT
            _timeline(link, OrderEvent.Kind.WAITING_PAYMENT,
                      f"Payment is {link.payment_state or 'unknown'}; the order posts once it is captured or authorised")
        link.save()
        InboundEvent.objects.filter(pk=event.pk).update(
            status=InboundEvent.Status.DONE, processed_at=timezone.now(), last_error=""
        )
    return link, ready


# --- posting an order to the ERP ----------------------------------------------------------------

@dataclass
class Problem:
    exc_type: ExceptionType
    key: str
    fingerprint: str
    message: str
    context: dict
    sku: str = ""


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


def order_post_to_erp(*, order_id: int, erp=None) -> str:
    """Post one order. Safe to run twice: claimed by a conditional update; the ERP is asked first."""
    link = OrderLink.objects.select_related("connection").get(pk=order_id)
    if link.state == OrderLink.State.POSTED:
        return "posted"
    if not _is_payment_done(link):
        return "waiting_payment"
    with transaction.atomic():
        if not _claim_order(order_id):
            return "taken"
        _timeline(link, OrderEvent.Kind.POSTING, "Posting to the ERP")
    link.refresh_from_db()
    erp = erp or get_erp()
    try:
        order = order_from_payload(link.connection, link.payload)
        existing = erp.find_sales_order(link.external_reference)
        if existing is not None:
            _record_posted(link, existing.id, link.erp_customer_id, link.erp_payload, Decimal(0),
                           OrderEvent.Kind.LINKED_EXISTING,
                           f"The ERP already had Sales Order {existing.id} for {link.external_reference}")
            return "posted"
        request, rounding = _translate(link, order, erp)
        customer_id = _ensure_customer(link, order, erp)
        request = ErpSalesOrderRequest(**{**request.__dict__, "customer_id": customer_id})
        erp_order_id, write_id = _create_sales_order(link, request, erp)
    except OrderNotReady as exc:
        _order_failed(link, exc.problems, str(exc))
        return "failed"
    except ValueError as exc:
        _order_failed(link, [Problem(MALFORMED_PAYLOAD, f"order:{link.pk}", f"{link.connection.code}:order",
                                     f"Order {link} cannot be read: {exc}", {"storefront": link.connection.name})], str(exc))
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
    _record_posted(link, erp_order_id, customer_id, _request_as_dict(request), rounding, OrderEvent.Kind.POSTED,
                   f"Sales Order {erp_order_id} created for {link.external_reference}"
                   + (f"; rounding difference {rounding} {link.currency}" if rounding else ""), write_id=write_id)
    _push_stock_for(link, request)
    return "posted"


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


def _record_posted(link, erp_order_id, customer_id, erp_payload, rounding, kind, message, write_id=None) -> None:
    with transaction.atomic():
        if write_id:
            ErpWrite.objects.filter(pk=write_id).update(status=ErpWrite.Status.SUCCEEDED, response_id=erp_order_id,
                                                        finished_at=timezone.now())
        OrderLink.objects.filter(pk=link.pk).update(
            state=OrderLink.State.POSTED, erp_order_id=erp_order_id, erp_customer_id=customer_id or "",
            erp_payload=erp_payload or {}, rounding_difference=rounding, posted_at=timezone.now(), last_error="",
            next_retry_at=None, auto_retries=0,
        )
        _timeline(link, kind, message)
    exceptions_resolve_for_order(order=link, note=f"Order posted to the ERP as {erp_order_id}.")


# Automatic re-posts after a transient failure: 1, 2, 4 … minutes apart, at most an hour.
AUTO_RETRY_BASE = timedelta(minutes=1)
AUTO_RETRY_MAX = timedelta(hours=1)


def auto_retry_delay(attempt: int) -> timedelta:
    return min(AUTO_RETRY_BASE * (2 ** max(attempt, 0)), AUTO_RETRY_MAX)


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
    for p in problems:
        context = {"order_number": str(link), "storefront": link.connection.name, **p.context}
        record = exception_raise(
            exc_type=p.exc_type, key=f"{p.key}", fingerprint=p.fingerprint, message=p.message,
            context=context, order=link, sku=p.sku, retry_args={"order_id": link.pk}, last_error=error[:2000],
        )
        keys.add(record.key)
    # Whatever this attempt no longer finds (e.g. one of two SKUs now mapped) is resolved.
    for record in ExceptionRecord.objects.filter(order=link, status__in=ExceptionRecord.ACTIVE_STATUSES).exclude(key__in=keys):
        exception_resolve(record=record, note="No longer found when the order was retried.", action="auto_resolved")


def _request_as_dict(request: ErpSalesOrderRequest) -> dict:
    data = dict(request.__dict__)
    data["lines"] = [dict(line.__dict__) for line in request.lines]
    return data


def _rounding_mode() -> str:
    return settings.ORDERS.get("rounding", "ROUND_HALF_EVEN")


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=_rounding_mode())


def _item_exists(erp, code: str) -> bool:
    if _known_items.get(code):
        return True
    exists = erp.item_exists(code)
    if exists:
        _known_items.put(code, True)
    return exists


def _erp_depots(erp) -> set[str]:
    depots = _depots.get("all")
    if depots is None:
        depots = set(erp.list_depots())
        _depots.put("all", depots)
    return depots


def _translate(link: OrderLink, order: StorefrontOrder, erp) -> tuple[ErpSalesOrderRequest, Decimal]:
    """Storefront order -> ERP Sales Order request, checking every mapping. Raises OrderNotReady."""
    connection = link.connection
    currency = order.currency
    problems: list[Problem] = []
    lines: list[ErpSalesOrderLine] = []
    rounding = Decimal(0)
    number = str(link)

    # Duplicate SKU across products: the same SKU on two different storefront products.
    products_by_sku: dict[str, set[str]] = {}
    for line in order.lines:
        if line.sku and line.product_id:
            products_by_sku.setdefault(line.sku, set()).add(line.product_id)
    for sku, products in products_by_sku.items():
        if len(products) > 1:
            problems.append(Problem(DUPLICATE_SKU, f"order:{link.pk}:{sku}", sku,
                                    f"SKU {sku} on order {number} belongs to {len(products)} storefront products "
                                    f"({', '.join(sorted(products))}): give each its own SKU, then retry.",
                                    {"sku": sku, "products": sorted(products)}, sku))

    def tax_code_for(tax_lines, category, what) -> tuple[str, Decimal]:
        codes, amount = [], Decimal(0)
        for tax in tax_lines:
            code = resolve_tax_code(connection, rate=tax.rate, country=order.country, category=tax.title or category)
            amount += tax.amount
            if code is None:
                pct = (tax.rate * 100).normalize()
                problems.append(Problem(
                    MISSING_TAX_MAPPING, f"order:{link.pk}:tax:{tax.rate}:{order.country}",
                    f"{tax.rate}:{order.country}",
                    f"Tax rate {pct}% ({tax.title or 'untitled'}) in {order.country or 'no country'} on {what} of "
                    f"order {number} has no ERP tax code: add it under Mappings → Tax codes, then retry.",
                    {"rate": str(tax.rate), "rate_percent": str(pct), "country": order.country or "—",
                     "tax_title": tax.title},
                ))
            else:
                codes.append(code)
        return "+".join(dict.fromkeys(codes)), amount

    def add_line(item_code, description, quantity, exact_total, tax_code, tax_amount, kind):
        nonlocal rounding
        total = _round(exact_total, currency)
        rounding += exact_total - total
        unit = _round(exact_total / quantity, currency) if quantity else total
        lines.append(ErpSalesOrderLine(
            item_code=item_code, description=description[:200], quantity=quantity,
            unit_price=format_amount(unit, currency), line_total=format_amount(total, currency),
            tax_code=tax_code, tax_amount=format_amount(_round(tax_amount, currency), currency), kind=kind,
        ))

    custom_item = settings.ORDERS["default_custom_item"]
    for index, line in enumerate(order.lines):
        what = f"line {index + 1} ({line.sku or line.name})"
        tax_code, tax_amount = tax_code_for(line.tax_lines, line.tax_category, what)
        exact = line.unit_price * line.quantity
        if not line.sku:
            if not _item_exists(erp, custom_item):
                problems.append(Problem(UNKNOWN_SKU, f"order:{link.pk}:{custom_item}", custom_item,
                                        f"Custom line '{line.name}' on order {number} uses the default item "
                                        f"{custom_item}, which the ERP does not have: create it, then retry.",
                                        {"sku": custom_item}, custom_item))
            add_line(custom_item, line.name, line.quantity, exact, tax_code, tax_amount, "item")
        else:
            resolved = resolve_sku(connection, line.sku)
            targets = []
            if resolved is None:
                problems.append(Problem(UNKNOWN_SKU, f"order:{link.pk}:{line.sku}", line.sku,
                                        f"SKU {line.sku} on order {number} is mapped as inactive: activate or "
                                        "correct it under Mappings → SKUs, then retry.", {"sku": line.sku}, line.sku))
            elif resolved.components:
                targets = [(code, qty * line.quantity) for code, qty in resolved.components]
            else:
                targets = [(resolved.erp_item_code, line.quantity)]
            missing = [code for code, _ in targets if not _item_exists(erp, code)]
            if missing:
                detail = "has no ERP item" if missing == [line.sku] else f"maps to {', '.join(missing)}, which the ERP does not have"
                problems.append(Problem(UNKNOWN_SKU, f"order:{link.pk}:{line.sku}", line.sku,
                                        f"SKU {line.sku} on order {number} {detail}: add it under Mappings → SKUs, "
                                        "then retry.", {"sku": line.sku, "missing_items": missing}, line.sku))
            if targets:
                _add_kit_or_item_lines(add_line, line, targets, exact, tax_code, tax_amount)
        if line.discount:
            add_line(settings.ORDERS["discount_item"], f"Discount on {line.sku or line.name}", 1,
                     -line.discount, tax_code, Decimal(0), "discount")
    for ship in order.shipping:
        tax_code, tax_amount = tax_code_for(ship.tax_lines, ship.tax_category, f"shipping '{ship.name}'")
        add_line(settings.ORDERS["shipping_item"], ship.name or "Shipping", 1, ship.unit_price * ship.quantity,
                 tax_code, tax_amount, "shipping")
        if ship.discount:
            add_line(settings.ORDERS["discount_item"], f"Shipping discount ({ship.name})", 1, -ship.discount,
                     tax_code, Decimal(0), "discount")
    if order.order_discount:
        add_line(settings.ORDERS["discount_item"], "Order discount", 1, -order.order_discount, "", Decimal(0), "discount")

    depot = resolve_depot(connection, country=order.country, location=order.location) or settings.ORDERS["default_depot"]
    if not depot:
        problems.append(Problem(INVALID_DEPOT, f"order:{link.pk}:depot", f"none:{order.country}",
                                f"No depot is mapped for {link.connection.name} orders shipping to "
                                f"{order.country or 'an unknown country'} (order {number}): add one under "
                                "Mappings → Depots, then retry.", {"country": order.country, "order_number": number}))
    elif depot not in _erp_depots(erp):
        problems.append(Problem(INVALID_DEPOT, f"order:{link.pk}:depot", depot,
                                f"Depot {depot} mapped for order {number} is not an ERP depot: correct it under "
                                "Mappings → Depots, then retry.", {"depot": depot, "order_number": number}))
    if problems:
        raise OrderNotReady(problems)
    total = sum((Decimal(line.line_total) for line in lines), Decimal(0))
    request = ErpSalesOrderRequest(
        external_reference=link.external_reference, customer_id="", currency=currency, depot=depot,
        order_date=(order.created_at or timezone.now()).date().isoformat(), lines=tuple(lines),
        total=format_amount(total, currency), customer_reference=order.order_number,
        prices_include_tax=bool(order.extra.get("taxes_included")),
    )
    return request, rounding


def _add_kit_or_item_lines(add_line, line, targets, exact, tax_code, tax_amount) -> None:
    """One ERP line per item; a kit's price is split over its components by units, exactly."""
    if len(targets) == 1:
        code, qty = targets[0]
        add_line(code, line.name, qty, exact, tax_code, tax_amount, "item")
        return
    units = sum(qty for _, qty in targets)
    remaining, remaining_tax = exact, tax_amount
    for i, (code, qty) in enumerate(targets):
        last = i == len(targets) - 1
        share = remaining if last else exact * qty / units
        tax_share = remaining_tax if last else tax_amount * qty / units
        remaining -= share
        remaining_tax -= tax_share
        add_line(code, f"{line.name} (kit {line.sku})", qty, share, tax_code, tax_share, "item")


def _customer_reference(link: OrderLink, order: StorefrontOrder) -> str:
    return f"{link.connection.code}:customer:{order.customer_storefront_id or order.customer_email.lower()}"


def _ensure_customer(link: OrderLink, order: StorefrontOrder, erp) -> str:
    """Match by storefront id, then e-mail; create when there is none. Conflicts become exceptions."""
    reference = _customer_reference(link, order)
    by_ref = erp.find_customers(external_reference=reference)
    if len(by_ref) == 1:
        return by_ref[0].id
    email = order.customer_email.strip().lower()
    by_email = erp.find_customers(email=email) if email else []
    others = [c for c in by_email if c.external_reference and c.external_reference != reference]
    if len(by_ref) > 1 or len(by_email) > 1 or others:
        accounts = sorted({c.id for c in [*by_ref, *by_email]})
        raise OrderNotReady([Problem(
            CUSTOMER_CONFLICT, f"order:{link.pk}:customer", f"customer:{email}",
            f"Customer {email or reference} on order {link} matches ERP accounts {', '.join(accounts)}: "
            "merge or correct them in the ERP, then retry.",
            {"email": email, "erp_accounts": accounts, "reference": reference},
        )])
    if by_email:
        _timeline(link, OrderEvent.Kind.CUSTOMER_MATCHED, f"Matched ERP customer {by_email[0].id} by e-mail {email}")
        return by_email[0].id
    write = ErpWrite.objects.create(order=link, action="create_customer", external_reference=reference)
    try:
        customer = erp.create_customer(email=email, name=order.customer_name or email, external_reference=reference,
                                       country=order.country)
    except Exception as exc:
        ErpWrite.objects.filter(pk=write.pk).update(status=ErpWrite.Status.FAILED, error=str(exc)[:2000],
                                                    finished_at=timezone.now())
        if isinstance(exc, PermanentError) and getattr(exc, "status", None) == 409:
            again = erp.find_customers(external_reference=reference)  # created by a concurrent worker
            if again:
                return again[0].id
        raise
    ErpWrite.objects.filter(pk=write.pk).update(status=ErpWrite.Status.SUCCEEDED, response_id=customer.id,
                                                finished_at=timezone.now())
    _timeline(link, OrderEvent.Kind.CUSTOMER_CREATED, f"Created ERP customer {customer.id} for {email}")
    return customer.id


def _create_sales_order(link: OrderLink, request: ErpSalesOrderRequest, erp) -> tuple[str, int]:
    # The attempt row is committed before the call: a crash after the ERP accepted is visible, and
    # the replay finds the order by its external reference instead of creating a second one.
    write = ErpWrite.objects.create(order=link, action="create_sales_order", external_reference=request.external_reference)
    try:
        created = erp.create_sales_order(request)
    except Exception as exc:
        ErpWrite.objects.filter(pk=write.pk).update(status=ErpWrite.Status.FAILED, error=str(exc)[:2000],
                                                    finished_at=timezone.now())
        raise
    return created.id, write.pk  # the attempt is marked succeeded together with the link


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


def retry_event_exception(record) -> bool:
    event_id = record.retry_args.get("event_id")
    if not event_id:
        return False
    InboundEvent.objects.filter(pk=event_id).exclude(status=InboundEvent.Status.DONE).update(
        status=InboundEvent.Status.PENDING
    )
    inbound_event_process(event_id=event_id)
    return InboundEvent.objects.filter(pk=event_id, status=InboundEvent.Status.DONE).exists()
