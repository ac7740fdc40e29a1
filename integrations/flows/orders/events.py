"""Applying stored inbound events to their order links (claim, translate, upsert, move the state on)."""
from __future__ import annotations

from django.db import DatabaseError, IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from exceptions_queue.models import ExceptionRecord
from exceptions_queue.services import exception_raise, exception_resolve
from integrations.connectors import get_storefront
from integrations.connectors.base import PermanentError, TransientError
from integrations.domain import StorefrontOrder, to_minor_units
from integrations.inbox.ct_ordering import message_admit, message_applied
from integrations.inbox.store import CARRIER_TOPICS, insert_row, prepared_value
from integrations.models import InboundEvent, OrderEvent, OrderLink

from .common import CLAIM_LEASE, MAX_MINOR, PAYLOAD_ERRORS, log, timeline_add, timeline_together, translate_payload
from .connection_settings import OrderSettings, connection_settings
from .exception_types import EVENT_STUCK, MALFORMED_PAYLOAD
from .state import set_state
from .statements import first_row
from .after_posting import after_posting_changes, order_cancel_in_erp
from .posting import order_post_to_erp


def _claim_event_done(event_id: int) -> bool:
    """_claim_event(done=True) as one prepared statement: it runs for every event, and building it
    through the ORM cost more CPU than the database spends on it."""
    now = timezone.now()
    db = connections[router.db_for_write(InboundEvent)]
    stamp, lease = db.ops.adapt_datetimefield_value(now), db.ops.adapt_datetimefield_value(now - CLAIM_LEASE)
    S = InboundEvent.Status
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {InboundEvent._meta.db_table} SET status = %s, processed_at = %s, last_error = '', "
            "claimed_at = %s, attempts = attempts + 1 WHERE id = %s AND (status IN (%s, %s) OR "
            "(status = %s AND claimed_at < %s))",
            [S.DONE, stamp, stamp, event_id, S.PENDING, S.FAILED, S.PROCESSING, lease])
        return cursor.rowcount == 1


def _claim_event(event_id: int, *, done: bool = False) -> bool:
    """Claim the event by a conditional update. done=True inside the transaction that applies it:
    claimed and marked done in one write (a rollback undoes both, so no one sees it half-done)."""
    if done:
        return _claim_event_done(event_id)
    now = timezone.now()
    claimable = Q(status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]) | Q(
        status=InboundEvent.Status.PROCESSING, claimed_at__lt=now - CLAIM_LEASE
    )
    marks = dict(status=InboundEvent.Status.DONE, processed_at=now, last_error="") if done else dict(
        status=InboundEvent.Status.PROCESSING)
    return bool(
        InboundEvent.objects.filter(claimable, pk=event_id).update(claimed_at=now, attempts=F("attempts") + 1, **marks)
    )


# Events that name an order without carrying it: the order is read from the storefront.
FETCH_ORDER_TOPICS = {"orders/edited", "refunds/create"}


def _fetches_order(event: InboundEvent) -> bool:
    if event.topic in FETCH_ORDER_TOPICS:
        return True
    return event.topic.startswith("message/") and not isinstance(event.payload.get("order"), dict)


def _event_payload_order(event: InboundEvent, *, fetch_current: bool = False) -> dict:
    """The full order for an event: webhooks and polls carry it; an order edit, a refund and some
    commercetools messages only name it (and a message after a gap is read as the order is now)."""
    payload = event.payload
    if fetch_current:
        return get_storefront(event.connection).get_order(event.resource_id)
    if event.topic in FETCH_ORDER_TOPICS:
        return get_storefront(event.connection).get_order_payload(event.resource_id)
    if event.topic.startswith("message/"):
        if isinstance(payload.get("order"), dict):
            return payload["order"]
        return get_storefront(event.connection).get_order(event.resource_id)
    return payload


def inbound_event_process(*, event_id: int, event: InboundEvent | None = None, riders: bool = True) -> str:
    """Apply one stored event to its order link, then post (or cancel) the order if it is ready.
    `event` is the row as the task just read it (with its connection), else it is read here. Then
    (riders=True) the order's later events that were stored to ride with this one (no task of their
    own, integrations.inbox.store) are applied too, whatever became of this one."""
    if event is None or event.pk != event_id:
        event = InboundEvent.objects.select_related("connection").filter(pk=event_id).first()
    if event is None:
        return "missing"
    if not (riders and event.resource_id and event.topic in CARRIER_TOPICS and event.connection.kind == "shopify"):
        return _event_process(event_id, event)
    riders = RiderLook()
    try:
        return _event_process(event_id, event, riders=riders)
    finally:
        if not riders.none_waiting:
            _riders_process(event, after=riders.taken)


