"""The month-end pack: for a period, every payout not yet approved and every unreconciled line with
totals by difference class (per currency), as a page and as CSV / XLSX; plus what changed since the
last month-end (late postings and reopened payouts of earlier periods, read from the history table)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Iterator

from django.db.models import Count, Q, Sum
from django.utils import timezone

from integrations.domain import format_amount, from_minor_units
from integrations.models import Payout, ReconciliationLine

S = Payout.Status
Kind = ReconciliationLine.Kind
OPEN_STATUSES = (S.IMPORTED, S.MATCHED, S.VARIANCE, S.SENT_BACK, S.REJECTED)
CLASS_LABELS = dict(ReconciliationLine.DifferenceClass.choices)
COLUMNS = ("row", "connection", "payout", "payout date", "status", "class", "order", "ERP document", "currency",
           "expected", "actual", "variance", "note")
MONEY_COLUMNS = (9, 10, 11)


def period_start(value: date) -> date:
    return value.replace(day=1)


def next_period(value: date) -> date:
    return value.replace(year=value.year + 1, month=1) if value.month == 12 else value.replace(month=value.month + 1)


def previous_period(value: date) -> date:
    return value.replace(year=value.year - 1, month=12) if value.month == 1 else value.replace(month=value.month - 1)


def parse_period(text: str | None) -> date:
    """"2026-11" (or a date in it) -> 2026-11-01; blank: this month. ValueError when unreadable."""
    text = (text or "").strip()
    if not text:
        return timezone.localdate().replace(day=1)
    try:
        return date.fromisoformat(text if len(text) > 7 else f"{text}-01").replace(day=1)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a month (YYYY-MM).") from None


@dataclass
class MonthEnd:
    period: date
    payouts: list[Payout]  # open (not approved) payouts of the period, with .unmatched_count/.variance_total
    totals_by_class: dict[str, dict[str, int]]  # class -> currency -> variance (minor units)
    unapproved_by_currency: dict[str, int]  # currency -> amount of the open payouts
    late_postings: list = field(default_factory=list)  # history rows: earlier periods posted since the cutoff
    reopened: list = field(default_factory=list)  # history rows: earlier periods reopened since the cutoff
    connection_id: int | None = None

    @property
    def cutoff(self) -> datetime:
        """The last month-end: the start of this period."""
        return timezone.make_aware(datetime.combine(self.period, time.min))

    @property
    def is_clean(self) -> bool:
        return not self.payouts


def _scoped(qs, connection_id):
    return qs.filter(connection_id=connection_id) if connection_id else qs


def month_end_report(*, period: date, connection_id: int | None = None) -> MonthEnd:
    period = period_start(period)
    payouts = list(_scoped(Payout.objects.filter(period=period, status__in=OPEN_STATUSES), connection_id)
                   .select_related("connection")
                   .annotate(unmatched_count=Count("lines", filter=Q(lines__kind=Kind.UNMATCHED)),
                             variance_total=Sum("lines__variance_minor", filter=Q(lines__kind=Kind.UNMATCHED)))
                   .order_by("payout_date", "pk"))
    totals: dict[str, dict[str, int]] = {}
    lines = ReconciliationLine.objects.filter(payout__in=[p.pk for p in payouts], kind=Kind.UNMATCHED)
    for row in lines.values("difference_class", "payout__currency").annotate(total=Sum("variance_minor")).order_by():
        totals.setdefault(row["difference_class"], {})[row["payout__currency"]] = row["total"] or 0
    unapproved: dict[str, int] = {}
    for payout in payouts:
        unapproved[payout.currency] = unapproved.get(payout.currency, 0) + payout.amount_minor
    report = MonthEnd(period=period, payouts=payouts, totals_by_class=dict(sorted(totals.items())),
                      unapproved_by_currency=unapproved, connection_id=connection_id)
    earlier = _scoped(Payout.history.filter(period__lt=period, history_date__gte=report.cutoff), connection_id)
    report.late_postings = list(earlier.filter(status=S.POSTED).select_related("history_user").order_by("history_date"))
    report.reopened = list(earlier.filter(history_change_reason__startswith="reopened")
                           .select_related("history_user").order_by("history_date"))
    return report


def _money(minor, currency: str) -> str:
    return "" if minor is None else format_amount(from_minor_units(minor, currency), currency)


def month_end_rows(report: MonthEnd) -> Iterator[tuple]:
    """The export's rows after the header: each open payout, its unreconciled lines, then the totals."""
    lines = (ReconciliationLine.objects.filter(payout__in=[p.pk for p in report.payouts], kind=Kind.UNMATCHED)
             .select_related("order").order_by("payout_id", "pk"))
    by_payout: dict[int, list] = {}
    for line in lines.iterator(chunk_size=5000):
        by_payout.setdefault(line.payout_id, []).append(line)
    for payout in report.payouts:
        c = payout.currency
        yield ("payout", payout.connection.code, payout.external_id, payout.payout_date.isoformat(),
               payout.get_status_display(), "", "", payout.journal_reference, c, "", _money(payout.amount_minor, c),
               _money(payout.variance_total or 0, c), payout.decision_note)
        for line in by_payout.pop(payout.pk, []):
            yield ("line", payout.connection.code, payout.external_id, payout.payout_date.isoformat(),
                   payout.get_status_display(), CLASS_LABELS.get(line.difference_class, line.difference_class),
                   line.order.storefront_order_id if line.order else "", line.erp_document, c,
                   _money(line.expected_minor, c), _money(line.actual_minor, c), _money(line.variance_minor, c), line.note)
    for klass, per_currency in report.totals_by_class.items():
        for currency, total in sorted(per_currency.items()):
            yield ("total", "", "", "", "", CLASS_LABELS.get(klass, klass), "", "", currency, "", "",
                   _money(total, currency), "")
    for history in report.late_postings:
        yield ("late posting", "", history.external_id, history.payout_date.isoformat(), "Posted", "", "",
               history.journal_reference, history.currency, "", _money(history.amount_minor, history.currency), "",
               f"posted {history.history_date:%Y-%m-%d %H:%M}")
    for history in report.reopened:
        yield ("reopened", "", history.external_id, history.payout_date.isoformat(), history.get_status_display(), "",
               "", "", history.currency, "", _money(history.amount_minor, history.currency), "",
               f"{history.history_change_reason} {history.history_date:%Y-%m-%d %H:%M}")


def month_end_csv(report: MonthEnd) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(month_end_rows(report))
    return out.getvalue()


def month_end_xlsx(report: MonthEnd) -> bytes:
    """The same rows as the CSV in one sheet (write-only: memory stays flat however long the list)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(f"Month-end {report.period:%Y-%m}")
    sheet.append(list(COLUMNS))
    for row in month_end_rows(report):
        # The money columns as numbers (Decimal: exact), so the sheet can sum them.
        sheet.append([Decimal(v) if i in MONEY_COLUMNS and v else v for i, v in enumerate(row)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
