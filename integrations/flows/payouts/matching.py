"""A payout's reconciliation against the ERP: each balance transaction matched to what the ERP booked
for it (charges to posted Sales Orders, refunds to credit memos, fees to the agreed fee, disputes to
their orders), every difference classified, and totals that always add up: the lines' actual amounts
sum to what the bank received.

Lines are worked out from scratch on every run (a locked payout is never touched), so a late posting
makes its difference disappear by itself on the next run (`payouts_rematch_open`, every 10 minutes).
Only the lines that changed are written: the rest keep their rows. The ERP side is read with one query
per kind of document for the whole payout (the payout's transactions name them in a subquery), and
lines are written set-based (`bulk.rows_insert`: one COPY on PostgreSQL), never one save per line.

A transaction the provider converted (a settlement file says what the customer paid, in which
currency, and maybe at what rate) is compared with the ERP in the order's currency; the ERP's amount
converted at the provider's rate is what the payout should hold, and a difference left by the
conversion alone is `currency_conversion`. An order paid in several captures (a split tender, a later
capture) is matched once, by the sum of its captures: every capture but the latest matches as it is,
and the latest carries whatever the sum and the Sales Order disagree by.

Per-connection settings (Connection.settings): `payout_tolerance_minor` (default 0: a difference
within it is `rounding`, and matched), `payout_fee_percent` and `payout_fee_fixed_minor` (the agreed
processing fee of a charge; not set: the fee Shopify or the PSP charged is taken as agreed).
"""
from __future__ import annotations

from collections import defaultdict, namedtuple
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from itertools import islice

from django.db import transaction
from django.db.models import Count, Max, Sum
from django.utils import timezone

from integrations.domain import format_amount, from_minor_units, round_to_currency, to_minor_units
from integrations.models import BalanceTransaction, OrderLink, Payout, ReconciliationLine, Refund

from .bulk import rows_insert

Class = ReconciliationLine.DifferenceClass
Kind = ReconciliationLine.Kind
T = BalanceTransaction.Type
MATCHED_CLASSES = frozenset({Class.NONE, Class.ROUNDING})
# Statuses a run may move a payout between; anything else (approved, posted, rejected, sent back) is
# the approval flow's, and matching leaves the status as it is.
MATCHING_STATUSES = frozenset({Payout.Status.IMPORTED, Payout.Status.MATCHED, Payout.Status.VARIANCE})
REMATCH_STATUSES = MATCHING_STATUSES | {Payout.Status.SENT_BACK}


def _setting_int(connection, name: str, default: int = 0) -> int:
    try:
        return int((connection.settings or {}).get(name, default))
    except (TypeError, ValueError):
        return default


def _fee_schedule(connection) -> tuple[Decimal, int] | None:
    settings = connection.settings or {}
    if settings.get("payout_fee_percent") in (None, "") and settings.get("payout_fee_fixed_minor") in (None, ""):
        return None
    try:
        percent = Decimal(str(settings.get("payout_fee_percent") or 0))
    except InvalidOperation:
        percent = Decimal(0)
    return percent, _setting_int(connection, "payout_fee_fixed_minor")


def _rows(queryset, *fields) -> list:
    """The queryset's rows as light objects with these attributes (no model instances)."""
    row = namedtuple("Row", fields)
    return [row(*values) for values in queryset.values_list(*fields)]


_Captures = namedtuple("_Captures", "count latest total presented presented_count")