class RiderLook:
    """What the carrier's own transaction found of the order's next event (_unchanged_rider_take):
    `taken`, the id of the unchanged rider it applied, or `none_waiting`: no event waited, so none
    can ride with this carrier any more (an event stored later finds the carrier applied and gets
    a task of its own, integrations.inbox.store), and the look after it is spared."""

    __slots__ = ("taken", "none_waiting")

    def __init__(self):
        self.taken: int | None = None
        self.none_waiting = False


def _riders_process(carrier: InboundEvent, *, after: int | None = None) -> None:
    """Apply the carrier's order's PENDING events after it, one at a time in the order they came,
    until none is left (one may have chosen a rider as its carrier meanwhile). A rider that carries
    the order exactly as it was just applied (Shopify's orders/paid after an orders/create that was
    already paid) is only marked done, with its timeline entry (_unchanged_rider_apply); any other
    is read and applied in full. A rider that fails is left as its own task would leave it (FAILED,
    or PENDING for the sweep). `after`: the last rider already applied with the carrier itself."""
    last = after or carrier.pk
    using = router.db_for_write(InboundEvent)
    while True:
        look = _next_rider_look(carrier, last, using)
        if look is None:
            return
        rider_id, topic, link_id, payment_state, unchanged = look
        last = rider_id
        try:
            if unchanged and topic in UNCHANGED_RIDER_TOPICS and _unchanged_rider_apply(
                    rider_id, topic, link_id, payment_state, using):
                continue
            rider = first_row("orders:rider", _rider_by_id, (rider_id, InboundEvent.Status.PENDING), using)
            if rider is None:
                continue  # taken meanwhile (the sweep, or its own task after a redelivery)
            rider.connection = carrier.connection  # the same row: not read again
            _event_process(rider.pk, rider)
        except Exception:  # one rider never stops the others; the sweep re-runs it
            log.warning("order event %s (riding with %s) failed; the sweep re-runs it", rider_id, carrier.pk,
                        exc_info=True)


# Riders that change nothing when their payload is the order as already applied to a link that is
# being posted: the full apply would find every field equal, move nothing (a posting order waits
# for its answer) and add only the "updated" timeline entry. A cancellation is always applied in full.
UNCHANGED_RIDER_TOPICS = ("orders/create", "orders/paid", "orders/updated")
_rider_statements: dict[tuple[str, str], str] = {}


def _rider_statement(name: str, using: str) -> str:
    statement = _rider_statements.get((name, using))
    if statement is not None:
        return statement
    db = connections[using]
    quote = db.ops.quote_name
    events, links = quote(InboundEvent._meta.db_table), quote(OrderLink._meta.db_table)
    if name == "look":
        # The next waiting event of the order, and whether it carries exactly the payload of the
        # order's link while that is being posted (text on SQLite, jsonb on PostgreSQL: equal
        # documents compare equal), without reading either payload into Python.
        topics = ", ".join("%s" for _ in CARRIER_TOPICS)
        statement = (
            f"SELECT e.id, e.topic, l.id, l.payment_state, CASE WHEN l.payload = e.payload THEN 1 ELSE 0 END "
            f"FROM {events} e LEFT JOIN {links} l ON l.connection_id = e.connection_id "
            f"AND l.storefront_order_id = e.resource_id AND l.state = %s "
            f"WHERE e.connection_id = %s AND e.id > %s AND e.resource_id = %s AND e.status = %s "
            f"AND e.topic IN ({topics}) ORDER BY e.id LIMIT 1")
    elif name == "lock":
        statement = f"SELECT id FROM {links} WHERE id = %s FOR UPDATE"
    else:
        # Claimed and done in one write, only while the link still is posting with that payload (it
        # is checked again here, inside the transaction, not trusted from the look).
        statement = (
            f"UPDATE {events} SET status = %s, processed_at = %s, last_error = '', claimed_at = %s, "
            f"attempts = attempts + 1 WHERE id = %s AND status = %s AND attempts = 0 AND EXISTS "
            f"(SELECT 1 FROM {links} l WHERE l.id = %s AND l.state = %s AND l.payload = {events}.payload)")
    _rider_statements[(name, using)] = statement
    return statement


