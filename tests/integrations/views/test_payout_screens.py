"""The payout screens: finance works them, admins read them, nobody else sees them; filters and paging;
a reconciliation whose totals add up on screen, its lines drilling down to their orders; approve with
a note, reject, send back and re-match over HTTP; the month-end page and its exports; the home panel."""
import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from integrations.flows.payouts import payout_match
from integrations.models import BalanceTransaction, OrderLink, Payout
from tests.factories import OrderLinkFactory

pytestmark = pytest.mark.django_db
S = Payout.Status


def _payout(connection, external_id, *, day=date(2026, 11, 5), unknown=True, fee=87, currency="GBP"):
    """A payout of one charge for a posted order (matched) and, when `unknown`, one for an order Ledgerline
    does not know (unmatched): matched as the flow does."""
    order = OrderLinkFactory(connection=connection, state=OrderLink.State.POSTED, erp_order_id=f"SO-{external_id}",
                             total_minor=4200, erp_total_minor=4200, currency=currency)
    amounts = [(order.storefront_order_id, 4200, fee)] + ([("999999", 1500, 0)] if unknown else [])
    net = sum(a - f for _, a, f in amounts)
    payout = Payout.objects.create(connection=connection, source=Payout.Source.SHOPIFY_PAYMENTS, external_id=external_id,
                                   currency=currency, amount_minor=net, gross_minor=net + fee, fee_minor=fee,
                                   payout_date=day)
    for n, (order_id, amount, charged) in enumerate(amounts):
        BalanceTransaction.objects.create(payout=payout, connection=connection, external_id=f"{external_id}-{n}",
                                          type="charge", storefront_order_id=order_id, amount_minor=amount,
                                          fee_minor=charged, net_minor=amount - charged, currency=currency)
    return payout_match(payout.pk)


@pytest.fixture
def variance_payout(shopify_connection):
    return _payout(shopify_connection, "8801000001")


@pytest.fixture
def matched_payout(shopify_connection):
    return _payout(shopify_connection, "8801000002", unknown=False, day=date(2026, 11, 6))


def _num(text: str) -> Decimal:
    return Decimal(text.strip().split()[0])


def test_the_list_shows_payouts_with_their_status(client, finance_user, variance_payout, matched_payout):
    client.force_login(finance_user)
    response = client.get(reverse("payouts"))
    body = response.content.decode()
    assert response.status_code == 200 and body.count("<h1") == 1 and 'class="table-wrap"' in body
    assert 'data-status="variance"' in body and 'data-status="matched"' in body
    assert 'id="payout-chart-table"' in body and "2026-11-05" in body


def test_the_list_filters_by_status_period_currency_and_connection(client, finance_user, variance_payout,
                                                                   matched_payout, shopify_connection):
    client.force_login(finance_user)
    body = client.get(reverse("payouts"), {"status": "variance"}).content.decode()
    assert "8801000001" in body and "8801000002" not in body
    assert "8801000001" not in client.get(reverse("payouts"), {"period": "2026-10"}).content.decode()
    assert "8801000001" in client.get(reverse("payouts"), {"period": "2026-11", "currency": "GBP",
                                                           "connection": shopify_connection.pk}).content.decode()
    assert client.get(reverse("payouts"), {"period": "not-a-month"}).status_code == 200


