"""django-q2 entry points: load by id, call the flow, record the outcome. No business logic here."""
from __future__ import annotations

import logging

log = logging.getLogger("ledgerline.tasks")


def process_inbound_event(event_id: int) -> str:
    # Safe twice: the event is claimed with a conditional update by its flow; the ERP order carries
    # the storefront order id as its external reference and is looked up before it is created.
    from .models import InboundEvent
    from .inbox.routing import handle

    event = InboundEvent.objects.select_related("connection").filter(pk=event_id).first()
    return "missing" if event is None else handle(event_id, event.connection.kind, event.topic, event=event)


def process_stored_event(connection_id: int, external_id: str) -> str:
    # As process_inbound_event, for the task the inbox writes with the event (it names the event by
    # its unique key because the task is signed before the event row has an id).
    from .inbox.routing import handle
    from .inbox.store import stored_event_read

    # Read once, with its connection: the order flow goes on with this row instead of reading it again.
    event = stored_event_read(connection_id, external_id)
    return "missing" if event is None else handle(event.pk, event.connection.kind, event.topic, event=event)


def post_order(order_id: int) -> str:
    # Safe twice: the order link is claimed with a conditional update; the ERP is asked first.
    from .flows.orders import order_post_to_erp

    return order_post_to_erp(order_id=order_id)


def poll_commercetools_orders(connection_code: str | None = None) -> int:
    # Safe twice: the poller stores each order version once (unique inbox id) and resumes from its cursor.
    from .inbox.commercetools_poll import commercetools_orders_poll

    return commercetools_orders_poll(connection_code=connection_code)


def sweep_orders() -> dict:
    # Safe twice: it takes only what is past its lease or backoff; each re-run claims its row by a conditional update.
    from .flows.orders.sweep import orders_sweep

    return orders_sweep()


def repost_stuck_orders() -> int:
    # Safe twice: only orders whose claim lease expired are taken, each by a conditional update.
    # (Superseded by sweep_orders, whose schedule replaced this one's; kept for tasks already queued.)
    from .flows.orders import orders_stuck_repost

    return orders_stuck_repost()


def inventory_sync(run_id: int) -> str:
    # Safe twice: the run is claimed PENDING -> RUNNING by a conditional update; writes are compare-and-set.
    from .flows.inventory import inventory_sync_run

    return inventory_sync_run(run_id=run_id).status


def inventory_push_items(run_id: int) -> str:
    # Safe twice: as inventory_sync; the high-priority order-driven path.
    from .flows.inventory import inventory_sync_run

    return inventory_sync_run(run_id=run_id).status


def inventory_full_sync_all() -> list:
    # Safe twice: a connection with a run already pending/running gets no second one.
    from .flows.inventory import inventory_full_sync_scheduled

    return inventory_full_sync_scheduled()
