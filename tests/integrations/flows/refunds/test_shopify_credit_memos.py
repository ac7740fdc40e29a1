"""Shopify refunds become exact ERP credit memos, read back from the sandbox ERP over HTTP: one line
partly refunded, shipping only, duties, goodwill on no line; one memo however often it arrives."""
import pytest
import requests

from exceptions_queue.models import ExceptionRecord
from integrations.models import OrderEvent, OrderLink, OutboundWrite, Refund
from tests.payloads import deliver_shopify_webhook, shopify_order, shopify_refund

pytestmark = pytest.mark.django_db


def _posted(client, capture, **kw):
    paid = shopify_order(**kw)
    deliver_shopify_webhook(client, paid, capture)
    link = OrderLink.objects.get(storefront_order_id=str(paid["id"]))
    assert link.state == OrderLink.State.POSTED, link.last_error
    return paid, link


def _refund(client, capture, refund, **kw):
    return deliver_shopify_webhook(client, refund, capture, topic="refunds/create", **kw)


def _memos_over_http(sandbox, reference):
    """What the ERP booked, as any client of its API reads it."""
    response = requests.get(f"{sandbox.url}/erp/api/v1/credit-memos", params={"external_reference": reference},
                            headers={"Authorization": "Bearer sandbox-erp-key"}, timeout=5)
    response.raise_for_status()
    return response.json()["data"]


def _active(type_code):
    return list(ExceptionRecord.objects.filter(type_code=type_code, status__in=ExceptionRecord.ACTIVE_STATUSES))


def test_a_partial_refund_of_one_line_credits_those_units_exactly(client, refund_setup, django_capture_on_commit_callbacks):
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2001, lines=[
        {"sku": "TEE-BLK-M", "price": "20.00", "quantity": 3, "tax_price": "12.00"},
        {"sku": "MUG-001", "price": "9.50", "quantity": 1, "tax_price": "1.90"}])
    refund = shopify_refund(paid, lines=[{"index": 0, "quantity": 1}])
    _refund(client, django_capture_on_commit_callbacks, refund)

    row = Refund.objects.get()
    [memo] = _memos_over_http(refund_setup, row.external_reference)
    assert memo["sales_order_id"] == link.erp_order_id
    assert [(l["item_code"], l["quantity"], l["line_total"], l["tax_amount"], l["tax_code"]) for l in memo["lines"]] == [
        ("TEE-BLK-M", 1, "20.00", "4.00", "T1")]
    assert (memo["total"], memo["tax_total"], memo["gross_total"]) == ("20.00", "4.00", "24.00")
    assert row.state == Refund.State.POSTED and row.credit_memo_id == memo["id"] and row.amount_display == "24.00 GBP"
    entry = link.timeline.get(kind=OrderEvent.Kind.CREDIT_MEMO_POSTED)
    assert memo["id"] in entry.message and "24.00 GBP" in entry.message
    assert OutboundWrite.objects.get(action="create_credit_memo").status == OutboundWrite.Status.SUCCEEDED
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED  # partly refunded: the sale goes on
    assert not ExceptionRecord.objects.filter(status__in=ExceptionRecord.ACTIVE_STATUSES).exists()


def test_a_shipping_only_refund_credits_the_shipping_item(client, refund_setup, django_capture_on_commit_callbacks):
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2002,
                         shipping=[{"price": "5.00", "tax_price": "1.00"}])
    _refund(client, django_capture_on_commit_callbacks, shopify_refund(paid, shipping="5.00", shipping_tax="1.00"))
    [memo] = _memos_over_http(refund_setup, Refund.objects.get().external_reference)
    assert [(l["item_code"], l["kind"], l["line_total"], l["tax_amount"], l["tax_code"]) for l in memo["lines"]] == [
        ("SHIPPING", "shipping", "5.00", "1.00", "T1")]
    assert memo["gross_total"] == "6.00"


def test_an_older_shipping_refund_stated_as_an_order_adjustment_credits_the_same(
    client, refund_setup, django_capture_on_commit_callbacks
):
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2003,
                         shipping=[{"price": "5.00", "tax_price": "1.00"}])
    _refund(client, django_capture_on_commit_callbacks,
            shopify_refund(paid, shipping="5.00", shipping_tax="1.00", legacy_shipping=True))
    [memo] = _memos_over_http(refund_setup, Refund.objects.get().external_reference)
    assert [(l["item_code"], l["line_total"], l["tax_amount"]) for l in memo["lines"]] == [("SHIPPING", "5.00", "1.00")]


