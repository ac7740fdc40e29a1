"""A Shopify payout, imported over HTTP from the sandbox shop, matched to what the sandbox ERP booked:
charges to posted Sales Orders, refunds to credit memos, fees to the agreed rate, chargebacks to their
orders; every difference classified; a late credit memo makes its difference go away; totals add up."""
from decimal import Decimal

import pytest

from integrations.flows.payouts import payout_match, payout_totals, payouts_import_shopify, payouts_rematch_open
from integrations.models import OrderLink, Payout, ReconciliationLine, Refund
from tests.payloads import deliver_shopify_webhook, shopify_refund

pytestmark = pytest.mark.django_db
C = ReconciliationLine.DifferenceClass


def _minor(amount) -> int:
    return int(Decimal(str(amount)) * 100)


def _import(connection) -> Payout:
    payouts_import_shopify(connection=connection)
    return Payout.objects.get()


def _lines(payout) -> list[tuple[str, str, int, int | None]]:
    return sorted((line.balance_transaction.type if line.balance_transaction else "-", line.difference_class,
                   line.actual_minor, line.expected_minor) for line in payout.lines.select_related("balance_transaction"))


def _adds_up(payout) -> dict:
    totals = payout_totals(payout)
    assert totals["received"] == payout.amount_minor
    assert totals["matched"] + totals["unmatched"] == totals["received"]
    assert sum(payout.lines.values_list("actual_minor", flat=True)) == payout.amount_minor
    assert totals["variance"] == sum(totals["variance_by_class"].values())
    return totals


def test_a_paid_order_and_its_fee_match_the_posted_sales_order(shop, sell, shopify_connection):
    order = sell("20.00", 2)
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    total = _minor(order["total_price"])
    assert link.erp_total_minor == total
    charge = payout.lines.get(balance_transaction__type="charge", actual_minor=total)
    assert (charge.difference_class, charge.kind, charge.expected_minor) == (C.NONE, "matched", total)
    assert charge.order == link and charge.erp_document == link.erp_order_id
    fee = payout.lines.get(note__startswith="processing fees")  # fees as agreed: one line per payout
    assert fee.actual_minor == -payout.balance_transactions.get(type="charge").fee_minor
    assert payout.status == Payout.Status.MATCHED
    totals = _adds_up(payout)
    assert totals["unmatched"] == 0 and totals["variance"] == 0


def test_a_fee_above_the_agreed_rate_is_a_fee_mismatch(shop, sell, shopify_connection):
    shopify_connection.settings = {**shopify_connection.settings, "payout_fee_percent": "1.2", "payout_fee_fixed_minor": 20}
    shopify_connection.save()
    order = sell("50.00")
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    total = _minor(order["total_price"])
    charged = payout.balance_transactions.get(type="charge").fee_minor  # Shopify's 1.5 % + 0.25
    agreed = int((Decimal(total) * Decimal("0.012")).quantize(Decimal(1))) + 20
    fee = payout.lines.get(difference_class=C.FEE_MISMATCH)
    assert (fee.actual_minor, fee.expected_minor, fee.variance_minor) == (-charged, -agreed, agreed - charged)
    assert payout.status == Payout.Status.VARIANCE
    totals = _adds_up(payout)
    assert totals["variance_by_class"]["fee_mismatch"] == agreed - charged


def test_a_partial_refund_matches_its_credit_memo(shop, sell, shopify_connection, client, django_capture_on_commit_callbacks):
    order = sell("20.00", 3)
    refund = shopify_refund(order, lines=[{"index": 0, "quantity": 1}])
    deliver_shopify_webhook(client, refund, django_capture_on_commit_callbacks, topic="refunds/create")
    memo = Refund.objects.get()
    assert memo.state == Refund.State.POSTED, memo.last_error
    shop.payments_refund(order["id"], refund["transactions"][0]["amount"], refund_id=refund["id"])
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    line = payout.lines.get(balance_transaction__type="refund")
    assert (line.difference_class, line.actual_minor, line.expected_minor) == (C.NONE, -memo.amount_minor,
                                                                               -memo.credit_memo_total_minor)
    assert line.refund == memo and line.erp_document == memo.credit_memo_id
    assert payout.status == Payout.Status.MATCHED
    _adds_up(payout)


