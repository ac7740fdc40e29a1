"""The ERP total is the storefront total: orders that do not add up are held for finance, the ERP's
own total is compared after posting, and every bad shape ends as an owned exception."""
import pytest

from exceptions_queue.models import ExceptionRecord
from integrations.models import InboundEvent, OrderEvent, OrderLink
from tests.payloads import deliver_shopify_webhook, later, post_shopify_webhook, shopify_order

pytestmark = pytest.mark.django_db


_deliver = deliver_shopify_webhook


def _active(type_code):
    return list(ExceptionRecord.objects.filter(type_code=type_code, status__in=ExceptionRecord.ACTIVE_STATUSES))


LINES = [{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 2, "tax_price": "8.00", "discounts": ["5.00"]}]
SHIPPING = [{"price": "4.99", "tax_price": "1.00"}]


def test_an_order_whose_lines_do_not_add_up_to_its_total_is_held_for_finance_with_both_breakdowns(
    client, order_setup, django_capture_on_commit_callbacks
):
    # Lines 40.00 − 5.00 + shipping 4.99 + tax 9.00 = 48.99, but the order says the customer paid 50.00.
    payload = shopify_order(number=1301, lines=LINES, shipping=SHIPPING, total_price="50.00")
    _deliver(client, payload, django_capture_on_commit_callbacks)

    assert order_setup.erp.sales_orders == []  # never posted with a wrong number
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.FAILED
    [record] = _active("total_mismatch")
    assert record.team == "finance" and record.order == link
    assert record.title == "Order #1301 does not add up: ERP 48.99 GBP vs storefront 50.00 GBP"
    assert "difference -1.01" in record.message
    breakdown = record.context["breakdown"]
    assert breakdown["storefront"]["total"] == "50.00" and breakdown["erp"]["total"] == "48.99"
    assert breakdown["difference"] == "-1.01"
    rows = {r["what"]: r for r in breakdown["rows"]}
    assert rows["line 1 (TEE-BLK-M) × 2"]["storefront"] == "35.00" and rows["line 1 (TEE-BLK-M) × 2"]["erp"] == "35.00"
    assert rows["shipping 'Standard'"]["erp_tax"] == "1.00"
    assert breakdown["tax_by_rate"] == [{"rate": "20%", "storefront": "9.00", "erp": "9.00", "difference": "0.00"}]
    assert link.timeline.filter(kind=OrderEvent.Kind.TOTAL_MISMATCH).exists()


def test_the_breakdown_is_shown_side_by_side_on_the_exception_page(
    client, order_setup, finance_user, django_capture_on_commit_callbacks
):
    _deliver(client, shopify_order(number=1302, lines=LINES, total_price="50.00"), django_capture_on_commit_callbacks)
    [record] = _active("total_mismatch")
    client.force_login(finance_user)
    page = client.get(f"/exceptions/{record.pk}/").content.decode()
    assert "Storefront" in page and "ERP document" in page
    assert "50.00" in page and "43.00" in page and "-7.00" in page  # 35.00 + 8.00 tax vs 50.00
    assert 'class="breakdown"' in page


def test_tax_per_rate_must_match_the_storefronts_tax_lines(client, order_setup, django_capture_on_commit_callbacks):
    payload = shopify_order(number=1303, lines=LINES)
    payload["tax_lines"] = [{"title": "VAT", "rate": 0.2, "price": "6.00", "price_set": {"shop_money": {"amount": "6.00"}}},
                            {"title": "VAT", "rate": 0.05, "price": "2.00", "price_set": {"shop_money": {"amount": "2.00"}}}]
    _deliver(client, payload, django_capture_on_commit_callbacks)
    [record] = _active("total_mismatch")
    assert "tax at 20% is 8.00 on the document, 6.00 in the storefront's tax lines" in record.message
    assert "tax at 5%" in record.message and "1E" not in record.message
    assert order_setup.erp.sales_orders == []


def test_a_corrected_order_posts_and_its_mismatch_resolves_itself(client, order_setup, django_capture_on_commit_callbacks):
    wrong = shopify_order(number=1304, lines=LINES, total_price="50.00")
    _deliver(client, wrong, django_capture_on_commit_callbacks)
    right = later(shopify_order(order_id=wrong["id"], number=1304, lines=LINES))
    _deliver(client, right, django_capture_on_commit_callbacks, topic="orders/updated")
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    [booked] = order_setup.erp.sales_orders
    assert booked["gross_total"] == "43.00"
    assert not _active("total_mismatch")