def test_a_duties_refund_credits_the_duty_item(client, refund_setup, django_capture_on_commit_callbacks):
    duties = {"shop_money": {"amount": "7.50", "currency_code": "GBP"},
              "presentment_money": {"amount": "7.50", "currency_code": "GBP"}}
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2004, total_price="27.50",
                         original_total_duties_set=duties)
    _refund(client, django_capture_on_commit_callbacks, shopify_refund(paid, duties="7.50"))
    [memo] = _memos_over_http(refund_setup, Refund.objects.get().external_reference)
    assert [(l["item_code"], l["kind"], l["line_total"], l["tax_amount"]) for l in memo["lines"]] == [
        ("DUTIES", "duty", "7.50", "0.00")]
    assert memo["gross_total"] == "7.50"


def test_a_goodwill_refund_with_no_line_credits_the_configured_item(
    client, refund_setup, shopify_connection, django_capture_on_commit_callbacks
):
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2005)
    _refund(client, django_capture_on_commit_callbacks, shopify_refund(paid, goodwill="3.00", note="late parcel"))
    [memo] = _memos_over_http(refund_setup, Refund.objects.get().external_reference)
    assert [(l["item_code"], l["line_total"], l["tax_amount"]) for l in memo["lines"]] == [("GOODWILL", "3.00", "0.00")]
    assert memo["gross_total"] == "3.00" and memo["reason"] == "late parcel"

    # Another connection setting names another item for it.
    refund_setup.erp.add_item("GOODWILL-GB", "Goodwill GB")
    shopify_connection.settings = {"goodwill_item": "GOODWILL-GB"}
    shopify_connection.save()
    second = shopify_refund(paid, goodwill="1.50")
    _refund(client, django_capture_on_commit_callbacks, second)
    row = Refund.objects.get(storefront_refund_id=str(second["id"]))
    [memo] = _memos_over_http(refund_setup, row.external_reference)
    assert [(l["item_code"], l["line_total"]) for l in memo["lines"]] == [("GOODWILL-GB", "1.50")]


@pytest.mark.parametrize("erp_kind", ["rest", "prima"])
def test_the_same_refund_delivered_five_times_makes_one_credit_memo(
    client, refund_setup, settings, erp_kind, django_capture_on_commit_callbacks
):
    settings.ERP = {**settings.ERP, "kind": erp_kind}
    erp = refund_setup.erp if erp_kind == "rest" else refund_setup.prima
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2006,
                         lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    refund = shopify_refund(paid, lines=[{"index": 0, "quantity": 1}])
    for _ in range(5):  # Shopify redelivers, each time under a new webhook id
        _refund(client, django_capture_on_commit_callbacks, refund)
    [memo] = erp.credit_memos
    assert memo["gross_total"] == "24.00"
    assert Refund.objects.count() == 1
    assert OutboundWrite.objects.filter(action="create_credit_memo").count() == 1
    assert link.timeline.filter(kind=OrderEvent.Kind.CREDIT_MEMO_POSTED).count() == 1


def test_a_refund_that_does_not_add_up_is_held_with_both_sides_and_nothing_posted(
    client, refund_setup, django_capture_on_commit_callbacks
):
    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2007,
                         lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "tax_price": "4.00"}])
    # One unit refunded (20.00 + 4.00 tax) while 30.00 went back, with nothing stating the rest.
    _refund(client, django_capture_on_commit_callbacks,
            shopify_refund(paid, lines=[{"index": 0, "quantity": 1}], refunded="30.00"))
    assert refund_setup.erp.credit_memos == []
    [record] = _active("credit_memo_mismatch")
    assert record.team == "finance" and record.order == link
    breakdown = record.context["breakdown"]
    assert breakdown["storefront"]["total"] == "30.00" and breakdown["erp"]["total"] == "24.00"
    assert breakdown["difference"] == "-6.00"
    assert [(r["what"], r["storefront"], r["erp"]) for r in breakdown["rows"]] == [
        ("line 1 (TEE-BLK-M) × 1", "20.00", "20.00")]
    assert "30.00" in record.message and "24.00" in record.message
    assert Refund.objects.get().state == Refund.State.HELD
    assert not OutboundWrite.objects.filter(action="create_credit_memo").exists()


