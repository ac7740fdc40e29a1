"""The order link's state machine: the one table of allowed transitions, checked in one place."""
from __future__ import annotations

from integrations.models import InboundEvent, OrderLink

from .common import timeline_add


S = OrderLink.State


TRANSITIONS: dict[str, set[str]] = {
    S.RECEIVED: {S.WAITING_PAYMENT, S.POSTING, S.CANCELLED, S.TEST, S.FAILED},
    S.WAITING_PAYMENT: {S.POSTING, S.CANCELLED, S.TEST, S.FAILED},
    S.POSTING: {S.POSTED, S.FAILED, S.WAITING_PAYMENT},
    S.FAILED: {S.POSTING, S.CANCELLED, S.TEST},
    S.POSTED: {S.CANCELLED, S.PARTLY_DISPATCHED, S.DISPATCHED, S.REFUNDED},
    S.PARTLY_DISPATCHED: {S.DISPATCHED, S.REFUNDED},
    S.DISPATCHED: {S.REFUNDED},
    S.REFUNDED: set(),
    S.TEST: {S.CANCELLED},
    S.CANCELLED: set(),
}


def can_transition(current: str, new: str) -> bool:
    return current == new or new in TRANSITIONS.get(current, set())


def set_state(link: OrderLink, new: str, kind: str, message: str, event: InboundEvent | None = None) -> None:
    if link.state == new or not can_transition(link.state, new):
        return
    link.state = new
    timeline_add(link, kind, message, event)
