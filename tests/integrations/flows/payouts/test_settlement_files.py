"""PSP settlement reports for commercetools (Stripe's itemized payout reconciliation, Adyen's settlement
details): each row matched to the commercetools payment it settles (interfaceId, interactionId) and so
to the order and credit memo in the sandbox ERP; a malformed row imports nothing and says which row and
column; the same file twice imports nothing; the watched folder picks files up."""
import json
from decimal import Decimal

import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.flows.payouts import payout_totals, settlement_file_import, settlement_folders_scan
from integrations.inbox.commercetools_poll import commercetools_orders_poll
from integrations.models import BalanceTransaction, OrderLink, Payout, ReconciliationLine, Refund, SettlementFile

pytestmark = pytest.mark.django_db
C = ReconciliationLine.DifferenceClass

STRIPE_HEADER = ("automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,currency,"
                 "gross,fee,net,reporting_category,source_id,description,payment_intent_id,charge_id\n")
ADYEN_HEADER = ("Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,"
                "TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),"
                "Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),"
                "Scheme Fees (NC),Interchange (NC),Payment Method Variant,Batch Number\n")


@pytest.fixture
def ct_shop(order_setup):
    for erp in (order_setup.erp, order_setup.prima):
        erp.add_item("GOODWILL", "Goodwill credit")
    return order_setup.commercetools


@pytest.fixture
def posted(ct_shop, django_capture_on_commit_callbacks):
    """A commercetools order paid through the PSP, posted to the sandbox ERP by the order flow."""
    def posted(quantity=2):
        order = ct_shop.create_order(customer_email="rita@example.de", currency="EUR", country="DE",
                                     payment_state="Paid", line_items=[{"sku": "TEE-BLK-S", "name": "Tee",
                                                                        "quantity": quantity, "price": "10.00",
                                                                        "tax_rate": 0.19}])
        payment = ct_shop.add_payment(order["id"])
        with django_capture_on_commit_callbacks(execute=True):
            commercetools_orders_poll(connection_code="commercetools")
        link = OrderLink.objects.get(storefront_order_id=order["id"])
        assert link.state == OrderLink.State.POSTED, link.last_error
        return order, payment, link
    return posted


def _eur(minor: int) -> str:
    return str(Decimal(minor) / 100)


def _adds_up(payout):
    totals = payout_totals(payout)
    assert totals["matched"] + totals["unmatched"] == totals["received"] == payout.amount_minor
    return totals


def test_a_stripe_report_matches_its_rows_to_commercetools_payments(posted, ct_connection, finance_user):
    (o1, p1, l1), (o2, p2, l2) = posted(2), posted(3)
    fee1, fee2 = 61, 85
    report = STRIPE_HEADER + "".join(
        f"po_1Q,2026-11-20 00:00:00,txn_{n},2026-11-18 10:00:00,eur,{_eur(link.erp_total_minor)},{_eur(fee)},"
        f"{_eur(link.erp_total_minor - fee)},charge,ch_{n},Order,{payment['interfaceId']},ch_{n}\n"
        for n, (payment, link, fee) in enumerate([(p1, l1, fee1), (p2, l2, fee2)], start=1))

    record = settlement_file_import(ct_connection, "payout_reconciliation.csv", report.encode(), finance_user)

    assert (record.status, record.layout, record.rows, record.uploaded_by) == (
        SettlementFile.Status.IMPORTED, SettlementFile.Layout.STRIPE_PAYOUT_RECONCILIATION, 2, finance_user)
    payout = Payout.objects.get()
    assert (payout.external_id, payout.source, payout.currency) == ("po_1Q", Payout.Source.SETTLEMENT_FILE, "EUR")
    assert payout.amount_minor == l1.erp_total_minor + l2.erp_total_minor - fee1 - fee2
    assert {bt.storefront_order_id for bt in BalanceTransaction.objects.all()} == {o1["id"], o2["id"]}
    charges = payout.lines.filter(balance_transaction__type="charge")
    assert {(line.order, line.difference_class) for line in charges} == {(l1, C.NONE), (l2, C.NONE)}
    assert payout.status == Payout.Status.MATCHED
    _adds_up(payout)

    again = settlement_file_import(ct_connection, "copy of it.csv", report.encode(), finance_user)
    assert again.pk == record.pk and BalanceTransaction.objects.count() == 2 and SettlementFile.objects.count() == 1