def test_a_refund_whose_credit_memo_posts_late_resolves_itself(shop, sell, shopify_connection, client,
                                                               django_capture_on_commit_callbacks):
    order = sell("20.00", 2)
    refund = shopify_refund(order, lines=[{"index": 0, "quantity": 1}])
    shop.payments_refund(order["id"], refund["transactions"][0]["amount"], refund_id=refund["id"])
    shop.payments_payout_run()
    payout = _import(shopify_connection)
    line = payout.lines.get(balance_transaction__type="refund")
    assert line.difference_class == C.MISSING_ERP_POSTING and payout.status == Payout.Status.VARIANCE
    assert payout_totals(payout)["variance_by_class"]["missing_erp_posting"] == line.actual_minor
    charge_line = payout.lines.get(balance_transaction__type="charge").pk

    deliver_shopify_webhook(client, refund, django_capture_on_commit_callbacks, topic="refunds/create")
    assert Refund.objects.get().state == Refund.State.POSTED
    assert payouts_rematch_open() == 1

    payout.refresh_from_db()
    assert payout.status == Payout.Status.MATCHED
    assert payout.lines.get(balance_transaction__type="refund").difference_class == C.NONE
    # Only the line that changed was rewritten: the charge's line (and a link to it) is the same one.
    assert payout.lines.get(balance_transaction__type="charge").pk == charge_line
    assert not payout.lines.filter(pk=line.pk).exists()
    assert _adds_up(payout)["variance"] == 0


def test_a_chargeback_and_its_reversal_match_their_order(shop, sell, shopify_connection):
    order = sell("44.00")
    dispute = shop.payments_dispute(order["id"])
    shop.payments_dispute_won(dispute["source_id"])
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    total = _minor(order["total_price"])
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    taken = payout.lines.get(balance_transaction__type="dispute", actual_minor=-total)
    given = payout.lines.get(balance_transaction__type="dispute_reversal")
    assert (taken.difference_class, taken.order, given.actual_minor, given.order) == (C.NONE, link, total, link)
    # The chargeback fee (15.00) is among the payout's fees.
    charge_fee = payout.balance_transactions.get(type="charge").fee_minor
    assert payout.lines.get(note__startswith="processing fees").actual_minor == -(charge_fee + 1500)
    assert payout.status == Payout.Status.MATCHED
    _adds_up(payout)


def test_a_chargeback_for_an_order_never_posted_is_a_missing_posting(shop, sell, shopify_connection):
    order = sell("44.00", post=False)
    shop.payments_dispute(order["id"])
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    assert {line.difference_class for line in payout.lines.filter(balance_transaction__type__in=["charge", "dispute"])
            } == {C.UNKNOWN_ORDER}
    assert payout.status == Payout.Status.VARIANCE
    _adds_up(payout)


def test_reserves_and_their_release_add_up(shop, sell, shopify_connection):
    sell("20.00")
    shop.payments_reserve("12.50")
    shop.payments_reserve("12.50", release=True)
    shop.payments_reserve("4.00")
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    reserves = sorted(payout.lines.filter(balance_transaction__type__in=["reserve", "reserve_release"])
                      .values_list("actual_minor", "difference_class"))
    assert reserves == [(-1250, C.NONE), (-400, C.NONE), (1250, C.NONE)]
    assert payout.status == Payout.Status.MATCHED
    totals = _adds_up(payout)
    assert totals["received"] == payout.balance_transactions.get(type="charge").net_minor - 400


@pytest.mark.parametrize(("tolerance", "klass", "status"), [(2, C.ROUNDING, Payout.Status.MATCHED),
                                                            (0, C.AMOUNT_MISMATCH, Payout.Status.VARIANCE)])
def test_a_one_penny_difference_is_rounding_within_the_tolerance(shop, sell, shopify_connection, tolerance, klass, status):
    shopify_connection.settings = {**shopify_connection.settings, "payout_tolerance_minor": tolerance}
    shopify_connection.save()
    order = sell("9.50", short_by="0.01")
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    line = payout.lines.get(balance_transaction__type="charge")
    assert (line.difference_class, line.variance_minor) == (klass, -1)
    assert line.expected_minor == _minor(order["total_price"])
    assert payout.status == status
    assert _adds_up(payout)["variance_by_class"][klass] == -1


def test_a_currency_conversion_is_its_own_difference(shop, sell, shopify_connection):
    sell("20.00")
    shop.payments_currency_conversion("-0.37")
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    line = payout.lines.get(difference_class=C.CURRENCY_CONVERSION)
    assert (line.actual_minor, line.expected_minor, line.kind) == (-37, 0, "unmatched")
    assert payout.status == Payout.Status.VARIANCE
    assert _adds_up(payout)["variance_by_class"]["currency_conversion"] == -37


