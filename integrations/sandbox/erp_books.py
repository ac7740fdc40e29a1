"""What the REST ERP and Prima sandboxes keep alike about orders and accounts (each answers in its own
protocol): the figures an order is booked at, its life from open to dispatched or cancelled, the stock
a posted order allocates, dispatches (parcels, drafts, confirmation), credit memos, journals and
purchase orders with their receipts, the gross-skew knob, and what an account needs before it can be
opened. Everything here is in neutral keys; each sandbox translates to its vendor's words."""
from __future__ import annotations

import copy
import re
import time
from collections import Counter
from datetime import datetime, timezone
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
NON_STOCK_DEMO_ITEMS = ("CUSTOM", "SHIPPING", "DISCOUNT", "DUTIES", "TIPS", "GIFT-CARD-LIABILITY", "GOODWILL")

CUSTOMER, GUEST = "customer", "guest"
ACCOUNT_TYPES = (CUSTOMER, GUEST)

DRAFT, CONFIRMED = "draft", "confirmed"  # a dispatch; only confirmed ones are listed to clients
POSTED = "posted"  # a credit memo or a journal, once booked
PO_OPEN, PO_PARTLY_RECEIVED, PO_RECEIVED = "open", "partially_received", "received"


def timestamp(seconds: float) -> str:
    """ISO 8601 in whole seconds, as the ERPs keep modification times: two changes in one second tie."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 date-time (a trailing Z or an offset; a naive one is UTC). ValueError when it is not."""
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def is_iso_date(text) -> bool:
    try:
        return isinstance(text, str) and bool(datetime.strptime(text, "%Y-%m-%d"))
    except ValueError:
        return False


class DispatchRefused(ValueError):
    """The warehouse asked for what cannot leave: more than is open on a line, an unknown line."""