def test_an_adyen_report_matches_settled_and_refunded_rows(posted, ct_shop, ct_connection, client,
                                                           django_capture_on_commit_callbacks):
    order, payment, link = posted(2)
    ct_shop.add_return_info(order["id"], [{"sku": "TEE-BLK-S", "quantity": 1, "shipment_state": "Returned"}])
    returned = ct_shop.messages[-1]
    refund = ct_shop.refund_payment(payment["id"], "11.90")
    for message in (returned, ct_shop.messages[-1]):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/webhooks/commercetools/commercetools/", data=json.dumps(message),
                                   content_type="application/json",
                                   headers={"Authorization": "Bearer sandbox-subscription-token"})
        assert response.status_code == 200
    memo = Refund.objects.get()
    assert memo.state == Refund.State.POSTED, memo.last_error
    total = link.erp_total_minor
    psp = payment["interfaceId"]
    report = ADYEN_HEADER + (
        f"Ledgerline,LedgerlineEU,{psp},{order['orderNumber']},visa,2026-11-18 10:00:00,CET,Settled,"
        f"8815000000000001,EUR,,{_eur(total)},1,EUR,,{_eur(total - 40)},,0.12,0.08,0.20,visaclassic,41\n"
        f"Ledgerline,LedgerlineEU,{psp},{order['orderNumber']},visa,2026-11-19 09:00:00,CET,Refunded,"
        f"{refund['interactionId']},EUR,11.90,,1,EUR,11.90,,,,,,visaclassic,41\n"
        f"Ledgerline,LedgerlineEU,,,,2026-11-20 04:55:40,CET,Fee,Transaction Fees November 2026,,,,,EUR,0.50,,,,,,,41\n"
        f"Ledgerline,LedgerlineEU,,,,2026-11-20 05:00:00,CET,MerchantPayout,,,,,,EUR,{_eur(total - 40 - 1190 - 50)},"
        f",,,,,,41\n")

    record = settlement_file_import(ct_connection, "settlement_detail_report_batch_41.csv", report.encode())

    assert (record.status, record.layout, record.rows) == (SettlementFile.Status.IMPORTED,
                                                           SettlementFile.Layout.ADYEN_SETTLEMENT_DETAILS, 4)
    payout = Payout.objects.get()
    assert payout.external_id == "LedgerlineEU:41"
    assert payout.amount_minor == total - 40 - 1190 - 50  # what the MerchantPayout row sent to the bank
    charge = payout.lines.get(balance_transaction__type="charge")
    assert (charge.actual_minor, charge.order, charge.difference_class) == (total, link, C.NONE)
    refunded = payout.lines.get(balance_transaction__type="refund")
    assert (refunded.actual_minor, refunded.refund, refunded.erp_document) == (-1190, memo, memo.credit_memo_id)
    assert refunded.difference_class == C.NONE
    assert payout.lines.get(note__startswith="processing fees").actual_minor == -40
    assert payout.status == Payout.Status.MATCHED
    _adds_up(payout)


def test_a_malformed_stripe_row_imports_nothing_and_names_row_and_column(posted, ct_connection):
    _, payment, link = posted(2)
    report = STRIPE_HEADER + (
        f"po_1Q,2026-11-20,txn_1,2026-11-18,eur,{_eur(link.erp_total_minor)},0.61,"
        f"{_eur(link.erp_total_minor - 61)},charge,ch_1,,{payment['interfaceId']},ch_1\n"
        "po_1Q,2026-11-20,txn_2,2026-11-18,eur,12.3x,0.20,12.10,charge,ch_2,,pi_2,ch_2\n")

    record = settlement_file_import(ct_connection, "bad.csv", report.encode())

    assert record.status == SettlementFile.Status.FAILED
    assert "row 3" in record.error and "'gross'" in record.error and "12.3x" in record.error
    assert not Payout.objects.exists() and not BalanceTransaction.objects.exists()
    exception = ExceptionRecord.objects.get(type_code="settlement_file_rejected")
    assert exception.team == "finance" and "row 3" in exception.message


