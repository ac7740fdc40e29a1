"""Re-sync: one order read again from its storefront and stored in the inbox, so the orders flow
re-applies it with its usual rules (an older payload never wins, nothing posts twice); and the
import of an order Ledgerline never saw, found by its number."""
from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from integrations.connectors import connector_for
from integrations.connectors.base import ConnectorError, NotFound
from integrations.models import Connection, InboundEvent, OrderEvent, OrderLink

from .store import order_store


class ResyncRefused(Exception):
    """The order could not be read again; the message says why, for the screen."""


@dataclass(frozen=True)
class ResyncResult:
    order_id: str
    event: InboundEvent | None
    created: bool  # a new event was stored (False: Ledgerline already had this version)


def _who(actor) -> str:
    return getattr(actor, "get_username", lambda: "")() or "the system"


def _read(connection: Connection, *, order_id: str = "", number: str = "") -> dict | None:
    client = connector_for(connection)
    if hasattr(client, "max_attempts"):
        client.max_attempts = min(client.max_attempts, 2)  # a person waits for this
    try:
        if connection.kind == "shopify":
            from integrations.connectors.shopify import orders_read

            if number:
                return orders_read.find_order_by_name(client, number)
            return orders_read.fetch_order(client, order_id)
        if number:
            return client.get_order_by_number(number)
        return client.get_order(order_id)
    except NotFound:
        return None
    except ConnectorError as exc:
        raise ResyncRefused(f"{connection.name} could not be asked: {exc}") from None


def _usable(connection: Connection) -> None:
    if not connection.is_storefront:
        raise ResyncRefused(f"{connection.name} is not a storefront.")
    if not connection.active:
        raise ResyncRefused(f"{connection.name} is inactive: it accepts and posts nothing. Reactivate it first.")


def order_resync(*, link: OrderLink, actor=None) -> ResyncResult:
    """Read the order again and re-apply it (a new inbox event, so it is applied even when the
    version is one Ledgerline has: the flow then changes nothing)."""
    connection = link.connection
    _usable(connection)
    payload = _read(connection, order_id=link.storefront_order_id)
    if payload is None:
        raise ResyncRefused(f"{connection.name} has no order {link} any more (or the app may not read it: "
                            f"orders older than 60 days need read_all_orders).")
    with transaction.atomic():
        stored = order_store(connection=connection, payload=payload, source=f"resync by {_who(actor)}", fresh=True)
        OrderEvent.objects.create(order=link, kind=OrderEvent.Kind.RESYNCED, event=stored.event,
                                  message=f"Read again from {connection.name} by {_who(actor)}")
    return ResyncResult(stored.order_id, stored.event, stored.created)


def order_import_by_number(*, connection: Connection, number: str, actor=None) -> ResyncResult:
    """Import an order by its number ("#1001", "CT-10001"): found in the storefront, stored in the
    inbox as any order version is (so an order Ledgerline already has at that version is left alone)."""
    _usable(connection)
    number = (number or "").strip()
    if not number or len(number) > 100:
        raise ResyncRefused("Give the order number as the storefront shows it (e.g. #1001).")
    payload = _read(connection, number=number)
    if payload is None:
        raise ResyncRefused(f"{connection.name} has no order {number}.")
    with transaction.atomic():
        stored = order_store(connection=connection, payload=payload, source=f"import by {_who(actor)}")
    return ResyncResult(stored.order_id, stored.event, stored.created)