def _next_rider_look(carrier: InboundEvent, after: int, using: str) -> tuple | None:
    with connections[using].cursor() as cursor:
        cursor.execute(_rider_statement("look", using), (
            OrderLink.State.POSTING, carrier.connection_id, after, carrier.resource_id, InboundEvent.Status.PENDING,
            *CARRIER_TOPICS))
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], bool(row[4]))


def _unchanged_rider_apply(rider_id: int, topic: str, link_id: int, payment_state: str, using: str) -> bool:
    """What the full apply of an unchanged rider comes to, in one transaction: the event claimed and
    done, and its "updated" entry on the order's timeline. False (nothing written) when the link
    changed since the look or the event was taken: the rider is then applied in full."""
    db = connections[using]
    now = timezone.now()
    with transaction.atomic(using=using), db.cursor() as cursor:
        if db.features.has_select_for_update:  # serialised with a concurrent apply, as the full one is
            cursor.execute(_rider_statement("lock", using), (link_id,))
        if not _rider_claim(cursor, using, rider_id, link_id, now):
            return False
        insert_row(OrderEvent(order_id=link_id, at=now, kind=OrderEvent.Kind.UPDATED, event_id=rider_id,
                              message=_updated_message(topic, payment_state)), using)
    return True


def _rider_claim(cursor, using: str, rider_id: int, link_id: int, now) -> bool:
    """The rider claimed and done, while its order's link still is posting with its payload."""
    stamp = connections[using].ops.adapt_datetimefield_value(now)
    cursor.execute(_rider_statement("claim", using), (
        InboundEvent.Status.DONE, stamp, stamp, rider_id, InboundEvent.Status.PENDING, link_id,
        OrderLink.State.POSTING))
    return cursor.rowcount == 1


def _updated_message(topic: str, payment_state: str) -> str:
    return f"{topic}: payment {payment_state or 'unknown'}"


def _unchanged_rider_take(carrier: InboundEvent, link: OrderLink, using: str) -> tuple[str, int | None]:
    """Inside the carrier's own transaction, just after it claimed its order for posting: the
    order's next waiting event, when it carries exactly the payload just applied (Shopify's
    orders/paid after an orders/create that was already paid), claimed and done with its "updated"
    entry in the carrier's timeline statement, as _unchanged_rider_apply would do in a transaction
    of its own. Returns ("taken", its id); ("none", None) when no event waits; or ("other", None),
    nothing written, when the next one is not such a rider: it is applied after the carrier, as
    are any after it.

    Why "none" is final: an event rides with this carrier only if the intake saw the carrier still
    waiting, and the intake's look and this transaction's claim of the carrier are writes on the
    same row (SQLite: one writer at a time; PostgreSQL: the look is SELECT … FOR UPDATE). So such an
    event was committed before the claim, and this look, later in the same transaction, sees it."""
    look = _next_rider_look(carrier, carrier.pk, using)
    if look is None:
        return "none", None
    rider_id, topic, link_id, payment_state, unchanged = look
    if not (unchanged and topic in UNCHANGED_RIDER_TOPICS and link_id == link.pk):
        return "other", None
    with connections[using].cursor() as cursor:  # the link is locked (or was inserted) by this transaction
        if not _rider_claim(cursor, using, rider_id, link_id, timezone.now()):
            return "other", None
    timeline_add(link, OrderEvent.Kind.UPDATED, _updated_message(topic, payment_state), event_id=rider_id)
    return "taken", rider_id


def _rider_by_id(pk: int, status: str):
    return InboundEvent.objects.filter(pk=pk, status=status)