def test_an_htmx_filter_gets_the_table_fragment(client, finance_user, variance_payout):
    client.force_login(finance_user)
    response = client.get(reverse("payouts"), {"status": "variance"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert 'id="payout-table"' in body and "<h1" not in body and "HX-Request" in response["Vary"]


def test_the_list_pages(client, finance_user, shopify_connection):
    for n in range(27):
        _payout(shopify_connection, f"p{n:03}", unknown=False)
    client.force_login(finance_user)
    body = client.get(reverse("payouts")).content.decode()
    assert "Page 1 of 2" in body and "27 payouts" in body


@pytest.mark.parametrize("who", ["ops_user", "ecommerce_user", "outsider"])
def test_other_teams_get_403(client, request, who, variance_payout):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("payouts")).status_code == 403
    assert client.get(reverse("payout-detail", args=[variance_payout.pk])).status_code == 403
    response = client.post(reverse("payout-approve", args=[variance_payout.pk]), {"note": "ok"})
    assert response.status_code == 403
    assert Payout.objects.get(pk=variance_payout.pk).status == S.VARIANCE


def test_signed_out_is_sent_to_login(client, variance_payout):
    response = client.get(reverse("payout-detail", args=[variance_payout.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_admin_reads_but_is_not_offered_the_actions(client, admin_user, variance_payout):
    client.force_login(admin_user)
    body = client.get(reverse("payout-detail", args=[variance_payout.pk])).content.decode()
    assert "Payout 8801000001" in body and ">Approve</button>" not in body
    assert client.post(reverse("payout-approve", args=[variance_payout.pk]), {"note": "ok"}).status_code == 403


def test_the_detail_totals_add_up_and_lines_drill_down(client, finance_user, variance_payout):
    client.force_login(finance_user)
    body = client.get(reverse("payout-detail", args=[variance_payout.pk])).content.decode()
    total = {}
    for name in ("received", "matched", "unmatched", "expected", "variance"):
        marker = f'data-total="{name}">'
        total[name] = _num(body.split(marker, 1)[1].split("<", 1)[0])
    assert total["received"] == Decimal("56.13")  # 42.00 - 0.87 + 15.00
    assert total["matched"] + total["unmatched"] == total["received"]
    assert total["received"] - total["expected"] == total["variance"] == Decimal("15.00")
    classes = [_num(part.split("<", 1)[0]) for part in body.split("data-class-total>")[1:]]
    assert sum(classes) == total["variance"]
    order = OrderLink.objects.get(erp_order_id="SO-8801000001")
    assert reverse("order-detail", args=[order.pk]) in body and "Unknown order" in body
    assert ">Approve</button>" in body and "required: explain the variance" in body


def test_approving_without_a_note_is_refused_and_with_one_is_recorded(client, finance_user, variance_payout,
                                                                    monkeypatch):
    monkeypatch.setattr("integrations.flows.payouts.approval._queue_posting", lambda: None)
    client.force_login(finance_user)
    url = reverse("payout-approve", args=[variance_payout.pk])
    response = client.post(url, {"note": ""})
    assert response.status_code == 400 and "note" in response.content.decode()
    assert Payout.objects.get(pk=variance_payout.pk).status == S.VARIANCE

    response = client.post(url, {"note": "Order 999999 was paid on the old shop"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'id="payout-panel"' in body and "<h1" not in body
    assert response["HX-Trigger"] == "payoutsChanged" and "Approved" in body
    payout = Payout.objects.get(pk=variance_payout.pk)
    assert (payout.status, payout.approved_by, payout.decision_note) == (S.APPROVED, finance_user,
                                                                        "Order 999999 was paid on the old shop")
    assert "approved: Order 999999 was paid on the old shop" in body  # the activity list
    assert client.post(url, {"note": "again"}).status_code == 409


def test_approve_answers_405_to_a_get(client, finance_user, variance_payout):
    client.force_login(finance_user)
    assert client.get(reverse("payout-approve", args=[variance_payout.pk])).status_code == 405


def test_reject_needs_a_reason_and_send_back_then_rematch_reopens(client, finance_user, variance_payout):
    client.force_login(finance_user)
    assert client.post(reverse("payout-reject", args=[variance_payout.pk]), {"reason": " "}).status_code == 400
    client.post(reverse("payout-send-back", args=[variance_payout.pk]), {"reason": "Wait for the ERP"})
    assert Payout.objects.get(pk=variance_payout.pk).status == S.SENT_BACK
    client.post(reverse("payout-rematch", args=[variance_payout.pk]))
    payout = Payout.objects.get(pk=variance_payout.pk)
    assert payout.status == S.VARIANCE and payout.prepared_by == finance_user


def test_the_month_end_page_and_its_exports_list_what_is_open(client, finance_user, variance_payout, matched_payout):
    client.force_login(finance_user)
    body = client.get(reverse("payouts-month-end"), {"period": "2026-11"}).content.decode()
    assert body.count("<h1") == 1 and "Not yet approved: 2 payouts" in body and "Unknown order" in body
    response = client.get(reverse("payouts-month-end-export", args=["csv"]), {"period": "2026-11"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert response["Content-Disposition"] == 'attachment; filename="month-end-2026-11.csv"'
    assert [r[0] for r in rows].count("payout") == 2
    assert ["total", "", "", "", "", "Unknown order", "", "", "GBP", "", "", "15.00", ""] in rows
    response = client.get(reverse("payouts-month-end-export", args=["xlsx"]), {"period": "2026-11"})
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][0] == "row" and any(r[0] == "total" and Decimal(str(r[11])) == Decimal("15.00") for r in values)
    assert client.get(reverse("payouts-month-end"), {"period": "13/2026"}).status_code == 400


def test_home_shows_finance_what_awaits_them(client, finance_user, variance_payout, matched_payout):
    client.force_login(finance_user)
    assert reverse("payouts-awaiting") in client.get(reverse("home")).content.decode()
    body = client.get(reverse("payouts-awaiting"), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-count="to-approve">2<' in body and 'data-count="variances">1<' in body and "8801000001" in body


def test_a_settlement_file_with_a_bad_row_is_refused_naming_it(client, finance_user, ct_connection):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(finance_user)
    body = ("automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,currency,gross,fee,"
            "net,reporting_category,source_id,payment_intent_id\n"
            "po_1,2026-11-05 00:00:00,txn_1,2026-11-04 10:00:00,eur,42.00,0.88,41.12,charge,ch_1,pi_1\n"
            "po_1,2026-11-05 00:00:00,txn_2,2026-11-04 11:00:00,eur,forty,0.88,41.12,charge,ch_2,pi_2\n")
    upload = SimpleUploadedFile("payout_reconciliation.itemized.csv", body.encode(), content_type="text/csv")
    response = client.post(reverse("payouts-settlement-upload"), {"connection": ct_connection.pk, "file": upload})
    assert response.status_code == 400 and "row 3, column 'gross'" in response.content.decode()
    assert not Payout.objects.exists()  # nothing half-imported


def test_only_finance_uploads_settlement_files(client, admin_user, ct_connection):
    client.force_login(admin_user)
    assert client.post(reverse("payouts-settlement-upload"), {"connection": ct_connection.pk}).status_code == 403