def test_a_malformed_adyen_row_imports_nothing_and_names_row_and_column(ct_connection):
    report = ADYEN_HEADER + (
        "Ledgerline,LedgerlineEU,8815000000000009,R1,visa,2026-11-18 10:00:00,CET,Settled,8815000000000010,EUR,,"
        "20.00,1,EUR,,19.60,,,,0.40,visaclassic,42\n"
        "Ledgerline,LedgerlineEU,8815000000000011,R2,visa,2026-11-18 11:00:00,CET,Setled,8815000000000012,EUR,,"
        "30.00,1,EUR,,29.50,,,,0.50,visaclassic,42\n")

    record = settlement_file_import(ct_connection, "settlement_detail_report_batch_42.csv", report.encode())

    assert record.status == SettlementFile.Status.FAILED
    assert "row 3" in record.error and "'Type'" in record.error and "Setled" in record.error
    assert not Payout.objects.exists() and not BalanceTransaction.objects.exists()


def test_a_file_that_fails_after_its_first_payout_leaves_nothing_behind(ct_connection):
    # Batch 43 is fine; batch 44 mixes currencies: found only while storing, after 43 was written.
    report = ADYEN_HEADER + (
        "Ledgerline,LedgerlineEU,8815000000000021,R1,visa,2026-11-18 10:00:00,CET,Settled,8815000000000022,EUR,,"
        "20.00,1,EUR,,19.60,,,,0.40,visaclassic,43\n"
        "Ledgerline,LedgerlineEU,8815000000000023,R2,visa,2026-11-18 11:00:00,CET,Settled,8815000000000024,EUR,,"
        "30.00,1,EUR,,29.50,,,,0.50,visaclassic,44\n"
        "Ledgerline,LedgerlineEU,8815000000000025,R3,visa,2026-11-18 12:00:00,CET,Settled,8815000000000026,GBP,,"
        "10.00,1,GBP,,9.80,,,,0.20,visaclassic,44\n")

    record = settlement_file_import(ct_connection, "settlement_detail_report_batch_44.csv", report.encode())

    assert record.status == SettlementFile.Status.FAILED and "mixes currencies" in record.error
    assert not Payout.objects.exists() and not BalanceTransaction.objects.exists()


def test_an_unknown_layout_is_refused_with_its_header_named(ct_connection):
    record = settlement_file_import(ct_connection, "bank.csv", b"date,amount\n2026-11-20,10.00\n")
    assert record.status == SettlementFile.Status.FAILED and record.error.startswith("row 1:")


def test_the_watched_folder_imports_each_new_file_once(sandbox, ct_connection, tmp_path):
    ct_connection.settings = {**ct_connection.settings, "settlement_folder": str(tmp_path)}
    ct_connection.save()
    (tmp_path / "settlement_detail_report_batch_45.csv").write_text(ADYEN_HEADER + (
        "Ledgerline,LedgerlineEU,8815000000000031,R1,visa,2026-11-18 10:00:00,CET,Settled,8815000000000032,EUR,,"
        "20.00,1,EUR,,19.60,,,,0.40,visaclassic,45\n"))

    assert settlement_folders_scan() == 1
    assert settlement_folders_scan() == 0

    payout = Payout.objects.get()
    assert payout.amount_minor == 1960
    line = payout.lines.get(balance_transaction__type="charge")
    assert line.difference_class == C.UNKNOWN_ORDER  # no commercetools payment has that PSP reference
    assert SettlementFile.objects.get().name == "settlement_detail_report_batch_45.csv"


