"""commercetools messages applied in sequenceNumber order per resource (delivery is at-least-once and
unordered). The orders flow asks `message_admit` before it applies a commercetools event and tells
`message_applied` (inside the apply's transaction) what it applied:

- a message older than the last one applied, or about a resource version already applied in full,
  changes nothing (it is marked done);
- the next message in sequence is applied; one that arrives after a gap (3 before 2) is held, stored
  and pending, until the missing one is applied (then it is queued) or, after the gap timeout
  (the connection's `ct_message_gap_seconds`, else CT_MESSAGE_GAP_SECONDS, 60 s), applied from the
  order fetched as it is now (which covers the missing ones). The orders sweep re-runs pending
  events (after its own two-minute wait), so a held message is never left behind;
- a message stored for another flow (refunds) or for none leaves no gap: it was delivered;
- change notifications (ResourceCreated/Updated) name no sequence: the order is fetched.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import CommercetoolsResourceSequence, InboundEvent
from .ct_delivery import payload_included
from .routing import ORDERS, flow_for

log = logging.getLogger("ledgerline.inbox.ct_ordering")

DEFAULT_GAP_SECONDS = 60


@dataclass(frozen=True)
class Admission:
    """What to do with one event: `outcome` set ("held", "stale") means stop here, nothing is applied;
    otherwise apply it, from the order fetched as it is now when `fetch`."""

    outcome: str = ""
    fetch: bool = False


APPLY = Admission()
HELD = Admission(outcome="held")
STALE = Admission(outcome="stale")


def gap_timeout(connection) -> timedelta:
    """How long a message waits for a missing one: the connection's `ct_message_gap_seconds` (short for
    a Subscription that filters message types, whose sequence has holes), else CT_MESSAGE_GAP_SECONDS."""
    seconds = (connection.settings or {}).get("ct_message_gap_seconds")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        seconds = getattr(settings, "CT_MESSAGE_GAP_SECONDS", DEFAULT_GAP_SECONDS)
    return timedelta(seconds=seconds)


def _ordered(event: InboundEvent) -> bool:
    return event.connection.kind == "commercetools" and event.topic.startswith(("message/", "change/"))


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _row(event: InboundEvent) -> CommercetoolsResourceSequence:
    """The resource's row, locked until the transaction ends (created on its first message)."""
    row, _ = CommercetoolsResourceSequence.objects.get_or_create(
        connection_id=event.connection_id, resource_type="order", resource_id=event.resource_id)
    return CommercetoolsResourceSequence.objects.select_for_update().get(pk=row.pk)


def _covered(row: CommercetoolsResourceSequence, sequence: int | None, version: int | None) -> bool:
    return ((sequence is not None and sequence <= row.applied_sequence)
            or (version is not None and version <= row.covered_version))


def _mark_done(event_ids: list[int]) -> None:
    if event_ids:
        InboundEvent.objects.filter(pk__in=event_ids).exclude(status=InboundEvent.Status.DONE).update(
            status=InboundEvent.Status.DONE, processed_at=timezone.now(), last_error="")


@dataclass(frozen=True)
class _Stored:
    sequence: int
    version: int | None
    pk: int
    status: str
    ours: bool  # applied by the orders flow (not the refunds flow's, not ignored)


def _stored(row: CommercetoolsResourceSequence, kind: str, *, besides: int) -> list[_Stored]:
    """The resource's stored messages but one, by sequenceNumber."""
    found = []
    for pk, topic, status, message in (InboundEvent.objects.filter(
            connection_id=row.connection_id, resource_id=row.resource_id, topic__startswith="message/")
            .exclude(pk=besides).values_list("pk", "topic", "status", "payload")):
        message = message if isinstance(message, dict) else {}
        sequence = _whole(message.get("sequenceNumber"))
        if sequence is not None:
            found.append(_Stored(sequence, _whole(message.get("resourceVersion")), pk, status,
                                 flow_for(kind, topic) == ORDERS))
    return sorted(found, key=lambda m: m.sequence)