def test_a_refund_before_its_order_is_posted_posts_right_after_it(
    client, refund_setup, django_capture_on_commit_callbacks
):
    pending = shopify_order(number=2008, financial_status="pending")
    deliver_shopify_webhook(client, pending, django_capture_on_commit_callbacks, topic="orders/create")
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.WAITING_PAYMENT
    _refund(client, django_capture_on_commit_callbacks, shopify_refund(pending, goodwill="2.00"))
    assert Refund.objects.get().state == Refund.State.WAITING_ORDER
    assert refund_setup.erp.credit_memos == []

    deliver_shopify_webhook(client, {**pending, "financial_status": "paid", "updated_at": "2026-11-20T10:00:00+00:00"},
                            django_capture_on_commit_callbacks, topic="orders/paid")
    link.refresh_from_db()
    assert link.state == OrderLink.State.POSTED
    [sales_order] = refund_setup.erp.sales_orders
    [memo] = refund_setup.erp.credit_memos
    assert memo["sales_order_id"] == sales_order["id"] and memo["gross_total"] == "2.00"
    kinds = list(link.timeline.values_list("kind", flat=True))
    assert kinds.index(OrderEvent.Kind.POSTED) < kinds.index(OrderEvent.Kind.CREDIT_MEMO_POSTED)


def test_a_refund_for_an_order_ledgerline_never_saw_is_a_finance_exception_naming_the_gap(
    client, refund_setup, django_capture_on_commit_callbacks
):
    unseen = shopify_order(number=2009)
    refund = shopify_refund(unseen, goodwill="4.00")
    _refund(client, django_capture_on_commit_callbacks, refund)
    [record] = _active("refund_order_missing")
    assert record.team == "finance"
    assert record.context["storefront"] == "Shopify store"
    assert record.context["refund_id"] == str(refund["id"])
    assert record.context["storefront_order_id"] == str(unseen["id"])
    assert record.context["amount"] == "4.00 GBP"
    assert str(unseen["id"]) in record.title and "4.00 GBP" in record.title
    assert refund_setup.erp.credit_memos == []

    # The order turns up after all (a late webhook): it posts, and the refund follows it.
    deliver_shopify_webhook(client, unseen, django_capture_on_commit_callbacks)
    [memo] = refund_setup.erp.credit_memos
    assert memo["gross_total"] == "4.00"
    assert not _active("refund_order_missing")


def test_an_erp_without_credit_memos_keeps_the_refund_for_finance(
    client, refund_setup, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.connectors.erp import RestErpClient

    paid, link = _posted(client, django_capture_on_commit_callbacks, number=2010)
    monkeypatch.setattr(RestErpClient, "capabilities", RestErpClient.capabilities - {"credit_memos"})
    _refund(client, django_capture_on_commit_callbacks, shopify_refund(paid, goodwill="2.00"))
    [record] = _active("refund_pending")
    assert record.team == "finance" and "2.00 GBP" in record.message
    assert refund_setup.erp.credit_memos == []


def test_an_order_first_seen_refunded_credits_the_refund_it_carries_once(
    client, refund_setup, django_capture_on_commit_callbacks
):
    sold = shopify_order(number=2011, lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00"}])
    refund = shopify_refund(sold, lines=[{"index": 0, "quantity": 1}])
    first_seen = {**sold, "financial_status": "partially_refunded",
                  "refunds": [{k: v for k, v in refund.items() if k != "order_id"}]}
    deliver_shopify_webhook(client, first_seen, django_capture_on_commit_callbacks)
    deliver_shopify_webhook(client, refund, django_capture_on_commit_callbacks, topic="refunds/create")
    [sales_order] = refund_setup.erp.sales_orders
    [memo] = refund_setup.erp.credit_memos
    assert sales_order["gross_total"] == "48.00" and memo["gross_total"] == "24.00"
    assert not _active("refund_pending")