def _event_process(event_id: int, event: InboundEvent, *, riders: RiderLook | None = None) -> str:
    # commercetools messages are applied in sequenceNumber order per order: held, dropped or fetched.
    admission = message_admit(event=event)
    if admission.outcome:
        return admission.outcome
    # An event that carries its order is claimed inside the transaction that applies it (one write);
    # one that needs the order fetched from the storefront is claimed first, outside any transaction.
    fetch = admission.fetch or _fetches_order(event)
    if fetch and not _claim_event(event_id):
        return _post_after_replay(event_id)
    try:
        raw_order = _event_payload_order(event, fetch_current=admission.fetch)
        order = translate_payload(event.connection, raw_order)
        applied = _apply_order(event, order, raw_order, claim=not fetch, riders=riders)
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
    # A malformed-payload exception about this event is cleared now that it was read (an event
    # never claimed before this attempt cannot have one).
    for record in ExceptionRecord.objects.filter(
        type_code__in=[MALFORMED_PAYLOAD.code, EVENT_STUCK.code], retry_args__event_id=event.pk,
        status__in=ExceptionRecord.ACTIVE_STATUSES,
    ) if event.attempts else ():
        exception_resolve(record=record, note="The event was read successfully.", action="auto_resolved")
    if action == "post":
        return order_post_to_erp(order_id=link.pk, link=link)
    if action == "post_claimed":
        return order_post_to_erp(order_id=link.pk, link=link, claimed=True, order=order)
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


class _InsertRaced(Exception):
    """Another worker inserted this order's link first: the whole apply runs again, on that row."""


def _apply_order(event: InboundEvent, order: StorefrontOrder, raw_order: dict, *, claim: bool,
                 riders: RiderLook | None = None) -> tuple[OrderLink, str] | None:
    """Upsert the link from this event. Returns (link, next action: "post", "post_claimed", "cancel"
    or ""), or None when another worker has the event. An older payload never wins, and no event
    moves the order backwards (TRANSITIONS). With `riders`, when this event claims the order for
    posting, the order's next event is looked at in the same transaction (an unchanged rider is
    applied there, _unchanged_rider_take), and `riders` says what was found once that committed."""
    try:
        return _apply_once(event, order, raw_order, claim=claim, riders=riders)
    except _InsertRaced:  # rolled back, the event's claim with it: the second run finds the row
        return _apply_once(event, order, raw_order, claim=claim, riders=riders)


def _apply_once(event: InboundEvent, order: StorefrontOrder, raw_order: dict, *, claim: bool,
                riders: RiderLook | None = None) -> tuple[OrderLink, str] | None:
    cfg = connection_settings(event.connection)
    total_minor = _total_minor(order)
    found = None
    using = router.db_for_write(OrderLink)
    # A new link's payload is encoded now, not in the transaction (which holds the write lock). For
    # an order already linked this is spent for nothing (its update goes through save()): one encoding
    # outside the lock, against one inside it for every new order.
    ready = {"payload": prepared_value(OrderLink, "payload", raw_order, using)}
    with transaction.atomic(), timeline_together():
        if claim and not _claim_event(event.pk, done=True):
            return None
        fields = {"payload": raw_order, "order_number": order.order_number[:100],
                  "customer_email": order.customer_email[:254], "currency": order.currency[:3],
                  "payment_state": order.payment_state[:40], "source_updated_at": order.updated_at,
                  "total_minor": total_minor}
        # A new link is inserted once, in the state this event moves it to (claimed for posting included).
        link = first_row("orders:link-for-update", _link_for_update, (event.connection_id, order.storefront_order_id),
                         router.db_for_write(OrderLink))
        created = link is None
        if created:
            link = OrderLink(connection=event.connection, storefront_order_id=order.storefront_order_id, **fields)
        else:
            link.connection = event.connection  # the same row: not read again
        inserted_state = link.state
        if created:
            timeline_add(link, OrderEvent.Kind.RECEIVED, f"{event.topic} from {event.connection.name}", event)
        stale = (
            not created
            and link.source_updated_at is not None
            and order.updated_at is not None
            and order.updated_at < link.source_updated_at
        )
        action = ""
        changed = set()
        if stale:
            timeline_add(
                link, OrderEvent.Kind.STALE_IGNORED,
                f"{event.topic} carried the order as of {order.updated_at:%Y-%m-%d %H:%M:%S}; "
                f"newer state from {link.source_updated_at:%Y-%m-%d %H:%M:%S} is kept",
                event,
            )
        else:
            if not created:
                timeline_add(link, OrderEvent.Kind.UPDATED, _updated_message(event.topic, order.payment_state), event)
                changed = {name for name, value in fields.items() if getattr(link, name) != value}
            for name, value in fields.items():
                setattr(link, name, value)
            action = _next_state(link, order, cfg, event)
            if action == "post" and _claim_here(link):
                action = "post_claimed"
        if created:
            # A concurrent event of the same order may have inserted it: no savepoint, as nothing
            # more runs in this transaction; leaving the block rolls it back and _apply_order runs
            # it again on that row.
            try:
                insert_row(link, using, ready=ready)
            except IntegrityError:
                raise _InsertRaced from None
        else:
            if link.state != inserted_state:
                changed |= {"state", "posting_started_at"}
            if changed:
                link.save(update_fields=[*sorted(changed), "updated_at"])
        if riders is not None and action == "post_claimed":
            found = _unchanged_rider_take(event, link, router.db_for_write(InboundEvent))
        message_applied(event=event, raw_order=raw_order)
        if not claim:  # claimed earlier (PROCESSING) while its order was fetched: done now
            InboundEvent.objects.filter(pk=event.pk).update(
                status=InboundEvent.Status.DONE, processed_at=timezone.now(), last_error=""
            )
    if found is not None:  # committed
        riders.none_waiting, riders.taken = found[0] == "none", found[1]
    if not stale and link.state in OrderLink.IN_ERP and action == "":
        after_posting_changes(link, order, event)
    return link, action