def _advance(row: CommercetoolsResourceSequence, stored: list[_Stored], *, before: int | None = None
             ) -> tuple[int | None, bool]:
    """Move the row over what needs no applying (messages it covers, done, or another flow's: those
    were delivered, so they leave no gap) up to `before`. Returns (the next message to apply if it is
    pending, whether a gap is open)."""
    done = []
    nxt, gap = None, False
    for m in stored:
        if before is not None and m.sequence >= before:
            break
        pending = m.ours and m.status == InboundEvent.Status.PENDING
        if m.sequence <= row.applied_sequence or (pending and _covered(row, None, m.version)):
            if pending:
                done.append(m.pk)
            row.applied_sequence = max(row.applied_sequence, m.sequence)
            continue
        if not m.ours or m.status == InboundEvent.Status.DONE:
            if m.sequence == row.applied_sequence + 1:
                row.applied_sequence = m.sequence
                continue
            gap = True
            break
        if m.sequence == row.applied_sequence + 1:
            nxt = m.pk if pending else None  # processing or failed: it is applied, or retried, first
            break
        gap = True
        break
    _mark_done(done)
    return nxt, gap


def _release(row: CommercetoolsResourceSequence, kind: str, *, besides: int) -> None:
    """After the row moved on: held messages it covers are done, the next in sequence is queued, and a
    gap still open starts its wait now. Saves the row."""
    queued, gap = _advance(row, _stored(row, kind, besides=besides))
    row.waiting_since = timezone.now() if gap else None
    row.save(update_fields=["applied_sequence", "covered_version", "waiting_since", "updated_at"])
    if queued is not None:
        from .store import enqueue_event

        transaction.on_commit(lambda: enqueue_event(queued))


def message_admit(*, event: InboundEvent) -> Admission:
    """Apply, hold or drop one stored event (APPLY for anything but a commercetools message)."""
    if not _ordered(event) or event.status == InboundEvent.Status.DONE:
        return APPLY  # a replay of a done event goes the flow's own way (post after replay)
    message = event.payload if isinstance(event.payload, dict) else {}
    kind = event.connection.kind
    if event.topic.startswith("change/"):
        with transaction.atomic():
            if _covered(_row(event), None, _whole(message.get("version"))):
                _mark_done([event.pk])
                return STALE
        return Admission(fetch=True)
    sequence = _whole(message.get("sequenceNumber"))
    fetch = not payload_included(message)
    if sequence is None:
        return Admission(fetch=fetch)  # nothing to order it by: applied as it comes
    now = timezone.now()
    timeout = gap_timeout(event.connection)
    with transaction.atomic():
        row = _row(event)
        stored = _stored(row, kind, besides=event.pk)
        _advance(row, stored, before=sequence)
        if _covered(row, sequence, _whole(message.get("resourceVersion"))):
            _mark_done([event.pk])
            row.applied_sequence = max(row.applied_sequence, sequence)
            _release(row, kind, besides=event.pk)
            return STALE
        if sequence == row.applied_sequence + 1:
            row.save(update_fields=["applied_sequence", "updated_at"])
            return Admission(fetch=fetch)
        if row.waiting_since is None:
            row.waiting_since = now
        row.save(update_fields=["applied_sequence", "waiting_since", "updated_at"])
        if now - row.waiting_since < timeout:
            InboundEvent.objects.filter(pk=event.pk, status=InboundEvent.Status.PENDING).update(
                last_error=f"held: sequenceNumber {sequence} waits for {row.applied_sequence + 1} "
                           f"(at most {int(timeout.total_seconds())} s)")
            return HELD
    log.info("commercetools %s: messages %s..%s of order %s never came; applying the order as it is now",
             event.connection.code, row.applied_sequence + 1, sequence - 1, event.resource_id)
    return Admission(fetch=True)


def message_applied(*, event: InboundEvent, raw_order: dict) -> None:
    """Inside the transaction that applied `event`: its sequence and the order version it carried are
    applied; what that covers of the held messages is done, and the next one is queued."""
    if event.connection.kind != "commercetools" or not (_ordered(event) or event.topic == "order/poll"):
        return
    message = event.payload if isinstance(event.payload, dict) else {}
    row = _row(event)
    sequence = _whole(message.get("sequenceNumber")) if event.topic.startswith("message/") else None
    version = _whole(raw_order.get("version")) if isinstance(raw_order, dict) else None
    if sequence is not None:
        row.applied_sequence = max(row.applied_sequence, sequence)
    if version is not None:
        row.covered_version = max(row.covered_version, version)
    _release(row, event.connection.kind, besides=event.pk)