def test_a_posted_total_the_erp_reports_differently_is_a_finance_exception(
    client, order_setup, django_capture_on_commit_callbacks
):
    order_setup.erp.configure(gross_skew="0.01")  # the ERP recalculates tax its own way
    _deliver(client, shopify_order(number=1305, lines=LINES, shipping=SHIPPING), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.POSTED
    assert (link.total_minor, link.posted_total_minor, link.erp_total_minor) == (4899, 4899, 4900)
    [record] = _active("erp_total_mismatch")
    assert record.team == "finance"
    assert "the ERP reports 49.00 GBP" in record.message and "48.99 GBP" in record.message


def test_an_order_the_erp_books_at_its_own_total_raises_nothing(client, order_setup, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1306, lines=LINES, shipping=SHIPPING), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.erp_total_minor == link.total_minor == 4899
    assert not ExceptionRecord.objects.exists()


@pytest.mark.parametrize("breakage, field", [
    (lambda p: p.update(line_items="three tees"), "line_items"),
    (lambda p: p.update(line_items=None), "line_items"),
    (lambda p: p["line_items"][0].update(quantity="2"), "quantity"),
    (lambda p: p["line_items"][0].update(tax_lines={"rate": 0.2}), "tax_lines"),
    (lambda p: p.update(total_price="1e30", total_price_set={"shop_money": {"amount": "1e30"}}), "total"),
    (lambda p: p.update(updated_at="2026-11-20T09:00:00"), "updated_at"),
])
def test_a_payload_that_cannot_be_translated_is_an_owned_exception_naming_the_field(
    breakage, field, client, order_setup, django_capture_on_commit_callbacks
):
    payload = shopify_order(number=1307, lines=LINES)
    breakage(payload)
    _deliver(client, payload, django_capture_on_commit_callbacks)
    [record] = _active("malformed_payload")
    assert field in record.message
    assert InboundEvent.objects.get().status == InboundEvent.Status.FAILED
    assert order_setup.erp.sales_orders == []


def test_an_unexpected_error_while_posting_is_owned_and_scheduled_for_a_re_post(
    client, order_setup, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("mapping cache corrupted")

    monkeypatch.setattr("integrations.flows.orders.posting.build_sales_order", broken)
    _deliver(client, shopify_order(number=1308, lines=LINES), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    assert link.state == OrderLink.State.FAILED and link.next_retry_at is not None
    [record] = _active("posting_error")
    assert record.team == "ops" and "mapping cache corrupted" in record.message

    monkeypatch.undo()
    from integrations.flows.orders import order_post_to_erp

    assert order_post_to_erp(order_id=link.pk) == "posted"
    assert not _active("posting_error")


def test_the_order_page_shows_that_the_three_totals_agree(client, order_setup, ops_user, django_capture_on_commit_callbacks):
    _deliver(client, shopify_order(number=1309, lines=LINES, shipping=SHIPPING), django_capture_on_commit_callbacks)
    link = OrderLink.objects.get()
    client.force_login(ops_user)
    page = client.get(f"/orders/{link.pk}/").content.decode()
    assert "storefront 48.99 GBP · sent 48.99 GBP" in page and "ERP booked 48.99 GBP" in page
    assert ">agree<" in page


@pytest.mark.parametrize("rate, written", [("0.1", "10%"), ("0.075", "7.5%"), ("0.2", "20%")])
def test_an_unmapped_tax_rate_is_written_as_people_write_it(rate, written, client, order_setup,
                                                           django_capture_on_commit_callbacks):
    payload = shopify_order(number=1310, country="FR",
                            lines=[{"sku": "TEE-BLK-M", "price": "20.00", "quantity": 1, "tax_rate": rate,
                                    "tax_price": "1.00"}])
    _deliver(client, payload, django_capture_on_commit_callbacks)
    [record] = _active("missing_tax_mapping")
    assert record.title == f"No ERP tax code for {written} in FR"
    assert f"Tax rate {written} (VAT) in FR" in record.message
    assert "E+" not in record.title + record.message