def _link_for_update(connection_id: int, storefront_order_id: str):
    return OrderLink.objects.select_for_update().filter(connection_id=connection_id,
                                                        storefront_order_id=storefront_order_id)


def _claim_here(link: OrderLink) -> bool:
    """Claim the order for posting in the transaction that applied the event (the row is locked):
    one write instead of a second transaction. Claimable as posting.claim_order says."""
    if not link.connection.active:
        return False  # posting says "inactive"; reactivating the connection lets the sweep post
    now = timezone.now()
    if link.state not in (OrderLink.State.RECEIVED, OrderLink.State.WAITING_PAYMENT, OrderLink.State.FAILED) and not (
            link.state == OrderLink.State.POSTING and link.posting_started_at
            and link.posting_started_at < now - CLAIM_LEASE):
        return False
    link.first_attempt = link.state == OrderLink.State.RECEIVED
    link.state, link.posting_started_at = OrderLink.State.POSTING, now
    timeline_add(link, OrderEvent.Kind.POSTING, "Posting to the ERP")
    return True


def _next_state(link: OrderLink, order: StorefrontOrder, cfg: OrderSettings, event: InboundEvent) -> str:
    """Move the (locked) link on from this newer payload; returns the work to do after commit."""
    cancelled = order.cancelled or cfg.cancels(order.payment_state)
    state = link.state
    if state == OrderLink.State.CANCELLED:
        return ""  # final: a late event never reopens a cancelled order
    if state in OrderLink.IN_ERP or state == OrderLink.State.POSTING:
        if cancelled and state in OrderLink.IN_ERP and state != OrderLink.State.REFUNDED:
            return "cancel"  # once (partly) dispatched the ERP refuses, and ops own what was shipped
        return ""  # later updates never re-post; edits and refunds are looked at after commit
    if cancelled:
        set_state(link, OrderLink.State.CANCELLED, OrderEvent.Kind.CANCELLED,
                   "Cancelled in the storefront before it was posted"
                   + (f" (payment {order.payment_state})" if cfg.cancels(order.payment_state) else ""), event)
        return ""
    if order.is_test and not cfg.post_test_orders:
        set_state(link, OrderLink.State.TEST, OrderEvent.Kind.TEST_ORDER,
                   "Test order: not posted (this connection does not post test orders)", event)
        return ""
    if state == OrderLink.State.TEST:
        return ""
    if cfg.releases(order.payment_state):
        return "post"  # also for a FAILED order: a newer payload may fix it; posting re-checks all
    if state in (OrderLink.State.RECEIVED,):
        set_state(link, OrderLink.State.WAITING_PAYMENT, OrderEvent.Kind.WAITING_PAYMENT,
                   f"Payment is {link.payment_state or 'unknown'}; the order posts once it is captured or authorised",
                   event)
    return ""
