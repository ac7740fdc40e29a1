"""The inbox: store an inbound event durably (unique on the vendor's id), then queue its task."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction

from .models import InboundEvent, StorefrontConnection


@dataclass(frozen=True)
class InboxResult:
    event: InboundEvent
    created: bool


def inbound_event_store(
    *,
    connection: StorefrontConnection,
    topic: str,
    external_id: str,
    payload,
    resource_id: str = "",
    event_id: str = "",
    triggered_at: datetime | None = None,
    headers: dict | None = None,
) -> InboxResult:
    """Insert the event, or find the one already stored under the same vendor id (a redelivery)."""
    try:
        with transaction.atomic():  # on SQLite, queued behind other writers (config/sqlite_queue)
            event = InboundEvent.objects.create(
                connection=connection,
                topic=topic,
                external_id=external_id,
                payload=payload,
                resource_id=resource_id,
                event_id=event_id,
                triggered_at=triggered_at,
                headers=headers or {},
            )
            _enqueue_with(event.pk)
    except IntegrityError:
        existing = InboundEvent.objects.get(connection=connection, external_id=external_id)
        return InboxResult(existing, False)
    return InboxResult(event, True)


def _enqueue_with(event_id: int) -> None:
    """With django-q2's ORM broker the task row is written in the event's own transaction: both are
    stored or neither (one write per webhook). Other brokers, and sync mode, queue after the commit."""
    from django_q.conf import Conf

    if Conf.ORM and not Conf.SYNC:
        enqueue_event(event_id)
    else:
        transaction.on_commit(lambda: enqueue_event(event_id))


def enqueue_event(event_id: int) -> None:
    from django_q.tasks import async_task

    # group by nothing: any worker may take it; the task itself is idempotent.
    async_task("integrations.tasks.process_inbound_event", event_id, task_name=f"event-{event_id}")