class _Context:
    """What the ERP side says, loaded once per payout (not once per transaction)."""

    def __init__(self, payout: Payout, transactions: list):
        self.tolerance = abs(_setting_int(payout.connection, "payout_tolerance_minor"))
        self.fees = _fee_schedule(payout.connection)
        # The orders the payout's transactions name, as a subquery: no list of thousands of ids sent back
        # and forth. Rows, not model instances, of only what matching reads.
        named = (BalanceTransaction.objects.filter(payout_id=payout.pk).exclude(storefront_order_id="")
                 .values("storefront_order_id"))
        self.orders = {o.storefront_order_id: o for o in _rows(
            OrderLink.objects.filter(connection_id=payout.connection_id, storefront_order_id__in=named).order_by(),
            "id", "storefront_order_id", "order_number", "state", "currency", "erp_order_id", "erp_total_minor")}
        self.refunds: dict[str, list] = defaultdict(list)
        for refund in _rows(Refund.objects.filter(connection_id=payout.connection_id, storefront_order_id__in=named)
                            .order_by("id"),
                            "id", "storefront_order_id", "storefront_refund_id", "state", "amount_minor",
                            "credit_memo_id", "credit_memo_total_minor"):
            self.refunds[refund.storefront_order_id].append(refund)
        # Orders paid in several captures (in any payout of the connection): one aggregate query.
        charged = (BalanceTransaction.objects.filter(payout_id=payout.pk, type=T.CHARGE)
                   .exclude(storefront_order_id="").values("storefront_order_id"))
        self.captures = {row[0]: _Captures(*row[1:]) for row in (
            BalanceTransaction.objects.filter(connection_id=payout.connection_id, type=T.CHARGE, test=False,
                                              payout__isnull=False, storefront_order_id__in=charged)
            .values("storefront_order_id").order_by()
            .annotate(n=Count("id"), latest=Max("id"), total=Sum("amount_minor"),
                      presented=Sum("presentment_amount_minor"), presented_n=Count("presentment_amount_minor"))
            .filter(n__gt=1)
            .values_list("storefront_order_id", "n", "latest", "total", "presented", "presented_n"))}
        self.lines: list[tuple] = []  # in the order of _LINE_FIELDS
        self.payout = payout
        # Fees as agreed are one line per payout (what the fee journal books); a fee that differs from
        # the agreed rate keeps a line of its own, naming its transaction.
        self.agreed_fees = 0
        self.agreed_fee_count = 0

    def add(self, bt, actual: int, expected: int | None, klass: str, *, order=None, refund=None,
            erp_document: str = "", note: str = "") -> None:
        variance = actual - (expected if expected is not None else 0)
        self.lines.append((bt.id if bt else None, Kind.MATCHED if klass in MATCHED_CLASSES else Kind.UNMATCHED,
                           klass, expected, actual, variance, order.id if order else None,
                           refund.id if refund else None, erp_document, note[:1000]))

    def compare(self, actual: int, expected: int) -> str:
        difference = abs(actual - expected)
        if difference == 0:
            return Class.NONE
        return Class.ROUNDING if difference <= self.tolerance else Class.AMOUNT_MISMATCH

    def expected_fee(self, bt) -> int:
        percent, fixed = self.fees
        rate = (Decimal(abs(bt.amount_minor)) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return int(rate) + fixed


def _order_problem(ctx: _Context, bt) -> tuple[str, OrderLink | None, str]:
    """(class, order, note) when the transaction's order is not in the ERP as a Sales Order; else ("", order, "")."""
    order = ctx.orders.get(bt.storefront_order_id) if bt.storefront_order_id else None
    if order is None:
        return Class.UNKNOWN_ORDER, None, f"order {bt.storefront_order_id or '(none named)'} is not known to Ledgerline"
    if order.state == OrderLink.State.TEST:
        return Class.TEST_TRANSACTION, order, "a test order: never posted to the ERP"
    if order.state not in OrderLink.IN_ERP or order.erp_total_minor is None:
        state = OrderLink.State(order.state).label if order.state in OrderLink.State.values else order.state
        return (Class.MISSING_ERP_POSTING, order,
                f"order {order.order_number or order.storefront_order_id} is not posted to the ERP yet ({state})")
    return "", order, ""


def _in_order_currency(bt, order) -> int | None:
    """The transaction's amount in its order's currency: as paid out when that is the order's currency,
    else what the customer paid (when the provider says); None when neither is."""
    if not order.currency or order.currency == bt.currency:
        return bt.amount_minor
    if bt.presentment_currency == order.currency and bt.presentment_amount_minor is not None:
        return bt.presentment_amount_minor
    return None


def _converted(bt, minor: int) -> int:
    """An amount in the transaction's presentment currency, in the payout's currency at the provider's
    rate: the one it states, else the one its two amounts imply."""
    if bt.exchange_rate:
        major = from_minor_units(minor, bt.presentment_currency) * bt.exchange_rate
        return to_minor_units(round_to_currency(major, bt.currency, ROUND_HALF_UP), bt.currency)
    if bt.presentment_amount_minor:
        return int((Decimal(minor) * bt.amount_minor / bt.presentment_amount_minor).quantize(Decimal(1), ROUND_HALF_UP))
    return minor


def _money(minor: int, currency: str) -> str:
    return f"{format_amount(from_minor_units(minor, currency), currency)} {currency}"


def _against_erp(ctx: _Context, bt, order, erp_minor: int, paid: int | None, *, refund=None,
                 erp_document: str = "", note: str = "") -> None:
    """One line: the transaction against what the ERP booked for it (erp_minor, signed like the
    transaction, in the order's currency; paid: the transaction in that currency, or None)."""
    erp_document = erp_document or order.erp_order_id
    if paid is None:  # converted, and the provider does not say from what
        ctx.add(bt, bt.amount_minor, None, Class.CURRENCY_CONVERSION, order=order, refund=refund,
                erp_document=erp_document,
                note=_joined(note, f"paid out in {bt.currency}; the ERP document is in {order.currency}"))
        return
    if not order.currency or order.currency == bt.currency:
        ctx.add(bt, bt.amount_minor, erp_minor, ctx.compare(bt.amount_minor, erp_minor), order=order, refund=refund,
                erp_document=erp_document, note=note)
        return
    expected = _converted(bt, erp_minor)
    rate = f" at {format(bt.exchange_rate.normalize(), 'f')}" if bt.exchange_rate else ""
    said = (f"paid {_money(paid, order.currency)}, converted{rate} to {_money(bt.amount_minor, bt.currency)}; "
            f"the ERP's {_money(erp_minor, order.currency)} is {_money(expected, bt.currency)}")
    if abs(paid - erp_minor) > ctx.tolerance:
        klass = Class.AMOUNT_MISMATCH
    elif bt.amount_minor == expected:
        klass = Class.NONE
    elif paid != erp_minor and abs(bt.amount_minor - expected) <= ctx.tolerance:
        klass = Class.ROUNDING
    else:
        klass = Class.CURRENCY_CONVERSION
    ctx.add(bt, bt.amount_minor, expected, klass, order=order, refund=refund, erp_document=erp_document,
            note=_joined(note, said))


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _match_charge(ctx: _Context, bt) -> None:
    klass, order, note = _order_problem(ctx, bt)
    if klass:
        ctx.add(bt, bt.amount_minor, None, klass, order=order, note=note)
        return
    captures = ctx.captures.get(bt.storefront_order_id)
    if captures is None:
        _against_erp(ctx, bt, order, order.erp_total_minor, _in_order_currency(bt, order))
    elif bt.id != captures.latest:
        # Not the latest capture: it matches as it is; the Sales Order is matched by the sum on the latest.
        ctx.add(bt, bt.amount_minor, bt.amount_minor, Class.NONE, order=order, erp_document=order.erp_order_id,
                note=f"one of {captures.count} captures of this order: their sum is matched on the latest")
    else:
        paid_in_order_currency = not order.currency or order.currency == bt.currency
        total = (captures.total if paid_in_order_currency else
                 captures.presented if captures.presented_count == captures.count else None)
        this = _in_order_currency(bt, order)
        if total is None or this is None:
            _against_erp(ctx, bt, order, order.erp_total_minor, None)
            return
        # What the ERP booked less what the other captures paid: this capture's share of the Sales Order.
        currency = order.currency or bt.currency
        _against_erp(ctx, bt, order, order.erp_total_minor - (total - this), this,
                     note=f"latest of {captures.count} captures: together {_money(total, currency)} "
                          f"against the Sales Order's {_money(order.erp_total_minor, currency)}")


def _refund_for(ctx: _Context, bt) -> Refund | None:
    candidates = ctx.refunds.get(bt.storefront_order_id, [])
    for refund in candidates:  # Shopify's sourceId of a refund transaction is the refund
        if bt.source_id and refund.storefront_refund_id == bt.source_id:
            return refund
    by_amount = [r for r in candidates if r.amount_minor == -bt.amount_minor]
    return by_amount[0] if by_amount else None


def _match_refund(ctx: _Context, bt) -> None:
    klass, order, note = _order_problem(ctx, bt)
    if klass:
        ctx.add(bt, bt.amount_minor, None, klass, order=order, note=note)
        return
    refund = _refund_for(ctx, bt)
    if refund is None or refund.state != Refund.State.POSTED or refund.credit_memo_total_minor is None:
        ctx.add(bt, bt.amount_minor, None, Class.MISSING_ERP_POSTING, order=order, refund=refund,
                erp_document=order.erp_order_id,
                note="the refund has no credit memo in the ERP yet" if refund else "no refund of this amount is known")
        return
    _against_erp(ctx, bt, order, -refund.credit_memo_total_minor, _in_order_currency(bt, order), refund=refund,
                 erp_document=refund.credit_memo_id)


def _match_dispute(ctx: _Context, bt) -> None:
    klass, order, note = _order_problem(ctx, bt)
    if klass:
        ctx.add(bt, bt.amount_minor, None, klass, order=order, note=note)
        return
    # A chargeback takes back at most what the order was paid; its reversal gives it back.
    disputed = _in_order_currency(bt, order)
    if disputed is not None and abs(disputed) > order.erp_total_minor + ctx.tolerance:
        erp = -order.erp_total_minor if bt.amount_minor < 0 else order.erp_total_minor
        expected = erp if not order.currency or order.currency == bt.currency else _converted(bt, erp)
        ctx.add(bt, bt.amount_minor, expected, Class.AMOUNT_MISMATCH, order=order, erp_document=order.erp_order_id,
                note="the dispute is for more than the order's ERP total")
        return
    label = "chargeback" if bt.type == T.DISPUTE else "chargeback reversed"
    ctx.add(bt, bt.amount_minor, bt.amount_minor, Class.NONE, order=order, erp_document=order.erp_order_id, note=label)


def _match_fee(ctx: _Context, bt) -> None:
    if not bt.fee_minor:
        return
    actual = -bt.fee_minor
    expected = actual if ctx.fees is None or bt.type != T.CHARGE else -ctx.expected_fee(bt)
    klass = ctx.compare(actual, expected)
    if klass == Class.NONE:
        ctx.agreed_fees += actual
        ctx.agreed_fee_count += 1
        return
    ctx.add(bt, actual, expected, Class.FEE_MISMATCH if klass == Class.AMOUNT_MISMATCH else klass,
            note="processing fee against the agreed rate")


def _match_transaction(ctx: _Context, bt) -> None:
    if bt.test:
        ctx.add(bt, bt.net_minor, 0, Class.TEST_TRANSACTION, note="test mode: no money moved")
        return
    if bt.type == T.CHARGE:
        _match_charge(ctx, bt)
    elif bt.type == T.REFUND:
        _match_refund(ctx, bt)
    elif bt.type in (T.DISPUTE, T.DISPUTE_REVERSAL):
        _match_dispute(ctx, bt)
    elif bt.type in (T.RESERVE, T.RESERVE_RELEASE):
        ctx.add(bt, bt.amount_minor, bt.amount_minor, Class.NONE,
                note="held in reserve" if bt.type == T.RESERVE else "released from reserve")
    elif bt.type == T.ADJUSTMENT:
        ctx.add(bt, bt.amount_minor, bt.amount_minor, Class.NONE, note=f"adjustment: {bt.adjustment_reason or 'no reason given'}")
    elif bt.type == T.CURRENCY_CONVERSION:
        ctx.add(bt, bt.amount_minor, 0, Class.CURRENCY_CONVERSION, note=bt.adjustment_reason or "currency conversion")
    elif bt.type == T.FEE:
        ctx.add(bt, bt.amount_minor, bt.amount_minor, Class.NONE, note="fee")
    else:
        ctx.add(bt, bt.amount_minor, None, Class.MISSING_ERP_POSTING,
                note=f"{bt.source_type or bt.type}: nothing in the ERP explains it")
    _match_fee(ctx, bt)


_LINE_FIELDS = ("balance_transaction_id", "kind", "difference_class", "expected_minor", "actual_minor",
                "variance_minor", "order_id", "refund_id", "erp_document", "note")
_KIND, _ACTUAL = _LINE_FIELDS.index("kind"), _LINE_FIELDS.index("actual_minor")
_DELETE_CHUNK = 5000


def _lines_write(payout_id: int, lines: list[tuple]) -> None:
    """Make the payout's stored lines these lines: unchanged ones are kept (re-matching an unchanged
    payout writes nothing), stale ones deleted, new ones inserted in one statement."""
    stored: dict[tuple, list[int]] = defaultdict(list)
    for line_id, *values in (ReconciliationLine.objects.filter(payout_id=payout_id).order_by("id")
                             .values_list("id", *_LINE_FIELDS).iterator(chunk_size=5000)):
        stored[tuple(values)].append(line_id)
    new = []
    for line in lines:
        kept = stored.get(line)
        if kept:
            kept.pop(0)
        else:
            new.append(line)
    stale = iter([line_id for ids in stored.values() for line_id in ids])
    while chunk := list(islice(stale, _DELETE_CHUNK)):
        ReconciliationLine.objects.filter(pk__in=chunk).delete()
    if new:
        rows_insert(ReconciliationLine, ("payout_id", *_LINE_FIELDS), ((payout_id, *line) for line in new))


@transaction.atomic
def payout_match(payout_id: int) -> Payout:
    """Rebuild the payout's reconciliation lines and set it matched or variance. Safe to run twice:
    the lines are replaced as a whole under the payout's row lock; a locked payout is returned as is."""
    payout = Payout.objects.select_for_update().select_related("connection").get(pk=payout_id)
    if payout.locked:
        return payout
    transactions = _rows(BalanceTransaction.objects.filter(payout=payout).exclude(type=T.PAYOUT).order_by("id"),
                         "id", "type", "test", "storefront_order_id", "source_id", "source_type", "currency",
                         "amount_minor", "fee_minor", "net_minor", "adjustment_reason", "presentment_amount_minor",
                         "presentment_currency", "exchange_rate")
    ctx = _Context(payout, transactions)
    for bt in transactions:
        _match_transaction(ctx, bt)
    if ctx.agreed_fee_count:
        ctx.add(None, ctx.agreed_fees, ctx.agreed_fees, Class.NONE,
                note=f"processing fees of {ctx.agreed_fee_count} transaction(s), as agreed")
    explained = sum(line[_ACTUAL] for line in ctx.lines)
    if explained != payout.amount_minor:
        ctx.add(None, payout.amount_minor - explained, 0, Class.AMOUNT_MISMATCH,
                note="the payout's amount differs from the sum of its transactions")
    _lines_write(payout.pk, ctx.lines)
    payout.matched_at = timezone.now()
    fields = ["matched_at"]
    if payout.status in MATCHING_STATUSES:
        clean = all(line[_KIND] == Kind.MATCHED for line in ctx.lines)
        status = Payout.Status.MATCHED if clean else Payout.Status.VARIANCE
        if status != payout.status:
            payout.status = status
            fields.append("status")
    if "status" in fields:
        payout.save()  # a status change is history
    else:
        Payout.objects.filter(pk=payout.pk).update(matched_at=payout.matched_at)
    return payout


def payout_rematch(*, payout: Payout) -> Payout:
    """The "re-match" action: run the matching again now (late postings are taken into account)."""
    return payout_match(payout.pk)


def payouts_rematch_open() -> int:
    """Every payout not yet approved, matched again (the schedule's entry point, every 10 minutes)."""
    from .settlement import settlement_orders_resolve_open

    settlement_orders_resolve_open()
    ids = list(Payout.objects.filter(status__in=REMATCH_STATUSES).values_list("pk", flat=True))
    for payout_id in ids:
        payout_match(payout_id)
    return len(ids)


def payout_totals(payout: Payout) -> dict:
    """What the reconciliation screen shows; received == matched + unmatched, always."""
    lines = ReconciliationLine.objects.filter(payout=payout)
    by_kind = {row["kind"]: row["total"] or 0 for row in lines.values("kind").annotate(total=Sum("actual_minor"))}
    by_class = {row["difference_class"]: row["total"] or 0 for row in
                lines.exclude(difference_class=Class.NONE).values("difference_class").annotate(total=Sum("variance_minor"))}
    expected = lines.aggregate(total=Sum("expected_minor"))["total"] or 0
    variance = lines.aggregate(total=Sum("variance_minor"))["total"] or 0
    return {
        "currency": payout.currency,
        "expected": expected,
        "received": payout.amount_minor,
        "matched": by_kind.get(Kind.MATCHED, 0),
        "unmatched": by_kind.get(Kind.UNMATCHED, 0),
        "variance": variance,
        "variance_by_class": {klass: by_class.get(klass, 0) for klass in Class.values if klass != Class.NONE},
    }
