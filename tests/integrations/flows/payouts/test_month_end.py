"""The month-end pack: every payout of the period not yet approved and its unreconciled lines, totals by
class and currency, and what changed since the last month-end (late postings, reopened payouts)."""
from datetime import date

import pytest
from django.utils import timezone

from integrations.flows.payouts import payout_match
from integrations.flows.payouts.approval import payout_approve, payout_reject, payout_rematch_by, payouts_post_approved
from integrations.flows.payouts.month_end import month_end_csv, month_end_report, parse_period
from integrations.models import BalanceTransaction, OrderLink, Payout
from tests.factories import ConnectionFactory, OrderLinkFactory

pytestmark = pytest.mark.django_db
S = Payout.Status


def _payout(connection, external_id, day, *, unknown_minor=0, short_minor=0, currency="GBP"):
    """One posted order's charge (short by `short_minor`: an amount mismatch) and, optionally, a charge of an
    order nobody knows (unknown order)."""
    order = OrderLinkFactory(connection=connection, state=OrderLink.State.POSTED, erp_order_id=f"SO-{external_id}",
                             total_minor=5000, erp_total_minor=5000, currency=currency)
    rows = [(order.storefront_order_id, 5000 - short_minor)] + ([("404", unknown_minor)] if unknown_minor else [])
    payout = Payout.objects.create(connection=connection, source=Payout.Source.SHOPIFY_PAYMENTS, external_id=external_id,
                                   currency=currency, amount_minor=sum(a for _, a in rows), payout_date=day)
    for n, (order_id, amount) in enumerate(rows):
        BalanceTransaction.objects.create(payout=payout, connection=connection, external_id=f"{external_id}-{n}",
                                          type="charge", storefront_order_id=order_id, amount_minor=amount,
                                          net_minor=amount, currency=currency)
    return payout_match(payout.pk)


@pytest.fixture
def shop(db):
    return ConnectionFactory(code="shopify", kind="shopify", name="Shopify store")


def test_month_end_lists_open_payouts_with_totals_by_class_and_currency(shop, finance_user):
    eu = ConnectionFactory(code="shopify-eu", kind="shopify", name="EU store")
    _payout(shop, "a", date(2026, 11, 3), unknown_minor=1200)
    _payout(shop, "b", date(2026, 11, 9), unknown_minor=300, short_minor=25)
    _payout(eu, "c", date(2026, 11, 9), short_minor=40, currency="EUR")
    clean = _payout(shop, "d", date(2026, 11, 20))
    payout_approve(payout_id=clean.pk, user=finance_user)
    _payout(shop, "e", date(2026, 10, 30), unknown_minor=999)  # another month

    report = month_end_report(period=date(2026, 11, 1))

    assert [p.external_id for p in report.payouts] == ["a", "b", "c"]
    assert report.totals_by_class == {"amount_mismatch": {"GBP": -25, "EUR": -40}, "unknown_order": {"GBP": 1500}}
    assert report.unapproved_by_currency == {"GBP": 6200 + 5275, "EUR": 4960}
    assert {p.external_id: p.unmatched_count for p in report.payouts} == {"a": 1, "b": 2, "c": 1}
    assert [p.external_id for p in month_end_report(period=date(2026, 11, 1), connection_id=eu.pk).payouts] == ["c"]

    rows = month_end_csv(report).splitlines()
    assert rows[0].startswith("row,connection,payout")
    assert "total,,,,,Unknown order,,,GBP,,,15.00," in rows and "total,,,,,Amount mismatch,,,EUR,,,-0.40," in rows


def test_what_changed_since_last_month_end_shows_late_postings_and_reopened_payouts(shop, finance_user, sandbox):
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month.replace(day=1) - timezone.timedelta(days=1)).replace(day=1)
    late = _payout(shop, "late", last_month.replace(day=28))
    payout_approve(payout_id=late.pk, user=finance_user)
    assert payouts_post_approved() == 1  # posted this month for last month: a late posting
    reopened = _payout(shop, "again", last_month.replace(day=27), unknown_minor=100)
    payout_reject(payout_id=reopened.pk, user=finance_user, reason="Wrong bank account")
    payout_rematch_by(payout_id=reopened.pk, user=finance_user)

    report = month_end_report(period=this_month)

    assert [h.external_id for h in report.late_postings] == ["late"]
    assert report.late_postings[0].journal_reference == Payout.objects.get(pk=late.pk).journal_reference
    assert [(h.external_id, h.history_user) for h in report.reopened] == [("again", finance_user)]
    assert [p.external_id for p in month_end_report(period=last_month).payouts] == ["again"]


def test_a_period_is_a_month():
    assert parse_period("2026-11") == date(2026, 11, 1) == parse_period("2026-11-17")
    with pytest.raises(ValueError, match="not a month"):
        parse_period("November")
