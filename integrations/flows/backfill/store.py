"""Putting an order read back from a storefront into the inbox, as the webhooks and the poller do."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from integrations.inbox.store import inbound_event_store
from integrations.models import Connection, InboundEvent, OrderLink

# The topic each storefront's re-read order is stored under: the one its full-order events use.
TOPICS = {"shopify": "orders/updated", "commercetools": "order/poll"}


@dataclass(frozen=True)
class Stored:
    order_id: str
    event: InboundEvent | None  # None: skipped
    created: bool


def _when(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def order_identity(connection: Connection, payload: dict) -> tuple[str, str, datetime | None]:
    """(order id, version text, updated at) of a storefront order payload, in the inbox's terms."""
    if connection.kind == "shopify":
        updated = str(payload.get("updated_at") or "")
        return str(payload.get("id") or ""), updated, _when(updated)
    return str(payload.get("id") or ""), str(payload.get("version") or ""), _when(payload.get("lastModifiedAt"))


def order_store(*, connection: Connection, payload: dict, source: str, fresh: bool = False,
                skip_known: bool = True) -> Stored:
    """Store the order as an inbound event. Safe twice: its inbox id is the order's version
    (commercetools shares the poller's `order:<id>@<version>`, so a poll and a backfill store it once);
    `fresh` (a re-sync a person asked for) stores it again under a new id so it is re-applied.
    With `skip_known`, an order Ledgerline already holds at this version or a newer one is skipped."""
    order_id, version, updated = order_identity(connection, payload)
    if not order_id:
        raise ValueError("the storefront's order has no id")
    if skip_known and not fresh and updated is not None:
        known = OrderLink.objects.filter(connection=connection, storefront_order_id=order_id,
                                         source_updated_at__gte=updated).exists()
        if known:
            return Stored(order_id, None, False)
    external_id = f"order:{order_id}@{version}"
    if fresh:
        external_id = f"resync:{order_id}@{version}#{uuid.uuid4().hex[:12]}"
    result = inbound_event_store(connection=connection, topic=TOPICS[connection.kind], external_id=external_id[:200],
                                 resource_id=order_id, payload=payload, headers={"X-Ledgerline-Source": source})
    return Stored(order_id, result.event, result.created)