def test_test_transactions_are_set_apart(shop, sell, shopify_connection):
    sell("20.00", test=True)
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    assert set(payout.lines.values_list("difference_class", flat=True)) == {C.TEST_TRANSACTION}
    _adds_up(payout)


def test_an_approved_payout_is_never_matched_again(shop, sell, shopify_connection):
    sell("20.00")
    shop.payments_payout_run()
    payout = _import(shopify_connection)
    before = _lines(payout)
    Payout.objects.filter(pk=payout.pk).update(status=Payout.Status.APPROVED)
    OrderLink.objects.update(erp_total_minor=1)  # anything the ERP says later changes nothing now

    payout_match(payout.pk)

    assert _lines(payout) == before
    assert payouts_rematch_open() == 0


def test_re_matching_an_unchanged_payout_rewrites_nothing(shop, sell, shopify_connection):
    sell("20.00")
    shop.payments_payout_run()
    payout = _import(shopify_connection)
    ids = list(payout.lines.values_list("id", flat=True))
    history = payout.history.count()

    payouts_rematch_open()

    assert list(payout.lines.values_list("id", flat=True)) == ids and payout.history.count() == history


def _sell_in_captures(shop, client, capture, amounts, *, when=None):
    """An order paid in several captures (a split tender, or an authorisation captured in parts)."""
    order = shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 2, "price": "25.00"}],
                              financial_status="pending")
    total = Decimal(order["total_price"])
    shop.payments_captures(order["id"], [Decimal(a) for a in amounts] + [total - sum(Decimal(a) for a in amounts)],
                           when=when)
    order = shop.mark_paid(order["id"])  # paid in full now: no further charge
    deliver_shopify_webhook(client, order, capture)
    return order, OrderLink.objects.get(storefront_order_id=str(order["id"]))


def test_an_order_paid_in_two_captures_matches_its_sales_order_by_their_sum(shop, shopify_connection, client,
                                                                            django_capture_on_commit_callbacks):
    order, link = _sell_in_captures(shop, client, django_capture_on_commit_callbacks, ["30.00"])
    shop.payments_payout_run()

    payout = _import(shopify_connection)

    captures = list(payout.lines.filter(balance_transaction__type="charge"))
    assert len(captures) == 2 and {line.order for line in captures} == {link}
    assert {line.difference_class for line in captures} == {C.NONE}  # not one mismatch per capture
    assert sum(line.actual_minor for line in captures) == link.erp_total_minor == _minor(order["total_price"])
    assert payout.status == Payout.Status.MATCHED
    assert _adds_up(payout)["variance"] == 0


def test_a_later_capture_in_a_later_payout_clears_the_first_payouts_shortfall(shop, shopify_connection, client,
                                                                              django_capture_on_commit_callbacks):
    from datetime import datetime, timedelta, timezone

    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    order = shop.create_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 2, "price": "25.00"}],
                              financial_status="pending")
    total = Decimal(order["total_price"])
    shop.payments_captures(order["id"], ["30.00"], when=yesterday)
    shop.payments_payout_run(up_to=yesterday.date())
    payouts_import_shopify(connection=shopify_connection)
    first = Payout.objects.get()
    deliver_shopify_webhook(client, shop.mark_paid(order["id"]), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get(storefront_order_id=str(order["id"]))
    payouts_rematch_open()
    first.refresh_from_db()
    short = first.lines.get(balance_transaction__type="charge")  # 30.00 of the order captured so far
    assert (short.difference_class, short.variance_minor) == (C.AMOUNT_MISMATCH, 3000 - link.erp_total_minor)
    assert first.status == Payout.Status.VARIANCE

    shop.payments_captures(order["id"], [total - Decimal("30.00")])  # the rest captured today
    shop.payments_payout_run()
    payouts_import_shopify(connection=shopify_connection)
    payouts_rematch_open()

    second = Payout.objects.exclude(pk=first.pk).get()
    first.refresh_from_db()
    assert first.lines.get(balance_transaction__type="charge").difference_class == C.NONE
    latest = second.lines.get(balance_transaction__type="charge")
    assert (latest.difference_class, latest.order, latest.variance_minor) == (C.NONE, link, 0)
    assert first.status == second.status == Payout.Status.MATCHED
    _adds_up(first), _adds_up(second)