def _converted(minor: int, rate: str) -> int:
    from decimal import ROUND_HALF_UP

    return int((Decimal(minor) * Decimal(rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_an_adyen_batch_settled_in_another_currency_sets_its_conversion_difference_apart(posted, ct_connection):
    """Two EUR orders settled in GBP at Adyen's rate: one converted exactly, one a penny off the ERP's
    total at that rate (Adyen's rounding): that penny is currency conversion, not an amount mismatch."""
    (o1, p1, l1), (o2, p2, l2) = posted(2), posted(3)
    rate = "0.8573"
    exact, penny_off = _converted(l1.erp_total_minor, rate), _converted(l2.erp_total_minor, rate) + 1
    rows = [(p1, o1, l1, exact, 30), (p2, o2, l2, penny_off, 35)]
    report = ADYEN_HEADER + "".join(
        f"Ledgerline,LedgerlineUK,{p['interfaceId']},{o['orderNumber']},visa,2026-11-18 10:00:00,CET,Settled,"
        f"88150000000001{n},EUR,,{_eur(link.erp_total_minor)},{rate},GBP,,{_eur(gbp - fee)},,{_eur(fee)},,,visa,46\n"
        for n, (p, o, link, gbp, fee) in enumerate(rows))

    record = settlement_file_import(ct_connection, "settlement_detail_report_batch_46.csv", report.encode())

    assert record.status == SettlementFile.Status.IMPORTED, record.error
    payout = Payout.objects.get()
    assert payout.currency == "GBP" and payout.amount_minor == exact + penny_off - 65
    stored = BalanceTransaction.objects.get(storefront_order_id=o1["id"])
    assert (stored.currency, stored.amount_minor, stored.presentment_currency, stored.presentment_amount_minor,
            stored.exchange_rate) == ("GBP", exact, "EUR", l1.erp_total_minor, Decimal(rate))
    first = payout.lines.get(order=l1)
    assert (first.difference_class, first.actual_minor, first.expected_minor) == (C.NONE, exact, exact)
    second = payout.lines.get(order=l2)
    assert (second.difference_class, second.kind, second.variance_minor) == (C.CURRENCY_CONVERSION, "unmatched", 1)
    assert second.expected_minor == _converted(l2.erp_total_minor, rate) and "0.8573" in second.note
    assert payout.status == Payout.Status.VARIANCE
    totals = _adds_up(payout)
    assert totals["variance_by_class"]["currency_conversion"] == 1 and totals["variance_by_class"]["amount_mismatch"] == 0


def test_a_stripe_row_in_another_currency_is_matched_on_what_the_customer_paid(posted, ct_connection):
    """A USD Stripe account paid by EUR customers: the order is matched on customer_facing_amount; a
    customer who paid a euro less than the Sales Order is an amount mismatch, shown in dollars."""
    (o1, p1, l1), (o2, p2, l2) = posted(2), posted(3)
    usd1, usd2 = _converted(l1.erp_total_minor, "1.08"), _converted(l2.erp_total_minor - 100, "1.08")
    header = STRIPE_HEADER.rstrip("\n") + ",customer_facing_amount,customer_facing_currency\n"
    report = header + "".join(
        f"po_2Q,2026-11-20 00:00:00,txn_fx{n},2026-11-18 10:00:00,usd,{_eur(usd)},0.00,{_eur(usd)},charge,ch_fx{n},"
        f"Order,{p['interfaceId']},ch_fx{n},{_eur(paid)},eur\n"
        for n, (p, usd, paid) in enumerate([(p1, usd1, l1.erp_total_minor), (p2, usd2, l2.erp_total_minor - 100)]))

    record = settlement_file_import(ct_connection, "payout_reconciliation.itemized.csv", report.encode())

    assert record.status == SettlementFile.Status.IMPORTED, record.error
    payout = Payout.objects.get()
    first, second = payout.lines.get(order=l1), payout.lines.get(order=l2)
    assert (first.difference_class, first.expected_minor, first.actual_minor) == (C.NONE, usd1, usd1)
    assert second.difference_class == C.AMOUNT_MISMATCH
    # The ERP's total at the rate Stripe's two amounts imply, against what arrived.
    implied = int((Decimal(l2.erp_total_minor) * usd2 / (l2.erp_total_minor - 100)).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert (second.expected_minor, second.actual_minor) == (implied, usd2)
    assert "EUR" in second.note and "USD" in second.note
    _adds_up(payout)


def test_a_bad_exchange_rate_names_its_row(ct_connection):
    report = ADYEN_HEADER + (
        "Ledgerline,LedgerlineUK,8815000000000041,R1,visa,2026-11-18 10:00:00,CET,Settled,8815000000000042,EUR,,"
        "20.00,0.85x,GBP,,16.80,,0.20,,,visaclassic,47\n")

    record = settlement_file_import(ct_connection, "settlement_detail_report_batch_47.csv", report.encode())

    assert record.status == SettlementFile.Status.FAILED
    assert "row 2" in record.error and "'Exchange Rate'" in record.error
    assert not BalanceTransaction.objects.exists()