class ReceiptRefused(ValueError):
    """A receipt for more than is outstanding on a purchase order, or for an item it does not order."""


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
    # Document numbers, per vendor.
    ID_FORMATS: dict[str, str] = {"dispatch": "DSP-{:06d}", "credit_memo": "CM-{:06d}", "journal": "JNL-{:06d}",
                                  "purchase_order": "PO-{:06d}"}

    def _reset_books(self) -> None:
        # Added to every gross total the ERP books, so tests can make the ERP disagree with the lines.
        self.gross_skew = Decimal(0)
        # Modification times come from here, in whole seconds: tests may pin it to make ties certain.
        self.clock = time.time
        self._dispatches: dict[str, dict] = {}
        self._credit_memos: dict[str, dict] = {}
        self._credit_memos_by_reference: dict[str, str] = {}
        self._journals: dict[str, dict] = {}
        self._journals_by_reference: dict[str, str] = {}
        self._purchase_orders: dict[str, dict] = {}
        self._purchase_orders_by_reference: dict[str, str] = {}
        self._allocations: dict[str, dict[int, int]] = {}  # order id -> line number -> units still allocated
        self._counters = {kind: 1 for kind in self.ID_FORMATS}

    def now(self) -> str:
        return timestamp(self.clock())

    def _next_id(self, kind: str) -> str:
        number = self._counters[kind]
        self._counters[kind] += 1
        return self.ID_FORMATS[kind].format(number)

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

    # --- posting: what a new order does to stock --------------------------------------------

    def post_order(self, order: dict) -> None:
        """Store a new order and allocate its item lines in its depot, so available-to-sell drops at
        once. Only where the depot keeps stock of the item (it has a stock row): charges and non-stock
        items have none. Call under the lock."""
        self._orders[order["id"]] = order
        allocations = {}
        for line in order["lines"]:
            line.setdefault("dispatched_quantity", 0)
            row = self.stock.get((line["item_code"], order["depot"])) if _is_item(line) else None
            if row is not None:
                row["allocated"] += line["quantity"]
                allocations[line["line_number"]] = allocations.get(line["line_number"], 0) + line["quantity"]
        self._allocations[order["id"]] = allocations

    def _release(self, order: dict, line_number: int, units: int | None = None) -> None:
        """Give back what a line still holds allocated (all of it, or `units` of it)."""
        held = self._allocations.get(order["id"], {})
        released = min(held.get(line_number, 0), held.get(line_number, 0) if units is None else units)
        if not released:
            return
        held[line_number] -= released
        line = next(l for l in order["lines"] if l["line_number"] == line_number)
        row = self.stock.get((line["item_code"], order["depot"]))
        if row is not None:
            row["allocated"] = max(0, row["allocated"] - released)

    # --- dispatches ------------------------------------------------------------------------

    def _open_quantities(self, order: dict) -> dict[int, int]:
        """Units each item line still has to ship: ordered, less dispatched, less held by drafts."""
        open_units = {l["line_number"]: l["quantity"] - l.get("dispatched_quantity", 0)
                      for l in order["lines"] if _is_item(l)}
        for dispatch in self._dispatches.values():
            if dispatch["sales_order_id"] == order["id"] and dispatch["status"] == DRAFT:
                for line in dispatch["lines"]:
                    open_units[line["line_number"]] -= line["quantity"]
        return open_units

    def _parcel_lines(self, order: dict, wanted, open_units: dict[int, int], *, partly: bool) -> list[dict]:
        """The lines one parcel takes, from `open_units` (which it reduces). `wanted` is None for
        everything still open, or [{"line_number" | "item_code", "quantity"?}]."""
        lines_by_number = {l["line_number"]: l for l in order["lines"]}
        taken: dict[int, int] = {}
        if wanted is None:
            for number, units in open_units.items():
                if units > 0:
                    taken[number] = 1 if partly else units
                    if partly:
                        break
        else:
            if not isinstance(wanted, list):
                raise DispatchRefused("lines must be a list of {line_number or item_code, quantity}")
            for spec in wanted:
                if not isinstance(spec, dict):
                    raise DispatchRefused("each line must be an object {line_number or item_code, quantity}")
                quantity = spec.get("quantity")
                if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)
                                             or quantity <= 0):
                    raise DispatchRefused(f"quantity {quantity!r} must be a positive whole number")
                if spec.get("line_number") is not None:
                    numbers = [spec["line_number"]]
                    if numbers[0] not in open_units:
                        raise DispatchRefused(f"order {order['id']} has no item line {numbers[0]}")
                else:
                    code = spec.get("item_code")
                    numbers = [n for n in open_units if lines_by_number[n]["item_code"] == code]
                    if not numbers:
                        raise DispatchRefused(f"order {order['id']} has no item line for {code}")
                available = sum(max(0, open_units[n] - taken.get(n, 0)) for n in numbers)
                left = available if quantity is None else quantity
                if left > available or not available:
                    what = spec.get("item_code") or f"line {numbers[0]}"
                    raise DispatchRefused(f"cannot dispatch {left} of {what} on order {order['id']}: "
                                          f"{available} still open")
                for number in numbers:  # an item on several lines: fill them in order
                    units = min(left, open_units[number] - taken.get(number, 0))
                    if units > 0:
                        taken[number] = taken.get(number, 0) + units
                        left -= units
        for number, units in taken.items():
            open_units[number] -= units
        return [{"line_number": n, "item_code": lines_by_number[n]["item_code"], "quantity": units,
                 "line_reference": lines_by_number[n].get("line_reference", "")}
                for n, units in sorted(taken.items())]

    def dispatch_order(self, order_id: str, *, partly: bool = False, lines=None, parcels=None, carrier: str = "",
                       tracking_number: str = "", tracking_url: str = "", draft: bool = False) -> dict:
        """What the warehouse does. With no arguments, everything still open leaves in one parcel;
        `partly` sends one unit of the first open line; `lines` ([{line_number or item_code, quantity?}])
        sends those; `parcels` ([{lines?, carrier?, tracking_number?, tracking_url?}]) books one dispatch
        per parcel. `draft` books them unconfirmed (no stock moves, not listed) until
        `confirm_dispatch`. Returns the order as it is now with "dispatches": those booked by this call.
        KeyError when unknown, StatusRefused when cancelled, DispatchRefused for more than is open."""
        with self.lock:
            order = self._orders[order_id]
            if self._status(order) == CANCELLED:
                raise StatusRefused(order_id, order["status"], self.STATUS_WORDS[DISPATCHED])
            if parcels is None:
                parcels = [{"lines": lines, "carrier": carrier, "tracking_number": tracking_number,
                            "tracking_url": tracking_url}]
            if not isinstance(parcels, list) or not all(isinstance(p, dict) for p in parcels):
                raise DispatchRefused("parcels must be a list of objects")
            open_units = self._open_quantities(order)
            planned = [(parcel, self._parcel_lines(order, parcel.get("lines"), open_units, partly=partly))
                       for parcel in parcels]  # all parcels checked before any is booked
            booked = []
            for parcel, parcel_lines in planned:
                if not parcel_lines:
                    if any(_is_item(l) for l in order["lines"]):
                        if self._status(order) == DISPATCHED:
                            continue  # nothing left: dispatching a dispatched order again changes nothing
                        raise DispatchRefused(f"nothing left to dispatch on order {order_id}")
                    self._move(order, DISPATCHED)  # charges only: nothing to pack
                    continue
                booked.append(self._book_dispatch(order, parcel_lines, parcel, draft=draft))
            answer = copy.deepcopy(order)
            answer["dispatches"] = [copy.deepcopy(d) for d in booked]
            return answer

    def _book_dispatch(self, order: dict, lines: list[dict], parcel: dict, *, draft: bool) -> dict:
        now = self.now()
        dispatch = {
            "id": self._next_id("dispatch"), "sales_order_id": order["id"],
            "external_reference": order["external_reference"], "status": DRAFT if draft else CONFIRMED,
            "depot": order["depot"], "carrier": str(parcel.get("carrier") or ""),
            "tracking_number": str(parcel.get("tracking_number") or ""),
            "tracking_url": str(parcel.get("tracking_url") or ""), "lines": lines,
            "dispatched_at": "" if draft else now, "created_at": now, "modified_at": now,
        }
        self._dispatches[dispatch["id"]] = dispatch
        if not draft:
            self._apply_dispatch(order, dispatch)
        return dispatch

    def _apply_dispatch(self, order: dict, dispatch: dict) -> None:
        """Goods leave: the lines' dispatched quantities rise, their allocation is used up and the
        depot's on hand drops; the order becomes partly dispatched or dispatched."""
        lines_by_number = {l["line_number"]: l for l in order["lines"]}
        for line in dispatch["lines"]:
            order_line = lines_by_number[line["line_number"]]
            order_line["dispatched_quantity"] = order_line.get("dispatched_quantity", 0) + line["quantity"]
            self._release(order, line["line_number"], line["quantity"])
            row = self.stock.get((line["item_code"], order["depot"]))
            if row is not None:
                row["on_hand"] -= line["quantity"]
        complete = all(l.get("dispatched_quantity", 0) >= l["quantity"] for l in order["lines"] if _is_item(l))
        self._move(order, DISPATCHED if complete else PARTLY_DISPATCHED)

    def confirm_dispatch(self, dispatch_id: str) -> dict:
        """A draft dispatch is confirmed: stock moves, the order's status follows and its modified time
        moves to now, so a client reading by modified time sees it. Confirming it again changes
        nothing. KeyError when unknown, StatusRefused when its order was cancelled meanwhile."""
        with self.lock:
            dispatch = self._dispatches[dispatch_id]
            if dispatch["status"] == CONFIRMED:
                return copy.deepcopy(dispatch)
            order = self._orders[dispatch["sales_order_id"]]
            if self._status(order) == CANCELLED:
                raise StatusRefused(order["id"], order["status"], self.STATUS_WORDS[DISPATCHED])
            now = self.now()
            dispatch.update(status=CONFIRMED, dispatched_at=now, modified_at=now)
            self._apply_dispatch(order, dispatch)
            return copy.deepcopy(dispatch)

    @property
    def dispatches(self) -> list[dict]:
        """Every dispatch, drafts included, in booking order."""
        with self.lock:
            return [copy.deepcopy(d) for d in self._dispatches.values()]

    def confirmed_dispatches_since(self, since: datetime | None) -> list[dict]:
        """Confirmed dispatches modified at or after `since`, oldest first, ties by id."""
        with self.lock:
            rows = [d for d in self._dispatches.values() if d["status"] == CONFIRMED
                    and (since is None or parse_timestamp(d["modified_at"]) >= since)]
            return [copy.deepcopy(d) for d in sorted(rows, key=lambda d: (parse_timestamp(d["modified_at"]), d["id"]))]

    # --- credit memos ----------------------------------------------------------------------

    def over_credits(self, order: dict, memo_lines: list[dict]) -> list[tuple[int, str]]:
        """(line index, message) for each memo item line that credits more of an item than the order
        sold, less what earlier memos on the order credited. Call under the lock."""
        sold = Counter()
        for line in order["lines"]:
            if _is_item(line):
                sold[line["item_code"]] += line["quantity"]
        credited = Counter()
        for memo in self._credit_memos.values():
            if memo["sales_order_id"] == order["id"]:
                for line in memo["lines"]:
                    if _is_item(line):
                        credited[line["item_code"]] += line["quantity"]
        asked, problems = Counter(), []
        for index, line in enumerate(memo_lines):
            if not _is_item(line):
                continue
            code = line["item_code"]
            asked[code] += line["quantity"]
            if code not in sold:
                problems.append((index, f"{code} was not sold on order {order['id']}"))
            elif asked[code] + credited[code] > sold[code]:
                problems.append((index, f"cannot credit {asked[code]} x {code}: order {order['id']} sold "
                                        f"{sold[code]}, {credited[code]} already credited"))
        return problems

    def book_credit_memo(self, order: dict, memo: dict) -> dict:
        """Store a checked memo (neutral keys, its figures booked by the caller); with "restock", what
        had left the depot for its item lines comes back there awaiting inspection (on hand, not
        sellable until `inspect_return`). Call under the lock."""
        memo.update(id=self._next_id("credit_memo"), sales_order_id=order["id"], status=POSTED,
                    created_at=self.now())
        for line in memo["lines"]:
            line["restocked_quantity"] = 0
        if memo.get("restock"):
            out = Counter()  # units of each item that left the depot and did not come back yet
            for line in order["lines"]:
                if _is_item(line):
                    out[line["item_code"]] += line.get("dispatched_quantity", 0)
            for earlier in self._credit_memos.values():
                if earlier["sales_order_id"] == order["id"]:
                    for line in earlier["lines"]:
                        out[line["item_code"]] -= line.get("restocked_quantity", 0)
            for line in memo["lines"]:
                units = min(line["quantity"], max(0, out[line["item_code"]])) if _is_item(line) else 0
                if units:
                    row = self.stock.get((line["item_code"], order["depot"])) or self._new_stock_row(
                        line["item_code"], order["depot"])
                    self._returned(row, units)
                    line["restocked_quantity"] = units
                    out[line["item_code"]] -= units
        self._credit_memos[memo["id"]] = memo
        self._credit_memos_by_reference[memo["external_reference"]] = memo["id"]
        return copy.deepcopy(memo)

    def inspect_return(self, memo_id: str, *, passed: bool, lines=None) -> dict:
        """The warehouse inspects goods a credit memo took back: every unit still awaiting inspection,
        or `lines` ([{item_code, quantity}]). Passed, they become sellable; failed, damaged. Returns
        the memo with its "inspections". KeyError when unknown, ValueError for more than awaits."""
        with self.lock:
            memo = self._credit_memos[memo_id]
            order = self._orders[memo["sales_order_id"]]
            waiting = Counter()
            for line in memo["lines"]:
                waiting[line["item_code"]] += line.get("restocked_quantity", 0) - line.get("inspected_quantity", 0)
            if lines is None:
                wanted = Counter({code: units for code, units in waiting.items() if units > 0})
            else:
                if not isinstance(lines, list) or not all(isinstance(l, dict) for l in lines):
                    raise ValueError("lines must be a list of {item_code, quantity}")
                wanted = Counter()
                for spec in lines:
                    quantity = spec.get("quantity")
                    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                        raise ValueError(f"quantity {quantity!r} must be a positive whole number")
                    wanted[spec.get("item_code")] += quantity
            for code, units in wanted.items():
                if units > waiting.get(code, 0):
                    raise ValueError(f"credit memo {memo_id} has {max(0, waiting.get(code, 0))} of {code} "
                                     f"awaiting inspection, not {units}")
            if not wanted:
                raise ValueError(f"nothing of credit memo {memo_id} awaits inspection")
            for code, units in wanted.items():
                left = units
                for line in memo["lines"]:
                    if line["item_code"] != code or not left:
                        continue
                    take = min(left, line.get("restocked_quantity", 0) - line.get("inspected_quantity", 0))
                    line["inspected_quantity"] = line.get("inspected_quantity", 0) + take
                    left -= take
                self._inspected(self.stock[(code, order["depot"])], units, passed=passed)
            memo.setdefault("inspections", []).append({
                "result": "passed" if passed else "failed", "at": self.now(),
                "lines": [{"item_code": code, "quantity": units} for code, units in sorted(wanted.items())]})
            memo["modified_at"] = self.now()
            return copy.deepcopy(memo)

    @property
    def credit_memos(self) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(m) for m in self._credit_memos.values()]

    # --- journals --------------------------------------------------------------------------

    def book_journal(self, journal: dict) -> dict:
        """Store a checked, balanced journal (neutral keys). Call under the lock."""
        journal.update(id=self._next_id("journal"), status=POSTED, created_at=self.now())
        self._journals[journal["id"]] = journal
        self._journals_by_reference[journal["external_reference"]] = journal["id"]
        return copy.deepcopy(journal)

    @property
    def journals(self) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(j) for j in self._journals.values()]

    # --- purchase orders -------------------------------------------------------------------

    def book_purchase_order(self, purchase_order: dict) -> dict:
        """Store a checked purchase order (neutral keys, lines {item_code, quantity, unit_cost}). Call
        under the lock."""
        now = self.now()
        for number, line in enumerate(purchase_order["lines"], start=1):
            line.update(line_number=number, received_quantity=0)
        purchase_order.update(id=self._next_id("purchase_order"), status=PO_OPEN, created_at=now, modified_at=now)
        self._purchase_orders[purchase_order["id"]] = purchase_order
        self._purchase_orders_by_reference[purchase_order["external_reference"]] = purchase_order["id"]
        return copy.deepcopy(purchase_order)

    def receive_purchase_order(self, purchase_order_id: str, lines=None) -> dict:
        """Goods arrive at the depot: everything outstanding, or `lines` ([{line_number or item_code,
        quantity}]). Received quantities rise, the depot's on hand with them, and the order becomes
        partially received or received (its modified time moves). KeyError when unknown,
        ReceiptRefused for more than is outstanding."""
        with self.lock:
            purchase_order = self._purchase_orders[purchase_order_id]
            outstanding = {l["line_number"]: l["quantity"] - l["received_quantity"] for l in purchase_order["lines"]}
            by_number = {l["line_number"]: l for l in purchase_order["lines"]}
            taking: dict[int, int] = {}
            if lines is None:
                taking = {n: units for n, units in outstanding.items() if units > 0}
            elif not isinstance(lines, list):
                raise ReceiptRefused("lines must be a list of {line_number or item_code, quantity}")
            else:
                for spec in lines:
                    if not isinstance(spec, dict):
                        raise ReceiptRefused("each line must be an object {line_number or item_code, quantity}")
                    quantity = spec.get("quantity")
                    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                        raise ReceiptRefused(f"quantity {quantity!r} must be a positive whole number")
                    numbers = ([spec["line_number"]] if spec.get("line_number") is not None else
                               [n for n, l in by_number.items() if l["item_code"] == spec.get("item_code")])
                    if not numbers or numbers[0] not in by_number:
                        raise ReceiptRefused(f"purchase order {purchase_order_id} has no line for "
                                             f"{spec.get('item_code') or spec.get('line_number')}")
                    left = quantity
                    for number in numbers:
                        units = min(left, outstanding[number] - taking.get(number, 0))
                        if units > 0:
                            taking[number] = taking.get(number, 0) + units
                            left -= units
                    if left:
                        raise ReceiptRefused(f"cannot receive {quantity} of {by_number[numbers[0]]['item_code']} on "
                                             f"purchase order {purchase_order_id}: "
                                             f"{sum(outstanding[n] for n in numbers)} outstanding")
            if not taking:
                raise ReceiptRefused(f"nothing is outstanding on purchase order {purchase_order_id}")
            for number, units in taking.items():
                line = by_number[number]
                line["received_quantity"] += units
                row = (self.stock.get((line["item_code"], purchase_order["depot"]))
                       or self._new_stock_row(line["item_code"], purchase_order["depot"]))
                row["on_hand"] += units
            complete = all(l["received_quantity"] >= l["quantity"] for l in purchase_order["lines"])
            purchase_order["status"] = PO_RECEIVED if complete else PO_PARTLY_RECEIVED
            purchase_order["modified_at"] = self.now()
            return copy.deepcopy(purchase_order)

    @property
    def purchase_orders(self) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(p) for p in self._purchase_orders.values()]

    def purchase_orders_since(self, since: datetime | None) -> list[dict]:
        """Purchase orders created or changed at or after `since`, oldest first, ties by id."""
        with self.lock:
            rows = [p for p in self._purchase_orders.values()
                    if since is None or parse_timestamp(p["modified_at"]) >= since]
            return [copy.deepcopy(p) for p in sorted(rows, key=lambda p: (parse_timestamp(p["modified_at"]), p["id"]))]

    def _new_stock_row(self, item_code: str, depot: str) -> dict:
        """Goods arrive for an item the depot kept no stock of: it does now."""
        self.set_stock(item_code, depot)
        return self.stock[(item_code, depot)]

    # --- cancelling --------------------------------------------------------------------------

    def cancel_order(self, order_id: str, *, reason: str = "") -> dict:
        """Cancel an order nothing was dispatched from, giving back the stock it held allocated;
        cancelling it again changes nothing. KeyError when unknown, StatusRefused when (partly)
        dispatched."""
        with self.lock:
            order = self._orders[order_id]
            if self._status(order) == CANCELLED:
                return copy.deepcopy(order)
            self._move(order, CANCELLED)
            for line_number in list(self._allocations.get(order_id, {})):
                self._release(order, line_number)
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


def _is_item(line: dict) -> bool:
    """Goods, not a charge (shipping, discount, duty, tip, gift card, rounding)."""
    return line.get("kind", "item") == "item"
