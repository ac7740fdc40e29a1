"""What the REST ERP and Prima sandboxes keep alike about orders and accounts (each answers in its own
protocol): the figures an order is booked at, its life from open to dispatched or cancelled, the
gross-skew knob, and what an account needs before it can be opened."""
from __future__ import annotations

import copy
import re
import time
from decimal import Decimal, InvalidOperation
from typing import Iterable

from .currencies import on_grid

OPEN, PARTLY_DISPATCHED, DISPATCHED, CANCELLED = "open", "partly_dispatched", "dispatched", "cancelled"
# Where an order may go from each status; `_move` is the only place that changes one.
TRANSITIONS = {
    OPEN: {PARTLY_DISPATCHED, DISPATCHED, CANCELLED},
    PARTLY_DISPATCHED: {DISPATCHED},
    DISPATCHED: set(),
    CANCELLED: set(),
}

# Demo items that are charges, not goods: no stock is kept for them.
NON_STOCK_DEMO_ITEMS = ("CUSTOM", "SHIPPING", "DISCOUNT", "DUTIES", "TIPS", "GIFT-CARD-LIABILITY")

CUSTOMER, GUEST = "customer", "guest"
ACCOUNT_TYPES = (CUSTOMER, GUEST)


class StatusRefused(ValueError):
    """The order's status does not allow the change (e.g. cancelling what was dispatched)."""

    def __init__(self, order_id: str, current: str, wanted: str):
        super().__init__(f"order {order_id} is {current}: it cannot become {wanted}")
        self.order_id, self.current, self.wanted = order_id, current, wanted


def missing_for_account(*, name: str, email: str, phone: str, guest: bool) -> list[str]:
    """What an account still lacks: a name always; an e-mail or a phone unless it is a guest
    (cash-sale) account, which guest orders share and which nobody is contacted through."""
    missing = [] if name else ["name"]
    if not guest and not email and not phone:
        missing.append("email_or_phone")
    return missing


def same_phone(wanted: str, stored: str) -> bool:
    """Phones compare by their digits: "+44 20 7946 0958" is "+44-20-7946-0958"; no digits match nothing."""
    digits = re.sub(r"\D", "", wanted or "")
    return bool(digits) and digits == re.sub(r"\D", "", stored or "")


class OrderBook:
    """Booked figures, status changes and the gross-skew knob. Needs `self.lock`, `self._orders`
    (id -> order whose "status" is in the vendor's words) and `STATUS_WORDS` (ours -> the vendor's)."""

    STATUS_WORDS: dict[str, str] = {OPEN: OPEN, PARTLY_DISPATCHED: PARTLY_DISPATCHED, DISPATCHED: DISPATCHED,
                                    CANCELLED: CANCELLED}

    def _reset_books(self) -> None:
        # Added to every gross total the ERP books, so tests can make the ERP disagree with the lines.
        self.gross_skew = Decimal(0)

    def booked_figures(self, line_totals: Iterable[Decimal], tax_amounts: Iterable[Decimal], *,
                       prices_include_tax: bool, currency: str) -> dict[str, str]:
        """The ERP's own figures, from the lines: total (the sum of the line totals, as sent: net, or
        gross when tax is included), tax, net and gross. Not the figures the client claimed."""
        total = on_grid(sum(line_totals, Decimal(0)), currency)
        tax = on_grid(sum(tax_amounts, Decimal(0)), currency)
        gross = total if prices_include_tax else total + tax
        net = total - tax if prices_include_tax else total
        return {"total": str(total), "tax_total": str(tax), "net_total": str(net),
                "gross_total": str(gross + self.gross_skew)}

    # --- status ------------------------------------------------------------------------------

    def _status(self, order: dict) -> str:
        return next(ours for ours, word in self.STATUS_WORDS.items() if word == order["status"])

    def _move(self, order: dict, wanted: str) -> None:
        """Change the order's status if its current one allows it; the same status again is no change."""
        current = self._status(order)
        if wanted == current:
            return
        if wanted not in TRANSITIONS[current]:
            raise StatusRefused(order["id"], self.STATUS_WORDS[current], self.STATUS_WORDS[wanted])
        order["status"] = self.STATUS_WORDS[wanted]

    def dispatch_order(self, order_id: str, *, partly: bool = False) -> dict:
        """What the warehouse does: ship the order (or part of it). KeyError when unknown,
        StatusRefused when it was cancelled."""
        with self.lock:
            order = self._orders[order_id]
            self._move(order, PARTLY_DISPATCHED if partly else DISPATCHED)
            return copy.deepcopy(order)

    def cancel_order(self, order_id: str, *, reason: str = "") -> dict:
        """Cancel an order nothing was dispatched from; cancelling it again changes nothing.
        KeyError when unknown, StatusRefused when (partly) dispatched."""
        with self.lock:
            order = self._orders[order_id]
            if self._status(order) == CANCELLED:
                return copy.deepcopy(order)
            self._move(order, CANCELLED)
            order["cancel_reason"] = reason
            order["cancelled_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            return copy.deepcopy(order)

    # --- configuration (next to FaultInjection's) --------------------------------------------

    def configure(self, *, gross_skew=None, **faults) -> dict:
        with self.lock:
            if gross_skew is not None:
                try:
                    skew = Decimal(str(gross_skew))
                except InvalidOperation:
                    raise ValueError(f"gross_skew {gross_skew!r} is not a decimal number") from None
                if not skew.is_finite():
                    raise ValueError(f"gross_skew {gross_skew!r} is not a decimal number")
                self.gross_skew = skew
            return super().configure(**faults)

    def _config(self) -> dict:
        return {**super()._config(), "gross_skew": str(self.gross_skew)}
